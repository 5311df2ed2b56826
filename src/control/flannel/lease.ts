/**
 * flannel's lease records: the key `<prefix>/subnets/198.19.5.0-24` (dual-stack:
 * `198.19.5.0-24&2001:2:0:5::-64`) and the JSON value
 * `{"PublicIP": "...", "PublicIPv6": null, "BackendType": "vxlan",
 *   "BackendData": {"VNI": 1, "VtepMAC": "aa:bb:.."}}` (plus `BackendV6Data`).
 * Pure codec: decode validates everything a peer could have written.
 */
import { type Cidr, formatAddress, parseAddress, prefixMask, familyBits } from './cidr.js';

/** What a lease says about its holder. */
export interface LeaseAttrs {
  /** Underlay IPv4 address of the holder's VTEP. */
  publicIP: string;
  /** Underlay IPv6 address, or null. */
  publicIPv6: string | null;
  /** 'vxlan' for the leases vxtap can use; other types are kept but ignored. */
  backendType: string;
  /** VXLAN data for the IPv4 overlay (present for usable vxlan leases). */
  vxlan?: { vni: number; vtepMac: string };
  /** VXLAN data for the IPv6 overlay (flannel's BackendV6Data). */
  vxlanV6?: { vni: number; vtepMac: string };
}

