/**
 * Host routing state for overlay control planes: addresses, routes, static
 * neighbours (`ip neigh ... nud permanent`) and VXLAN forwarding entries
 * (`bridge fdb ... self permanent`), in the current namespace or a named one.
 * Commands are idempotent (`replace`), deletes tolerate absent entries, so a
 * control plane can re-apply its whole state after a restart.
 *
 * `KernelVxlanControl` drives a kernel VXLAN device through the same
 * `DataplaneControl` interface as the userspace VTEP: its static FDB becomes
 * kernel FDB entries (what flanneld programs on flannel.1), so one control plane
 * can run over either.
 */
import { run, output } from './exec.js';
import type { DataplaneControl, PeerEntry, StaticFdbEntry } from '../dataplane/types.js';

/** Where commands run: `netns` undefined = the current namespace. */
export interface HostTarget {
  netns?: string;
}

function ipArgv(family: 4 | 6 | undefined, args: string[]): string[] {
  return family === 6 ? ['ip', '-6', ...args] : ['ip', ...args];
}

function familyOf(addr: string): 4 | 6 {
  return addr.includes(':') ? 6 : 4;
}

/** `ip addr replace CIDR dev DEV` (idempotent). */
export async function addressReplace(dev: string, cidr: string, t: HostTarget = {}): Promise<void> {
  await run(ipArgv(familyOf(cidr), ['addr', 'replace', cidr, 'dev', dev]), { netns: t.netns });
}

/** `ip addr del`, ignoring an absent address. */
export async function addressDel(dev: string, cidr: string, t: HostTarget = {}): Promise<void> {
  await run(ipArgv(familyOf(cidr), ['addr', 'del', cidr, 'dev', dev]), { netns: t.netns, allowFail: true });
}

/** `ip link set DEV up`. */
export async function linkUp(dev: string, t: HostTarget = {}): Promise<void> {
  await run(['ip', 'link', 'set', dev, 'up'], { netns: t.netns });
}

/** A static neighbour: `ip neigh replace IP lladdr MAC dev DEV nud permanent`. */
export async function neighReplace(dev: string, ip: string, mac: string, t: HostTarget = {}): Promise<void> {
  await run(ipArgv(familyOf(ip), ['neigh', 'replace', ip, 'lladdr', mac, 'dev', dev, 'nud', 'permanent']), { netns: t.netns });
}

/** `ip neigh del IP dev DEV`, ignoring an absent entry. */
export async function neighDel(dev: string, ip: string, t: HostTarget = {}): Promise<void> {
  await run(ipArgv(familyOf(ip), ['neigh', 'del', ip, 'dev', dev]), { netns: t.netns, allowFail: true });
}

/**
 * Run `ip` commands (without the leading `ip`) in one process: `ip -force -batch -`,
 * which goes on after a failing line. Resolves to one entry per line: undefined when
 * it went through, else ip's error text. One process instead of one per command
 * matters on a loaded machine, where each spawn costs tens of milliseconds.
 */
export async function ipBatch(lines: string[], t: HostTarget = {}): Promise<(string | undefined)[]> {
  const out: (string | undefined)[] = lines.map(() => undefined);
  if (!lines.length) return out;
  const r = await run(['ip', '-force', '-batch', '-'], { netns: t.netns, input: lines.join('\n') + '\n', allowFail: true });
  if (r.code === 0) return out;
  let pending: string[] = [];
  let any = false;
  for (const line of r.stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(line.trim());
    if (m) {
      const i = Number(m[1]) - 1;
      if (i >= 0 && i < out.length) out[i] = pending.join('; ') || 'failed';
      pending = [];
      any = true;
    } else if (line.trim()) pending.push(line.trim());
  }
  // ip failed without naming a line (e.g. it could not start): every line failed.
  if (!any) return lines.map(() => r.stderr.trim() || `ip -batch exited with ${r.code}`);
  return out;
}

