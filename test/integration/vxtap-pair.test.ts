/**
 * vxtap <-> vxtap across two namespaces: ping, a 100 MB TCP transfer checked end
 * to end, several workers, the stats endpoint, clean shutdown, the test-only
 * slowdown knob, and refusal of a bad configuration without touching the host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { HostScope, twoHosts, startVxtap, ping, tcpTransfer, CLI, type Host } from '../helpers/vxtap.js';
import { run } from '../../src/host/exec.js';
import { named, skipReason } from '../helpers/requires.js';

const skip = skipReason({ root: true, tun: true, build: true, commands: ['ip', 'ping'] });

describe.skipIf(skip !== null)(named('vxtap <-> vxtap', skip), () => {
  const scope = new HostScope('vxtp');
  let a: Host;
  let b: Host;

  beforeAll(async () => {
    [a, b] = await twoHosts(scope);
  });
  afterAll(() => scope.cleanup());

  it('pings and moves 100 MB over TCP intact, then shuts down cleanly', async () => {
    const va = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/16', '--vni', '42']);
    const vb = await startVxtap(scope, b, ['--peer', a.underlay, '--address', '198.19.0.2/16', '--vni', '42']);
    const p = await ping(a.ns, '198.19.0.2', 5, 0.2);
    expect(p.loss).toBe(0);
    const t = await tcpTransfer(scope, a.ns, b.ns, '198.19.0.2', 100 * 1024 * 1024);
    expect(t.received.bytes).toBe(100 * 1024 * 1024);
    expect(t.received.sha256).toBe(t.sent.sha256);
    const st = await va.status();
    expect(st.mtu).toBe(1450);
    expect(st.total.tx_packets).toBeGreaterThan(60_000);
    expect(st.drops).toEqual({});
    expect(st.fdb.some((e) => e.peer === b.underlay && !e.static)).toBe(true);
    const metrics = await run(['node', CLI, 'stats', '--stats-socket', va.sock, '--prometheus']);
    expect(metrics.stdout).toMatch(/vxtap_tx_packets_total\{instance="[^"]+",worker="0"\} \d+/);
    await va.stop();
    await vb.stop();
    expect(va.child.exitCode).toBe(0);
    expect(existsSync(va.sock)).toBe(false);
    const links = await run(['ip', '-o', 'link', 'show'], { netns: a.ns });
    expect(links.stdout).not.toContain(va.name);
  });

  it.each([1, 2])('works with %i worker(s)', async (workers) => {
    const va = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/16', '--workers', String(workers), '--metrics', '127.0.0.1:9476']);
    const vb = await startVxtap(scope, b, ['--peer', a.underlay, '--address', '198.19.0.2/16', '--workers', String(workers)]);
    expect((await ping(a.ns, '198.19.0.2', 5, 0.2)).loss).toBe(0);
    const t = await tcpTransfer(scope, b.ns, a.ns, '198.19.0.1', 20 * 1024 * 1024, 5002);
    expect(t.received.sha256).toBe(t.sent.sha256);
    const st = await va.status();
    expect(st.workers).toBe(workers);
    expect(st.perWorker.length).toBe(workers);
    // the Prometheus endpoint over TCP, on loopback inside host A's namespace
    const scrape = await run(['node', '-e', "require('http').get('http://127.0.0.1:9476/metrics', (r) => r.pipe(process.stdout))"], { netns: a.ns, timeoutMs: 10_000 });
    const perWorker = [...scrape.stdout.matchAll(/^vxtap_tap_rx_packets_total\{instance="[^"]+",worker="(\d+)"\} (\d+)$/gm)];
    expect(perWorker.map((m) => Number(m[1]))).toEqual([...Array(workers).keys()]);
    expect(perWorker.reduce((n, m) => n + Number(m[2]), 0)).toBeGreaterThan(0);
    expect(scrape.stdout).toContain('vxtap_drops_total{');
    await va.stop();
    await vb.stop();
  });

  // Needs 2 CPUs. Each transfer (one TCP flow) is pinned to one CPU, both ways round. With
  // CPU-local workers a flow stays on one worker on A whatever CPU sends it (tun's flow hash:
  // steering by the sending CPU split flows and reordered them), and on B it is received by the
  // worker with the same index: A's worker k is pinned to CPU k, the veth delivers its datagrams
  // on CPU k, and B's receive sockets are chosen by that CPU. With 'any' (unpinned workers,
  // reuseport hash) B's worker matches A's only by chance.
  it.skipIf(availableParallelism() < 2)("CPU-local workers: pinned threads; each flow on one worker, received on the same CPU's worker", async () => {
    const args = ['--workers', '2', '--cpu-placement', 'local'];
    const va = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/16', ...args]);
    const vb = await startVxtap(scope, b, ['--peer', a.underlay, '--address', '198.19.0.2/16', ...args]);
    expect((await ping(a.ns, '198.19.0.2', 3, 0.2)).loss).toBe(0);
    const st0 = await va.status();
    expect(st0.cpuPlacement).toBe('local');
    expect(st0.pinCpus).toEqual([0, 1]);
    // two of the process's threads are pinned, one to each CPU
    const tasks = await run(['sh', '-c', `grep -h Cpus_allowed_list /proc/${String(va.child.pid)}/task/*/status`]);
    const lists = tasks.stdout.split('\n').map((l) => l.split(':')[1]?.trim());
    expect(lists.filter((l) => l === '0').length).toBeGreaterThanOrEqual(1);
    expect(lists.filter((l) => l === '1').length).toBeGreaterThanOrEqual(1);
    for (const [i, cpu] of [0, 1, 0, 1].entries()) {
      const [sa, sb] = [await va.status(), await vb.status()];
      const t = await tcpTransfer(scope, a.ns, b.ns, '198.19.0.2', 8 * 1024 * 1024, 5010 + i, cpu);
      expect(t.received.sha256).toBe(t.sent.sha256);
      const [ea, eb] = [await va.status(), await vb.status()];
      const deltas = (before: typeof sa, after: typeof sa, key: 'tap_rx_packets' | 'rx_packets') => after.perWorker.map((w, k) => w[key] - before.perWorker[k][key]);
      const da = deltas(sa, ea, 'tap_rx_packets');
      const k = da[0] >= da[1] ? 0 : 1;
      expect(da[k] / Math.max(1, da[0] + da[1]), `A's TAP reads of the flow sent on CPU ${cpu}: one worker`).toBeGreaterThan(0.8);
      const db = deltas(sb, eb, 'rx_packets');
      expect(db[k] / Math.max(1, db[0] + db[1]), `B's socket reads of that flow: worker ${k}, as on A`).toBeGreaterThan(0.8);
    }
    expect((await va.status()).workerRestarts).toBe(0);
    await va.stop();
    await vb.stop();
  });

  it('runs with the test-only slowdown on, says so, and refuses a bad value', async () => {
    process.env.VXTAP_TEST_SLOWDOWN_PCT = '10'; // inherited by the spawned vxtap up
    let va;
    try {
      va = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/16']);
    } finally {
      delete process.env.VXTAP_TEST_SLOWDOWN_PCT;
    }
    const vb = await startVxtap(scope, b, ['--peer', a.underlay, '--address', '198.19.0.2/16']);
    expect((await ping(a.ns, '198.19.0.2', 3, 0.2)).loss).toBe(0);
    expect((await va.status()).testSlowdownPct).toBe(10);
    expect((await vb.status()).testSlowdownPct).toBeUndefined();
    expect(va.stderr()).toContain('test-only slowdown active');
    await va.stop();
    await vb.stop();
    const r = await run(['node', CLI, 'up', '--name', 'vxtbad0', '--local', a.underlay, '--stats-socket', '/run/vxtap/test-bad.sock'], {
      netns: a.ns,
      allowFail: true,
      env: { VXTAP_TEST_SLOWDOWN_PCT: '95' },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('VXTAP_TEST_SLOWDOWN_PCT');
    expect((await run(['ip', '-o', 'link', 'show'], { netns: a.ns })).stdout).not.toContain('vxtbad0');
  });

  it('refuses a bad configuration with exit 2, naming the field, creating nothing', async () => {
    const before = await run(['ip', '-o', 'link', 'show'], { netns: a.ns });
    for (const [args, field] of [
      [['--vni', '99999999'], 'vni'],
      [['--peer', 'not-an-ip'], 'peers[0]'],
      [['--mtu', '10'], 'mtu'],
      [['--df', 'sometimes'], 'df'],
      [['--cpu-placement', 'pinned'], 'cpuPlacement'],
    ] as const) {
      const r = await run(['node', CLI, 'up', '--name', 'vxtbad0', '--local', a.underlay, '--stats-socket', '/run/vxtap/test-bad.sock', ...args], {
        netns: a.ns,
        allowFail: true,
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${field}: `);
    }
    // an address that is not on this host: refused before anything is created
    const r = await run(['node', CLI, 'up', '--name', 'vxtbad0', '--local', '198.18.0.77', '--stats-socket', '/run/vxtap/test-bad.sock'], { netns: a.ns, allowFail: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('local: ');
    const after = await run(['ip', '-o', 'link', 'show'], { netns: a.ns });
    expect(after.stdout).toBe(before.stdout);
    expect(existsSync('/run/vxtap/test-bad.sock')).toBe(false);
  });
});
