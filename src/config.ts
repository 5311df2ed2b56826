/**
 * VTEP configuration: defaults in one object, a JSON config file and command-line
 * flags merged over them (flags win), then validated in a separate step that
 * names the offending field. Nothing touches the host before `validateConfig`
 * has accepted the whole configuration.
 */
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import ipaddr from 'ipaddr.js';
import { isMacString } from './wire/mac.js';
import { VNI_MAX, VXLAN_PORT_IANA } from './wire/vxlan.js';
import { MAX_BATCH as ADDON_MAX_BATCH } from './native/limits.js';

/** Outer don't-fragment behaviour, as kernel VXLAN's `df` option. */
export type DfMode = 'set' | 'unset' | 'inherit';

/** A static peer in a config file. */
export interface PeerConfig {
  address: string;
  /** Receives broadcast/unknown-unicast copies (default true). */
  flood?: boolean;
}

/** Everything `vxtap up` needs. */
export interface VtepConfig {
  /** TAP device name (at most 15 bytes). */
  name: string;
  /** VXLAN network identifier, 0..16777215. */
  vni: number;
  /** Destination UDP port (and the local receive port). */
  port: number;
  /** Inclusive UDP source-port range chosen by inner-flow hash. */
  srcPortMin: number;
  srcPortMax: number;
  /** Local underlay address (IPv4 or IPv6). */
  local: string;
  /** Remote VTEPs. */
  peers: PeerConfig[];
  /** Overlay address (CIDR) to put on the TAP, optional. */
  address?: string;
  /** TAP MTU; default: underlay device MTU minus the encapsulation overhead. */
  mtu?: number;
  /**
   * TAP MAC ('aa:bb:...'); default: derived from name, local address and VNI
   * (locally administered, unicast), so a restarted instance keeps its MAC and
   * peers' neighbour caches stay right.
   */
  mac?: string;
  /** Worker threads, each with its own TAP queue and UDP socket. */
  workers: number;
  /** Outer DF bit. */
  df: DfMode;
  /** Learn inner source MAC -> remote VTEP from received packets. */
  learning: boolean;
  /** Seconds after which a learned entry that was not seen is removed. */
  ageingSeconds: number;
  /** Accept (and learn) packets from underlay addresses that are not peers. */
  acceptUnknownPeers: boolean;
  /** Static forwarding entries. */
  fdb: { mac: string; peer: string }[];
  /** Frames per batch (one JS-to-C crossing). */
  batchSize: number;
  /** Unix socket of the stats endpoint (HTTP: /stats JSON, /metrics Prometheus, /fdb). */
  statsSocket?: string;
  /** Optional TCP listener for /metrics, 'HOST:PORT'. */
  metrics?: string;
  /** Busy-poll for this many microseconds before blocking in poll() (0 = block at once). */
  busyPollUs: number;
  /**
   * Where workers run. 'any': where the scheduler puts them. 'local': worker n
   * pinned to CPU n, and the receive sockets (SO_ATTACH_REUSEPORT_CBPF) chosen
   * by the CPU that received the datagram, so a flow's datagrams are handled on
   * the CPU that took them off the wire; the TAP's queues stay on tun's flow
   * hash, so each flow keeps one worker (steering them by CPU reordered flows).
   */
  cpuPlacement: CpuPlacement;
  /**
   * Segmentation offloads: a vnet_hdr TAP with TSO (64 KiB super-frames), UDP GSO
   * on send, UDP GRO + TCP re-coalescing on receive. Falls back (and says so) when
   * the kernel or the MTUs do not allow it.
   */
  offload: boolean;
  /**
   * TAP transmit queue length (frames the kernel holds for the workers to read).
   * Larger than the usual 1000, so a worker that is descheduled for a few
   * milliseconds does not cost drops at ~100 kpps.
   */
  txQueueLen: number;
  /**
   * Uplink transmit: the Linux bridge that holds `local`. vxtap adds a TAP port to
   * it and writes whole TSO super-frames, wrapped, with the UDP-tunnel GSO virtio
   * header (Linux 6.17+), so the kernel carries them like its own VXLAN does and
   * vxtap does not segment. Receive stays on the UDP socket. IPv4 underlay and
   * offload only; frames it cannot carry whole take the socket path.
   */
  uplinkBridge?: string;
}

/** Worker placement choices (VtepConfig.cpuPlacement). */
export const CPU_PLACEMENTS = ['any', 'local'] as const;
/** A worker placement. */
export type CpuPlacement = (typeof CPU_PLACEMENTS)[number];

