/**
 * Three VTEPs on one bridged underlay: ARP resolves through head-end replication
 * (flooding to every peer), then traffic is unicast to the learned VTEP only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostScope, bridgedHosts, startVxtap, ping, type Host, type RunningVtep } from '../helpers/vxtap.js';
import { named, skipReason } from '../helpers/requires.js';

const skip = skipReason({ root: true, tun: true, build: true, commands: ['ip', 'ping'] });

describe.skipIf(skip !== null)(named('three hosts: flooding, then learned unicast', skip), () => {
  const scope = new HostScope('vxt3');
  let hosts: Host[];
  let vteps: RunningVtep[];

  beforeAll(async () => {
    hosts = await bridgedHosts(scope, 3);
    vteps = [];
    for (let i = 0; i < 3; i++) {
      const peers = hosts.filter((_, j) => j !== i).map((h) => h.underlay);
      vteps.push(await startVxtap(scope, hosts[i], ['--peer', peers.join(','), '--address', `198.19.0.${i + 1}/16`, '--vni', '7']));
    }
  });
  afterAll(() => scope.cleanup());

  it('floods the ARP request to both peers and learns where each MAC lives', async () => {
    expect((await ping(hosts[0].ns, '198.19.0.2', 3, 0.1)).loss).toBe(0);
    const s0 = await vteps[0].status();
    expect(s0.total.tx_flood_packets).toBeGreaterThanOrEqual(2);
    const s2 = await vteps[2].status();
    expect(s2.total.rx_packets).toBeGreaterThanOrEqual(1); // host 3 saw the flooded ARP
    const mac1 = (await vteps[1].status()).mac;
    expect(s0.fdb).toContainEqual(expect.objectContaining({ mac: mac1, peer: hosts[1].underlay, static: false }));
    // host 3 learned host 1's MAC from the flooded broadcast
    expect(s2.fdb).toContainEqual(expect.objectContaining({ mac: s0.mac, peer: hosts[0].underlay }));
  });

  it('sends known unicast only to the VTEP that holds the MAC', async () => {
    const before2 = (await vteps[2].status()).total.rx_packets;
    const before0 = (await vteps[0].status()).total;
    expect((await ping(hosts[0].ns, '198.19.0.2', 20, 0.02)).loss).toBe(0);
    const after0 = (await vteps[0].status()).total;
    const after2 = (await vteps[2].status()).total.rx_packets;
    expect(after0.tx_packets - before0.tx_packets).toBeGreaterThanOrEqual(20);
    // 20 echo requests were unicast: a flooding VTEP would have sent host 3 at least
    // 20 copies; what may reach it is link-local multicast (IPv6 ND/MLD) noise
    expect(after0.tx_flood_packets - before0.tx_flood_packets).toBeLessThan(10);
    expect(after2 - before2).toBeLessThan(10);
  });

  it('reaches every host from every host', async () => {
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        if (i !== j) expect((await ping(hosts[i].ns, `198.19.0.${j + 1}`, 2, 0.05)).loss).toBe(0);
      }
    }
  });
});
