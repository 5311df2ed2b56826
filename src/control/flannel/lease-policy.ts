/**
 * Which leases may become routes. Anyone who can write under
 * `<prefix>/subnets/` can publish any key and value; every host that programs a
 * lease installs a kernel route for its subnet and sends that subnet's traffic
 * to its PublicIP. So a remote lease is screened before it is programmed, and
 * refused (counted per reason, logged rate-limited, never programmed) when it:
 *
 * - cannot be decoded, or its PublicIP, VtepMAC or VNI is malformed
 *   (`bad_key`, `malformed`, `bad_public_ip`, `bad_vtep_mac`, `bad_vni`);
 * - is not a vxlan lease, or has another VNI (`not_vxlan`, `vni_mismatch`);
 * - carries our own PublicIP (`own_public_ip`: a stale lease of this host);
 * - has a PublicIP that cannot be a VTEP (unspecified, loopback, multicast,
 *   reserved, or inside the overlay network itself: an encapsulation loop), or a
 *   VtepMAC that is a group address, all zero, or ours;
 * - has a subnet that covers an etcd endpoint (`covers_etcd`: it would cut the
 *   host off from etcd), a peer's PublicIP (`covers_peer`: a loop), or this
 *   host's underlay (`covers_underlay`: interception of underlay traffic);
 * - has a subnet that is not a SubnetLen subnet of the config's Network
 *   (`outside_network`; `0.0.0.0-0` is one);
 * - overlaps our subnet (`overlaps_own`), or another lease that was created
 *   earlier (`overlaps_lease`: first come, first served, so a newcomer cannot
 *   take over an existing host's subnet), or repeats an earlier lease's VtepMAC
 *   (`duplicate_vtep_mac`).
 *
 * The first rule that matches is the reason. Pure code; `LogLimiter` rate-limits
 * the log lines about refusals.
 */
import { type Cidr, cidrContains, cidrOverlaps, formatCidr, parseAddress } from './cidr.js';
import type { FamilyRange } from './config.js';
import type { Lease } from './lease.js';
import { isMalformed, type MalformedLease } from './registry.js';

/** Why a lease is not programmed. */
export const REFUSAL_REASONS = [
  'bad_key',
  'malformed',
  'bad_public_ip',
  'bad_vtep_mac',
  'bad_vni',
  'not_vxlan',
  'vni_mismatch',
  'own_public_ip',
  'covers_etcd',
  'covers_peer',
  'covers_underlay',
  'outside_network',
  'overlaps_own',
  'overlaps_lease',
  'duplicate_vtep_mac',
] as const;

/** One of REFUSAL_REASONS. */
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** A lease that is not programmed, and why. */
export interface RefusedLease {
  key: string;
  reason: RefusalReason;
  /** Human-readable detail for the log. */
  detail: string;
  /** etcd mod revision of the refused record, when known. */
  modRevision?: string;
}

/** What the screen compares remote leases against. */
export interface ScreenContext {
  /** The IPv4 allocation space of the network config. */
  range: FamilyRange;
  /** Our VNI. */
  vni: number;
  /** Our own lease (key and subnet once acquired), PublicIP and VtepMAC. */
  own: { key?: string; subnet?: Cidr; publicIP: string; vtepMac?: string };
  /** This host's underlay prefixes (the --local device's addresses with their lengths). */
  underlay: Cidr[];
  /** etcd endpoint addresses (IP literals). */
  etcdAddresses: string[];
}

/** Map a decode error of lease.ts to its reason. */
function reasonOfMalformed(m: MalformedLease): RefusalReason {
  if (!m.subnet) return 'bad_key';
  if (/^PublicIP/.test(m.error)) return 'bad_public_ip';
  if (/VtepMAC/.test(m.error)) return 'bad_vtep_mac';
  if (/\.VNI/.test(m.error)) return 'bad_vni';
  return 'malformed';
}

function ip4(text: string): bigint | undefined {
  try {
    const a = parseAddress(text);
    return a.family === 4 ? a.value : undefined;
  } catch {
    return undefined;
  }
}

const cidr4 = (a: number, b: number, c: number, d: number, len: number): Cidr => ({ family: 4, base: BigInt(((a << 24) >>> 0) + (b << 16) + (c << 8) + d), len });
/** Addresses that can never be a VTEP's unicast underlay address. */
const NOT_UNICAST: Cidr[] = [cidr4(0, 0, 0, 0, 8), cidr4(127, 0, 0, 0, 8), cidr4(224, 0, 0, 0, 4), cidr4(240, 0, 0, 0, 4)];

