/**
 * The VTEP plan: everything `Vtep.start` will create on the host, computed from
 * the validated configuration and a few facts probed beforehand (which device
 * holds the local address, the uplink bridge's kind and MAC, whether nft exists,
 * the network namespace). Pure: no I/O, so every decision (MTU, offload fallback,
 * the uplink's refusals, the derived MAC, the socket path, the sockets each
 * worker opens) is unit-tested without root. The applier in vtep.ts walks the
 * plan in order and records an undo step for everything it creates, so a failure
 * half-way removes exactly what was made.
 */
import { createHash } from 'node:crypto';
import { TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, VNET_HDR_LEN } from '../native/index.js';
import { type VtepConfig, ConfigError, statsSocketPath } from '../config.js';
import { ENCAP_OVERHEAD_V4, ENCAP_OVERHEAD_V6 } from '../wire/vxlan.js';
import { addressFamily, normalizeAddress } from '../wire/addr.js';
import { parseMac } from '../wire/mac.js';
import type { WorkerInit } from './worker.js';

/** What the planner needs to know about the host. */
export interface HostFacts {
  /** The device that holds `config.local`, and its MTU; undefined when none does. */
  underlay: { dev: string; mtu: number } | undefined;
  /**
   * With `config.uplinkBridge`: its kind ('bridge', 'veth', '' for a plain
   * device), undefined when it does not exist.
   */
  uplinkKind?: string;
  /** With a bridge as uplink: its MAC (the source of the uplink's outer frames). */
  uplinkMac?: Uint8Array;
  /** The `nft` command is installed. */
  nft: boolean;
  /** The current network namespace (keys the default socket path). */
  netns?: { inode: number; isInit: boolean };
  /** CPUs this process may run on (os.availableParallelism()). */
  cpus?: number;
}

/** One UDP socket a worker opens (udpOpen options plus the config field to blame on EADDRINUSE). */
export interface SocketSpec {
  address: string;
  port: number;
  reusePort: true;
  rcvbuf?: number;
  sndbuf: number;
  gro?: boolean;
  pmtu?: 'do' | 'dont';
  /** The field a bind failure names. */
  field: 'port' | 'srcPortMin';
}

/** The parts of a worker's init that do not depend on opened fds or shared tables. */
export type WorkerTemplate = Omit<WorkerInit, 'index' | 'pinCpu' | 'tapFd' | 'rxFd' | 'txFds' | 'txFdsNoDf' | 'wakeFd' | 'uplinkFd' | 'fdb' | 'counters' | 'control' | 'port' | 'peers'>;

/** What `Vtep.start` creates, in order. */
export interface VtepPlan {
  /** Control (stats) socket path. */
  sock: string;
  underlay: { dev: string; mtu: number };
  /** TAP MTU. */
  mtu: number;
  /** The offload path (vnet_hdr TAP, TSO, UDP GSO/GRO). */
  offload: boolean;
  /** TAP MAC. */
  mac: Uint8Array;
  /** Whether the MAC came from --mac, else derived. */
  macFrom: 'config' | 'derived';
  /** Lines to log when applying (fallbacks taken). */
  notes: string[];
  /** A steering table a killed run may have left, removed before anything else. */
  staleSteering?: string;
  tap: {
    name: string;
    queues: number;
    multiQueue: boolean;
    vnetHdr: boolean;
    /** TUNSETOFFLOAD flags (0: none). */
    offloadFlags: number;
    txQueueLen: number;
    address?: string;
  };
  /** Uplink transmit (and receive when steering is planned). */
  uplink?: {
    bridge: string;
    /** First queue's name; the kernel may pick another (kept from the first open). */
    port: string;
    queues: number;
    /** Cap on TSO frames so outer IPv4 length stays <= 65535. */
    gsoMaxSize: number;
    /** The bridge's MTU, given to the port. */
    mtu: number;
    /** Receive steering: table name; undefined when nft is missing. */
    steer?: { table: string; local: string; port: number };
  };
  /** Sockets per worker. */
  sockets: { rx: SocketSpec; tx: SocketSpec[]; txNoDf: SocketSpec[] };
  workers: number;
  /**
   * cpuPlacement 'local': the CPU each worker is pinned to (worker n on CPU n mod
   * cpus); received datagrams (socket, uplink) steered to the worker of the CPU
   * that received them; the TAP's queues stay on tun's flow hash.
   */
  pinCpus?: number[];
  worker: WorkerTemplate;
}

