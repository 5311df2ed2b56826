/**
 * Underlay variants: an IPv6 underlay (MTU overhead 70), and the outer
 * don't-fragment modes with a TAP MTU too large for the underlay, where an
 * oversized frame is either refused and counted (df set) or sent as outer
 * fragments and counted (df unset).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostScope, twoHosts, startVxtap, ping, tcpTransfer, type Host } from '../helpers/vxtap.js';
import { run } from '../../src/host/exec.js';
import { named, skipReason } from '../helpers/requires.js';

const skip = skipReason({ root: true, tun: true, build: true, commands: ['ip', 'ping'] });

describe.skipIf(skip !== null)(named('IPv6 underlay', skip), () => {
  const scope = new HostScope('vxt6');
  let a: Host;
  let b: Host;

  beforeAll(async () => {
    [a, b] = await twoHosts(scope, 1500, true);
  });
  afterAll(() => scope.cleanup());

  it.each([[[]], [['--no-offload']]])('carries ping and TCP over IPv6 (%j)', async (extra) => {
    const va = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.6.1/24', ...extra]);
    const vb = await startVxtap(scope, b, ['--peer', a.underlay, '--address', '198.19.6.2/24', ...extra]);
    expect((await va.status()).mtu).toBe(1430);
    expect((await ping(a.ns, '198.19.6.2', 3, 0.1)).loss).toBe(0);
    expect((await ping(a.ns, '198.19.6.2', 2, 0.1, ['-M', 'do', '-s', '1402'])).loss).toBe(0);
    const t = await tcpTransfer(scope, a.ns, b.ns, '198.19.6.2', 10 * 1024 * 1024, 5061);
    expect(t.received.sha256).toBe(t.sent.sha256);
    expect((await vb.status()).fdb.some((e) => e.peer === '2001:2::1')).toBe(true);
    await va.stop();
    await vb.stop();
  });
});

describe.skipIf(skip !== null)(named('outer DF and oversized frames', skip), () => {
  const scope = new HostScope('vxtd');
  let a: Host;
  let b: Host;

  beforeAll(async () => {
    [a, b] = await twoHosts(scope);
  });
  afterAll(() => scope.cleanup());

  it('df set: a frame too large for the underlay is dropped and counted as oversize', async () => {
    const va = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/16', '--mtu', '1500', '--df', 'set']);
    const vb = await startVxtap(scope, b, ['--peer', a.underlay, '--address', '198.19.0.2/16', '--mtu', '1500', '--df', 'set']);
    expect(va.stderr()).toMatch(/offload off/);
    expect((await ping(a.ns, '198.19.0.2', 2, 0.1)).loss).toBe(0);
    const big = await ping(a.ns, '198.19.0.2', 3, 0.1, ['-M', 'do', '-s', '1472']);
    expect(big.loss).toBe(1);
    expect((await va.status()).drops.oversize).toBeGreaterThanOrEqual(3);
    await va.stop();
    await vb.stop();
  });

  it('df unset: the same frame leaves as outer fragments and arrives', async () => {
    const va = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/16', '--mtu', '1500', '--df', 'unset']);
    const vb = await startVxtap(scope, b, ['--peer', a.underlay, '--address', '198.19.0.2/16', '--mtu', '1500', '--df', 'unset']);
    const before = await run(['nstat', '-az', 'IpFragCreates'], { netns: a.ns });
    const big = await ping(a.ns, '198.19.0.2', 3, 0.1, ['-M', 'do', '-s', '1472']);
    expect(big.loss).toBe(0);
    const st = await va.status();
    expect(st.total.tx_fragmented).toBeGreaterThanOrEqual(3);
    const after = await run(['nstat', '-az', 'IpFragCreates'], { netns: a.ns });
    const n = (s: string) => Number(/IpFragCreates\s+(\d+)/.exec(s)?.[1] ?? 0);
    expect(n(after.stdout) - n(before.stdout)).toBeGreaterThanOrEqual(6);
    await va.stop();
    await vb.stop();
  });

  it.each([[['--no-offload']], [[]]])('takes a TAP MTU raised while running (%j)', async (extra) => {
    const va = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/16', ...extra]);
    const vb = await startVxtap(scope, b, ['--peer', a.underlay, '--address', '198.19.0.2/16', ...extra]);
    await run(['ip', 'link', 'set', va.name, 'mtu', '1500'], { netns: a.ns });
    await run(['ip', 'link', 'set', vb.name, 'mtu', '1500'], { netns: b.ns });
    expect((await ping(a.ns, '198.19.0.2', 3, 0.1, ['-M', 'do', '-s', '1472'])).loss).toBe(0);
    // TCP at the raised MTU: with offload the super-frames are cut at MSS 1460, too
    // big for one unfragmented datagram, so segments go out one by one, fragmented
    const t = await tcpTransfer(scope, a.ns, b.ns, '198.19.0.2', 5 * 1024 * 1024, 5071);
    expect(t.received.sha256).toBe(t.sent.sha256);
    const st = await va.status();
    const drops: Partial<Record<string, number>> = st.drops; // reasons never counted are absent
    expect(drops.truncated ?? 0).toBe(0);
    expect(drops.tx_error ?? 0).toBe(0);
    expect(st.total.tx_fragmented).toBeGreaterThanOrEqual(3);
    await va.stop();
    await vb.stop();
  });
});
