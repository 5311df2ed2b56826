/**
 * The wire format on the underlay, checked in a capture (tcpdump in the host
 * namespace): destination port, VXLAN flags and VNI, source ports inside the
 * configured range and different for different inner flows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HostScope, twoHosts, startVxtap, ping, tcpTransfer, type Host } from '../helpers/vxtap.js';
import { stop } from '../../src/host/exec.js';
import { checkRfc7348, readPcap, startCapture, vxlanPackets } from '../helpers/pcap.js';
import { named, skipReason } from '../helpers/requires.js';

const skip = skipReason({ root: true, tun: true, build: true, commands: ['ip', 'ping', 'tcpdump'] });

describe.skipIf(skip !== null)(named('wire format', skip), () => {
  const scope = new HostScope('vxtw');
  const dir = mkdtempSync(path.join(tmpdir(), 'vxtap-pcap-'));
  let a: Host;
  let b: Host;

  beforeAll(async () => {
    [a, b] = await twoHosts(scope);
    await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/16', '--vni', '5000', '--port', '8472', '--srcport-range', '50000-50063']);
    await startVxtap(scope, b, ['--peer', a.underlay, '--address', '198.19.0.2/16', '--vni', '5000', '--port', '8472', '--srcport-range', '50000-50063']);
  });
  afterAll(async () => {
    await scope.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('matches RFC 7348 and spreads flows over source ports', async () => {
    const file = path.join(dir, 'u.pcap');
    const dump = await startCapture(scope, a.ns, a.dev, file, 'udp port 8472');
    expect((await ping(a.ns, '198.19.0.2', 3, 0.1)).loss).toBe(0);
    const ports = [5031, 5032, 5033, 5034];
    for (const p of ports) await tcpTransfer(scope, a.ns, b.ns, '198.19.0.2', 200_000, p);
    await new Promise((r) => setTimeout(r, 300));
    await stop(dump);
    const pkts = vxlanPackets(readPcap(file), 8472);
    expect(pkts.length).toBeGreaterThan(50);
    checkRfc7348(pkts, { vni: 5000, portMin: 50000, portMax: 50063 });
    // each inner TCP flow keeps one source port; different flows use different ones
    const byFlow = new Map<number, Set<number>>();
    for (const p of pkts.filter((p) => p.outerSrc === a.underlay && p.innerProto === 6)) {
      const key = p.innerDstPort!;
      if (!ports.includes(key)) continue;
      if (!byFlow.has(key)) byFlow.set(key, new Set());
      byFlow.get(key)!.add(p.srcPort);
    }
    expect([...byFlow.keys()].sort()).toEqual(ports);
    for (const s of byFlow.values()) expect(s.size).toBe(1);
    const distinct = new Set([...byFlow.values()].map((s) => [...s][0]));
    expect(distinct.size).toBeGreaterThanOrEqual(2);
  });
});
