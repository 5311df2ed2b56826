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
import type { MalformedLease } from './registry.js';
import { screenLeases, type RefusedLease, type ScreenContext } from './lease-policy.js';
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

/**
 * The remote hosts to program: the leases that pass the screen (lease-policy.ts),
 * sorted by subnet; the refused ones with their reasons.
 */
export function desiredRemotes(records: Iterable<Lease | MalformedLease>, ctx: ScreenContext): { remotes: RemoteHost[]; refused: RefusedLease[] } {
  const { accepted, refused } = screenLeases(records, ctx);
  const remotes = accepted.map((l) => ({ key: l.key, subnet: l.subnet, gateway: gatewayOf(l.subnet), publicIP: l.attrs.publicIP, vtepMac: l.attrs.vxlan.vtepMac }));
  remotes.sort((a, b) => (a.subnet.base < b.subnet.base ? -1 : a.subnet.base > b.subnet.base ? 1 : 0));
  return { remotes, refused };
}

/** One host change, for `OverlayHost.batch`. */
export type OverlayOp = { op: 'neighReplace'; ip: string; mac: string } | { op: 'neighDel'; ip: string } | { op: 'routeReplace'; dst: string; via: string } | { op: 'routeDel'; dst: string };

/** What the applier needs from the host: the per-subnet route and neighbour. */
export interface OverlayHost {
  neighReplace(ip: string, mac: string): Promise<void>;
  neighDel(ip: string): Promise<void>;
  routeReplace(dst: string, via: string): Promise<void>;
  routeDel(dst: string): Promise<void>;
  /**
   * Optional: apply several changes at once, in order, going on after a failure;
   * resolves to one entry per op (undefined = done, else the error). Deletes of
   * absent entries may fail here; the applier ignores failed deletes.
   */
  batch?(ops: OverlayOp[]): Promise<(Error | undefined)[]>;
}

/** The real host: ip neigh / ip route on `dev` (in `netns`, if given). */
export function kernelOverlayHost(dev: string, t: routes.HostTarget = {}): OverlayHost {
  return {
    neighReplace: (ip, mac) => routes.neighReplace(dev, ip, mac, t),
    neighDel: (ip) => routes.neighDel(dev, ip, t),
    routeReplace: (dst, via) => routes.routeReplaceOnlink(dst, via, dev, t),
    routeDel: (dst) => routes.routeDel(dst, dev, t),
    async batch(ops) {
      const lines = ops.map((o) => {
        switch (o.op) {
          case 'neighReplace':
            return `neigh replace ${o.ip} lladdr ${o.mac} dev ${dev} nud permanent`;
          case 'neighDel':
            return `neigh del ${o.ip} dev ${dev}`;
          case 'routeReplace':
            return `route replace ${o.dst} via ${o.via} dev ${dev} onlink`;
          case 'routeDel':
            return `route del ${o.dst} dev ${dev}`;
        }
      });
      const res = await routes.ipBatch(lines, t);
      return res.map((e, i) => (e === undefined ? undefined : new Error(`ip ${lines[i]}: ${e}`)));
    },
  };
}

function same(a: RemoteHost, b: RemoteHost): boolean {
  return a.gateway === b.gateway && a.publicIP === b.publicIP && a.vtepMac === b.vtepMac && a.subnet.len === b.subnet.len;
}

/** A remote the host refused to program (the kernel said no), with the error. */
export interface FailedRemote {
  remote: RemoteHost;
  error: Error;
}

/**
 * Applies successive desired states, touching only what changed. Each remote is
 * programmed on its own: one the kernel refuses is reported in `failed` and
 * retried by the next apply, and never blocks the others.
 */
export class OverlayApplier {
  private applied = new Map<string, RemoteHost>();
  /** Remotes whose programming failed (maybe half-done: neighbour without route). */
  private failedKeys = new Map<string, RemoteHost>();

  constructor(
    private readonly dataplane: DataplaneControl,
    private readonly host: OverlayHost,
  ) {}

  /** Remote hosts currently programmed. */
  get current(): RemoteHost[] {
    return [...this.applied.values()];
  }

  /** Remotes wanted but not programmed because the host refused them (retried on the next apply). */
  get pending(): RemoteHost[] {
    return [...this.failedKeys.values()];
  }

