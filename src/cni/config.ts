/**
 * The `vxtap` plugin's network configuration, the subnet.env it reads, and the
 * configuration it hands to its delegate (by default `bridge` with `host-local`
 * IPAM), built the way flannel's CNI meta-plugin builds it so that one
 * subnet.env gives the same pods under either plugin. Pure code, no I/O: every
 * function takes text or objects and returns a value or a CniError that names
 * the field.
 *
 * The delegate configuration, from the network configuration `n` and subnet.env:
 *   - every key of `n.delegate` (it overrides and extends), then defaults for the
 *     keys it lacks: `type` bridge, `mtu` FLANNEL_MTU, `ipMasq` NOT FLANNEL_IPMASQ
 *     (FLANNEL_IPMASQ=true says the network daemon masquerades already; false
 *     says nobody does, so the bridge should; vxtap writes false), and for a
 *     bridge `isGateway` true;
 *   - always `name` and `cniVersion` of `n`, and `runtimeConfig` when present;
 *   - `ipam`: `n.ipam` (e.g. its `dataDir`), `type` host-local unless given, the
 *     range from FLANNEL_SUBNET given as its network address with the first
 *     usable address as gateway (host-local refuses `198.19.5.1/24`), and the
 *     routes of `n.ipam.routes` plus one to FLANNEL_NETWORK via that gateway (the
 *     bridge's address; named, not implied, so that the result lists it and the
 *     bridge plugin's CHECK finds the route it expects). The IPv6 pair adds a
 *     range and a route.
 */
import { formatIp, formatPrefix, parseEnvLines, parseIp, parsePrefix, type Prefix, prefixWithin } from './addr.js';
import { CniError, ErrorCode, isSupportedVersion, SUPPORTED_VERSIONS } from './spec.js';

/**
 * Where `vxtap up` writes subnet.env: src/control/flannel/subnet-env.ts's
 * DEFAULT_SUBNET_FILE, repeated so that the plugin does not load the control
 * plane's modules (a unit test checks that the two agree).
 */
export const DEFAULT_SUBNET_FILE = '/run/vxtap/subnet.env';

/** Where the plugin keeps the delegate configuration of each attachment (flannel: /var/lib/cni/flannel). */
export const DEFAULT_DATA_DIR = '/var/lib/cni/vxtap';

/** A JSON object. */
export type JsonObject = Record<string, unknown>;

/** The plugin's network configuration (stdin), as far as the plugin reads it. */
export interface NetConf {
  cniVersion: string;
  /** The network name (also the delegate's, and host-local's store name). */
  name: string;
  type: string;
  /** subnet.env path (default DEFAULT_SUBNET_FILE). */
  subnetFile?: string;
  /** State directory (default DEFAULT_DATA_DIR). */
  dataDir?: string;
  /** Keys for the delegate configuration, overriding the defaults. */
  delegate?: JsonObject;
  /** IPAM settings merged into the delegate's `ipam` (ranges come from subnet.env). */
  ipam?: JsonObject;
  runtimeConfig?: JsonObject;
  /** The previous result (CHECK, DEL, or a chained ADD). */
  prevResult?: JsonObject;
}

