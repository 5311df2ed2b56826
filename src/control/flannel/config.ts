/**
 * flannel's network configuration (`<prefix>/config`), parsed and validated the
 * way flanneld does (pkg/subnet/config.go: defaults for SubnetLen, SubnetMin and
 * SubnetMax, the "at least four subnets" rule, boundary alignment), restricted to
 * what vxtap implements: the `vxlan` backend without GBP or DirectRouting.
 *
 * Parse, then validate: `validateNetworkConfig()` returns an Error naming the
 * field (`Backend.Type`, `SubnetLen`, ...); `parseNetworkConfig()` throws it.
 */
import { type Cidr, formatAddress, formatCidr, parseAddress, parseCidr, prefixMask, prefixSize, cidrContains } from './cidr.js';
import { VXLAN_PORT_LINUX } from '../../wire/vxlan.js';

/** flannel's defaults for the vxlan backend. */
/**
 * Longest --lease-ttl: renewal fires TTL - 1 h after the last one, and a Node
 * timer holds at most 2^31-1 ms (about 24.8 days); 24 days keeps the renewal
 * delay (23 days 23 h) inside it.
 */
export const MAX_LEASE_TTL_SECONDS = 24 * 86400;

export const FLANNEL_DEFAULTS = {
  /** Default etcd prefix. */
  prefix: '/coreos.com/network',
  /** VNI when Backend.VNI is unset (flannel's defaultVNI). */
  vni: 1,
  /** UDP port when Backend.Port is unset or 0: the Linux kernel's VXLAN default, which flannel inherits. */
  port: VXLAN_PORT_LINUX,
  /** IPv4 SubnetLen when unset and Network is /22 or larger. */
  subnetLen: 24,
  /** IPv6 SubnetLen when unset and IPv6Network is /62 or larger. */
  ipv6SubnetLen: 64,
  /** Lease lifetime (flannel: 24 h). */
  leaseTtlSeconds: 24 * 3600,
} as const;

/** The vxlan backend section, with defaults applied. */
export interface VxlanBackendConfig {
  type: 'vxlan';
  /** VXLAN network identifier (24 bits). */
  vni: number;
  /** UDP destination port (8472 when the config leaves it unset or 0). */
  port: number;
  /** Whether the config set Port explicitly. */
  portExplicit: boolean;
  /** flannel's Learning flag (kernel FDB learning); informational for vxtap. */
  learning: boolean;
}

/** One address family's allocation space. */
export interface FamilyRange {
  network: Cidr;
  subnetLen: number;
  /** Network address of the lowest allocatable subnet. */
  subnetMin: bigint;
  /** Network address of the highest allocatable subnet. */
  subnetMax: bigint;
}

/** A validated network configuration. */
export interface NetworkConfig {
  enableIPv4: boolean;
  enableIPv6: boolean;
  /** IPv4 range (always present: vxtap refuses IPv6-only networks, see validateNetworkConfig). */
  ipv4: FamilyRange;
  /** IPv6 range (present when enableIPv6). */
  ipv6?: FamilyRange;
  backend: VxlanBackendConfig;
  /** The JSON text as read, for logs. */
  raw: string;
}

/** A configuration error; `field` is the JSON field at fault (e.g. 'Backend.Type'). */
export class NetworkConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`network config: ${field}: ${message}`);
    this.name = 'NetworkConfigError';
  }
}

const BACKEND_TYPES_KNOWN_TO_FLANNEL = ['udp', 'host-gw', 'ipip', 'wireguard', 'ipsec', 'alivpc', 'alloc', 'aws-vpc', 'gce', 'tencentvpc', 'extension'];

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function fail(field: string, message: string): NetworkConfigError {
  return new NetworkConfigError(field, message);
}

