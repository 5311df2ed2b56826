/**
 * vxtap <-> Linux kernel VXLAN, both ways round: each side once the kernel.
 * The kernel side keeps its default offloads (tx checksum offload on the veth),
 * so frames from it arrive with CHECKSUM_PARTIAL inner checksums (see
 * FIELD-NOTES) and, with TSO, as unsegmented super-datagrams: both must work.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostScope, twoHosts, startVxtap, kernelVxlan, ping, tcpTransfer, type Host, type RunningVtep } from '../helpers/vxtap.js';
import { run } from '../../src/host/exec.js';
import { named, skipReason } from '../helpers/requires.js';

const skip = skipReason({ root: true, tun: true, build: true, commands: ['ip', 'ping'] });

describe.skipIf(skip !== null).each([
  ['vxtap on A, kernel on B, offload on', 'a', []],
  ['kernel on A, vxtap on B, offload on', 'b', []],
  ['vxtap on A, kernel on B, --no-offload', 'a', ['--no-offload']],
  ['kernel on A, vxtap on B, --no-offload', 'b', ['--no-offload']],
])(named('interop: %s', skip), (_label, vxtapSide, extra) => {
  const scope = new HostScope('vxtk');
  let a: Host;
  let b: Host;
  let vtep: RunningVtep;

  beforeAll(async () => {
    [a, b] = await twoHosts(scope);
    const [vx, kn] = vxtapSide === 'a' ? [a, b] : [b, a];
    const vxAddr = vxtapSide === 'a' ? '198.19.0.1/16' : '198.19.0.2/16';
    const knAddr = vxtapSide === 'a' ? '198.19.0.2/16' : '198.19.0.1/16';
    vtep = await startVxtap(scope, vx, ['--peer', kn.underlay, '--address', vxAddr, '--vni', '4242', '--port', '4789', ...extra]);
    await kernelVxlan(kn, { name: 'vxk0', vni: 4242, port: 4789, remote: vx.underlay, address: knAddr, mtu: 1450 });
  });
  afterAll(() => scope.cleanup());

  it('pings both ways', async () => {
    expect((await ping(a.ns, '198.19.0.2', 5, 0.1)).loss).toBe(0);
    expect((await ping(b.ns, '198.19.0.1', 5, 0.1)).loss).toBe(0);
  });

  it('moves TCP intact in both directions', async () => {
    const ab = await tcpTransfer(scope, a.ns, b.ns, '198.19.0.2', 30 * 1024 * 1024, 5011);
    expect(ab.received.bytes).toBe(30 * 1024 * 1024);
    expect(ab.received.sha256).toBe(ab.sent.sha256);
    const ba = await tcpTransfer(scope, b.ns, a.ns, '198.19.0.1', 30 * 1024 * 1024, 5012);
    expect(ba.received.sha256).toBe(ba.sent.sha256);
    // the kernel sender left inner checksums unfinished: the plain path completes
    // them; the offload path hands them to the TAP as NEEDS_CSUM (checked by the
    // intact transfer above, whether the kernel sent segments or super-datagrams)
    const st = await vtep.status();
    expect(st.offload).toBe(extra.length === 0);
    if (!st.offload) expect(st.total.checksums_completed).toBeGreaterThan(0);
    expect(st.drops).toEqual({});
  });

  it('carries full-size frames with DF set (1422-byte ping payload fills 1450)', async () => {
    expect((await ping(a.ns, '198.19.0.2', 3, 0.1, ['-M', 'do', '-s', '1422'])).loss).toBe(0);
    const tooBig = await run(['ping', '-n', '-c', '1', '-W', '1', '-M', 'do', '-s', '1423', '198.19.0.2'], { netns: a.ns, allowFail: true });
    expect(tooBig.code).not.toBe(0);
  });
});

/**
 * Kernel VXLAN over veth hands out unsegmented ~64 KiB datagrams (TSO survives
 * the tunnel). Delivered locally they are fine; forwarded by the vxtap host to a
 * container behind it, they must reach the TAP as GSO super-frames, or the next
 * hop (MTU 1450) drops them.
 */
describe.skipIf(skip !== null)(named('interop: kernel sender to a container routed behind vxtap', skip), () => {
  const scope = new HostScope('vxtr');
  let a: Host;
  let b: Host;
  let c: string;

  beforeAll(async () => {
    [a, b] = await twoHosts(scope);
    await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/16', '--vni', '4242']);
    await kernelVxlan(b, { name: 'vxk0', vni: 4242, port: 4789, remote: a.underlay, address: '198.19.0.2/16', mtu: 1450 });
    const t = a.ns.slice(-4);
    c = await scope.netns(`c${t}`);
    await scope.veth({ name: `cr${t}`, netns: a.ns }, { name: `ce${t}`, netns: c }, 1450);
    await scope.addr(a.ns, `cr${t}`, '198.19.100.1/24');
    await scope.addr(c, `ce${t}`, '198.19.100.2/24');
    await run(['ip', 'route', 'add', 'default', 'via', '198.19.100.1'], { netns: c });
    await run(['sysctl', '-qw', 'net.ipv4.ip_forward=1'], { netns: a.ns });
    await run(['ip', 'route', 'add', '198.19.100.0/24', 'via', '198.19.0.1', 'dev', 'vxk0'], { netns: b.ns });
  });
  afterAll(() => scope.cleanup());

  it('moves TCP from the kernel host into the container intact', async () => {
    const t = await tcpTransfer(scope, b.ns, c, '198.19.100.2', 20 * 1024 * 1024, 5013);
    expect(t.received.bytes).toBe(20 * 1024 * 1024);
    expect(t.received.sha256).toBe(t.sent.sha256);
  });
});