/** A lease as read from etcd. */
export interface Lease {
  /** IPv4 subnet. */
  subnet: Cidr;
  /** IPv6 subnet for dual-stack leases. */
  ipv6Subnet?: Cidr;
  attrs: LeaseAttrs;
  /** The key under `<prefix>/subnets/` ('198.19.5.0-24'). */
  key: string;
  /** etcd mod revision of the record (for compare-and-swap). */
  modRevision?: string;
  /** etcd create revision of the record: of two overlapping leases, the older one wins. */
  createRevision?: string;
  /** etcd lease id attached to the key ('0' for none). */
  etcdLease?: string;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Normalize a MAC address to lower-case colon form; throws on anything else. */
export function normalizeMac(mac: string): string {
  const m = typeof mac === 'string' ? mac.toLowerCase() : '';
  if (!MAC_RE.test(m)) throw new TypeError(`not a MAC address: ${JSON.stringify(mac)}`);
  return m;
}

function cidrKeyPart(c: Cidr): string {
  return `${formatAddress(c.family, c.base)}-${c.len}`;
}

/** The key suffix for a subnet (and optional IPv6 subnet), as flannel's MakeSubnetKey. */
export function subnetKey(subnet: Cidr, ipv6Subnet?: Cidr): string {
  return ipv6Subnet ? `${cidrKeyPart(subnet)}&${cidrKeyPart(ipv6Subnet)}` : cidrKeyPart(subnet);
}

function parseKeyPart(part: string, family: 4 | 6): Cidr | undefined {
  const dash = part.lastIndexOf('-');
  if (dash < 0) return undefined;
  const lenText = part.slice(dash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > familyBits(family)) return undefined;
  let a: { family: 4 | 6; value: bigint };
  try {
    a = parseAddress(part.slice(0, dash));
  } catch {
    return undefined;
  }
  if (a.family !== family) return undefined;
  if ((a.value & prefixMask(family, len)) !== a.value) return undefined;
  return { family, base: a.value, len };
}

/**
 * Parse a key (with or without the `<prefix>/subnets/` part) into its subnets, or
 * undefined when it is not a lease key.
 */
export function parseSubnetKey(key: string): { subnet: Cidr; ipv6Subnet?: Cidr; key: string } | undefined {
  const last = key.slice(key.lastIndexOf('/') + 1);
  const [v4, v6, extra] = last.split('&') as [string, string?, string?];
  if (extra !== undefined) return undefined;
  const subnet = parseKeyPart(v4, 4);
  if (!subnet) return undefined;
  if (v6 === undefined) return { subnet, key: last };
  const ipv6Subnet = parseKeyPart(v6, 6);
  if (!ipv6Subnet) return undefined;
  return { subnet, ipv6Subnet, key: last };
}

/** Encode lease attributes as flannel's JSON value. */
export function encodeLeaseValue(attrs: LeaseAttrs): string {
  const value: Record<string, unknown> = {
    PublicIP: attrs.publicIP,
    PublicIPv6: attrs.publicIPv6,
    BackendType: attrs.backendType,
  };
  if (attrs.vxlan) value.BackendData = { VNI: attrs.vxlan.vni, VtepMAC: attrs.vxlan.vtepMac };
  if (attrs.vxlanV6) value.BackendV6Data = { VNI: attrs.vxlanV6.vni, VtepMAC: attrs.vxlanV6.vtepMac };
  return JSON.stringify(value);
}

function decodeVxlanData(d: unknown, field: string): { vni: number; vtepMac: string } {
  if (typeof d !== 'object' || d === null) throw new TypeError(`${field} must be an object`);
  const o = d as Record<string, unknown>;
  const vni = o.VNI === undefined ? 1 : o.VNI;
  if (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 0 || vni > 0xffffff) throw new TypeError(`${field}.VNI must be a 24-bit integer, got ${JSON.stringify(o.VNI)}`);
  let vtepMac: string;
  try {
    vtepMac = normalizeMac(o.VtepMAC as string);
  } catch {
    throw new TypeError(`${field}.VtepMAC must be a MAC address, got ${JSON.stringify(o.VtepMAC)}`);
  }
  return { vni, vtepMac };
}

/** Decode a lease value; throws TypeError naming the field on malformed input. */
export function decodeLeaseValue(text: string): LeaseAttrs {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new TypeError(`lease value is not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new TypeError('lease value must be a JSON object');
  const o = parsed as Record<string, unknown>;
  const pub = o.PublicIP;
  if (typeof pub !== 'string') throw new TypeError(`PublicIP must be an IPv4 address string, got ${JSON.stringify(pub)}`);
  try {
    if (parseAddress(pub).family !== 4) throw new Error();
  } catch {
    throw new TypeError(`PublicIP must be an IPv4 address, got ${JSON.stringify(pub)}`);
  }
  let publicIPv6: string | null = null;
  if (o.PublicIPv6 !== undefined && o.PublicIPv6 !== null) {
    const v = o.PublicIPv6;
    let ok: boolean;
    try {
      ok = typeof v === 'string' && parseAddress(v).family === 6;
    } catch {
      ok = false;
    }
    if (!ok) throw new TypeError(`PublicIPv6 must be an IPv6 address or null, got ${JSON.stringify(v)}`);
    publicIPv6 = v as string;
  }
  const backendType = o.BackendType === undefined ? '' : o.BackendType;
  if (typeof backendType !== 'string') throw new TypeError(`BackendType must be a string, got ${JSON.stringify(backendType)}`);
  const attrs: LeaseAttrs = { publicIP: pub, publicIPv6, backendType };
  if (backendType === 'vxlan') {
    if (o.BackendData !== undefined && o.BackendData !== null) attrs.vxlan = decodeVxlanData(o.BackendData, 'BackendData');
    if (o.BackendV6Data !== undefined && o.BackendV6Data !== null) attrs.vxlanV6 = decodeVxlanData(o.BackendV6Data, 'BackendV6Data');
  }
  return attrs;
}

/** The subnet's first (network) address: flannel's per-host gateway on the overlay device. */
export function gatewayOf(subnet: Cidr): string {
  return formatAddress(subnet.family, subnet.base);
}

/** The first usable address / len (flannel's FLANNEL_SUBNET, e.g. 198.19.5.1/24). */
export function firstUsableOf(subnet: Cidr): string {
  return `${formatAddress(subnet.family, subnet.base + 1n)}/${subnet.len}`;
}
