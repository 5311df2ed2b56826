/**
 * `vxtap bench --hosts` against two real OpenSSH servers, each in a network
 * namespace this test creates (test/helpers/sshd.ts): the controller in the
 * root namespace reaches them over management veths with a key made for the
 * test; the underlay is a veth between the two namespaces.
 *
 * - a --quick run of bare, kernel-vxlan, ovs-gre (with --data-dev) and vxtap
 *   across SSH: every mode measured, the result validates, both hosts
 *   recorded, nothing left, the data addresses back where they were;
 *   a second bench against the same hosts meanwhile is refused by the lock;
 * - the SSH connection to host B dropped mid-run: B's agent cleans its host by
 *   itself within seconds, the run ends incomplete with the reason, figures kept;
 * - a firewall in B dropping the VXLAN port: the preflight refuses, naming the
 *   host and the direction, and nothing is created;
 * - the controller and B's agent SIGKILLed mid-run while OVS holds B's data
 *   address, then `--cleanup --hosts`: nothing left, the address restored;
 * - `--deploy` to a host without vxtap (B's second sshd hides the checkout);
 *   another build on a host refused with both versions.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { output, run } from '../../src/host/exec.js';
import { validateResult } from '../../bench/validate.js';
import type { BenchResult } from '../../bench/result.js';
import { createSshPair, sshdSkipReason, type SshTestHost, type SshTestPair } from '../helpers/sshd.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const main = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const built = existsSync(main) && existsSync(path.join(repo, 'dist', 'bench', 'remote', 'agent.js'));
const skipReason = sshdSkipReason() ?? (!built ? 'needs a build (npx tsc -p .)' : null);
const PREFIX = 'vxs';
const out = mkdtempSync(path.join(os.tmpdir(), 'vxs-bench-remote-'));
let pair: SshTestPair | null = null;

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function startCli(args: string[], timeoutMs: number, env: Record<string, string> = {}): { done: Promise<CliRun>; stderr: () => string; pid: number; stop: () => Promise<CliRun> } {
  const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer | string) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer | string) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
  const done = new Promise<CliRun>((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  // SIGINT: the bench's own interrupt path (it cleans both hosts and exits)
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    return done;
  };
  return { done, stderr: () => stderr, pid: child.pid ?? -1, stop };
}

/**
 * A failed run's reasons on one line: npm test's closing summary (and CI's view of
 * it) shows only an assertion's first line, and a run's stderr starts with progress.
 */
function why(stderr: string): string {
  const lines = stderr.split('\n');
  const first = lines.findIndex((l) => /error|fail|refus|incomplete|unreachable|no route|left|in use/i.test(l));
  return (first >= 0 ? lines.slice(first, first + 15) : [stderr.slice(-1500)]).join(' | ').replace(/\s+/g, ' ');
}

function hostArgs(p: SshTestPair): string[] {
  return ['--hosts', `${p.a.alias},${p.b.alias}`, '--ssh-config', p.sshConfig, '--underlay', `${p.a.dataAddr},${p.b.dataAddr}`];
}

/** What a run left in a host's namespace: links other than the test's own, processes other than sshd. */
async function leftoversIn(h: SshTestHost): Promise<string[]> {
  const found: string[] = [];
  for (const line of (await output(['ip', '-o', 'link', 'show'], { netns: h.ns })).split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m && !['lo', 'mgmt0', h.dataDev].includes(m[1])) found.push(`link ${m[1]} in ${h.ns}`);
  }
  for (const pid of (await output(['ip', 'netns', 'pids', h.ns], { allowFail: true })).split(/\s+/).filter(Boolean)) {
    const cl = (await output(['cat', `/proc/${pid}/cmdline`], { allowFail: true })).replace(/\0/g, ' ').trim();
    if (!/^(\/usr\/sbin\/sshd|sshd:|ip netns exec)/.test(cl)) found.push(`process ${pid} ${cl} in ${h.ns}`);
  }
  return found;
}

/** The IPv4 address on a host's data interface, or null. */
async function dataAddressOf(h: SshTestHost): Promise<string | null> {
  const m = /inet ([\d.]+)\//.exec(await output(['ip', '-o', '-4', 'addr', 'show', 'dev', h.dataDev], { netns: h.ns, allowFail: true }));
  return m ? m[1] : null;
}