/** A route to `dst` via `via`, onlink, on `dev` (flannel's per-subnet route). */
export async function routeReplaceOnlink(dst: string, via: string, dev: string, t: HostTarget = {}): Promise<void> {
  await run(ipArgv(familyOf(dst), ['route', 'replace', dst, 'via', via, 'dev', dev, 'onlink']), { netns: t.netns });
}

/** `ip route del DST dev DEV`, ignoring an absent route. */
export async function routeDel(dst: string, dev: string, t: HostTarget = {}): Promise<void> {
  await run(ipArgv(familyOf(dst), ['route', 'del', dst, 'dev', dev]), { netns: t.netns, allowFail: true });
}

/**
 * A kernel VXLAN forwarding entry MAC -> remote VTEP:
 * `bridge fdb replace MAC dev DEV dst IP self permanent` (flanneld sets it with
 * netlink NeighSet, i.e. replace semantics: one destination per MAC).
 */
export async function fdbReplace(dev: string, mac: string, dst: string, t: HostTarget = {}): Promise<void> {
  await run(['bridge', 'fdb', 'replace', mac, 'dev', dev, 'dst', dst, 'self', 'permanent'], { netns: t.netns });
}

/** Remove a kernel VXLAN forwarding entry, ignoring an absent one. */
export async function fdbDel(dev: string, mac: string, dst: string, t: HostTarget = {}): Promise<void> {
  await run(['bridge', 'fdb', 'del', mac, 'dev', dev, 'dst', dst, 'self'], { netns: t.netns, allowFail: true });
}

/** One route as `ip -j route` prints it (the fields used here). */
export interface RouteInfo {
  dst: string;
  gateway?: string;
  dev?: string;
  flags?: string[];
}

/** Routes on `dev` (`ip -j route show dev DEV`). */
export async function listRoutes(dev: string, t: HostTarget = {}, family: 4 | 6 = 4): Promise<RouteInfo[]> {
  const out = await output(ipArgv(family, ['-j', 'route', 'show', 'dev', dev]), { netns: t.netns, allowFail: true });
  if (!out) return [];
  return (JSON.parse(out) as RouteInfo[]).map((r) => ({ ...r, dev }));
}

/** Neighbour entries on `dev`: IP -> { mac, state }. */
export async function listNeighbours(dev: string, t: HostTarget = {}): Promise<{ dst: string; lladdr?: string; state?: string[] }[]> {
  const out = await output(['ip', '-j', 'neigh', 'show', 'dev', dev], { netns: t.netns, allowFail: true });
  return out ? (JSON.parse(out) as { dst: string; lladdr?: string; state?: string[] }[]) : [];
}

/** Kernel FDB entries with a remote destination on a VXLAN device. */
export async function listVxlanFdb(dev: string, t: HostTarget = {}): Promise<{ mac: string; dst: string }[]> {
  const out = await output(['bridge', '-j', 'fdb', 'show', 'dev', dev], { netns: t.netns, allowFail: true });
  if (!out) return [];
  return (JSON.parse(out) as { mac: string; dst?: string }[]).flatMap((e) => (e.dst ? [{ mac: e.mac, dst: e.dst }] : []));
}

/** A link's MAC and MTU (`ip -j link show DEV`). */
export async function linkInfo(dev: string, t: HostTarget = {}): Promise<{ mac: string; mtu: number }> {
  const out = await output(['ip', '-j', 'link', 'show', 'dev', dev], { netns: t.netns });
  const [l] = JSON.parse(out) as { address: string; mtu: number }[];
  return { mac: l.address, mtu: l.mtu };
}

/** The device holding `address` and its MTU, or undefined (`ip -j addr`). */
export async function deviceOfAddress(address: string, t: HostTarget = {}): Promise<{ dev: string; mtu: number } | undefined> {
  const out = await output(['ip', '-j', 'addr', 'show'], { netns: t.netns, allowFail: true });
  if (!out) return undefined;
  const links = JSON.parse(out) as { ifname: string; mtu: number; addr_info?: { local: string }[] }[];
  for (const l of links) {
    if (l.addr_info?.some((a) => a.local === address)) return { dev: l.ifname, mtu: l.mtu };
  }
  return undefined;
}