function badPublicIp(pub: string, ctx: ScreenContext): string | undefined {
  const v = ip4(pub);
  if (v === undefined) return `PublicIP ${JSON.stringify(pub)} is not an IPv4 address`;
  if (NOT_UNICAST.some((c) => cidrContains(c, 4, v))) return `PublicIP ${pub} is not a unicast address`;
  if (cidrContains(ctx.range.network, 4, v)) return `PublicIP ${pub} is inside the overlay network ${formatCidr(ctx.range.network)} (an encapsulation loop)`;
  return undefined;
}

function badMac(mac: string, ctx: ScreenContext): string | undefined {
  const first = parseInt(mac.slice(0, 2), 16);
  if (first & 1) return `VtepMAC ${mac} is a group (multicast) address`;
  if (mac === '00:00:00:00:00:00') return `VtepMAC ${mac} is all zero`;
  if (ctx.own.vtepMac && mac === ctx.own.vtepMac.toLowerCase()) return `VtepMAC ${mac} is our own`;
  return undefined;
}

/**
 * A subnet the network config can hold: inside Network, SubnetLen long (keys are
 * aligned by construction). SubnetMin..SubnetMax bound only allocation: an
 * operator may narrow them while older leases outside the new bounds live on,
 * and flanneld programs those too.
 */
function isNetworkSubnet(range: FamilyRange, c: Cidr): boolean {
  return c.family === range.network.family && c.len === range.subnetLen && cidrOverlaps(range.network, c) && c.len >= range.network.len;
}

const covers = (c: Cidr, addr: bigint | undefined) => addr !== undefined && cidrContains(c, 4, addr);