/** The defaults (flannel uses port 8472; IANA's is 4789). */
export const DEFAULTS: Readonly<Omit<VtepConfig, 'local'>> = Object.freeze({
  name: 'vxtap0',
  vni: 1,
  port: VXLAN_PORT_IANA,
  srcPortMin: 49152,
  srcPortMax: 49215,
  peers: [],
  // two workers measured fastest on a 2-CPU host (one stream's data and ACKs on separate
  // threads; N streams spread over TAP queues and SO_REUSEPORT sockets)
  workers: Math.min(2, availableParallelism()),
  df: 'unset',
  learning: true,
  ageingSeconds: 300,
  acceptUnknownPeers: false,
  fdb: [],
  batchSize: 64,
  busyPollUs: 0,
  cpuPlacement: 'any',
  offload: true,
  txQueueLen: 10000,
});

/** Most source ports one worker opens a socket for. */
export const MAX_SRC_PORTS = 1024;
/** Largest --batch: the addon's batch limit (native/limits.json, the one source). */
export const MAX_BATCH = ADDON_MAX_BATCH;

/** A configuration error: names the field. The CLI prints it and exits with 2. */
export class ConfigError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'ConfigError';
  }
}

const FIELDS = new Set([
  'name',
  'vni',
  'port',
  'srcPortMin',
  'srcPortMax',
  'srcPortRange',
  'local',
  'peers',
  'address',
  'mtu',
  'mac',
  'workers',
  'df',
  'learning',
  'ageingSeconds',
  'acceptUnknownPeers',
  'fdb',
  'batchSize',
  'statsSocket',
  'metrics',
  'busyPollUs',
  'cpuPlacement',
  'offload',
  'txQueueLen',
  'uplinkBridge',
]);

/** Read a JSON config file into a partial config (field names as in VtepConfig). */
export function readConfigFile(path: string): Partial<VtepConfig> & Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `cannot read '${path}': ${(err as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError('config', `'${path}' is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigError('config', `'${path}' must hold a JSON object`);
  }
  const obj = data as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!FIELDS.has(key)) throw new ConfigError(key, `unknown field in '${path}'`);
  }
  if (Array.isArray(obj.peers)) {
    obj.peers = (obj.peers as unknown[]).map((p) => (typeof p === 'string' ? { address: p } : p));
  }
  if (typeof obj.srcPortRange === 'string') {
    const [a, b] = parsePortRange(obj.srcPortRange, 'srcPortRange');
    obj.srcPortMin = a;
    obj.srcPortMax = b;
    delete obj.srcPortRange;
  }
  return obj;
}

/** Parse 'MIN-MAX' into two numbers (validated later). */
export function parsePortRange(s: string, field = 'srcport-range'): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(s.trim());
  if (!m) throw new ConfigError(field, `'${s}' is not a range MIN-MAX`);
  return [Number(m[1]), Number(m[2])];
}

/** Merge layers over the defaults (later layers win; undefined values are skipped). */
export function mergeConfig(...layers: Partial<VtepConfig>[]): VtepConfig {
  const out: Record<string, unknown> = { ...DEFAULTS };
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer) as [string, unknown][]) if (v !== undefined) out[k] = v;
  }
  return out as unknown as VtepConfig;
}

