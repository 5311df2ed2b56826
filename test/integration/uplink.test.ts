/**
 * Uplink transmit (--uplink-bridge): vxtap writes whole TSO super-frames, wrapped
 * in outer Ethernet/IPv4/UDP/VXLAN, to a TAP port of the bridge that holds its
 * underlay address, with the UDP-tunnel GSO virtio header; the kernel carries
 * them as its own VXLAN does. Checked against kernel VXLAN and against a vxtap
 * in socket mode, and for refusals that leave the host untouched.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkRfc7348, readPcap, startCapture, vxlanPackets } from '../helpers/pcap.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, HostScope, kernelVxlan, ping, startVxtap, tcpTransfer, type Host, type RunningVtep } from '../helpers/vxtap.js';
import { uniqueTag } from '../../src/host/netns.js';
import { run, stop } from '../../src/host/exec.js';
import { named, skipReason } from '../helpers/requires.js';

const skip = skipReason({ root: true, tun: true, build: true, commands: ['ip', 'ping', 'tcpdump'] });

/** Host A's underlay address sits on a bridge (as on a KVM host with br0); B is a plain veth end. */
async function bridgedPair(scope: HostScope): Promise<{ a: Host; b: Host; bridge: string; macB: string }> {
  const t = uniqueTag();
  const a = await scope.netns(`a${t}`);
  const b = await scope.netns(`b${t}`);
  const da = `va${t}`;
  const db = `vb${t}`;
  const bridge = `br${t}`;
  await scope.veth({ name: da, netns: a }, { name: db, netns: b }, 1500);
  await scope.bridge(bridge, a);
  await scope.enslave(da, bridge, a);
  await scope.addr(a, bridge, '198.18.0.1/24');
  await scope.addr(b, db, '198.18.0.2/24');
  const macB = (await run(['cat', `/sys/class/net/${db}/address`], { netns: b })).stdout.trim();
  return { a: { ns: a, dev: bridge, underlay: '198.18.0.1' }, b: { ns: b, dev: db, underlay: '198.18.0.2' }, bridge, macB };
}