function latestResult(): BenchResult {
  const dirs = readdirSync(out).sort();
  return JSON.parse(readFileSync(path.join(out, dirs[dirs.length - 1], 'result.json'), 'utf8')) as BenchResult;
}

beforeAll(async () => {
  if (!skipReason) pair = await createSshPair(PREFIX, repo);
});

afterAll(async () => {
  if (pair) {
    await startCli(['bench', '--cleanup', ...hostArgs(pair)], 30_000).done;
    await pair.destroy();
  }
  rmSync(out, { recursive: true, force: true });
});

describe.skipIf(skipReason !== null)(`vxtap bench --hosts over SSH (integration${skipReason ? `: skipped, ${skipReason}` : ''})`, () => {
  it('--quick with bare, kernel-vxlan, ovs-gre (--data-dev) and vxtap across two SSH hosts: measured, recorded, validated, nothing left; a second bench meanwhile is refused by the lock', async () => {
    const p = pair!;
    // Shorter than --quick where the local bench test (bench.test.ts) already covers the measures: one
    // UDP frame size, the MTU sweep's two sizes around the inner MTU, shorter loaded latency. What this
    // run tests is the remote mechanics, and npm test's 10 minutes are nearly used up.
    const profile = JSON.stringify({ udpFrameSizes: [64], udpMaxTrials: 2, latencyLoadedSeconds: 0.5, mtuSweepSizes: [1450, 1451] });
    const first = startCli(['bench', '--quick', '--modes', 'bare,kernel-vxlan,ovs-gre,vxtap', '--data-dev', `${p.a.dataDev},${p.b.dataDev}`, '--out', out, '--json', ...hostArgs(p)], 180_000, {
      VXTAP_BENCH_TEST_PROFILE: profile,
    });
    // The first run holds both hosts' locks from its connection on; its preflight line comes after that.
    // Whatever fails below, the first run is stopped before the next test: left running, it held the
    // locks and moved B's address under the later tests (what CI saw as a cascade of failures).
    try {
      const deadline = Date.now() + 120_000;
      while (!/preflight:/.test(first.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(first.stderr(), `the first run never reached its preflight: ${why(first.stderr())}`).toMatch(/preflight:/);
      const second = await startCli(['bench', '--quick', '--modes', 'bare', '--out', out, '--no-progress', ...hostArgs(p)], 60_000).done;
      expect(second.code, `the second run was not refused: ${why(second.stderr)}; the first run: ${why(first.stderr())}`).toBe(1);
      expect(second.stderr).toMatch(/host A \(vxs-a\): host is in use by bench run vxb-/);
      expect(second.stderr).toMatch(/nothing was created on the hosts/);
      const r = await first.done;
      expect(r.code, why(r.stderr)).toBe(0);
      const result = JSON.parse(r.stdout.trim().split('\n').pop()!) as BenchResult;
      expect(validateResult(result)).toEqual([]);
      expect(result.status).toBe('complete');
      expect(result.topology.kind).toBe('ssh-hosts');
      expect(result.topology.underlay).toMatchObject({ a: p.a.dataAddr, b: p.b.dataAddr });
      for (const id of ['bare', 'kernel-vxlan', 'ovs-gre', 'vxtap']) {
        const s = result.samples.find((x) => x.mode === id)!;
        expect(s.error, `${id}: ${String(s.error)}`).toBeNull();
        expect(s.tcp1!.receivedBps).toBeGreaterThan(0);
        expect(s.latencyIdle!.percentiles.count).toBeGreaterThan(0);
      }
      expect(result.hosts).toHaveLength(2);
      for (const [i, h] of result.hosts!.entries()) {
        expect(h.ssh).toBe(i === 0 ? p.a.alias : p.b.alias);
        expect(h.underlay.dev).toBe(i === 0 ? p.a.dataDev : p.b.dataDev);
        expect(typeof h.clockOffsetMs.start).toBe('number');
        expect(typeof h.clockOffsetMs.end).toBe('number');
        expect((h.environment as { kernel: string }).kernel).toBeTruthy();
        expect((h as { preflight: { vxlanUdpFromPeer: { received: number }; greFromPeer: { received: number } | null } }).preflight.vxlanUdpFromPeer.received).toBeGreaterThan(0);
        expect((h as { preflight: { greFromPeer: { received: number } | null } }).preflight.greFromPeer?.received ?? 1).toBeGreaterThan(0);
      }
      expect([...(await leftoversIn(p.a)), ...(await leftoversIn(p.b))]).toEqual([]);
      expect(await dataAddressOf(p.a)).toBe(p.a.dataAddr); // OVS moved it onto its bridge and back
      expect(await dataAddressOf(p.b)).toBe(p.b.dataAddr);
    } finally {
      await first.stop();
    }
  }, 240_000);

  it('the SSH connection to host B dropped mid-run: B cleans itself within seconds, the run ends incomplete with the reason', async () => {
    const p = pair!;
    const run = startCli(['bench', '--quick', '--modes', 'kernel-vxlan,bare', '--out', out, ...hostArgs(p)], 150_000);
    onTestFinished(() => run.stop().then(() => undefined));
    // Wait until the kernel VXLAN device exists on B (the mode is set up), then cut B's SSH connection.
    const deadline = Date.now() + 90_000;
    let dev = '';
    while (!dev && Date.now() < deadline) {
      dev = (await output(['ip', '-o', 'link', 'show', 'type', 'vxlan'], { netns: p.b.ns, allowFail: true })).trim();
      if (!dev) await new Promise((r) => setTimeout(r, 50));
    }
    expect(dev, run.stderr()).not.toBe('');
    const t0 = Date.now();
    expect(await p.dropConnections(p.b)).toBeGreaterThan(0);
    let cleanMs = -1;
    while (Date.now() - t0 < 10_000) {
      if ((await leftoversIn(p.b)).length === 0) {
        cleanMs = Date.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`host B cleaned itself ${cleanMs} ms after its SSH connection was dropped`);
    expect(cleanMs, (await leftoversIn(p.b)).join('\n')).toBeGreaterThanOrEqual(0);
    const r = await run.done;
    expect(r.code, why(r.stderr)).toBe(1);
    const result = latestResult();
    expect(result.status).toBe('incomplete');
    expect(result.incompleteReasons.join('\n')).toMatch(/host B \(vxs-b\): connection lost/);
    expect(validateResult(result)).toEqual([]);
    expect(await leftoversIn(p.a)).toEqual([]);
  }, 180_000);

  it('a firewall on host B dropping the VXLAN port: the preflight refuses, naming the host and the direction, and creates nothing', async () => {
    const p = pair!;
    await run(['nft', 'add', 'table', 'inet', 'vxsfw'], { netns: p.b.ns });
    await run(['nft', 'add', 'chain', 'inet', 'vxsfw', 'in', '{ type filter hook input priority 0 ; }'], { netns: p.b.ns });
    await run(['nft', 'add', 'rule', 'inet', 'vxsfw', 'in', 'udp', 'dport', '4789', 'drop'], { netns: p.b.ns });
    try {
      const r = await startCli(['bench', '--quick', '--modes', 'bare', '--out', out, ...hostArgs(p)], 60_000).done;
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/VXLAN \(UDP port 4789\) from host A \(vxs-a, 198\.18\.238\.1\) does not arrive at host B \(vxs-b, 198\.18\.238\.2\)/);
      expect(r.stderr).not.toMatch(/from host B \([^)]*\) does not arrive/);
      expect(r.stderr).toMatch(/Fix on host B: nft insert rule/);
      expect(r.stderr).toMatch(/nothing was created on the hosts/);
      expect([...(await leftoversIn(p.a)), ...(await leftoversIn(p.b))]).toEqual([]);
    } finally {
      await run(['nft', 'delete', 'table', 'inet', 'vxsfw'], { netns: p.b.ns, allowFail: true });
    }
  });

  it("the controller and host B's agent SIGKILLed mid-run (OVS holding B's data address), then --cleanup --hosts: nothing left, the address back", async () => {
    const p = pair!;
    const ctl = startCli(['bench', '--quick', '--modes', 'ovs-gre', '--data-dev', `${p.a.dataDev},${p.b.dataDev}`, '--out', out, ...hostArgs(p)], 150_000);
    onTestFinished(() => ctl.stop().then(() => undefined));
    const deadline = Date.now() + 90_000;
    // Mid-run: the mode is set up and B's servers run.
    let midRun = false;
    while (!midRun && Date.now() < deadline) {
      midRun = (await leftoversIn(p.b)).some((l) => /iperf3/.test(l));
      if (!midRun) await new Promise((r) => setTimeout(r, 50));
    }
    expect(midRun, `B's iperf3 server never ran: ${why(ctl.stderr())}`).toBe(true);
    // B's agent killed first (nothing cleans B then), the controller next (A's agent sees its stdin close).
    for (const pid of (await output(['ip', 'netns', 'pids', p.b.ns])).split(/\s+/).filter(Boolean)) {
      const cl = (await output(['cat', `/proc/${pid}/cmdline`], { allowFail: true })).replace(/\0/g, ' ');
      if (/agent(\.js)? --stdio/.test(cl)) process.kill(Number(pid), 'SIGKILL');
    }
    process.kill(ctl.pid, 'SIGKILL');
    await ctl.done;
    expect((await leftoversIn(p.b)).length, 'B keeps what its killed agent made').toBeGreaterThan(0);
    expect(await dataAddressOf(p.b), 'the address is on the OVS bridge').toBeNull();
    const c = await startCli(['bench', '--cleanup', ...hostArgs(p)], 60_000).done;
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).toMatch(/host B \(vxs-b\): (killed process|deleted link)/);
    // the killed controller's run state on this machine goes too
    expect(c.stderr).toContain(`removed the run state of killed controller vxb-${String(ctl.pid)}-`);
    expect(readdirSync(process.env.VXTAP_BENCH_STATE_DIR || '/run/vxtap-bench').filter((n) => n.startsWith(`vxb-${String(ctl.pid)}-`))).toEqual([]);
    const settle = Date.now() + 5000;
    let left = [...(await leftoversIn(p.a)), ...(await leftoversIn(p.b))];
    while (left.length && Date.now() < settle) {
      await new Promise((r) => setTimeout(r, 100));
      left = [...(await leftoversIn(p.a)), ...(await leftoversIn(p.b))];
    }
    expect(left).toEqual([]);
    expect(await dataAddressOf(p.a)).toBe(p.a.dataAddr);
    expect(await dataAddressOf(p.b)).toBe(p.b.dataAddr);
  }, 180_000);

  it('--deploy copies this build to a host without vxtap; another build on a host is refused with both versions', async () => {
    const p = pair!;
    const args = [
      '--hosts',
      `${p.a.alias},${p.bBare.alias}`,
      '--ssh-config',
      p.sshConfig,
      '--underlay',
      `${p.a.dataAddr},${p.b.dataAddr}`,
      '--quick',
      '--modes',
      'bare',
      '--out',
      out,
      '--no-progress',
    ];
    const without = await startCli(['bench', ...args], 60_000).done;
    expect(without.code, without.stderr).toBe(1);
    expect(without.stderr).toMatch(/host B \(vxs-b-bare\): .*vxtap is not installed on this host/);
    expect(without.stderr).toMatch(/--deploy/);
    const deployed = await startCli(['bench', ...args, '--deploy', '--json'], 120_000).done;
    expect(deployed.code, why(deployed.stderr)).toBe(0);
    expect(deployed.stderr).toMatch(/host B \(vxs-b-bare\): copying this build/);
    const result = JSON.parse(deployed.stdout.trim().split('\n').pop()!) as BenchResult;
    expect(result.status).toBe('complete');
    expect(result.hosts![1].build).toEqual(result.hosts![0].build);
    // Another build on B: its stamp says another commit.
    const stampFile = path.join(p.bBare.cacheDir, 'vxtap', 'bundle', 'build.json');
    const stamp = JSON.parse(readFileSync(stampFile, 'utf8')) as { commit: string };
    writeFileSync(stampFile, JSON.stringify({ ...stamp, commit: 'f'.repeat(40) }));
    const other = await startCli(['bench', ...args], 60_000).done;
    expect(other.code, other.stderr).toBe(1);
    // (the controller's commit is whatever HEAD is now: other work may land on the branch meanwhile)
    expect(other.stderr).toMatch(
      /host B \(vxs-b-bare\) runs another vxtap build \(differs in commit\): host [^ ]+ \(commit ffffffffffff[^)]*\), controller [^ ]+ \(commit (?!ffffffffffff)[0-9a-f]{12}/,
    );
    expect(await leftoversIn(p.b)).toEqual([]);
  }, 180_000);
});