function isInt(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

function ipFamily(addr: string): 4 | 6 | 0 {
  if (!ipaddr.isValid(addr)) return 0;
  return ipaddr.parse(addr).kind() === 'ipv4' ? 4 : 6;
}

/**
 * Check the whole configuration. Returns null when it is valid, else a
 * ConfigError naming the first bad field.
 */
export function validateConfig(c: VtepConfig): ConfigError | null {
  const bad = (field: string, reason: string) => new ConfigError(field, reason);
  if (typeof c.name !== 'string' || c.name.length < 1 || Buffer.byteLength(c.name) > 15 || !/^[A-Za-z0-9_.%-]+$/.test(c.name)) {
    return bad('name', `'${c.name}' must be 1-15 characters of letters, digits, '_', '-', '.'`);
  }
  if (!isInt(c.vni, 0, VNI_MAX)) return bad('vni', `${c.vni} must be an integer between 0 and ${VNI_MAX}`);
  if (!isInt(c.port, 1, 65535)) return bad('port', `${c.port} must be an integer between 1 and 65535`);
  if (!isInt(c.srcPortMin, 1, 65535)) return bad('srcPortMin', `${c.srcPortMin} must be an integer between 1 and 65535`);
  if (!isInt(c.srcPortMax, 1, 65535)) return bad('srcPortMax', `${c.srcPortMax} must be an integer between 1 and 65535`);
  if (c.srcPortMax < c.srcPortMin) return bad('srcPortMax', `range ${c.srcPortMin}-${c.srcPortMax} is empty`);
  if (c.srcPortMax - c.srcPortMin + 1 > MAX_SRC_PORTS) {
    return bad('srcPortMax', `range ${c.srcPortMin}-${c.srcPortMax} holds more than ${MAX_SRC_PORTS} ports`);
  }
  if (c.port >= c.srcPortMin && c.port <= c.srcPortMax) {
    return bad('port', `${c.port} lies inside the source-port range ${c.srcPortMin}-${c.srcPortMax}`);
  }
  if (typeof c.local !== 'string' || c.local === '') return bad('local', 'the local underlay address is required');
  const fam = ipFamily(c.local);
  if (!fam) return bad('local', `'${c.local}' is not an IP address`);
  const localParsed = ipaddr.parse(c.local);
  if (localParsed.range() === 'unspecified' || localParsed.range() === 'multicast') {
    return bad('local', `'${c.local}' must be a unicast address`);
  }
  if (!Array.isArray(c.peers)) return bad('peers', 'must be a list of addresses');
  const seen = new Set<string>();
  for (let i = 0; i < c.peers.length; i++) {
    const p = c.peers[i] as VtepConfig['peers'][number] | null; // from JSON: may be anything
    const addr = typeof p === 'string' ? p : p?.address;
    if (typeof addr !== 'string' || !ipFamily(addr)) return bad(`peers[${i}]`, `'${String(addr)}' is not an IP address`);
    if (ipFamily(addr) !== fam) return bad(`peers[${i}]`, `'${addr}' is not of the same family as local '${c.local}'`);
    const norm = ipaddr.parse(addr).toNormalizedString();
    if (norm === localParsed.toNormalizedString()) return bad(`peers[${i}]`, `'${addr}' is the local address`);
    if (seen.has(norm)) return bad(`peers[${i}]`, `'${addr}' is listed twice`);
    seen.add(norm);
    if (typeof p === 'object' && p?.flood !== undefined && typeof p.flood !== 'boolean') {
      return bad(`peers[${i}].flood`, 'must be true or false');
    }
  }
  if (c.address !== undefined) {
    try {
      ipaddr.parseCIDR(c.address);
    } catch {
      return bad('address', `'${c.address}' is not an address in CIDR form (e.g. 198.19.0.1/16)`);
    }
  }
  if (c.mtu !== undefined && !isInt(c.mtu, 576, 65521)) return bad('mtu', `${c.mtu} must be an integer between 576 and 65521`);
  if (c.mac !== undefined) {
    if (typeof c.mac !== 'string' || !isMacString(c.mac)) return bad('mac', `'${c.mac}' is not a MAC address (aa:bb:cc:dd:ee:ff)`);
    if (parseInt(c.mac.slice(0, 2), 16) & 1) return bad('mac', `'${c.mac}' is a group (multicast) address`);
  }
  if (!isInt(c.workers, 1, 64)) return bad('workers', `${c.workers} must be an integer between 1 and 64`);
  if (!(['set', 'unset', 'inherit'] as string[]).includes(c.df)) return bad('df', `'${c.df}' must be one of set, unset, inherit`);
  if (typeof c.learning !== 'boolean') return bad('learning', 'must be true or false');
  if (!isInt(c.ageingSeconds, 1, 86400 * 365)) return bad('ageingSeconds', `${c.ageingSeconds} must be a whole number of seconds >= 1`);
  if (typeof c.acceptUnknownPeers !== 'boolean') return bad('acceptUnknownPeers', 'must be true or false');
  if (!Array.isArray(c.fdb)) return bad('fdb', 'must be a list of {mac, peer}');
  for (let i = 0; i < c.fdb.length; i++) {
    const e = c.fdb[i] as VtepConfig['fdb'][number] | null; // from JSON: may be anything
    if (typeof e?.mac !== 'string' || !isMacString(e.mac)) return bad(`fdb[${i}].mac`, `'${String(e?.mac)}' is not a MAC address`);
    if (typeof e.peer !== 'string' || !ipFamily(e.peer)) return bad(`fdb[${i}].peer`, `'${e.peer}' is not an IP address`);
    if (!seen.has(ipaddr.parse(e.peer).toNormalizedString())) return bad(`fdb[${i}].peer`, `'${e.peer}' is not one of the peers`);
  }
  if (!isInt(c.batchSize, 1, MAX_BATCH)) return bad('batchSize', `${c.batchSize} must be an integer between 1 and ${MAX_BATCH}`);
  if (c.statsSocket !== undefined && (typeof c.statsSocket !== 'string' || c.statsSocket.length === 0 || c.statsSocket.length > 100)) {
    return bad('statsSocket', 'must be a path of at most 100 characters');
  }
  if (c.metrics !== undefined && !/^[^\s]+:\d{1,5}$/.test(c.metrics)) return bad('metrics', `'${c.metrics}' must be HOST:PORT`);
  if (!isInt(c.busyPollUs, 0, 1_000_000)) return bad('busyPollUs', `${c.busyPollUs} must be an integer number of microseconds (0-1000000)`);
  if (!(CPU_PLACEMENTS as readonly unknown[]).includes(c.cpuPlacement)) return bad('cpuPlacement', `'${c.cpuPlacement}' must be ${CPU_PLACEMENTS.join(' or ')}`);
  if (typeof c.offload !== 'boolean') return bad('offload', 'must be true or false');
  if (!isInt(c.txQueueLen, 1, 1_000_000)) return bad('txQueueLen', `${c.txQueueLen} must be an integer between 1 and 1000000 frames`);
  if (c.uplinkBridge !== undefined) {
    if (typeof c.uplinkBridge !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(c.uplinkBridge)) {
      return bad('uplinkBridge', `'${c.uplinkBridge}' is not an interface name (1-15 letters, digits, '_', '.', '-')`);
    }
    if (!c.offload) return bad('uplinkBridge', 'needs offload (the uplink carries TSO super-frames); drop --no-offload');
    if (ipFamily(c.local) !== 4) return bad('uplinkBridge', `needs an IPv4 local address (local is '${c.local}')`);
  }
  return null;
}

/** Where the control sockets live. */
export const RUN_DIR = '/run/vxtap';

/**
 * The network namespace this process runs in, as the inode number of
 * /proc/self/ns/net, and whether it is the namespace of PID 1 (the host's, or a
 * container's own). undefined when /proc cannot tell (then every namespace is
 * treated as "other").
 */
export function currentNetns(): { inode: number; isInit: boolean } | undefined {
  try {
    const self = statSync('/proc/self/ns/net');
    let init: number | undefined;
    try {
      init = statSync('/proc/1/ns/net').ino;
    } catch {
      /* hidepid or not root: unknown */
    }
    return { inode: self.ino, isInit: init === self.ino };
  } catch {
    return undefined;
  }
}

/**
 * The control (stats) socket path of an instance. Device names are per network
 * namespace, so the socket is too: in PID 1's namespace it stays
 * /run/vxtap/NAME.sock; in any other it is /run/vxtap/netns-INODE/NAME.sock,
 * keyed by the inode of /proc/self/ns/net, which the kernel keeps unique among
 * live namespaces. `vxtap up` and `vxtap stats` run in the same namespace compute
 * the same path, so stats finds that namespace's instance.
 *
 * Why a path and not an abstract unix socket (which Linux scopes per namespace by
 * itself and which vanishes with the process): an abstract socket has no
 * permission check, so every user in the namespace could read /stats and /fdb;
 * a socket file under root's /run/vxtap is only connectable by those who may
 * write it. A reused inode of a dead namespace finds at most a stale socket
 * file, which start-up removes after checking that nobody answers on it.
 */
export function statsSocketPath(c: Pick<VtepConfig, 'name' | 'statsSocket'>, netns = currentNetns()): string {
  if (c.statsSocket !== undefined) return c.statsSocket;
  if (!netns || !netns.isInit) return `${RUN_DIR}/netns-${netns?.inode ?? 'unknown'}/${c.name}.sock`;
  return `${RUN_DIR}/${c.name}.sock`;
}

/**
 * Read a secret (e.g. --etcd-password-file): the file's content without one
 * trailing newline. Throws ConfigError naming `field` when the file cannot be
 * read or is empty; `warn` gets a line when group or others may read it.
 */
export function readSecretFile(file: string, field: string, warn: (msg: string) => void = () => undefined): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
    if ((statSync(file).mode & 0o077) !== 0) warn(`${field}: '${file}' is readable by group or others (chmod 600 it)`);
  } catch (err) {
    throw new ConfigError(field, `cannot read '${file}': ${(err as Error).message}`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw new ConfigError(field, `'${file}' is empty`);
  return secret;
}

/** The endpoints that would carry credentials in clear text (http:// URLs). */
export function plainHttpEndpoints(endpoints: string[]): string[] {
  return endpoints.filter((e) => /^http:\/\//i.test(e.trim()));
}
