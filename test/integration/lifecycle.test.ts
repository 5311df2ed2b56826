/**
 * Lifecycle of `vxtap up`: one instance per network namespace under the same
 * name (the control socket is per namespace); SIGKILL and an immediate restart
 * (stable MAC, announcement, stale leftovers, measured dark time); a worker that
 * fails is restarted in-process (measured dark time); the control socket path is
 * never removed unless it is a socket; --metrics serves only /metrics; the
 * uplink's steering table lives and dies with the process, and a stale plain one
 * is removed by `vxtap up` and `vxtap down`.
 *
 * Dark times are printed ("dark time ..."), not asserted against a tight bound:
 * this machine is a loaded 2-core VM. Recovery itself is asserted.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'node:http';
import type { ChildProcess } from 'node:child_process';
import { CLI, HostScope, ping, twoHosts, type Host } from '../helpers/vxtap.js';
import { uniqueTag } from '../../src/host/netns.js';
import { run, stop } from '../../src/host/exec.js';
import { fetchStatus, type VtepStatus } from '../../src/dataplane/vtep.js';
import { named, skipReason } from '../helpers/requires.js';

const skip = skipReason({ root: true, tun: true, build: true, commands: ['ip', 'ping'] });
// the uplink needs nft and a kernel with UDP-tunnel GSO on TAP (Linux 6.17+)
const [major, minor] = (/^(\d+)\.(\d+)/.exec(release()) ?? ['', '0', '0']).slice(1).map(Number);
const skipUplink = skip ?? skipReason({ commands: ['nft'] }) ?? (major > 6 || (major === 6 && minor >= 17) ? null : `needs Linux 6.17+ for the uplink (UDP-tunnel GSO on TAP), this is ${release()}`);

/** The default control socket of instance `name` in namespace `ns` (keyed by the namespace's inode). */
function defaultSock(ns: string, name = 'vxtap0'): string {
  return `/run/vxtap/netns-${statSync(`/run/netns/${ns}`).ino}/${name}.sock`;
}

interface Up {
  child: ChildProcess;
  startedAt: number;
  stderr: () => string;
}

/** Spawn `vxtap up` in `host.ns` (no readiness wait). */
function spawnUp(scope: HostScope, host: Host, args: string[], env: Record<string, string> = {}, track?: Up[]): Up {
  const startedAt = Date.now();
  const child = scope.spawn(['node', CLI, 'up', '--local', host.underlay, ...args], { netns: host.ns, env });
  let err = '';
  child.stderr?.on('data', (d: Buffer | string) => (err += d.toString()));
  child.stdout?.resume();
  const up = { child, startedAt, stderr: () => err };
  track?.push(up);
  return up;
}