function byAge(a: Lease, b: Lease): number {
  const ra = a.createRevision !== undefined ? BigInt(a.createRevision) : undefined;
  const rb = b.createRevision !== undefined ? BigInt(b.createRevision) : undefined;
  if (ra !== undefined && rb !== undefined && ra !== rb) return ra < rb ? -1 : 1;
  if (ra !== undefined && rb === undefined) return -1;
  if (ra === undefined && rb !== undefined) return 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** A lease that passed the checks on the record alone: a VXLAN lease with its BackendData. */
export type ScreenedLease = Lease & { attrs: { vxlan: NonNullable<Lease['attrs']['vxlan']> } };

/**
 * Split records into leases to program and refused ones. Our own key is in
 * neither. Deterministic for a given set of records.
 */
export function screenLeases(records: Iterable<Lease | MalformedLease>, ctx: ScreenContext): { accepted: ScreenedLease[]; refused: RefusedLease[] } {
  const refused: RefusedLease[] = [];
  const candidates: ScreenedLease[] = [];
  const refuse = (l: Lease | MalformedLease, reason: RefusalReason, detail: string) =>
    refused.push({ key: l.key, reason, detail, ...('modRevision' in l && l.modRevision ? { modRevision: l.modRevision } : {}) });
  const recs = [...records];
  // Pass 1: the record on its own.
  const plausible: ScreenedLease[] = [];
  for (const r of recs) {
    if (r.key === ctx.own.key) continue;
    if (isMalformed(r)) {
      refuse(r, reasonOfMalformed(r), r.error);
      continue;
    }
    const a = r.attrs;
    if (a.backendType !== 'vxlan') {
      refuse(r, 'not_vxlan', `BackendType ${JSON.stringify(a.backendType)} is not vxlan`);
      continue;
    }
    if (!a.vxlan) {
      refuse(r, 'bad_vtep_mac', 'no BackendData (VtepMAC)');
      continue;
    }
    if (a.vxlan.vni !== ctx.vni) {
      refuse(r, 'vni_mismatch', `VNI ${a.vxlan.vni} differs from ours (${ctx.vni})`);
      continue;
    }
    if (a.publicIP === ctx.own.publicIP) {
      refuse(r, 'own_public_ip', `PublicIP ${a.publicIP} is our own address (a stale lease of this host?)`);
      continue;
    }
    const badIp = badPublicIp(a.publicIP, ctx);
    if (badIp) {
      refuse(r, 'bad_public_ip', badIp);
      continue;
    }
    const badM = badMac(a.vxlan.vtepMac, ctx);
    if (badM) {
      refuse(r, 'bad_vtep_mac', badM);
      continue;
    }
    plausible.push(r as ScreenedLease); // its vxlan attributes were checked above
  }
  // Pass 2: what its subnet would capture. Only PublicIPs of plausible leases count as
  // peers, so a refused record cannot get a good host refused by naming an address in it.
  const peerIps = new Map<bigint, string>();
  for (const l of plausible) {
    const ip = ip4(l.attrs.publicIP); // defined: badPublicIp() passed it
    if (ip !== undefined) peerIps.set(ip, l.attrs.publicIP);
  }
  const etcdIps = ctx.etcdAddresses.map((a) => [a, ip4(a)] as const).filter(([, v]) => v !== undefined);
  const ownIp = ip4(ctx.own.publicIP);
  for (const r of plausible) {
    const s = r.subnet;
    const sText = formatCidr(s);
    const etcdHit = etcdIps.find(([, v]) => covers(s, v));
    if (etcdHit) {
      refuse(r, 'covers_etcd', `subnet ${sText} covers etcd endpoint ${etcdHit[0]}`);
      continue;
    }
    const peerHit = [...peerIps].find(([v]) => covers(s, v));
    if (peerHit) {
      refuse(r, 'covers_peer', `subnet ${sText} covers the PublicIP ${peerHit[1]} of a host`);
      continue;
    }
    const ul = ctx.underlay.find((u) => cidrOverlaps(u, s));
    if (ul || covers(s, ownIp)) {
      refuse(r, 'covers_underlay', `subnet ${sText} covers this host's underlay ${ul ? formatCidr(ul) : ctx.own.publicIP}`);
      continue;
    }
    if (!isNetworkSubnet(ctx.range, s)) {
      refuse(r, 'outside_network', `subnet ${sText} is not a /${ctx.range.subnetLen} inside the network ${formatCidr(ctx.range.network)}`);
      continue;
    }
    if (ctx.own.subnet && cidrOverlaps(ctx.own.subnet, s)) {
      refuse(r, 'overlaps_own', `subnet ${sText} overlaps our subnet ${formatCidr(ctx.own.subnet)}`);
      continue;
    }
    candidates.push(r);
  }
  // First come, first served among the rest.
  candidates.sort(byAge);
  const accepted: ScreenedLease[] = [];
  const macs = new Map<string, string>();
  for (const l of candidates) {
    const older = accepted.find((x) => cidrOverlaps(x.subnet, l.subnet));
    if (older) {
      refuse(l, 'overlaps_lease', `subnet ${formatCidr(l.subnet)} overlaps the older lease ${older.key}`);
      continue;
    }
    const mac = l.attrs.vxlan.vtepMac;
    const dup = macs.get(mac);
    if (dup) {
      refuse(l, 'duplicate_vtep_mac', `VtepMAC ${mac} is already announced by the older lease ${dup}`);
      continue;
    }
    macs.set(mac, l.key);
    accepted.push(l);
  }
  return { accepted, refused };
}

/** Counts per reason (zero entries left out). */
export function countByReason(refused: Iterable<{ reason: RefusalReason }>): Partial<Record<RefusalReason, number>> {
  const out: Partial<Record<RefusalReason, number>> = {};
  for (const r of refused) out[r.reason] = (out[r.reason] ?? 0) + 1;
  return out;
}

/**
 * At most `burst` lines per `windowMs`; lines beyond that are counted and
 * summarised in the first line of the next window.
 */
export class LogLimiter {
  private windowStart = -Infinity;
  private used = 0;
  private suppressed = 0;

  constructor(
    private readonly log: (msg: string) => void,
    private readonly now: () => number,
    readonly burst = 10,
    readonly windowMs = 60_000,
  ) {}

  /** Log `msg` unless the window's budget is spent. Returns whether it was written. */
  write(msg: string): boolean {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      if (this.suppressed) this.log(`(${this.suppressed} similar lines suppressed in the last ${Math.round(this.windowMs / 1000)} s)`);
      this.windowStart = t;
      this.used = 0;
      this.suppressed = 0;
    }
    if (this.used >= this.burst) {
      this.suppressed++;
      return false;
    }
    this.used++;
    this.log(msg);
    return true;
  }
}
