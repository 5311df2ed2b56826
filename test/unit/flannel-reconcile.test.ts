import { describe, expect, it } from 'vitest';
import { OverlayApplier, desiredRemotes, type OverlayHost, type OverlayOp } from '../../src/control/flannel/reconcile.js';
import { parseSubnetKey, type Lease } from '../../src/control/flannel/lease.js';
import { FakeDataplane } from '../helpers/fake-dataplane.js';
import { parseNetworkConfig } from '../../src/control/flannel/config.js';
import { parseCidr } from '../../src/control/flannel/cidr.js';
import type { ScreenContext } from '../../src/control/flannel/lease-policy.js';

function lease(key: string, publicIP: string, mac: string, extra: Partial<Lease['attrs']> = {}): Lease {
  const k = parseSubnetKey(key)!;
  return { ...k, attrs: { publicIP, publicIPv6: null, backendType: 'vxlan', vxlan: { vni: 1, vtepMac: mac }, ...extra } };
}

class PlainHost implements OverlayHost {
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

const range = parseNetworkConfig(JSON.stringify({ Network: '198.19.0.0/16', Backend: { Type: 'vxlan' } })).ipv4;
const self: ScreenContext = {
  range,
  vni: 1,
  own: { key: '198.19.1.0-24', subnet: parseCidr('198.19.1.0/24'), publicIP: '198.18.0.1', vtepMac: '02:00:00:00:00:01' },
  underlay: [parseCidr('198.18.0.0/24')],
  etcdAddresses: ['198.18.0.250'],
};

describe('desired remotes', () => {
  it('skips our own lease, other backends, other VNIs, missing VtepMAC and our own PublicIP', () => {
    const { remotes, refused } = desiredRemotes(
      [
        lease('198.19.1.0-24', '198.18.0.1', '02:00:00:00:00:0a'),
        lease('198.19.2.0-24', '198.18.0.2', '02:00:00:00:00:02'),
        lease('198.19.3.0-24', '198.18.0.3', '02:00:00:00:00:03', { backendType: 'host-gw', vxlan: undefined }),
        lease('198.19.4.0-24', '198.18.0.4', '02:00:00:00:00:04', { vxlan: { vni: 7, vtepMac: '02:00:00:00:00:04' } }),
        lease('198.19.5.0-24', '198.18.0.5', '02:00:00:00:00:05', { vxlan: undefined }),
        lease('198.19.6.0-24', '198.18.0.1', '02:00:00:00:00:06'),
      ],
      self,
    );
    expect(remotes.map((r) => [r.key, r.gateway, r.publicIP, r.vtepMac])).toEqual([['198.19.2.0-24', '198.19.2.0', '198.18.0.2', '02:00:00:00:00:02']]);
    expect(refused.map((i) => [i.key, i.reason])).toEqual([
      ['198.19.3.0-24', 'not_vxlan'],
      ['198.19.4.0-24', 'vni_mismatch'],
      ['198.19.5.0-24', 'bad_vtep_mac'],
      ['198.19.6.0-24', 'own_public_ip'],
    ]);
  });
});

/** The same host, applying changes through `batch` (as the kernel host does with `ip -batch`). */
class FakeBatchHost extends PlainHost {
  batches = 0;
  async batch(ops: OverlayOp[]): Promise<(Error | undefined)[]> {
    this.batches++;
    const out: (Error | undefined)[] = [];
    for (const o of ops) {
      try {
        if (o.op === 'neighReplace') await this.neighReplace(o.ip, o.mac);
        else if (o.op === 'neighDel') await this.neighDel(o.ip);
        else if (o.op === 'routeReplace') await this.routeReplace(o.dst, o.via);
        else await this.routeDel(o.dst);
        out.push(undefined);
      } catch (e) {
        out.push(e as Error);
      }
    }
    return out;
  }
}

// One suite over both ways of talking to the host.
for (const FakeHost of [PlainHost, FakeBatchHost])
  describe(`overlay applier (${FakeHost.name})`, () => {
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

    it('re-programs a host whose VtepMAC changed (restart with a new device) in place: its route never goes away', async () => {
      const dp = new FakeDataplane();
      const host = new FakeHost();
      const a = new OverlayApplier(dp, host);
      await a.apply(desiredRemotes([lease('198.19.2.0-24', '198.18.0.2', '02:00:00:00:00:02')], self).remotes);
      host.ops.length = 0;
      await a.apply(desiredRemotes([lease('198.19.2.0-24', '198.18.0.2', '02:00:00:00:00:99')], self).remotes);
      expect(host.ops).toEqual(['neigh+ 198.19.2.0 02:00:00:00:00:99', 'route+ 198.19.2.0/24 198.19.2.0']);
      expect(dp.fdb).toEqual([{ mac: '02:00:00:00:00:99', peer: '198.18.0.2' }]);
    });

    it('applies each remote on its own: one the host refuses is reported, retried, and blocks no other', async () => {
      const dp = new FakeDataplane();
      const host = new FakeHost();
      const refuse = new Set(['198.19.3.0/24']);
      const orig = host.routeReplace.bind(host);
      host.routeReplace = async (dst: string, via: string) => {
        if (refuse.has(dst)) throw new Error(`RTNETLINK answers: Invalid argument (${dst})`);
        await orig(dst, via);
      };
      const a = new OverlayApplier(dp, host);
      const ls = [2, 3, 4].map((i) => lease(`198.19.${i}.0-24`, `198.18.0.${i}`, `02:00:00:00:00:0${i}`));
      const r1 = await a.apply(desiredRemotes(ls, self).remotes);
      expect(r1.added.map((r) => r.key)).toEqual(['198.19.2.0-24', '198.19.4.0-24']);
      expect(r1.failed.map((f) => f.remote.key)).toEqual(['198.19.3.0-24']);
      expect([...host.routes.keys()]).toEqual(['198.19.2.0/24', '198.19.4.0/24']);
      expect(a.pending.map((r) => r.key)).toEqual(['198.19.3.0-24']);
      // The kernel accepts it now: the next apply with the same leases programs it.
      refuse.clear();
      const r2 = await a.apply(desiredRemotes(ls, self).remotes);
      expect(r2.added.map((r) => r.key)).toEqual(['198.19.3.0-24']);
      expect(a.pending).toEqual([]);
      expect(host.routes.size).toBe(3);
    });

    it('cleans up a half-programmed remote once it is no longer wanted', async () => {
      const dp = new FakeDataplane();
      const host = new FakeHost();
      host.routeReplace = async () => {
        throw new Error('refused');
      };
      const a = new OverlayApplier(dp, host);
      await a.apply(desiredRemotes([lease('198.19.2.0-24', '198.18.0.2', '02:00:00:00:00:02')], self).remotes);
      expect(host.neigh.size).toBe(1); // neighbour went in, the route did not
      await a.apply([]);
      expect(host.neigh.size).toBe(0);
      expect(a.pending).toEqual([]);
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
