/** Small iproute2 queries and changes used by the VTEP (in the calling process's namespace). */
import ipaddr from 'ipaddr.js';
import { run, output } from './exec.js';

/** The interface that holds `address`, and its MTU; undefined when none does. */
export async function deviceOfAddress(address: string, netns?: string): Promise<{ dev: string; mtu: number } | undefined> {
  const want = ipaddr.parse(address).toNormalizedString();
  const json = await output(['ip', '-j', 'addr', 'show'], { netns });
  const links = JSON.parse(json) as { ifname: string; mtu: number; addr_info?: { local: string }[] }[];
  for (const l of links) {
    for (const a of l.addr_info ?? []) {
      if (ipaddr.isValid(a.local) && ipaddr.parse(a.local).toNormalizedString() === want) return { dev: l.ifname, mtu: l.mtu };
    }
  }
  return undefined;
}

/** `ip addr add CIDR dev DEV`. */
export async function addAddress(dev: string, cidr: string, netns?: string): Promise<void> {
  await run(['ip', 'addr', 'add', cidr, 'dev', dev], { netns });
}

/** `ip link set DEV txqueuelen N`. */
export async function setTxQueueLen(dev: string, frames: number, netns?: string): Promise<void> {
  await run(['ip', 'link', 'set', 'dev', dev, 'txqueuelen', String(frames)], { netns });
}

/** The kind of a link ('bridge', 'veth', 'tun', ...), '' for a plain device; undefined when absent. */
export async function linkKind(dev: string, netns?: string): Promise<string | undefined> {
  const r = await run(['ip', '-j', '-d', 'link', 'show', 'dev', dev], { netns, allowFail: true });
  if (r.code !== 0) return undefined;
  const l = (JSON.parse(r.stdout) as { linkinfo?: { info_kind?: string } }[]).at(0);
  return l?.linkinfo?.info_kind ?? '';
}

/**
 * Make `port` a quiet port of `bridge`: MTU of the bridge, enslaved, no MAC
 * learning and no flooding to it (the bridge must never send frames our way, and
 * must not learn the host's own source MAC on this port), up.
 */
export async function addQuietBridgePort(bridge: string, port: string, mtu: number, netns?: string): Promise<void> {
  await run(['ip', 'link', 'set', 'dev', port, 'mtu', String(mtu), 'master', bridge], { netns });
  await run(['bridge', 'link', 'set', 'dev', port, 'learning', 'off', 'flood', 'off', 'mcast_flood', 'off', 'bcast_flood', 'off', 'mcast_router', '0'], { netns });
  await run(['ip', 'link', 'set', 'dev', port, 'up'], { netns });
}

/** `ip link set DEV gso_max_size N` (caps the size of TSO frames the kernel hands the device). */
export async function setGsoMaxSize(dev: string, bytes: number, netns?: string): Promise<void> {
  await run(['ip', 'link', 'set', 'dev', dev, 'gso_max_size', String(bytes)], { netns });
}

/**
 * Link-layer next hops on `dev`: for each destination, the MAC of the neighbour
 * the kernel routes it to over `dev` (the destination itself or its gateway),
 * when the kernel has resolved it (entries that are INCOMPLETE or FAILED count as
 * unknown). Destinations routed over another device are left out.
 */
export async function nextHopMacs(dev: string, destinations: string[], netns?: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (destinations.length === 0) return out;
  const neigh = JSON.parse(await output(['ip', '-j', 'neigh', 'show', 'dev', dev], { netns })) as { dst: string; lladdr?: string; state?: string[] }[];
  const macOf = new Map<string, string>();
  for (const n of neigh) {
    if (!n.lladdr || !ipaddr.isValid(n.dst) || (n.state ?? []).some((s) => s === 'INCOMPLETE' || s === 'FAILED')) continue;
    macOf.set(ipaddr.parse(n.dst).toNormalizedString(), n.lladdr);
  }
  // one `ip route get` per destination, all in one process (results carry their dst)
  const r = await run(['ip', '-j', '-force', '-batch', '-'], { netns, allowFail: true, input: destinations.map((d) => `route get ${d}\n`).join('') });
  const routeOf = new Map<string, { dev?: string; gateway?: string }>();
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('[')) continue;
    for (const route of JSON.parse(line) as { dst?: string; dev?: string; gateway?: string }[]) {
      if (route.dst && ipaddr.isValid(route.dst)) routeOf.set(ipaddr.parse(route.dst).toNormalizedString(), route);
    }
  }
  for (const d of destinations) {
    const key = ipaddr.parse(d).toNormalizedString();
    const route = routeOf.get(key);
    if (route?.dev !== dev) continue;
    const mac = macOf.get(ipaddr.parse(route.gateway ?? d).toNormalizedString());
    if (mac) out.set(key, mac);
  }
  return out;
}

/**
 * Steer VXLAN for `local`:`port` arriving on `bridge` to the TAP `to`: an nftables
 * netdev table on the bridge's ingress with one `fwd` rule (datagrams above
 * STEER_MIN_BYTES, not outer fragments). A table of the same name left by a killed
 * run is replaced.
 * Returns the table name.
 */
export async function steerVxlan(tag: string, bridge: string, local: string, port: number, to: string, netns?: string): Promise<string> {
  const table = steeringTable(tag);
  await run(['nft', 'delete', 'table', 'netdev', table], { netns, allowFail: true });
  const rules = [
    `table netdev ${table} {`,
    `  chain rx {`,
    `    type filter hook ingress device "${bridge}" priority -100;`,
    `    ip daddr ${local} udp dport ${port} ip frag-off & 0x3fff == 0 meta length > ${STEER_MIN_BYTES} fwd to "${to}"`,
    '  }',
    '}',
  ].join('\n');
  await run(['nft', '-f', '-'], { netns, input: rules });
  return table;
}

/**
 * Datagrams up to this many bytes stay with the kernel's UDP socket, which takes
 * them in batches (recvmmsg); on the uplink each would cost a read of its own,
 * which halved the 64-byte packet rate (51 against 106 kpps, `bench --quick`).
 * A flow's small segments (a PSH tail) can then overtake its large ones when both
 * wait at once; the worker reads the uplink first to keep the usual order (large
 * segments, then the tail), and TCP absorbs the rest.
 */
export const STEER_MIN_BYTES = 1100;

/** The nftables table steerVxlan makes for an instance (its TAP name). */
export function steeringTable(tag: string): string {
  return `vxtap_${tag.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/** Remove a steering table (never throws). */
export async function unsteerVxlan(table: string, netns?: string): Promise<void> {
  await run(['nft', 'delete', 'table', 'netdev', table], { netns, allowFail: true }).catch(() => undefined);
}
