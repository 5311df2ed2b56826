import { describe, expect, it } from 'vitest';
import { OverlayApplier, desiredRemotes, type OverlayHost } from '../../src/control/flannel/reconcile.js';
import { parseSubnetKey, type Lease } from '../../src/control/flannel/lease.js';
import { FakeDataplane } from '../helpers/fake-dataplane.js';

function lease(key: string, publicIP: string, mac: string, extra: Partial<Lease['attrs']> = {}): Lease {
  const k = parseSubnetKey(key)!;
  return { ...k, attrs: { publicIP, publicIPv6: null, backendType: 'vxlan', vxlan: { vni: 1, vtepMac: mac }, ...extra } };
}

class FakeHost implements OverlayHost {
  readonly ops: string[] = [];
  readonly neigh = new Map<string, string>();
  readonly routes = new Map<string, string>();
  async neighReplace(ip: string, mac: string) {
    this.ops.push(`neigh+ ${ip} ${mac}`);
    this.neigh.set(ip, mac);
  }
  async neighDel(ip: string) {
    this.ops.push(`neigh- ${ip}`);
    this.neigh.delete(ip);
  }
  async routeReplace(dst: string, via: string) {
    this.ops.push(`route+ ${dst} ${via}`);
    expect(this.neigh.has(via)).toBe(true); // never a route to an unresolved next hop
    this.routes.set(dst, via);
  }
  async routeDel(dst: string) {
    this.ops.push(`route- ${dst}`);
    this.routes.delete(dst);
  }
}

const self = { key: '198.19.1.0-24', publicIP: '198.18.0.1', vni: 1 };

describe('desired remotes', () => {
  it('skips our own lease, other backends, other VNIs, missing VtepMAC and our own PublicIP', () => {
    const { remotes, ignored } = desiredRemotes(
      [
        lease('198.19.1.0-24', '198.18.0.1', '02:00:00:00:00:01'),
        lease('198.19.2.0-24', '198.18.0.2', '02:00:00:00:00:02'),
        lease('198.19.3.0-24', '198.18.0.3', '02:00:00:00:00:03', { backendType: 'host-gw', vxlan: undefined }),
        lease('198.19.4.0-24', '198.18.0.4', '02:00:00:00:00:04', { vxlan: { vni: 7, vtepMac: '02:00:00:00:00:04' } }),
        lease('198.19.5.0-24', '198.18.0.5', '02:00:00:00:00:05', { vxlan: undefined }),
        lease('198.19.6.0-24', '198.18.0.1', '02:00:00:00:00:06'),
      ],
      self,
    );
    expect(remotes.map((r) => [r.key, r.gateway, r.publicIP, r.vtepMac])).toEqual([['198.19.2.0-24', '198.19.2.0', '198.18.0.2', '02:00:00:00:00:02']]);
    expect(ignored.map((i) => i.key)).toEqual(['198.19.3.0-24', '198.19.4.0-24', '198.19.5.0-24', '198.19.6.0-24']);
  });
});

describe('overlay applier', () => {
  it('programs neighbour, route, peer and FDB per remote, and removes them when the lease goes', async () => {
    const dp = new FakeDataplane();
    const host = new FakeHost();
    const a = new OverlayApplier(dp, host);
    const l2 = lease('198.19.2.0-24', '198.18.0.2', '02:00:00:00:00:02');
    const l3 = lease('198.19.3.0-24', '198.18.0.3', '02:00:00:00:00:03');
    await a.apply(desiredRemotes([l2, l3], self).remotes);
    expect(dp.peers).toEqual([
      { address: '198.18.0.2', flood: false },
      { address: '198.18.0.3', flood: false },
    ]);
    expect(dp.fdb).toEqual([
      { mac: '02:00:00:00:00:02', peer: '198.18.0.2' },
      { mac: '02:00:00:00:00:03', peer: '198.18.0.3' },
    ]);
    expect([...host.routes]).toEqual([
      ['198.19.2.0/24', '198.19.2.0'],
      ['198.19.3.0/24', '198.19.3.0'],
    ]);
    expect(host.neigh.get('198.19.3.0')).toBe('02:00:00:00:00:03');

    host.ops.length = 0;
    await a.apply(desiredRemotes([l2, l3], self).remotes);
    expect(host.ops).toEqual([]); // nothing changed, nothing touched

    await a.apply(desiredRemotes([l2], self).remotes);
    expect(host.ops).toEqual(['route- 198.19.3.0/24', 'neigh- 198.19.3.0']);
    expect(dp.peers.map((p) => p.address)).toEqual(['198.18.0.2']);
    expect(dp.fdb.map((f) => f.mac)).toEqual(['02:00:00:00:00:02']);
  });

  it('re-programs a host whose VtepMAC changed (restart with a new device)', async () => {
    const dp = new FakeDataplane();
    const host = new FakeHost();
    const a = new OverlayApplier(dp, host);
    await a.apply(desiredRemotes([lease('198.19.2.0-24', '198.18.0.2', '02:00:00:00:00:02')], self).remotes);
    host.ops.length = 0;
    await a.apply(desiredRemotes([lease('198.19.2.0-24', '198.18.0.2', '02:00:00:00:00:99')], self).remotes);
    expect(host.ops).toEqual(['route- 198.19.2.0/24', 'neigh- 198.19.2.0', 'neigh+ 198.19.2.0 02:00:00:00:00:99', 'route+ 198.19.2.0/24 198.19.2.0']);
    expect(dp.fdb).toEqual([{ mac: '02:00:00:00:00:99', peer: '198.18.0.2' }]);
  });

  it('clear() removes everything', async () => {
    const dp = new FakeDataplane();
    const host = new FakeHost();
    const a = new OverlayApplier(dp, host);
    await a.apply(desiredRemotes([lease('198.19.2.0-24', '198.18.0.2', '02:00:00:00:00:02')], self).remotes);
    await a.clear();
    expect(host.routes.size + host.neigh.size + dp.peers.length + dp.fdb.length).toBe(0);
  });
});