/** The nftables steering table of an instance (kept identical to host/iproute.ts steeringTable). */
export function steeringTableName(tag: string): string {
  return `vxtap_${tag.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/**
 * The default TAP MAC: SHA-256 over the instance name, the normalized local
 * address and the VNI, first six bytes, made locally administered and unicast.
 * A restart on the same host with the same settings yields the same MAC, so
 * peers' neighbour caches and forwarding tables stay valid across it; two
 * instances differ in at least one input (the name or the address).
 */
export function derivedMac(name: string, local: string, vni: number): Uint8Array {
  const h = createHash('sha256')
    .update(`vxtap-mac\0${name}\0${normalizeAddress(local)}\0${vni}`)
    .digest();
  const m = Uint8Array.from(h.subarray(0, 6));
  m[0] = (m[0] & 0xfc) | 0x02;
  return m;
}

/**
 * Plan a VTEP for a validated configuration. Throws ConfigError (naming the
 * field) for what the host makes impossible; nothing has been created then.
 */
export function planVtep(config: VtepConfig, facts: HostFacts): VtepPlan {
  const family = addressFamily(config.local);
  const underlay = facts.underlay;
  if (!underlay) throw new ConfigError('local', `'${config.local}' is not assigned to any interface in this network namespace`);
  const overhead = family === 4 ? ENCAP_OVERHEAD_V4 : ENCAP_OVERHEAD_V6;
  const mtu = config.mtu ?? underlay.mtu - overhead;
  if (mtu < 68) throw new ConfigError('mtu', `underlay ${underlay.dev} MTU ${underlay.mtu} leaves ${mtu} bytes inside the tunnel`);
  const notes: string[] = [];
  // Offload needs every GSO segment (inner MTU + 14 + VXLAN 8 + outer 28/48) to fit the underlay MTU.
  let offload = config.offload;
  if (offload && mtu + overhead > underlay.mtu) {
    notes.push(`offload off: TAP MTU ${mtu} + ${overhead} exceeds underlay MTU ${underlay.mtu} (UDP GSO cannot fragment)`);
    offload = false;
  }
  let uplinkOn = false;
  if (config.uplinkBridge) {
    const kind = facts.uplinkKind;
    if (kind === undefined) throw new ConfigError('uplinkBridge', `no interface '${config.uplinkBridge}' in this network namespace`);
    if (kind !== 'bridge') throw new ConfigError('uplinkBridge', `'${config.uplinkBridge}' is a ${kind || 'plain'} device, not a Linux bridge`);
    if (underlay.dev !== config.uplinkBridge) {
      throw new ConfigError('uplinkBridge', `local address ${config.local} is on ${underlay.dev}, not on bridge ${config.uplinkBridge}`);
    }
    if (!offload) notes.push('uplink off: it needs the offload path');
    else if (!facts.uplinkMac) throw new ConfigError('uplinkBridge', `cannot read the MAC of '${config.uplinkBridge}'`);
    else uplinkOn = true;
  }
  const mac = config.mac ? parseMac(config.mac) : derivedMac(config.name, config.local, config.vni);
  const table = steeringTableName(config.name);
  let uplink: VtepPlan['uplink'];
  if (uplinkOn && config.uplinkBridge) {
    uplink = {
      bridge: config.uplinkBridge,
      port: `${config.name.slice(0, 14)}u`,
      queues: config.workers,
      gsoMaxSize: 65000,
      mtu: underlay.mtu,
      ...(facts.nft ? { steer: { table, local: config.local, port: config.port } } : {}),
    };
    if (!facts.nft) notes.push('uplink receive off: no nft command (apt install nftables); receiving on the UDP socket');
  }
  const pmtu = config.df === 'set' || config.df === 'inherit' ? 'do' : 'dont';
  const tx: SocketSpec[] = [];
  const txNoDf: SocketSpec[] = [];
  for (let p = config.srcPortMin; p <= config.srcPortMax; p++) {
    tx.push({ address: config.local, port: p, reusePort: true, sndbuf: 4 << 20, pmtu, field: 'srcPortMin' });
    if (config.df === 'inherit') txNoDf.push({ address: config.local, port: p, reusePort: true, sndbuf: 4 << 20, pmtu: 'dont', field: 'srcPortMin' });
  }
  return {
    sock: statsSocketPath(config, facts.netns),
    underlay,
    mtu,
    offload,
    mac,
    macFrom: config.mac ? 'config' : 'derived',
    notes,
    // a table left by a killed run would send our VXLAN to a TAP that is gone;
    // with the uplink the new (owned) table replaces it, so remove it first too
    ...(facts.nft ? { staleSteering: table } : {}),
    tap: {
      name: config.name,
      queues: config.workers,
      multiQueue: config.workers > 1,
      vnetHdr: offload,
      offloadFlags: offload ? TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 : 0,
      txQueueLen: config.txQueueLen,
      ...(config.address ? { address: config.address } : {}),
    },
    ...(uplink ? { uplink } : {}),
    sockets: {
      rx: { address: config.local, port: config.port, reusePort: true, rcvbuf: 8 << 20, sndbuf: 4 << 20, gro: offload, field: 'port' },
      tx,
      txNoDf,
    },
    workers: config.workers,
    ...(config.cpuPlacement === 'local' ? { pinCpus: Array.from({ length: config.workers }, (_, w) => w % Math.max(1, facts.cpus ?? 1)) } : {}),
    worker: {
      vni: config.vni,
      batchSize: config.batchSize,
      // a TSO read ignores the TAP MTU, and the MTU may be raised while running
      // (ip link set ... mtu): slots take any frame up to 64 KiB + headers
      tapSlotLen: (offload ? VNET_HDR_LEN : 0) + 65535 + 18,
      udpSlotLen: 65535,
      offload,
      maxGsoBytes: 65507, // UDP GSO payload limit (IPv4 bound; IPv6 could take 65527)
      learning: config.learning,
      acceptUnknownPeers: config.acceptUnknownPeers,
      ownMac: mac,
      maxUnfragmentedPayload: underlay.mtu - (family === 4 ? 28 : 48),
      mtu,
      busyPollUs: config.busyPollUs,
      vxlanPort: config.port,
      uplinkRx: uplink?.steer !== undefined,
      ...(uplink && facts.uplinkMac
        ? {
            uplink: {
              srcMac: facts.uplinkMac,
              srcIp: Uint8Array.from(config.local.split('.').map(Number)),
              srcPortMin: config.srcPortMin,
              maxOuterIp: underlay.mtu,
              dfMode: config.df === 'set' ? 1 : config.df === 'inherit' ? 2 : 0,
            },
          }
        : {}),
    },
  };
}
