/**
 * From the set of leases to host and dataplane state, as flannel's VXLAN backend
 * programs it for each remote lease: a route to the subnet via its network
 * address (onlink, on the overlay device), a permanent neighbour entry for that
 * address -> VtepMAC, and a forwarding entry VtepMAC -> PublicIP (here: the
 * dataplane's static FDB, and the peer allow-list, without flooding).
 *
 * `desiredRemotes()` is pure; `OverlayApplier` applies differences through an
 * `OverlayHost` (real: ip route/neigh via src/host/routes.ts; tests: a fake).
 */
import type { DataplaneControl } from '../../dataplane/types.js';
import { type Cidr, formatCidr } from './cidr.js';
import { gatewayOf, type Lease } from './lease.js';
import * as routes from '../../host/routes.js';

/** One remote host as the overlay sees it. */
export interface RemoteHost {
  /** Lease key ('198.19.7.0-24'). */
  key: string;
  subnet: Cidr;
  /** The subnet's network address: next hop and neighbour. */
  gateway: string;
  publicIP: string;
  vtepMac: string;
}

/** Why a lease was not turned into a remote host. */
export interface IgnoredLease {
  key: string;
  reason: string;
}

/**
 * The remote hosts to program: every vxlan lease other than our own, with our
 * VNI and a VtepMAC, whose PublicIP is not ours.
 */
export function desiredRemotes(
  leases: Iterable<Lease>,
  self: { key?: string; publicIP: string; vni: number },
): { remotes: RemoteHost[]; ignored: IgnoredLease[] } {
  const remotes: RemoteHost[] = [];
  const ignored: IgnoredLease[] = [];
  for (const l of leases) {
    if (l.key === self.key) continue;
    if (l.attrs.backendType !== 'vxlan') {
      ignored.push({ key: l.key, reason: `BackendType ${JSON.stringify(l.attrs.backendType)} is not vxlan` });
      continue;
    }
    if (!l.attrs.vxlan) {
      ignored.push({ key: l.key, reason: 'no BackendData (VtepMAC)' });
      continue;
    }
    if (l.attrs.vxlan.vni !== self.vni) {
      ignored.push({ key: l.key, reason: `VNI ${l.attrs.vxlan.vni} differs from ours (${self.vni})` });
      continue;
    }
    if (l.attrs.publicIP === self.publicIP) {
      ignored.push({ key: l.key, reason: `PublicIP ${l.attrs.publicIP} is our own address (a stale lease of this host?)` });
      continue;
    }
    remotes.push({ key: l.key, subnet: l.subnet, gateway: gatewayOf(l.subnet), publicIP: l.attrs.publicIP, vtepMac: l.attrs.vxlan.vtepMac });
  }
  remotes.sort((a, b) => (a.subnet.base < b.subnet.base ? -1 : a.subnet.base > b.subnet.base ? 1 : 0));
  return { remotes, ignored };
}

/** What the applier needs from the host: the per-subnet route and neighbour. */
export interface OverlayHost {
  neighReplace(ip: string, mac: string): Promise<void>;
  neighDel(ip: string): Promise<void>;
  routeReplace(dst: string, via: string): Promise<void>;
  routeDel(dst: string): Promise<void>;
}

/** The real host: ip neigh / ip route on `dev` (in `netns`, if given). */
export function kernelOverlayHost(dev: string, t: routes.HostTarget = {}): OverlayHost {
  return {
    neighReplace: (ip, mac) => routes.neighReplace(dev, ip, mac, t),
    neighDel: (ip) => routes.neighDel(dev, ip, t),
    routeReplace: (dst, via) => routes.routeReplaceOnlink(dst, via, dev, t),
    routeDel: (dst) => routes.routeDel(dst, dev, t),
  };
}

function same(a: RemoteHost, b: RemoteHost): boolean {
  return a.gateway === b.gateway && a.publicIP === b.publicIP && a.vtepMac === b.vtepMac && a.subnet.len === b.subnet.len;
}

/** Applies successive desired states, touching only what changed. */
export class OverlayApplier {
  private applied = new Map<string, RemoteHost>();

  constructor(private readonly dataplane: DataplaneControl, private readonly host: OverlayHost) {}

  /** Remote hosts currently programmed. */
  get current(): RemoteHost[] {
    return [...this.applied.values()];
  }

  /**
   * Bring host and dataplane to `remotes`. Removals first (route, neighbour), then
   * the dataplane's peers and FDB (full replacement), then additions (neighbour,
   * route), so that a route never points at an unresolved next hop.
   * Returns what changed.
   */
  async apply(remotes: RemoteHost[]): Promise<{ added: RemoteHost[]; removed: RemoteHost[] }> {
    const next = new Map(remotes.map((r) => [r.key, r]));
    const removed: RemoteHost[] = [];
    const added: RemoteHost[] = [];
    for (const [key, old] of this.applied) {
      const n = next.get(key);
      if (!n || !same(old, n)) removed.push(old);
    }
    for (const [key, r] of next) {
      const old = this.applied.get(key);
      if (!old || !same(old, r)) added.push(r);
    }
    for (const r of removed) {
      await this.host.routeDel(formatCidr(r.subnet));
      // The next hop may be reused by the replacement entry; it is replaced below.
      await this.host.neighDel(r.gateway);
      this.applied.delete(r.key);
    }
    const peers = [...new Set(remotes.map((r) => r.publicIP))];
    this.dataplane.setPeers(peers.map((address) => ({ address, flood: false })));
    const fdb = new Map<string, string>();
    for (const r of remotes) fdb.set(r.vtepMac, r.publicIP);
    this.dataplane.setStaticFdb([...fdb].map(([mac, peer]) => ({ mac, peer })));
    for (const r of added) {
      await this.host.neighReplace(r.gateway, r.vtepMac);
      await this.host.routeReplace(formatCidr(r.subnet), r.gateway);
      this.applied.set(r.key, r);
    }
    return { added, removed };
  }

  /** Remove everything this applier programmed (routes, neighbours, peers, FDB). */
  async clear(): Promise<void> {
    await this.apply([]);
  }
}