/** What subnet.env says, validated. */
export interface SubnetEnv {
  network?: Prefix;
  /** FLANNEL_SUBNET as a network (`198.19.5.0/24`). */
  subnet?: Prefix;
  /** The address part of FLANNEL_SUBNET (`198.19.5.1`), the pods' gateway. */
  gateway?: string;
  ipv6Network?: Prefix;
  ipv6Subnet?: Prefix;
  ipv6Gateway?: string;
  mtu: number;
  /** FLANNEL_IPMASQ: the network daemon masquerades traffic leaving the network. */
  ipMasq: boolean;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** SPEC.md: a network name starts with an alphanumeric and holds alphanumerics, `_`, `.`, `-`. */
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** A plugin type is a file name in CNI_PATH. */
const PLUGIN_TYPE = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

function invalid(msg: string): CniError {
  return new CniError(ErrorCode.InvalidNetworkConfig, msg);
}

/** Parse and validate the network configuration from stdin. */
export function parseNetConf(text: string): NetConf | CniError {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return new CniError(ErrorCode.DecodingFailure, 'network configuration on stdin is not valid JSON', (e as Error).message);
  }
  if (!isObject(raw)) return new CniError(ErrorCode.DecodingFailure, 'network configuration on stdin is not a JSON object');
  const v = raw.cniVersion;
  if (v === undefined) return new CniError(ErrorCode.IncompatibleVersion, `cniVersion is missing (supported: ${SUPPORTED_VERSIONS.join(', ')})`);
  if (!isSupportedVersion(v)) {
    return new CniError(ErrorCode.IncompatibleVersion, `cniVersion ${JSON.stringify(v)} is not supported`, `this plugin supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  if (typeof raw.name !== 'string' || !NETWORK_NAME.test(raw.name)) {
    return invalid(`name ${JSON.stringify(raw.name)} is missing or invalid (alphanumerics, '_', '.', '-'; starting with an alphanumeric)`);
  }
  if (typeof raw.type !== 'string' || !raw.type) return invalid('type is missing');
  for (const k of ['subnetFile', 'dataDir'] as const) {
    const v = raw[k];
    if (v !== undefined && (typeof v !== 'string' || !v.startsWith('/'))) return invalid(`${k} must be an absolute path, got ${JSON.stringify(v)}`);
  }
  for (const k of ['delegate', 'ipam', 'runtimeConfig', 'prevResult'] as const) {
    if (raw[k] !== undefined && !isObject(raw[k])) return invalid(`${k} must be a JSON object`);
  }
  const delegate = raw.delegate as JsonObject | undefined;
  if (delegate) {
    const t = delegate.type;
    if (t !== undefined && (typeof t !== 'string' || !PLUGIN_TYPE.test(t))) return invalid(`delegate.type must be a plugin name (a file in CNI_PATH), got ${JSON.stringify(t)}`);
    if (t === raw.type || t === 'vxtap') return invalid(`delegate.type ${JSON.stringify(t)} would call this plugin again`);
    if (delegate.ipam !== undefined) return invalid('delegate.ipam is not used: put IPAM settings in the top-level ipam object (ranges come from subnet.env)');
    for (const k of ['mtu'] as const) {
      if (delegate[k] !== undefined && !(Number.isInteger(delegate[k]) && (delegate[k] as number) > 0)) return invalid(`delegate.${k} must be a positive integer`);
    }
    for (const k of ['ipMasq', 'isGateway'] as const) {
      if (delegate[k] !== undefined && typeof delegate[k] !== 'boolean') return invalid(`delegate.${k} must be true or false`);
    }
  }
  const ipam = raw.ipam as JsonObject | undefined;
  if (ipam) {
    if (ipam.type !== undefined && (typeof ipam.type !== 'string' || !PLUGIN_TYPE.test(ipam.type))) return invalid(`ipam.type must be a plugin name, got ${JSON.stringify(ipam.type)}`);
    for (const k of ['ranges', 'subnet', 'rangeStart', 'rangeEnd', 'gateway']) {
      if (ipam[k] !== undefined) return invalid(`ipam.${k} is not used: the range comes from subnet.env (FLANNEL_SUBNET)`);
    }
    if (ipam.routes !== undefined) {
      if (!Array.isArray(ipam.routes)) return invalid('ipam.routes must be an array');
      for (const [i, r] of ipam.routes.entries()) {
        if (!isObject(r) || typeof r.dst !== 'string') return invalid(`ipam.routes[${i}].dst must be a CIDR string`);
        try {
          parsePrefix(r.dst, false);
        } catch (e) {
          return invalid(`ipam.routes[${i}].dst: ${(e as Error).message}`);
        }
      }
    }
    if (ipam.dataDir !== undefined && (typeof ipam.dataDir !== 'string' || !ipam.dataDir.startsWith('/'))) return invalid('ipam.dataDir must be an absolute path');
  }
  return raw as unknown as NetConf;
}

/** strconv.ParseBool's spellings, which flannel's plugin accepts. */
function parseBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(s)) return false;
  return undefined;
}

/**
 * Validate subnet.env's text (from `file`, named in messages). Required:
 * FLANNEL_MTU, FLANNEL_IPMASQ and at least one of the pairs FLANNEL_NETWORK +
 * FLANNEL_SUBNET, FLANNEL_IPV6_NETWORK + FLANNEL_IPV6_SUBNET (each pair whole).
 */
export function parseSubnetEnvText(text: string, file: string): SubnetEnv | CniError {
  const kv = parseEnvLines(text);
  const bad = (key: string, why: string) => invalid(`${key} in ${file}: ${why}`);
  const out: Partial<SubnetEnv> = {};
  for (const [netKey, subKey, family] of [
    ['FLANNEL_NETWORK', 'FLANNEL_SUBNET', 4],
    ['FLANNEL_IPV6_NETWORK', 'FLANNEL_IPV6_SUBNET', 6],
  ] as const) {
    const netText = kv[netKey];
    const subText = kv[subKey];
    if (netText === undefined && subText === undefined) continue;
    if (netText === undefined) return bad(netKey, `missing (${subKey} is set)`);
    if (subText === undefined) return bad(subKey, `missing (${netKey} is set)`);
    let network: Prefix;
    let subnet: Prefix;
    try {
      network = parsePrefix(netText, true);
    } catch (e) {
      return bad(netKey, (e as Error).message);
    }
    try {
      subnet = parsePrefix(subText, false);
    } catch (e) {
      return bad(subKey, (e as Error).message);
    }
    if (network.family !== family) return bad(netKey, `${netText} is not an IPv${family} network`);
    if (subnet.family !== family) return bad(subKey, `${subText} is not an IPv${family} subnet`);
    const bits = family === 4 ? 32 : 128;
    if (subnet.len < network.len || subnet.len > bits - 2) return bad(subKey, `prefix length /${subnet.len} must be between /${network.len} (${netKey}) and /${bits - 2}`);
    if (!prefixWithin(subnet, network)) return bad(subKey, `${subText} is not inside ${netKey} ${netText}`);
    // The pods' gateway: the address FLANNEL_SUBNET names (flannel writes the first usable
    // one), or the first usable address when the file gives the network address itself.
    const addr = parseIp(subText.split('/')[0])?.value ?? subnet.base;
    const gw = addr === subnet.base ? subnet.base + 1n : addr;
    if (family === 4) Object.assign(out, { network, subnet, gateway: formatIp(4, gw) });
    else Object.assign(out, { ipv6Network: network, ipv6Subnet: subnet, ipv6Gateway: formatIp(6, gw) });
  }
  if (!out.subnet && !out.ipv6Subnet) return bad('FLANNEL_NETWORK', 'missing (neither FLANNEL_NETWORK/FLANNEL_SUBNET nor the IPv6 pair is set)');
  const mtuText = kv.FLANNEL_MTU;
  if (mtuText === undefined) return bad('FLANNEL_MTU', 'missing');
  const mtu = Number(mtuText);
  if (!/^\d+$/.test(mtuText) || mtu < 576 || mtu > 65535) return bad('FLANNEL_MTU', `${JSON.stringify(mtuText)} must be an integer between 576 and 65535`);
  const masqText = kv.FLANNEL_IPMASQ;
  if (masqText === undefined) return bad('FLANNEL_IPMASQ', 'missing');
  const ipMasq = parseBool(masqText);
  if (ipMasq === undefined) return bad('FLANNEL_IPMASQ', `${JSON.stringify(masqText)} must be true or false`);
  return { ...out, mtu, ipMasq };
}

/** The delegate's configuration for ADD (stored, and used again for CHECK and DEL). */
export function buildDelegateConf(n: NetConf, env: SubnetEnv): JsonObject {
  const d: JsonObject = { ...(n.delegate ?? {}) };
  d.name = n.name;
  d.cniVersion = n.cniVersion;
  if (d.type === undefined) d.type = 'bridge';
  if (d.mtu === undefined) d.mtu = env.mtu;
  if (d.ipMasq === undefined) d.ipMasq = !env.ipMasq;
  if (d.type === 'bridge' && d.isGateway === undefined) d.isGateway = true;
  if (n.runtimeConfig) d.runtimeConfig = n.runtimeConfig;
  const ipam: JsonObject = { ...(n.ipam ?? {}) };
  if (ipam.type === undefined) ipam.type = 'host-local';
  const ranges: JsonObject[][] = [];
  const routes: JsonObject[] = Array.isArray(ipam.routes) ? [...(ipam.routes as JsonObject[])] : [];
  if (env.subnet && env.network) {
    ranges.push([{ subnet: formatPrefix(env.subnet), gateway: env.gateway }]);
    routes.push({ dst: formatPrefix(env.network), gw: env.gateway });
  }
  if (env.ipv6Subnet && env.ipv6Network) {
    ranges.push([{ subnet: formatPrefix(env.ipv6Subnet), gateway: env.ipv6Gateway }]);
    routes.push({ dst: formatPrefix(env.ipv6Network), gw: env.ipv6Gateway });
  }
  ipam.ranges = ranges;
  ipam.routes = routes;
  d.ipam = ipam;
  return d;
}

/** The state file name of one attachment: the container ID never holds '@', so the pair is unambiguous. */
export function stateFileName(containerId: string, ifname: string): string {
  return `${containerId}@${ifname}.json`;
}