describe.skipIf(skip !== null).each([
  ['kernel VXLAN', 'kernel'],
  ['vxtap in socket mode', 'vxtap'],
])(named('uplink transmit to %s', skip), (_label, other) => {
  const scope = new HostScope('vxtl');
  let a: Host;
  let b: Host;
  let bridge: string;
  let macB: string;
  let vtep: RunningVtep;

  beforeAll(async () => {
    ({ a, b, bridge, macB } = await bridgedPair(scope));
    vtep = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/16', '--vni', '4242', '--uplink-bridge', bridge]);
    if (other === 'kernel') await kernelVxlan(b, { name: 'vxk0', vni: 4242, port: 4789, remote: a.underlay, address: '198.19.0.2/16', mtu: 1450 });
    else await startVxtap(scope, b, ['--peer', a.underlay, '--address', '198.19.0.2/16', '--vni', '4242']);
  });
  afterAll(() => scope.cleanup());

  it('pings both ways and finds the next hop in the neighbour table', async () => {
    expect((await ping(a.ns, '198.19.0.2', 5, 0.1)).loss).toBe(0);
    expect((await ping(b.ns, '198.19.0.1', 5, 0.1)).loss).toBe(0);
    const deadline = Date.now() + 3000;
    let st = await vtep.status();
    while (!st.peers[0]?.nextHopMac && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      st = await vtep.status();
    }
    expect(st.uplink?.bridge).toBe(bridge);
    expect(st.peers[0].nextHopMac).toBe(macB);
  });

  it('moves TCP intact both ways, the sending direction as whole super-frames through the uplink', async () => {
    const ab = await tcpTransfer(scope, a.ns, b.ns, '198.19.0.2', 30 * 1024 * 1024, 5021);
    expect(ab.received.bytes).toBe(30 * 1024 * 1024);
    expect(ab.received.sha256).toBe(ab.sent.sha256);
    const ba = await tcpTransfer(scope, b.ns, a.ns, '198.19.0.1', 30 * 1024 * 1024, 5022);
    expect(ba.received.sha256).toBe(ba.sent.sha256);
    const st = await vtep.status();
    // ~30 MiB out of A: most of it through the uplink, as frames the kernel cuts into many packets
    expect(st.total.tx_uplink_bytes).toBeGreaterThan(25 * 1024 * 1024);
    expect(st.total.tx_uplink_packets).toBeGreaterThan(5 * st.total.tx_uplink_frames);
    // ~30 MiB into A: read whole from the uplink (steered there by nftables)
    expect(st.uplink?.receive).toBe(true);
    expect(st.total.rx_uplink_frames).toBeGreaterThan(0);
    expect(st.total.tap_tx_bytes).toBeGreaterThan(25 * 1024 * 1024);
    expect(st.drops, vtep.stderr()).toEqual({});
  });

  it('puts RFC 7348 on the wire: flags, VNI, one source port per flow in range, no outer fragments', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vxtap-uplink-'));
    try {
      const file = path.join(dir, 'u.pcap');
      const dump = await startCapture(scope, b.ns, b.dev, file, 'udp port 4789');
      const ports = [5041, 5042, 5043, 5044];
      for (const p of ports) await tcpTransfer(scope, a.ns, b.ns, '198.19.0.2', 2_000_000, p);
      await new Promise((r) => setTimeout(r, 300));
      await stop(dump);
      const pkts = vxlanPackets(readPcap(file), 4789).filter((p) => p.outerSrc === a.underlay);
      expect(pkts.length).toBeGreaterThan(20);
      checkRfc7348(pkts, { vni: 4242, portMin: 49152, portMax: 49215 });
      const byFlow = new Map<number, Set<number>>();
      for (const p of pkts) {
        if (p.innerProto === 6 && ports.includes(p.innerDstPort!)) {
          if (!byFlow.has(p.innerDstPort!)) byFlow.set(p.innerDstPort!, new Set());
          byFlow.get(p.innerDstPort!)!.add(p.srcPort);
        }
      }
      expect([...byFlow.keys()].sort()).toEqual(ports);
      for (const s of byFlow.values()) expect(s.size).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('carries full-size frames with DF set (1422-byte ping payload fills 1450), refuses one byte more', async () => {
    expect((await ping(a.ns, '198.19.0.2', 3, 0.1, ['-M', 'do', '-s', '1422'])).loss).toBe(0);
    const tooBig = await run(['ping', '-n', '-c', '1', '-W', '1', '-M', 'do', '-s', '1423', '198.19.0.2'], { netns: a.ns, allowFail: true });
    expect(tooBig.code).not.toBe(0);
  });
});

describe.skipIf(skip !== null)(named('uplink transmit: refusals', skip), () => {
  const scope = new HostScope('vxtm');
  let a: Host;
  let b: Host;
  let bridge: string;

  beforeAll(async () => {
    ({ a, b, bridge } = await bridgedPair(scope));
  });
  afterAll(() => scope.cleanup());

  it('refuses a missing bridge, a device that is not a bridge, a bridge without the address, and --no-offload: exit 2, nothing created', async () => {
    const vethA = (await run(['ip', '-o', 'link', 'show', 'master', bridge], { netns: a.ns })).stdout.split(':')[1].trim().split('@')[0];
    const other = `bx${uniqueTag()}`;
    await scope.bridge(other, a.ns);
    const before = await run(['ip', '-o', 'link', 'show'], { netns: a.ns });
    for (const [args, text] of [
      [['--uplink-bridge', 'nosuchbr0'], "no interface 'nosuchbr0'"],
      [['--uplink-bridge', vethA], 'not a Linux bridge'],
      [['--uplink-bridge', other], `not on bridge ${other}`],
      [['--uplink-bridge', bridge, '--no-offload'], 'needs offload'],
    ] as const) {
      const r = await run(['node', CLI, 'up', '--name', 'vxtbad1', '--local', a.underlay, '--peer', b.underlay, '--stats-socket', '/run/vxtap/test-bad1.sock', ...args], {
        netns: a.ns,
        allowFail: true,
      });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('uplinkBridge: ');
      expect(r.stderr).toContain(text);
    }
    const after = await run(['ip', '-o', 'link', 'show'], { netns: a.ns });
    expect(after.stdout).toBe(before.stdout);
    expect(existsSync('/run/vxtap/test-bad1.sock')).toBe(false);
  });
});