/** Wait until `sock` answers /stats; throws with the instance's stderr when it exits or times out. */
async function ready(up: Up, sock: string, timeoutMs = 15_000): Promise<VtepStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (up.child.exitCode !== null) throw new Error(`vxtap up exited ${up.child.exitCode}: ${up.stderr()}`);
    try {
      return JSON.parse(await fetchStatus(sock)) as VtepStatus;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`vxtap up did not become ready: ${up.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** SIGKILL the vxtap process itself (not its group), as a crash would; resolves when it is gone. */
async function kill9(up: Up): Promise<void> {
  const gone = new Promise<void>((r) => (up.child.exitCode !== null || up.child.signalCode !== null ? r() : up.child.once('exit', () => r())));
  process.kill(up.child.pid!, 'SIGKILL');
  await gone;
}

/** A ping every 10 ms for `seconds`, replies with their timestamps (ping -D). */
function pingFlow(scope: HostScope, ns: string, target: string, seconds: number): Promise<{ sent: number; replies: { seq: number; t: number }[] }> {
  const child = scope.spawn(['ping', '-n', '-D', '-i', '0.01', '-W', '1', '-w', String(seconds), target], { netns: ns });
  let out = '';
  child.stdout?.on('data', (d: Buffer | string) => (out += d.toString()));
  return new Promise((resolve) => {
    child.once('exit', () => {
      const replies = [...out.matchAll(/^\[(\d+\.\d+)\] .*icmp_seq=(\d+)/gm)].map((m) => ({ t: Number(m[1]) * 1000, seq: Number(m[2]) }));
      const sent = Number(/(\d+) packets transmitted/.exec(out)?.[1] ?? 0);
      resolve({ sent, replies });
    });
  });
}

/**
 * The longest gap between consecutive replies around `at` (ms, epoch), and when
 * the first reply after `from` came: the overlay's dark time.
 */
function darkTime(replies: { seq: number; t: number }[], from: number): { gapMs: number; lost: number; firstReplyAfterMs: number } {
  let gapMs = 0;
  let lost = 0;
  for (let i = 1; i < replies.length; i++) {
    const g = replies[i].t - replies[i - 1].t;
    if (g > gapMs) {
      gapMs = g;
      lost = replies[i].seq - replies[i - 1].seq - 1;
    }
  }
  const first = replies.find((r) => r.t >= from);
  return { gapMs: Math.round(gapMs), lost, firstReplyAfterMs: first ? Math.round(first.t - from) : NaN };
}

/**
 * Wait until `target` answers a ping from `ns` (5 s at most): the first packet
 * of a fresh pair waits for ARP through the overlay, and a just-started VTEP's
 * workers may still be loading, so a single ping is no readiness check.
 */
async function reachable(ns: string, target: string): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const p = await ping(ns, target, 1, 0.1, ['-W', '1']);
    if (p.loss < 1) return;
    if (Date.now() > deadline) throw new Error(`${target} unreachable from ${ns}: ${p.out}`);
  }
}

/** POST to the control socket (the test hook). */
function post(sock: string, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path: urlPath, method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(skip !== null)(named('vxtap lifecycle', skip), () => {
  const scope = new HostScope('vxl');
  let a: Host;
  let b: Host;

  beforeAll(async () => {
    [a, b] = await twoHosts(scope);
  });
  afterAll(() => scope.cleanup());
  // a failed test must not leave its instances (same overlay addresses) for the next
  const running: Up[] = [];
  afterEach(async () => {
    for (const up of running.splice(0)) await stop(up.child);
  });
  const upIn = (host: Host, args: string[], env: Record<string, string> = {}) => spawnUp(scope, host, args, env, running);

  it('runs one instance per network namespace under the default name; stats finds its own', async () => {
    const ua = upIn(a, ['--peer', b.underlay, '--address', '198.19.0.1/16']);
    const ub = upIn(b, ['--peer', a.underlay, '--address', '198.19.0.2/16']);
    const sa = defaultSock(a.ns);
    const sb = defaultSock(b.ns);
    expect(sa).not.toBe(sb);
    expect((await ready(ua, sa)).local).toBe(a.underlay);
    expect((await ready(ub, sb)).local).toBe(b.underlay);
    expect(lstatSync(sa).mode & 0o777).toBe(0o600);
    // `vxtap stats` without --name or --stats-socket, inside each namespace
    for (const h of [a, b]) {
      const r = await run(['node', CLI, 'stats'], { netns: h.ns });
      expect((JSON.parse(r.stdout) as VtepStatus).local).toBe(h.underlay);
    }
    await reachable(a.ns, '198.19.0.2');
    await stop(ua.child);
    await stop(ub.child);
    expect(ua.child.exitCode).toBe(0);
    expect(existsSync(sa)).toBe(false);
    expect(existsSync(sb)).toBe(false);
  });

  it('refuses a second instance under another name on the same --local and --port (exit 2, nothing created); the first keeps forwarding', async () => {
    const ua = upIn(a, ['--name', 'vxlp0', '--peer', b.underlay, '--address', '198.19.0.1/16']);
    const ub = upIn(b, ['--name', 'vxlp0', '--peer', a.underlay, '--address', '198.19.0.2/16']);
    await ready(ua, defaultSock(a.ns, 'vxlp0'));
    await ready(ub, defaultSock(b.ns, 'vxlp0'));
    await reachable(a.ns, '198.19.0.2');
    // SO_REUSEPORT would let it join the first one's receive group and take a share of its datagrams
    const second = await run(['node', CLI, 'up', '--name', 'vxlp1', '--local', a.underlay, '--peer', b.underlay, '--address', '198.19.1.1/16'], { netns: a.ns, allowFail: true, timeoutMs: 20_000 });
    expect(second.code, second.stderr).toBe(2);
    expect(second.stderr).toContain(`port: bind: Address already in use (EADDRINUSE): ${a.underlay}:4789 is in use by another socket`);
    expect((await run(['ip', '-o', 'link', 'show'], { netns: a.ns })).stdout).not.toContain('vxlp1');
    expect(existsSync(defaultSock(a.ns, 'vxlp1'))).toBe(false);
    // all of A's receive sockets are still the first instance's: 50 pings, none lost to a stray socket
    const p = await ping(a.ns, '198.19.0.2', 50, 0.01, ['-W', '1']);
    expect(p.loss, p.out).toBe(0);
    // another port on the same address is fine
    const other = upIn(a, ['--name', 'vxlp2', '--port', '4790', '--srcport-range', '49300-49301', '--peer', b.underlay]);
    expect((await ready(other, defaultSock(a.ns, 'vxlp2'))).port).toBe(4790);
  });

  it('comes back after SIGKILL and an immediate restart with the same MAC (dark time printed)', async () => {
    const argsA = ['--name', 'vxlr0', '--peer', b.underlay, '--address', '198.19.0.1/16'];
    const sockA = defaultSock(a.ns, 'vxlr0');
    let ua = upIn(a, argsA);
    const ub = upIn(b, ['--name', 'vxlr0', '--peer', a.underlay, '--address', '198.19.0.2/16']);
    const before = await ready(ua, sockA);
    await ready(ub, defaultSock(b.ns, 'vxlr0'));
    await reachable(b.ns, '198.19.0.1');

    const flow = pingFlow(scope, b.ns, '198.19.0.1', 7);
    await new Promise((r) => setTimeout(r, 1500));
    const killedAt = Date.now();
    await kill9(ua);
    expect(existsSync(sockA)).toBe(true); // the stale socket file stays after SIGKILL ...
    ua = upIn(a, argsA); // ... and must not block the restart
    const after = await ready(ua, sockA);
    const readyMs = Date.now() - ua.startedAt;
    const { sent, replies } = await flow;
    const d = darkTime(replies, ua.startedAt);
    process.stderr.write(
      `dark time (static mode, SIGKILL + restart): longest gap ${d.gapMs} ms (${d.lost} pings lost), first reply ${d.firstReplyAfterMs} ms after the new process started, ` +
        `restart ready after ${readyMs} ms, kill-to-spawn ${ua.startedAt - killedAt} ms; ${replies.length}/${sent} replies\n`,
    );
    expect(after.mac).toBe(before.mac);
    expect(replies.some((r) => r.t > ua.startedAt)).toBe(true);
    expect(replies.at(-1)!.t - ua.startedAt).toBeGreaterThan(2000); // it kept flowing to the end
    await stop(ua.child);
    await stop(ub.child);
  });

  it.each([
    ['IPv4 (gratuitous ARP)', '198.19.0.1/16', '198.19.0.2/16'],
    ['IPv6 (unsolicited neighbour advertisement)', '2001:2:0:1::1/64', '2001:2:0:1::2/64'],
  ])('announces a new MAC so a peer updates its neighbour cache at once: %s', async (_family, addrA, addrB) => {
    const target = addrA.split('/')[0];
    const args = ['--name', 'vxlm0', '--peer', b.underlay, '--address', addrA];
    const sockA = defaultSock(a.ns, 'vxlm0');
    let ua = upIn(a, [...args, '--mac', '02:00:5e:00:00:01']);
    const ub = upIn(b, ['--name', 'vxlm0', '--peer', a.underlay, '--address', addrB]);
    await ready(ua, sockA);
    await ready(ub, defaultSock(b.ns, 'vxlm0'));
    await reachable(b.ns, target); // IPv6: after duplicate address detection on both ends
    const neigh = async () => (await run(['ip', 'neigh', 'show', target, 'dev', 'vxlm0'], { netns: b.ns })).stdout;
    expect(await neigh()).toContain('02:00:5e:00:00:01');
    await kill9(ua);
    ua = upIn(a, [...args, '--mac', '02:00:5e:00:00:02']);
    await ready(ua, sockA);
    // IPv6 announces once DAD is done (~1 s)
    const deadline = Date.now() + 5000;
    while (!(await neigh()).includes('02:00:5e:00:00:02') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await neigh()).toContain('02:00:5e:00:00:02');
    await reachable(b.ns, target);
    await stop(ua.child);
    await stop(ub.child);
  });

  it.each(['throw', 'exit'])('restarts a worker that fails (%s) in-process; the VTEP stays up (dark time printed)', async (how) => {
    const sockA = defaultSock(a.ns, 'vxlw0');
    const ua = upIn(a, ['--name', 'vxlw0', '--workers', '1', '--peer', b.underlay, '--address', '198.19.0.1/16'], { VXTAP_TEST_HOOKS: '1' });
    const ub = upIn(b, ['--name', 'vxlw0', '--peer', a.underlay, '--address', '198.19.0.2/16']);
    await ready(ua, sockA);
    await ready(ub, defaultSock(b.ns, 'vxlw0'));
    await reachable(b.ns, '198.19.0.1');
    const flow = pingFlow(scope, b.ns, '198.19.0.1', 4);
    await new Promise((r) => setTimeout(r, 1000));
    const faultAt = Date.now();
    expect(await post(sockA, `/test/fail-worker?worker=0&how=${how}`)).toBe(202);
    const { sent, replies } = await flow;
    const d = darkTime(replies, faultAt);
    process.stderr.write(
      `dark time (worker restart, ${how}): longest gap ${d.gapMs} ms (${d.lost} pings lost), first reply ${d.firstReplyAfterMs} ms after the fault; ${replies.length}/${sent} replies\n`,
    );
    const st = JSON.parse(await fetchStatus(sockA)) as VtepStatus;
    expect(st.workerRestarts).toBe(1);
    expect(await fetchStatus(sockA, 'metrics')).toMatch(/^vxtap_worker_restarts_total\{instance="vxlw0",worker="0"\} 1$/m);
    expect(ua.stderr()).toMatch(/worker 0 .*restarting it/);
    expect(ua.child.exitCode).toBeNull();
    expect(replies.some((r) => r.t > faultAt + 1500)).toBe(true);
    await stop(ua.child);
    await stop(ub.child);
    expect(ua.child.exitCode).toBe(0);
  });

  it('takes the etcd password from a file, not both; a bad file is exit 2 before anything is created', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vxl-pw-'));
    try {
      const pw = path.join(dir, 'pw');
      writeFileSync(pw, 'secret\n', { mode: 0o600 });
      const base = ['node', CLI, 'up', '--name', 'vxlpw0', '--local', a.underlay, '--etcd-endpoints', 'http://198.18.0.250:2379', '--etcd-username', 'u'];
      const both = await run([...base, '--etcd-password', 'x', '--etcd-password-file', pw], { netns: a.ns, allowFail: true });
      expect(both.code).toBe(2);
      expect(both.stderr).toContain('etcd-password-file: give --etcd-password or --etcd-password-file, not both');
      const missing = await run([...base, '--etcd-password-file', path.join(dir, 'none')], { netns: a.ns, allowFail: true });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/etcd-password-file: cannot read/);
      expect((await run(['ip', '-o', 'link', 'show'], { netns: a.ns })).stdout).not.toContain('vxlpw0');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('never removes a control socket path that is not a socket; hooks are off without the variable', async () => {
    const dir = `/run/vxtap/test-vxl-${uniqueTag()}`;
    mkdirSync(dir, { recursive: true });
    try {
      const file = `${dir}/not-a-socket`;
      writeFileSync(file, 'precious');
      const r = await run(['node', CLI, 'up', '--name', 'vxlbad0', '--local', a.underlay, '--stats-socket', file], { netns: a.ns, allowFail: true });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('is not a socket');
      expect(existsSync(file)).toBe(true);
      const links = await run(['ip', '-o', 'link', 'show'], { netns: a.ns });
      expect(links.stdout).not.toContain('vxlbad0');

      const sock = `${dir}/ok.sock`;
      const up = upIn(a, ['--name', 'vxlh0', '--stats-socket', sock, '--metrics', '127.0.0.1:9477']);
      await ready(up, sock);
      expect(await post(sock, '/test/fail-worker?worker=0')).toBe(404);
      // --metrics: /metrics only
      const get = (p: string) => run(['node', '-e', `require('http').get('http://127.0.0.1:9477${p}', (r) => { console.log(r.statusCode); r.resume(); })`], { netns: a.ns, timeoutMs: 10_000 });
      expect((await get('/metrics')).stdout.trim()).toBe('200');
      expect((await get('/stats')).stdout.trim()).toBe('404');
      expect((await get('/fdb')).stdout.trim()).toBe('404');
      expect((await get('/')).stdout.trim()).toBe('404');
      await stop(up.child);
      expect(existsSync(sock)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(skipUplink !== null)(named('uplink steering table after a crash', skipUplink), () => {
  const scope = new HostScope('vxl');
  let a: Host;
  let b: Host;
  let bridge: string;

  beforeAll(async () => {
    const t = uniqueTag();
    const na = await scope.netns(`s${t}`);
    const nb = await scope.netns(`t${t}`);
    bridge = `br${t}`;
    await scope.veth({ name: `sa${t}`, netns: na }, { name: `sb${t}`, netns: nb }, 1500);
    await scope.bridge(bridge, na);
    await scope.enslave(`sa${t}`, bridge, na);
    await scope.addr(na, bridge, '198.18.0.1/24');
    await scope.addr(nb, `sb${t}`, '198.18.0.2/24');
    a = { ns: na, dev: bridge, underlay: '198.18.0.1' };
    b = { ns: nb, dev: `sb${t}`, underlay: '198.18.0.2' };
  });
  afterAll(() => scope.cleanup());

  const table = (ns: string) => run(['nft', 'list', 'table', 'netdev', 'vxtap_vxls0'], { netns: ns, allowFail: true });
  /** Datagrams (of 10 sent from B, 1200 bytes each) that a UDP socket on A's 198.18.0.1:4789 receives. */
  const udpDelivered = async (): Promise<number> => {
    const listener = run(
      [
        'node',
        '-e',
        "const s=require('dgram').createSocket('udp4');let n=0;s.on('message',()=>n++);s.bind(4789,'198.18.0.1',()=>console.log('bound'));setTimeout(()=>{console.log(n);process.exit(0)},2000)",
      ],
      { netns: a.ns, timeoutMs: 10_000 },
    );
    await new Promise((r) => setTimeout(r, 700));
    await run(
      [
        'node',
        '-e',
        "const s=require('dgram').createSocket('udp4');let i=0;const t=setInterval(()=>{s.send(Buffer.alloc(1200),4789,'198.18.0.1');if(++i===10){clearInterval(t);setTimeout(()=>s.close(),100)}},50)",
      ],
      { netns: b.ns, timeoutMs: 10_000 },
    );
    const out = (await listener).stdout.trim().split('\n');
    return Number(out.at(-1));
  };

  it('a stale plain table is a black hole (fwd to a gone ifindex); vxtap up and vxtap down remove it', async () => {
    // what an older vxtap (or the fallback without owner tables) leaves after SIGKILL
    await run(['ip', 'link', 'add', 'vxlgone', 'type', 'veth', 'peer', 'name', 'vxlgone1'], { netns: a.ns });
    await run(['nft', '-f', '-'], {
      netns: a.ns,
      input: `table netdev vxtap_vxls0 {\n chain rx {\n  type filter hook ingress device "${bridge}" priority -100;\n  udp dport 4789 fwd to "vxlgone"\n }\n}\n`,
    });
    await run(['ip', 'link', 'del', 'vxlgone'], { netns: a.ns });
    expect((await table(a.ns)).stdout).toMatch(/fwd to \d+/); // nft kept the ifindex of a device that is gone
    // what reaches a UDP socket on A's VXLAN port while the stale table is there: nothing
    expect(await udpDelivered()).toBe(0);
    const r = await run(['node', CLI, 'down', '--name', 'vxls0'], { netns: a.ns });
    expect(r.stderr).toContain('nftables table netdev vxtap_vxls0');
    expect((await table(a.ns)).code).not.toBe(0);
    expect(await udpDelivered()).toBeGreaterThan(0);
    // and `vxtap up` removes one at start (socket mode: no table of its own)
    await run(['nft', '-f', '-'], { netns: a.ns, input: `table netdev vxtap_vxls0 {\n chain rx {\n  type filter hook ingress device "${bridge}" priority -100;\n }\n}\n` });
    const up = spawnUp(scope, a, ['--name', 'vxls0', '--peer', b.underlay]);
    await ready(up, defaultSock(a.ns, 'vxls0'));
    expect((await table(a.ns)).code).not.toBe(0);
    await stop(up.child);
  });

  it('the uplink steering table is owned by the process: gone right after SIGKILL, and a restart steers again', async () => {
    const args = ['--name', 'vxls0', '--peer', b.underlay, '--address', '198.19.0.1/16', '--uplink-bridge', bridge];
    const sock = defaultSock(a.ns, 'vxls0');
    let up = spawnUp(scope, a, args);
    const st = await ready(up, sock);
    expect(st.uplink?.receive, up.stderr()).toBe(true);
    const t = await table(a.ns);
    expect(t.stdout).toContain('flags owner');
    expect(t.stdout).toContain('fwd to "vxls0u"');
    // another process may not delete it
    expect((await run(['nft', 'delete', 'table', 'netdev', 'vxtap_vxls0'], { netns: a.ns, allowFail: true })).code).not.toBe(0);
    await kill9(up);
    const deadline = Date.now() + 3000;
    while ((await table(a.ns)).code === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await table(a.ns)).code).not.toBe(0);
    up = spawnUp(scope, a, args);
    expect((await ready(up, sock)).uplink?.receive).toBe(true);
    expect((await table(a.ns)).stdout).toContain('fwd to "vxls0u"');
    // and it steers: large VXLAN datagrams from B arrive through the uplink TAP
    const vb = spawnUp(scope, b, ['--name', 'vxls0', '--peer', a.underlay, '--address', '198.19.0.2/16']);
    await ready(vb, defaultSock(b.ns, 'vxls0'));
    const p = await ping(b.ns, '198.19.0.1', 10, 0.05, ['-s', '1400']);
    expect(p.loss).toBeLessThan(1);
    expect((JSON.parse(await fetchStatus(sock)) as VtepStatus).total.rx_uplink_frames).toBeGreaterThan(0);
    await stop(vb.child);
    await stop(up.child);
    expect((await table(a.ns)).code).not.toBe(0);
  });
});