function checkBool(obj: Record<string, unknown>, field: string, path = field): boolean | NetworkConfigError {
  const v = obj[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') return fail(path, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Validate one family's Network/SubnetLen/SubnetMin/SubnetMax, applying flannel's
 * defaults. `names` gives the JSON field names for this family.
 */
function validateRange(obj: Record<string, unknown>, family: 4 | 6, names: { network: string; len: string; min: string; max: string }): FamilyRange | NetworkConfigError {
  const netText = obj[names.network];
  if (netText === undefined || netText === null || netText === '') return fail(names.network, `is required (e.g. ${family === 4 ? '"198.19.0.0/16"' : '"2001:2::/48"'})`);
  if (typeof netText !== 'string') return fail(names.network, `must be a CIDR string, got ${JSON.stringify(netText)}`);
  let network: Cidr;
  try {
    network = parseCidr(netText);
  } catch (e) {
    return fail(names.network, (e as Error).message);
  }
  if (network.family !== family) return fail(names.network, `must be an IPv${family} prefix, got ${netText}`);
  const bits = family === 4 ? 32 : 128;
  const maxLen = bits - 2; // a tunnel and a bridge address per host
  const smallest = bits - 4; // four subnets of four addresses
  let subnetLen: number;
  const lenVal = obj[names.len];
  if (lenVal !== undefined && lenVal !== null && lenVal !== 0) {
    if (!isInt(lenVal) || lenVal < 0) return fail(names.len, `must be a positive integer, got ${JSON.stringify(lenVal)}`);
    if (lenVal > maxLen) return fail(names.len, `must be at most ${maxLen} (each host needs a tunnel and a bridge address), got ${lenVal}`);
    if (lenVal < network.len + 2) return fail(names.len, `${lenVal} is too short for ${names.network} ${netText}: the network must hold at least four subnets (SubnetLen >= ${network.len + 2})`);
    subnetLen = lenVal;
  } else if (network.len > smallest) {
    return fail(names.network, `${netText} is too small: the minimum useful prefix is /${smallest}`);
  } else if (network.len <= (family === 4 ? 22 : 62)) {
    subnetLen = family === 4 ? 24 : 64;
  } else {
    subnetLen = network.len + 2;
  }
  const size = prefixSize(family, subnetLen);
  const mask = prefixMask(family, subnetLen);
  const parseBound = (field: string, dflt: bigint): bigint | NetworkConfigError => {
    const v = obj[field];
    if (v === undefined || v === null || v === '') return dflt;
    if (typeof v !== 'string') return fail(field, `must be an address string, got ${JSON.stringify(v)}`);
    let a: { family: 4 | 6; value: bigint };
    try {
      a = parseAddress(v);
    } catch (e) {
      return fail(field, (e as Error).message);
    }
    if (a.family !== family) return fail(field, `must be an IPv${family} address, got ${v}`);
    if (!cidrContains(network, family, a.value)) return fail(field, `${v} is not in the range of ${names.network} ${netText}`);
    if ((a.value & mask) !== a.value) return fail(field, `${v} is not on a SubnetLen (/${subnetLen}) boundary`);
    return a.value;
  };
  // flannel skips the first subnet (its network address would clash with the Network's).
  const subnetMin = parseBound(names.min, network.base + size);
  if (subnetMin instanceof Error) return subnetMin;
  const subnetMax = parseBound(names.max, network.base + prefixSize(family, network.len) - size);
  if (subnetMax instanceof Error) return subnetMax;
  if (subnetMin > subnetMax) {
    return fail(names.min, `${formatAddress(family, subnetMin)} is above ${names.max} ${formatAddress(family, subnetMax)}`);
  }
  return { network, subnetLen, subnetMin, subnetMax };
}

/** Validate the Backend section. */
function validateBackend(b: unknown): VxlanBackendConfig | NetworkConfigError {
  if (b === undefined || b === null) {
    return fail('Backend', 'is missing: flannel then uses its "udp" backend, which vxtap does not implement; set {"Type": "vxlan"}');
  }
  if (typeof b !== 'object' || Array.isArray(b)) return fail('Backend', `must be an object, got ${JSON.stringify(b)}`);
  const be = b as Record<string, unknown>;
  const type = be.Type;
  if (typeof type !== 'string' || type === '') return fail('Backend.Type', `must be a string, got ${JSON.stringify(type)}`);
  if (type !== 'vxlan') {
    const known = BACKEND_TYPES_KNOWN_TO_FLANNEL.includes(type) ? 'a flannel backend that vxtap does not implement' : 'unknown';
    return fail('Backend.Type', `"${type}" is ${known}; only "vxlan" is supported`);
  }
  let vni: number = FLANNEL_DEFAULTS.vni;
  if (be.VNI !== undefined && be.VNI !== null) {
    if (!isInt(be.VNI) || be.VNI < 0 || be.VNI > 0xffffff) return fail('Backend.VNI', `must be an integer between 0 and 16777215, got ${JSON.stringify(be.VNI)}`);
    vni = be.VNI;
  }
  let port: number = FLANNEL_DEFAULTS.port;
  let portExplicit = false;
  if (be.Port !== undefined && be.Port !== null && be.Port !== 0) {
    if (!isInt(be.Port) || be.Port < 1 || be.Port > 65535)
      return fail('Backend.Port', `must be an integer between 1 and 65535 (or 0/unset for ${FLANNEL_DEFAULTS.port}), got ${JSON.stringify(be.Port)}`);
    port = be.Port;
    portExplicit = true;
  }
  const gbp = checkBool(be, 'GBP', 'Backend.GBP');
  if (gbp instanceof Error) return gbp;
  if (gbp) return fail('Backend.GBP', 'VXLAN Group Based Policy is not supported by vxtap');
  const dr = checkBool(be, 'DirectRouting', 'Backend.DirectRouting');
  if (dr instanceof Error) return dr;
  if (dr) return fail('Backend.DirectRouting', 'direct routing (host-gw for same-subnet hosts) is not supported by vxtap');
  const learning = checkBool(be, 'Learning', 'Backend.Learning');
  if (learning instanceof Error) return learning;
  return { type: 'vxlan', vni, port, portExplicit, learning };
}

/**
 * Validate a decoded config object. Returns the config with defaults applied, or an
 * Error naming the offending field. Never throws.
 */
export function validateNetworkConfig(obj: unknown, raw = JSON.stringify(obj)): NetworkConfig | NetworkConfigError {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return fail('(root)', 'must be a JSON object');
  const o = obj as Record<string, unknown>;
  const v4 = o.EnableIPv4 === undefined || o.EnableIPv4 === null ? true : o.EnableIPv4;
  if (typeof v4 !== 'boolean') return fail('EnableIPv4', `must be true or false, got ${JSON.stringify(v4)}`);
  const v6 = checkBool(o, 'EnableIPv6');
  if (v6 instanceof Error) return v6;
  if (!v4) return fail('EnableIPv4', 'IPv6-only networks are not supported by vxtap (set EnableIPv4 to true)');
  if (Array.isArray(o.Networks) || Array.isArray(o.IPv6Networks)) {
    return fail(Array.isArray(o.Networks) ? 'Networks' : 'IPv6Networks', 'multiple cluster networks (MultiClusterCIDR) are not supported by vxtap');
  }
  const backend = validateBackend(o.Backend);
  if (backend instanceof Error) return backend;
  const ipv4 = validateRange(o, 4, { network: 'Network', len: 'SubnetLen', min: 'SubnetMin', max: 'SubnetMax' });
  if (ipv4 instanceof Error) return ipv4;
  let ipv6: FamilyRange | undefined;
  if (v6) {
    const r = validateRange(o, 6, { network: 'IPv6Network', len: 'IPv6SubnetLen', min: 'IPv6SubnetMin', max: 'IPv6SubnetMax' });
    if (r instanceof Error) return r;
    ipv6 = r;
  }
  return { enableIPv4: true, enableIPv6: v6, ipv4, ipv6, backend, raw };
}

/** Parse and validate the JSON text stored at `<prefix>/config`; throws NetworkConfigError. */
export function parseNetworkConfig(text: string): NetworkConfig {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw fail('(root)', `is not valid JSON: ${(e as Error).message}`);
  }
  const r = validateNetworkConfig(obj, text);
  if (r instanceof Error) throw r;
  return r;
}

/** A one-line summary for logs. */
export function describeNetworkConfig(c: NetworkConfig): string {
  const r = c.ipv4;
  const parts = [`Network=${formatCidr(r.network)}`, `SubnetLen=${r.subnetLen}`, `SubnetMin=${formatAddress(4, r.subnetMin)}`, `SubnetMax=${formatAddress(4, r.subnetMax)}`];
  if (c.ipv6) parts.push(`IPv6Network=${formatCidr(c.ipv6.network)}`, `IPv6SubnetLen=${c.ipv6.subnetLen}`);
  parts.push(`Backend=vxlan VNI=${c.backend.vni} Port=${c.backend.port}`);
  return parts.join(' ');
}