  /**
   * Bring host and dataplane to `remotes`. Removals first (route, neighbour), then
   * the dataplane's peers and FDB (full replacement), then additions and changes
   * (neighbour, route; `replace`, so a changed remote keeps its route throughout),
   * so that a route never points at an unresolved next hop.
   * Returns what changed (a changed remote is in `added` only) and what failed.
   */
  async apply(remotes: RemoteHost[]): Promise<{ added: RemoteHost[]; removed: RemoteHost[]; failed: FailedRemote[] }> {
    const next = new Map(remotes.map((r) => [r.key, r]));
    const removed: RemoteHost[] = [];
    const toAdd: RemoteHost[] = [];
    const failed: FailedRemote[] = [];
    for (const [key, old] of this.applied) {
      const n = next.get(key);
      // Same key, same subnet and next hop (a restarted host with a new VtepMAC or
      // PublicIP): replaced in place below, so its route never disappears.
      if (!n || n.gateway !== old.gateway || n.subnet.len !== old.subnet.len) removed.push(old);
    }
    for (const [key, r] of next) {
      const old = this.applied.get(key);
      if (!old || !same(old, r)) toAdd.push(r);
    }
    if (this.host.batch) return this.applyBatched(remotes, next, removed, toAdd, this.host.batch.bind(this.host));
    for (const r of removed) {
      this.applied.delete(r.key);
      try {
        await this.host.routeDel(formatCidr(r.subnet));
        // The next hop may be reused by the replacement entry; it is replaced below.
        await this.host.neighDel(r.gateway);
      } catch (e) {
        failed.push({ remote: r, error: e as Error });
      }
    }
    // Half-programmed remotes that are no longer wanted (or changed): clean up.
    for (const [key, r] of this.failedKeys) {
      const n = next.get(key);
      if (n && same(r, n)) continue;
      this.failedKeys.delete(key);
      await this.host.routeDel(formatCidr(r.subnet)).catch(() => undefined);
      await this.host.neighDel(r.gateway).catch(() => undefined);
    }
    const peers = [...new Set(remotes.map((r) => r.publicIP))];
    this.dataplane.setPeers(peers.map((address) => ({ address, flood: false })));
    const fdb = new Map<string, string>();
    for (const r of remotes) fdb.set(r.vtepMac, r.publicIP);
    this.dataplane.setStaticFdb([...fdb].map(([mac, peer]) => ({ mac, peer })));
    const added: RemoteHost[] = [];
    for (const r of toAdd) {
      try {
        await this.host.neighReplace(r.gateway, r.vtepMac);
        await this.host.routeReplace(formatCidr(r.subnet), r.gateway);
        this.applied.set(r.key, r);
        this.failedKeys.delete(r.key);
        added.push(r);
      } catch (e) {
        this.failedKeys.set(r.key, r);
        failed.push({ remote: r, error: e as Error });
      }
    }
    return { added, removed, failed };
  }

  private setDataplane(remotes: RemoteHost[]): void {
    const peers = [...new Set(remotes.map((r) => r.publicIP))];
    this.dataplane.setPeers(peers.map((address) => ({ address, flood: false })));
    const fdb = new Map<string, string>();
    for (const r of remotes) fdb.set(r.vtepMac, r.publicIP);
    this.dataplane.setStaticFdb([...fdb].map(([mac, peer]) => ({ mac, peer })));
  }

  /**
   * `apply` over `OverlayHost.batch`: three host calls whatever the number of
   * remotes (removals; neighbours; routes for the remotes whose neighbour went in).
   */
  private async applyBatched(
    remotes: RemoteHost[],
    next: Map<string, RemoteHost>,
    removed: RemoteHost[],
    toAdd: RemoteHost[],
    batch: (ops: OverlayOp[]) => Promise<(Error | undefined)[]>,
  ): Promise<{ added: RemoteHost[]; removed: RemoteHost[]; failed: FailedRemote[] }> {
    const failed: FailedRemote[] = [];
    const gone: RemoteHost[] = [...removed];
    for (const r of removed) this.applied.delete(r.key);
    for (const [key, r] of this.failedKeys) {
      const n = next.get(key);
      if (n && same(r, n)) continue;
      this.failedKeys.delete(key);
      gone.push(r);
    }
    // Failed deletes are entries that were not there: nothing to report.
    if (gone.length) await batch([...gone.map((r): OverlayOp => ({ op: 'routeDel', dst: formatCidr(r.subnet) })), ...gone.map((r): OverlayOp => ({ op: 'neighDel', ip: r.gateway }))]);
    this.setDataplane(remotes);
    const added: RemoteHost[] = [];
    if (!toAdd.length) return { added, removed, failed };
    const neighErr = await batch(toAdd.map((r) => ({ op: 'neighReplace', ip: r.gateway, mac: r.vtepMac })));
    const ready: RemoteHost[] = [];
    toAdd.forEach((r, i) => {
      const e = neighErr[i];
      if (e) {
        this.failedKeys.set(r.key, r);
        failed.push({ remote: r, error: e });
      } else ready.push(r);
    });
    const routeErr = ready.length ? await batch(ready.map((r) => ({ op: 'routeReplace', dst: formatCidr(r.subnet), via: r.gateway }))) : [];
    ready.forEach((r, i) => {
      const e = routeErr[i];
      if (e) {
        this.failedKeys.set(r.key, r);
        failed.push({ remote: r, error: e });
      } else {
        this.applied.set(r.key, r);
        this.failedKeys.delete(r.key);
        added.push(r);
      }
    });
    return { added, removed, failed };
  }

  /** Remove everything this applier programmed (routes, neighbours, peers, FDB). */
  async clear(): Promise<void> {
    await this.apply([]);
  }
}