/** The addresses on `dev` with their prefix lengths (`ip -j addr show dev DEV`). */
export async function addressesOfDevice(dev: string, t: HostTarget = {}): Promise<{ local: string; prefixlen: number; family: 4 | 6 }[]> {
  const out = await output(['ip', '-j', 'addr', 'show', 'dev', dev], { netns: t.netns, allowFail: true });
  if (!out) return [];
  const links = JSON.parse(out) as { addr_info?: { family: string; local: string; prefixlen: number }[] }[];
  return links.flatMap((l) =>
    (l.addr_info ?? []).filter((a) => a.family === 'inet' || a.family === 'inet6').map((a) => ({ local: a.local, prefixlen: a.prefixlen, family: a.family === 'inet' ? (4 as const) : (6 as const) })),
  );
}

/** Settings for a kernel VXLAN device as flanneld creates it. */
export interface KernelVxlanOptions extends HostTarget {
  /** Device name, e.g. 'flannel.1'. */
  name: string;
  vni: number;
  /** UDP port (flannel: 8472 unless Backend.Port is set). */
  port: number;
  /** Local underlay address. */
  local: string;
  /** Underlay device (flannel binds the VTEP to it). */
  dev?: string;
  mtu: number;
  /** Kernel FDB learning (flannel: off). */
  learning?: boolean;
}

/** Create and bring up a kernel VXLAN device (`ip link add NAME type vxlan id VNI ... nolearning`). */
export async function createKernelVxlan(o: KernelVxlanOptions): Promise<void> {
  const argv = ['ip', 'link', 'add', o.name, 'type', 'vxlan', 'id', String(o.vni), 'local', o.local, 'dstport', String(o.port)];
  if (o.dev) argv.push('dev', o.dev);
  argv.push(o.learning ? 'learning' : 'nolearning');
  await run(argv, { netns: o.netns });
  await run(['ip', 'link', 'set', o.name, 'mtu', String(o.mtu)], { netns: o.netns });
  await linkUp(o.name, o);
}

/**
 * `DataplaneControl` over a kernel VXLAN device: `setStaticFdb` becomes kernel FDB
 * entries (applied asynchronously, in order; `flush()` waits). The kernel has no
 * peer allow-list, so `setPeers` is only recorded.
 */
export class KernelVxlanControl implements DataplaneControl {
  private fdb = new Map<string, string>();
  private queue: Promise<void> = Promise.resolve();
  private peers: PeerEntry[] = [];
  /** Errors from background FDB updates (kept for tests and logs). */
  readonly errors: Error[] = [];

  private constructor(
    readonly tapName: string,
    readonly tapMac: string,
    readonly mtu: number,
    private readonly target: HostTarget,
  ) {}

  /** Wrap an existing kernel VXLAN device. */
  static async open(dev: string, t: HostTarget = {}): Promise<KernelVxlanControl> {
    const { mac, mtu } = await linkInfo(dev, t);
    return new KernelVxlanControl(dev, mac, mtu, t);
  }

  /** The last peer list set. */
  get currentPeers(): readonly PeerEntry[] {
    return this.peers;
  }

  setPeers(peers: PeerEntry[]): void {
    this.peers = peers.map((p) => ({ ...p }));
  }

  setStaticFdb(entries: StaticFdbEntry[]): void {
    const next = new Map(entries.map((e) => [e.mac.toLowerCase(), e.peer]));
    const prev = this.fdb;
    this.fdb = next;
    this.queue = this.queue.then(async () => {
      try {
        for (const [mac, dst] of prev) if (next.get(mac) !== dst) await fdbDel(this.tapName, mac, dst, this.target);
        for (const [mac, dst] of next) if (prev.get(mac) !== dst) await fdbReplace(this.tapName, mac, dst, this.target);
      } catch (e) {
        this.errors.push(e as Error);
      }
    });
  }

  /** Wait until every FDB change requested so far is applied. */
  flush(): Promise<void> {
    return this.queue;
  }
}
