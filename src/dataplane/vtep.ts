/**
 * The VTEP supervisor (main thread): creates the TAP queues and sockets, starts
 * one worker per queue, owns the forwarding table and the peer table, feeds
 * control-plane changes to the workers, ages learned entries, serves statistics,
 * and tears everything down. If any step of start-up fails, everything created
 * so far is closed again (closing the last TAP fd removes the device).
 */
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import { createServer, type Server } from 'node:http';
import { accessSync, chmodSync, constants as fsConstants, fstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, networkInterfaces } from 'node:os';
import path from 'node:path';
import { native, TNL_VNET_HDR_LEN, UPLINK_OFFLOADS } from '../native/index.js';
import { type VtepConfig, ConfigError, currentNetns } from '../config.js';
import { addrRecord, addressFamily, normalizeAddress, recordAddress } from '../wire/addr.js';
import { formatMac, parseMac } from '../wire/mac.js';
import { Fdb, HOLD_SECONDS, MAX_PEERS, macParts, macKey, nowSeconds } from './fdb.js';
import {
  newCounterBlock,
  readCounters,
  sumCounters,
  dropsByReason,
  renderPrometheus,
  stageCosts,
  readPeerCounters,
  subPeerCounters,
  peerCounterView,
  P,
  PEER_STRIDE,
  type CounterSnapshot,
  type PeerCounters,
  type StageCosts,
} from './stats.js';
import { LogLimiter } from './ratelimit.js';
import type { PeerInfo, WorkerEvent } from './engine.js';
import { CTL_SEQ, CTL_STOP, type WorkerInit } from './worker.js';
import type { DataplaneControl, PeerEntry, StaticFdbEntry } from './types.js';
import { deviceOfAddress, setTxQueueLen, linkKind, addQuietBridgePort, setGsoMaxSize, nextHopMacs, steerVxlan, unsteerVxlan, STEER_MIN_BYTES } from '../host/iproute.js';
import { run } from '../host/exec.js';
import { OwnedNftTable } from '../host/nft-owned.js';
import { foreignSharers, udpSockets } from '../host/procnet.js';
import { planVtep, type HostFacts, type SocketSpec, type VtepPlan } from './plan.js';
import { UndoList } from './undo.js';
import { claimSocketPath, removeSocketFile } from './control-socket.js';
import { testSlowdownStatus } from '../pipeline/slowdown.js';
export { socketAlive } from './control-socket.js';

/** Status of a running VTEP, as `vxtap stats` prints it. */
export interface VtepStatus {
  name: string;
  vni: number;
  port: number;
  local: string;
  mtu: number;
  mac: string;
  workers: number;
  offload: boolean;
  /** Uplink transmit (--uplink-bridge): the bridge, the TAP port, and each peer's next-hop MAC once known. */
  uplink?: { bridge: string; port: string; receive: boolean };
  uptimeSeconds: number;
  /**
   * Peers with their counters (packets, bytes, drops each way; counted from when
   * the peer was added) and the seconds since each last sent us a datagram (-1:
   * never), so a peer that went quiet shows.
   */
  peers: { address: string; index: number; flood: boolean; learned: boolean; nextHopMac?: string; counters: PeerCounters; rxIdleSeconds: number }[];
  fdb: { mac: string; peer: string; static: boolean; ageSeconds: number; held?: boolean }[];
  /** Forwarding table bounds and refused learn reports (flood defence). */
  fdbLimits: { statics: number; staticCapacity: number; learned: number; learnedCapacity: number; learnedPerPeer: number; refusedFull: number; refusedPeerFull: number; held: number; moves: number };
  total: CounterSnapshot;
  drops: Record<string, number>;
  /** ns per wire packet in each stage (both directions). */
  stages: StageCosts;
  /** Times a worker ended unasked and was restarted (all workers). */
  workerRestarts: number;
  /** Worker placement; with 'local', the CPU each worker is pinned to. */
  cpuPlacement: VtepConfig['cpuPlacement'];
  pinCpus?: number[];
  /** Test-only slowdown (VXTAP_TEST_SLOWDOWN_PCT) the workers run with; absent when off. */
  testSlowdownPct?: number;
  /** The control plane's own state (etcd mode: subnet, lease, etcd reachability, counters), else absent. */
  control?: unknown;
  perWorker: CounterSnapshot[];
}

interface PeerState {
  index: number;
  address: string;
  flood: boolean;
  record: Uint8Array;
  /** learned from an unknown source (acceptUnknownPeers) rather than configured */
  learned: boolean;
  /** With an uplink: the underlay next hop's MAC, once the kernel resolved it. */
  mac?: string;
  /** Its index's counters when it got the index (an index is reused after its peer left). */
  baseline: PeerCounters;
  /** rx_packets at the last sample, and the second it last changed (-1: never). */
  rxSeen: number;
  lastRx: number;
  added: number;
}

/**
 * With --accept-unknown-peers: most peers learned from unknown sources. At the
 * bound, further unknown sources are dropped (unknown_peer) until a learned peer
 * ages out (no datagram for ageingSeconds).
 */
export const LEARNED_PEERS_MAX = 64;
/** A peer index is reused only this long after its peer left (events in flight name the old peer). */
const PEER_INDEX_QUARANTINE_SECONDS = 5;

/** A supervised worker: its fds and counters outlive the thread, which is restarted on them. */
interface WorkerSlot {
  /** Everything but the shared tables and the port (the same for every restart). */
  init: Omit<WorkerInit, 'fdb' | 'counters' | 'control' | 'port' | 'peers'>;
  /** The current thread (undefined only before the first start). */
  worker: Worker | undefined;
  port: MessagePort | undefined;
  control: Int32Array;
  wakeFd: number;
  counters: SharedArrayBuffer;
  /** Resolves when the current thread has exited. */
  exited: Promise<void>;
  /** Restarts so far. */
  restarts: number;
  /** Failures that each came less than WORKER_STABLE_MS after a start. */
  failuresInRow: number;
  startedAt: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/** A worker that ran this long before failing restarts at once (no back-off). */
const WORKER_STABLE_MS = 10_000;
/** Longest wait before restarting a worker that keeps failing. */
const WORKER_BACKOFF_MAX_MS = 10_000;

/**
 * A worker allocates nothing per packet (its buffers are made when its pipeline
 * is built), so a small young generation is enough; V8's default lets each
 * worker's semi-spaces grow to several MB that only count against the
 * dataplane's RSS.
 */
const WORKER_HEAP_LIMITS = { maxYoungGenerationSizeMb: 3 };
/**
 * The supervisor's back-off: a worker that ran for WORKER_STABLE_MS or more
 * restarts at once (its failure starts a new row); each further failure in a
 * row waits 100 ms, 200 ms, 400 ms, ... up to WORKER_BACKOFF_MAX_MS.
 */
export function workerRestartDelay(ranMs: number, failuresInRow: number): { delayMs: number; failuresInRow: number } {
  const row = ranMs >= WORKER_STABLE_MS ? 1 : failuresInRow + 1;
  return { delayMs: row <= 1 ? 0 : Math.min(WORKER_BACKOFF_MAX_MS, 100 * 2 ** (row - 2)), failuresInRow: row };
}

/** Set to 1 to enable the test-only fault injection endpoint on the stats socket. */
export const TEST_HOOKS_ENV = 'VXTAP_TEST_HOOKS';

/** Log to stderr (human output). */
function log(msg: string): void {
  process.stderr.write(`vxtap: ${msg}\n`);
}

/** A running VTEP. */
export class Vtep implements DataplaneControl {
  readonly tapName: string;
  readonly tapMac: string;
  readonly mtu: number;
  /** Statics: one per peer in etcd mode (its VtepMAC), so as many as peer indices. */
  private readonly fdb = new Fdb({ staticCapacity: MAX_PEERS, learnedCapacity: 4096, learnedPerPeer: 1024 });
  private readonly peers = new Map<string, PeerState>();
  private nextPeerIndex = 0;
  /** Live peers by index, and indices freed by departed peers (with the second they were freed). */
  private readonly peerByIndex = new Map<number, PeerState>();
  private readonly freedIndices: { index: number; at: number }[] = [];
  private learnedPeers = 0;
  private broadcastPending = false;
  /** Log lines a hostile sender can trigger (learning, unknown peers): a few per kind per 10 s. */
  private readonly logs = new LogLimiter(log, nowSeconds);
  private readonly workers: WorkerSlot[] = [];
  private server: Server | undefined;
  private metricsServer: Server | undefined;
  private ageTimer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();
  private stopping: Promise<void> | undefined;
  /** Whether stop() has begun, read afresh (after an await, a check made before it is stale). */
  private isStopping(): boolean {
    return this.stopping !== undefined;
  }
  private staticKeys = new Set<string>();
  /**
   * Resolves only when the VTEP cannot go on (a worker cannot even be
   * restarted); a worker that fails is restarted, and the VTEP stays up.
   */
  readonly failed: Promise<Error>;
  private fail!: (err: Error) => void;
  /** Owned nftables steering table (uplink receive); removed with the process. */
  private steering: OwnedNftTable | undefined;

  private constructor(
    readonly config: VtepConfig,
    tapName: string,
    tapMac: string,
    mtu: number,
    private readonly undo: UndoList,
  ) {
    this.tapName = tapName;
    this.tapMac = tapMac;
    this.mtu = mtu;
    this.failed = new Promise((resolve) => (this.fail = resolve));
  }

  /** Whether the workers run the offload path. */
  offload = false;
  /** Uplink transmit: bridge and TAP port, when configured and in use. */
  uplink: { bridge: string; port: string; receive: boolean } | undefined;
  private nftTable: string | undefined;
  private uplinkTimer: NodeJS.Timeout | undefined;
  private refreshing = false;

  /** State of the control plane driving this VTEP (etcd mode), shown by `vxtap stats`. */
  controlStatus: (() => unknown) | undefined;
  /**
   * Set by a control plane that holds a lease (etcd mode): `vxtap leave` (POST
   * /leave on the control socket) calls it to release the lease and stop. Null
   * where there is nothing to leave (static peers).
   */
  onLeave: (() => void) | undefined;

  /**
   * Start a VTEP for a validated configuration: probe the host, plan what to
   * create (pure: plan.ts), then apply the plan, recording an undo step for each
   * thing created. On failure the undo list runs and nothing stays behind.
   */
  static async start(config: VtepConfig): Promise<Vtep> {
    const plan = planVtep(config, await probeHost(config));
    const undo = new UndoList();
    try {
      return await Vtep.apply(config, plan, undo);
    } catch (err) {
      for (const f of await undo.run()) log(`undoing a failed start: ${f}`);
      throw err;
    }
  }

  /** Create what `plan` says, in order, each creation followed by its undo step. */
  private static async apply(config: VtepConfig, plan: VtepPlan, undo: UndoList): Promise<Vtep> {
    const addon = native();
    for (const note of plan.notes) log(note);
    await claimSocketPath(plan.sock, config.statsSocket !== undefined ? 'statsSocket' : 'name');
    // The receive port before anything on the host changes: a port taken by another
    // process refuses the start here, with nothing to undo but our own sockets.
    const rxFds = openReceivePort(plan.sockets.rx, plan.workers, undo);
    // each command costs ~0.1-0.2 s on a busy machine: the stale-table removal
    // runs beside the TAP's set-up and is awaited before any worker forwards
    const unsteered = plan.staleSteering ? unsteerVxlan(plan.staleSteering) : Promise.resolve();
    undo.push('stale steering table removal', () => unsteered);

    // the TAP: queues first (closing the last fd removes the device and all on it)
    const queues: number[] = [];
    let tapName = plan.tap.name;
    for (let q = 0; q < plan.tap.queues; q++) {
      const h = addon.tapOpen(tapName, { multiQueue: plan.tap.multiQueue, vnetHdr: plan.tap.vnetHdr });
      undo.push(`TAP ${h.name} queue ${q}`, () => closeQuietly(h.fd));
      queues.push(h.fd);
      tapName = h.name;
    }
    if (plan.tap.offloadFlags) {
      try {
        for (const fd of queues) addon.tapSetOffload(fd, plan.tap.offloadFlags);
      } catch (err) {
        // vnet_hdr stays on (the queues are open); without TSO frames are plain, still correct
        log(`TAP TSO refused (${(err as Error).message}); frames stay MTU-sized`);
      }
    }
    // CPU-local leaves the TAP's queue choice to tun's flow hash: steering it by the sending CPU
    // split one TCP flow over two workers (its sends move between CPUs with the softirq that
    // processes its ACKs) and reordered it: 75-95k retransmissions per 4-s stream, 7.4-7.9 Gbit/s
    // against 10.0-10.7 with the flow kept on one worker (README, CPU placement).
    addon.ifSetMtu(tapName, plan.mtu);
    addon.ifSetMac(tapName, plan.mac);
    enableAnnouncements(tapName);
    // queue length and address in one ip process; the address before the link
    // goes up, so the kernel's up-time announcement covers it
    await run(['ip', '-batch', '-'], {
      input: `link set dev ${tapName} txqueuelen ${plan.tap.txQueueLen}\n${plan.tap.address ? `addr add ${plan.tap.address} dev ${tapName}\n` : ''}`,
    });
    addon.ifSetUp(tapName, true);
    await unsteered;

    const uplinkQueues: number[] = [];
    let uplinkName: string | undefined;
    let steering: OwnedNftTable | undefined;
    let steeredPlain: string | undefined;
    if (plan.uplink) {
      await setGsoMaxSize(tapName, plan.uplink.gsoMaxSize);
      let name = plan.uplink.port;
      for (let q = 0; q < plan.uplink.queues; q++) {
        const h = addon.tapOpen(name, { multiQueue: plan.tap.multiQueue, vnetHdr: true });
        undo.push(`uplink TAP ${h.name} queue ${q}`, () => closeQuietly(h.fd));
        uplinkQueues.push(h.fd);
        name = h.name;
        addon.tapSetVnetHdrSize(h.fd, TNL_VNET_HDR_LEN);
        // the kernel's UDP-tunnel GSO on TAP (6.17+): what it hands us, and the proof
        // that it takes our tunnel-GSO writes (older kernels refuse the flag)
        try {
          addon.tapSetOffload(h.fd, UPLINK_OFFLOADS);
        } catch (err) {
          throw new ConfigError('uplinkBridge', `this kernel has no UDP-tunnel GSO on TAP devices (Linux 6.17+): ${(err as Error).message}`);
        }
      }
      uplinkName = name;
      // receive direction (bridge -> us): the CPU that took the datagram off the wire, stable per flow
      if (plan.pinCpus && uplinkQueues.length > 1) addon.tapSteerByCpu(uplinkQueues[0]);
      await addQuietBridgePort(plan.uplink.bridge, name, plan.uplink.mtu);
      await setTxQueueLen(name, plan.tap.txQueueLen);
      // receive too: VXLAN for us steered from the bridge's ingress to the uplink
      // TAP, which then hands over whole UDP-tunnel GSO super-frames
      const steer = plan.uplink.steer;
      if (steer) {
        try {
          const owned = await OwnedNftTable.create('netdev', steer.table, steeringCommands(steer.table, plan.uplink.bridge, steer.local, steer.port, name));
          steering = owned;
          undo.push(`steering table ${steer.table}`, () => owned.close());
        } catch (err) {
          // nftables or a kernel without owner tables: a plain table, which a crash
          // leaves behind (the next start or `vxtap down` removes it)
          try {
            const plainTable = await steerVxlan(tapName, plan.uplink.bridge, steer.local, steer.port, name);
            steeredPlain = plainTable;
            undo.push(`steering table ${plainTable}`, () => unsteerVxlan(plainTable));
            log(`uplink receive: owned nft table refused (${(err as Error).message}); using a plain table that a crash would leave (vxtap down removes it)`);
          } catch (err2) {
            log(`uplink receive off (${(err2 as Error).message}); receiving on the UDP socket`);
          }
        }
      }
    }

    const vtep = new Vtep(config, tapName, formatMac(plan.mac), plan.mtu, undo);
    vtep.offload = plan.offload;
    for (const p of config.peers) vtep.addPeer(typeof p === 'string' ? p : p.address, typeof p === 'string' ? true : (p.flood ?? true), false);
    vtep.applyStaticFdb(config.fdb);
    if (uplinkName && plan.uplink) {
      vtep.uplink = { bridge: plan.uplink.bridge, port: uplinkName, receive: steering !== undefined || steeredPlain !== undefined };
      vtep.steering = steering;
      vtep.nftTable = steeredPlain;
      await vtep.refreshNextHops();
      vtep.uplinkTimer = setInterval(() => void vtep.refreshNextHops(), 1000).unref();
      log(`uplink: ${uplinkName} on bridge ${plan.uplink.bridge} carries whole TSO frames (UDP-tunnel GSO)${vtep.uplink.receive ? ' both ways' : ' out'}`);
    }

    for (let w = 0; w < plan.workers; w++) {
      const rxFd = rxFds[w];
      // CPU-local: reuseport members in bind order, member = receiving CPU mod workers. The receiving
      // CPU is stable per flow (the peer's pinned worker on veth, RSS on a NIC), so this keeps order.
      if (plan.pinCpus && w === 0 && plan.workers > 1) addon.udpSteerByCpu(rxFd, plan.workers);
      const txFds = plan.sockets.tx.map((s) => openSocket(s, undo));
      const txFdsNoDf = plan.sockets.txNoDf.map((s) => openSocket(s, undo));
      const wakeFd = addon.eventfdOpen();
      undo.push(`worker ${w} eventfd`, () => closeQuietly(wakeFd));
      vtep.startWorker({
        ...plan.worker,
        index: w,
        ...(plan.pinCpus ? { pinCpu: plan.pinCpus[w] } : {}),
        tapFd: queues[w],
        rxFd,
        txFds,
        txFdsNoDf,
        wakeFd,
        uplinkRx: vtep.uplink?.receive === true,
        ...(plan.worker.uplink && uplinkQueues.length ? { uplinkFd: uplinkQueues[w] } : { uplink: undefined }),
      });
    }
    vtep.ageTimer = setInterval(() => vtep.fdb.age(config.ageingSeconds), Math.min(10_000, config.ageingSeconds * 250)).unref();
    const peerTimer = setInterval(() => vtep.samplePeers(), 1000).unref();
    undo.push('peer sampling timer', () => clearInterval(peerTimer));
    await vtep.serveStats(plan.sock);
    if (config.metrics) await vtep.serveMetrics(config.metrics);
    // The kernel announced the TAP's addresses when the link came up (arp_notify;
    // for IPv6 ndisc_notify, once DAD is done); the frames waited in the TAP's
    // queue and the workers have just flooded them to every peer. No second
    // announcement here: announce() flushes the TAP's neighbour cache, which would
    // drop packets waiting for a neighbour to resolve.
    return vtep;
  }

  /**
   * Tell the overlay who we are: a gratuitous ARP for each IPv4 address of the
   * TAP and an unsolicited neighbour advertisement for each IPv6 one, so peers
   * whose neighbour caches hold another MAC for them update at once. Setting the
   * TAP's MAC (to the same value) raises NETDEV_CHANGEADDR, on which the kernel
   * sends both because arp_notify and ndisc_notify are on for the TAP. Start-up
   * needs no call (the kernel announces when the link comes up); call it after
   * adding an address to a running TAP (etcd mode adds its own). The kernel also
   * flushes the TAP's neighbour cache on the change, so call it before traffic
   * depends on that cache, not periodically.
   */
  announce(): void {
    if (this.stopping) return;
    try {
      native().ifSetMac(this.tapName, parseMac(this.tapMac));
    } catch (err) {
      log(`announcing ${this.tapName} failed: ${(err as Error).message}`);
    }
  }

  /** Start worker `partial.index` and supervise it: restart it with back-off whenever it ends unasked. */
  private startWorker(partial: Omit<WorkerInit, 'fdb' | 'counters' | 'control' | 'port' | 'peers'>): void {
    const slot: WorkerSlot = {
      init: partial,
      worker: undefined,
      port: undefined,
      control: new Int32Array(new SharedArrayBuffer(8)),
      wakeFd: partial.wakeFd,
      counters: newCounterBlock(),
      exited: Promise.resolve(),
      restarts: 0,
      failuresInRow: 0,
      startedAt: 0,
      restartTimer: undefined,
    };
    this.workers.push(slot);
    this.spawnWorker(slot);
  }

  /** (Re)create the thread of a slot on the slot's own TAP queue, sockets and counters. */
  private spawnWorker(slot: WorkerSlot): void {
    const { port1, port2 } = new MessageChannel();
    // the same stop/sequence block: a new thread starts "behind" and drains its port
    Atomics.store(slot.control, CTL_STOP, 0);
    const init: WorkerInit = { ...slot.init, fdb: this.fdb.buffer, counters: slot.counters, control: slot.control.buffer as SharedArrayBuffer, port: port2, peers: this.peerInfos() };
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init, transferList: [port2], resourceLimits: WORKER_HEAP_LIMITS });
    slot.worker = worker;
    slot.port = port1;
    slot.startedAt = Date.now();
    let reason = 'exited';
    slot.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        port1.close();
        resolve();
        if (this.stopping || slot.worker !== worker) return;
        this.scheduleRestart(slot, `${reason} (exit code ${code})`);
      });
    });
    worker.on('message', (ev: WorkerEvent | { type: 'fatal'; message: string; code?: string } | { type: 'stopped' }) => {
      if (ev.type === 'learn') this.learn(ev.hi, ev.lo, ev.peer);
      else if (ev.type === 'unknown-peer') this.addPeer(recordAddress(ev.record, 0), false, true);
      else if (ev.type === 'fatal') reason = `failed: ${ev.message}${ev.code ? ` (${ev.code})` : ''}`;
    });
    worker.on('error', (err) => {
      reason = `crashed: ${err.message}`;
    });
  }

  /**
   * A worker ended without being asked: count it and start it again on the same
   * queue and sockets. The first restart in a row is immediate (traffic back in
   * well under a second: a thread starts in ~100 ms); a worker that keeps failing
   * within WORKER_STABLE_MS of its start waits 100 ms, 200 ms, ... up to
   * WORKER_BACKOFF_MAX_MS, so a persistent fault costs one log line per wait.
   */
  private scheduleRestart(slot: WorkerSlot, reason: string): void {
    const ranMs = Date.now() - slot.startedAt;
    const next = workerRestartDelay(ranMs, slot.failuresInRow);
    slot.failuresInRow = next.failuresInRow;
    const delayMs = next.delayMs;
    slot.restarts++;
    log(`worker ${slot.init.index} ${reason} after ${ranMs} ms; restarting it${delayMs ? ` in ${delayMs} ms` : ''} (restart ${slot.restarts})`);
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (this.stopping) return;
      try {
        this.spawnWorker(slot);
      } catch (err) {
        log(`worker ${slot.init.index} cannot be restarted: ${(err as Error).message}`);
        this.fail(err as Error);
      }
    }, delayMs);
  }

  private peerInfos(): PeerInfo[] {
    return [...this.peers.values()].map((p) => ({ index: p.index, record: p.record, flood: p.flood, ...(p.mac ? { mac: parseMac(p.mac) } : {}) }));
  }

  /**
   * Uplink: look up each peer's next-hop MAC in the kernel's neighbour table and
   * tell the workers when one appears, changes or goes. Until then a peer's frames
   * take the socket path, which also makes the kernel resolve it.
   */
  private async refreshNextHops(): Promise<void> {
    if (!this.uplink || this.refreshing || this.stopping) return;
    this.refreshing = true;
    try {
      const peers = [...this.peers.values()];
      const macs = await nextHopMacs(
        this.uplink.bridge,
        peers.filter((p) => addressFamily(p.address) === 4).map((p) => p.address),
      );
      let changed = false;
      for (const p of peers) {
        const mac = macs.get(p.address);
        if (mac !== p.mac) {
          p.mac = mac;
          changed = true;
        }
      }
      if (changed && !this.isStopping()) this.broadcastPeers();
    } catch (err) {
      log(`uplink: neighbour lookup failed (${(err as Error).message}); peers keep their last next hops`);
    } finally {
      this.refreshing = false;
    }
  }

  private broadcastPeers(): void {
    const peers = this.peerInfos();
    for (const w of this.workers) {
      w.port?.postMessage({ type: 'peers', peers });
      Atomics.add(w.control, CTL_SEQ, 1);
      native().eventfdSignal(w.wakeFd);
    }
  }

  private addPeer(address: string, flood: boolean, learned: boolean): PeerState | undefined {
    const norm = normalizeAddress(address);
    let p = this.peers.get(norm);
    if (!p) {
      if (learned && this.learnedPeers >= LEARNED_PEERS_MAX) {
        // the workers drop unknown sources once closed; reports already in flight end here
        this.fdb.setUnknownPeersClosed(true);
        this.logs.log('peer-table-full', () => `peer table: ${LEARNED_PEERS_MAX} learned peers, the bound; dropping datagrams from unknown ${norm}`);
        return undefined;
      }
      p = this.newPeer(norm, flood, learned);
      if (!p) return undefined;
      if (learned) {
        this.logs.log('peer-accepted', () => `accepted unknown peer ${norm}`);
        if (this.learnedPeers >= LEARNED_PEERS_MAX) this.fdb.setUnknownPeersClosed(true);
        // many sources at once cost one broadcast, not one each
        if (!this.broadcastPending) {
          this.broadcastPending = true;
          setImmediate(() => {
            this.broadcastPending = false;
            if (!this.stopping) this.broadcastPeers();
          });
        }
      } else this.broadcastPeers();
    }
    return p;
  }

  /** A new peer on a free index (the lowest index out of quarantine, else a fresh one); undefined when none is left. */
  private newPeer(address: string, flood: boolean, learned: boolean): PeerState | undefined {
    const now = nowSeconds();
    let index: number;
    const q = this.freedIndices.findIndex((f) => now - f.at >= PEER_INDEX_QUARANTINE_SECONDS);
    if (q >= 0) index = this.freedIndices.splice(q, 1)[0].index;
    else if (this.nextPeerIndex < MAX_PEERS) index = this.nextPeerIndex++;
    else {
      const oldest = this.freedIndices.shift();
      if (oldest === undefined) {
        this.logs.log('peer-index', () => `peer table: all ${MAX_PEERS} peer indices in use; not adding ${address}`);
        return undefined;
      }
      index = oldest.index;
    }
    const p: PeerState = {
      index,
      address,
      flood,
      record: addrRecord(address, this.config.port),
      learned,
      baseline: readPeerCounters(
        this.workers.map((w) => w.counters),
        index,
      ),
      rxSeen: 0,
      lastRx: -1,
      added: now,
    };
    this.peers.set(address, p);
    this.peerByIndex.set(index, p);
    if (learned) this.learnedPeers++;
    return p;
  }

  /** Forget a peer: its learned forwarding entries go, its index is reused after the quarantine. */
  private releasePeer(p: PeerState): void {
    this.peers.delete(p.address);
    this.peerByIndex.delete(p.index);
    this.fdb.deleteWhere((peer) => peer === p.index);
    this.freedIndices.push({ index: p.index, at: nowSeconds() });
    if (p.learned) this.learnedPeers--;
    if (this.learnedPeers < LEARNED_PEERS_MAX) this.fdb.setUnknownPeersClosed(false);
  }

  /**
   * Once a second: note which peers sent since the last look (rxIdleSeconds), and
   * remove learned peers that sent nothing for ageingSeconds.
   */
  private samplePeers(): void {
    const now = nowSeconds();
    const views = this.workers.map((w) => peerCounterView(w.counters));
    let removed = false;
    for (const p of [...this.peers.values()]) {
      let rx = 0;
      for (const v of views) rx += v[p.index * PEER_STRIDE + P.rx_packets];
      if (rx !== p.rxSeen) {
        p.rxSeen = rx;
        p.lastRx = now;
      }
      if (p.learned && now - (p.lastRx >= 0 ? p.lastRx : p.added) > this.config.ageingSeconds) {
        this.logs.log('peer-aged', () => `learned peer ${p.address} silent for ${this.config.ageingSeconds} s; removed`);
        this.releasePeer(p);
        removed = true;
      }
    }
    if (removed && !this.stopping) this.broadcastPeers();
  }

  private learn(hi: number, lo: number, peer: number): void {
    const p = this.peerByIndex.get(peer);
    if (!p) return; // peer removed since the worker saw it
    const r = this.fdb.learn(hi, lo, peer);
    if (r === 'full') this.logs.log('fdb-full', () => `forwarding table: ${this.fdb.learnedCapacity} learned entries, the bound; not learning ${macKey(hi, lo)} from ${p.address}`);
    else if (r === 'peer-full')
      this.logs.log('fdb-peer-full', () => `forwarding table: peer ${p.address} has its ${this.fdb.learnedPerPeer} learned entries; not learning more from it until some age out`);
    else if (r === 'held') this.logs.log('fdb-held', () => `forwarding table: ${macKey(hi, lo)} moves between peers too often; held for ${HOLD_SECONDS} s`);
  }

  /** Replace the set of remote VTEPs (DataplaneControl). */
  setPeers(peers: PeerEntry[]): void {
    const want = new Map(peers.map((p) => [normalizeAddress(p.address), p.flood]));
    let changed = false;
    for (const [addr, p] of [...this.peers]) {
      if (!want.has(addr) && !p.learned) {
        this.releasePeer(p);
        changed = true;
      }
    }
    for (const [addr, flood] of want) {
      const p = this.peers.get(addr);
      if (!p) {
        if (!this.newPeer(addr, flood, false)) throw new ConfigError('peers', `more than ${MAX_PEERS} peers`);
        changed = true;
      } else if (p.flood !== flood || p.learned) {
        p.flood = flood;
        if (p.learned) this.learnedPeers--;
        p.learned = false;
        changed = true;
      }
    }
    if (this.learnedPeers < LEARNED_PEERS_MAX) this.fdb.setUnknownPeersClosed(false);
    if (changed) this.broadcastPeers();
  }

  /** Replace the static forwarding entries (DataplaneControl). */
  setStaticFdb(entries: StaticFdbEntry[]): void {
    this.applyStaticFdb(entries);
  }

  private applyStaticFdb(entries: StaticFdbEntry[]): void {
    const next = new Set<string>();
    for (const e of entries) {
      const p = this.peers.get(normalizeAddress(e.peer));
      if (!p) throw new ConfigError('fdb', `peer ${e.peer} of ${e.mac} is not a peer`);
      const [hi, lo] = macParts(e.mac.toLowerCase());
      if (!this.fdb.setStatic(hi, lo, p.index)) throw new ConfigError('fdb', `more than ${this.fdb.staticCapacity} static entries`);
      next.add(macKey(hi, lo));
    }
    for (const key of this.staticKeys) {
      if (!next.has(key)) {
        const [hi, lo] = macParts(key);
        this.fdb.delete(hi, lo);
      }
    }
    this.staticKeys = next;
  }

  /** Each peer's counters since it was added, and seconds since it last sent (-1: never). */
  private peerStats(): { p: PeerState; counters: PeerCounters; rxIdleSeconds: number }[] {
    this.samplePeers();
    const now = nowSeconds();
    const blocks = this.workers.map((w) => w.counters);
    return [...this.peers.values()].map((p) => ({
      p,
      counters: subPeerCounters(readPeerCounters(blocks, p.index), p.baseline),
      rxIdleSeconds: p.lastRx >= 0 ? now - p.lastRx : -1,
    }));
  }

  /** Counters, tables and settings. */
  status(): VtepStatus {
    const perWorker = this.workers.map((w) => readCounters(w.counters));
    const total = sumCounters(perWorker);
    const byIndex = new Map([...this.peers.values()].map((p) => [p.index, p.address]));
    return {
      name: this.tapName,
      vni: this.config.vni,
      port: this.config.port,
      local: this.config.local,
      mtu: this.mtu,
      mac: this.tapMac,
      workers: this.workers.length,
      offload: this.offload,
      ...(this.uplink ? { uplink: this.uplink } : {}),
      uptimeSeconds: Math.round((Date.now() - this.started) / 1000),
      peers: this.peerStats().map(({ p, counters, rxIdleSeconds }) => ({
        address: p.address,
        index: p.index,
        flood: p.flood,
        learned: p.learned,
        ...(this.uplink && p.mac ? { nextHopMac: p.mac } : {}),
        counters,
        rxIdleSeconds,
      })),
      fdb: this.fdb.entries().map((e) => ({ mac: e.mac, peer: byIndex.get(e.peer) ?? `#${e.peer}`, static: e.static, ageSeconds: e.ageSeconds, ...(e.held ? { held: true } : {}) })),
      fdbLimits: {
        statics: this.fdb.statics,
        staticCapacity: this.fdb.staticCapacity,
        learned: this.fdb.learned(),
        learnedCapacity: this.fdb.learnedCapacity,
        learnedPerPeer: this.fdb.learnedPerPeer,
        refusedFull: this.fdb.refusals.full,
        refusedPeerFull: this.fdb.refusals.peerFull,
        held: this.fdb.refusals.held,
        moves: this.fdb.refusals.moves,
      },
      total,
      drops: dropsByReason(total),
      stages: stageCosts(total),
      workerRestarts: this.workers.reduce((n, w) => n + w.restarts, 0),
      cpuPlacement: this.config.cpuPlacement,
      ...(this.config.cpuPlacement === 'local' ? { pinCpus: this.workers.map((w) => w.init.pinCpu ?? -1) } : {}),
      ...testSlowdownStatus(process.env),
      ...(this.controlStatus ? { control: this.controlStatus() } : {}),
      perWorker,
    };
  }

  private metrics(): string {
    const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
    const restarts = ['# HELP vxtap_worker_restarts_total Times a worker ended unasked and was restarted.', '# TYPE vxtap_worker_restarts_total counter'];
    for (const w of this.workers) restarts.push(`vxtap_worker_restarts_total{instance="${esc(this.tapName)}",worker="${w.init.index}"} ${w.restarts}`);
    return (
      renderPrometheus(
        this.tapName,
        this.workers.map((w) => readCounters(w.counters)),
        {
          fdb_entries: this.fdb.size,
          fdb_learned_entries: this.fdb.learned(),
          fdb_learn_refused: this.fdb.refusals.full + this.fdb.refusals.peerFull + this.fdb.refusals.held,
          peers: this.peers.size,
          workers: this.workers.length,
        },
        this.peerStats().map(({ p, counters, rxIdleSeconds }) => ({ address: p.address, counters, rxIdleSeconds })),
      ) +
      restarts.join('\n') +
      '\n'
    );
  }

  /** The control socket: /stats (also /), /metrics, /fdb; with VXTAP_TEST_HOOKS=1 also POST /test/fail-worker. */
  private handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    const [url, query = ''] = (req.url ?? '/').split('?');
    if (req.method === 'POST' && url === '/test/fail-worker' && process.env[TEST_HOOKS_ENV] === '1') {
      const q = new URLSearchParams(query);
      const index = Number(q.get('worker') ?? 0);
      const how = q.get('how') === 'exit' ? 'exit' : 'throw';
      const slot = this.workers.at(index);
      const port = slot?.port;
      if (slot === undefined || port === undefined) {
        res.writeHead(404);
        res.end(`no running worker ${index}\n`);
        return;
      }
      this.injectFault(slot, port, how);
      res.writeHead(202);
      res.end(`worker ${index} told to ${how}\n`);
    } else if (req.method === 'POST' && url === '/leave') {
      if (!this.onLeave) {
        res.writeHead(409);
        res.end('nothing to leave: this instance holds no lease (static peers); stop it with SIGTERM\n');
        return;
      }
      res.writeHead(202);
      res.end('releasing the lease and stopping\n');
      this.onLeave();
    } else if (url === '/stats' || url === '/') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(this.status()));
    } else if (url === '/metrics') {
      this.metricsHandler(req, res);
    } else if (url === '/fdb') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(this.status().fdb));
    } else {
      res.writeHead(404);
      res.end();
    }
  };

  /** The TCP listener (--metrics): /metrics only; tables and settings stay on the root-only unix socket. */
  private metricsHandler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(this.metrics());
    } else {
      res.writeHead(404);
      res.end();
    }
  };

  /**
   * Test hook (VXTAP_TEST_HOOKS=1 only): make a worker fail as a bug would, by
   * throwing from its loop or ending its thread, to exercise the supervision.
   */
  private injectFault(slot: WorkerSlot, port: MessagePort, how: 'throw' | 'exit'): void {
    log(`test hook: worker ${slot.init.index} told to ${how}`);
    port.postMessage({ type: 'fault', how });
    Atomics.add(slot.control, CTL_SEQ, 1);
    native().eventfdSignal(slot.wakeFd);
  }

  private async serveStats(sock: string): Promise<void> {
    mkdirSync(path.dirname(sock), { recursive: true, mode: 0o755 });
    const server = createServer(this.handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sock, () => resolve());
    });
    this.undo.push(`control socket ${sock}`, async () => {
      await new Promise<void>((r) => server.close(() => r()));
      removeSocketFile(sock);
    });
    // connecting needs write permission: only root (the owner) reads the tables
    chmodSync(sock, 0o600);
    this.server = server;
  }

  private async serveMetrics(hostPort: string): Promise<void> {
    const i = hostPort.lastIndexOf(':');
    const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(hostPort.slice(i + 1));
    const server = createServer(this.metricsHandler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new ConfigError('metrics', `cannot listen on ${hostPort}: ${err.message}`)));
      server.listen(port, host, () => resolve());
    });
    this.undo.push(`metrics listener ${hostPort}`, () => new Promise<void>((r) => server.close(() => r())));
    this.metricsServer = server;
  }

  /** Stop the workers, then undo everything start created (the TAP disappears, the socket goes). Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.ageTimer) clearInterval(this.ageTimer);
      if (this.uplinkTimer) clearInterval(this.uplinkTimer);
      for (const w of this.workers) {
        if (w.restartTimer) clearTimeout(w.restartTimer);
        Atomics.store(w.control, CTL_STOP, 1);
        try {
          native().eventfdSignal(w.wakeFd);
        } catch {
          /* closed */
        }
      }
      // steering off before the uplink TAP goes, so no VXLAN is sent into the void
      await this.steering?.close();
      if (this.nftTable) await unsteerVxlan(this.nftTable);
      await Promise.all(this.workers.map((w) => Promise.race([w.exited, new Promise<void>((r) => setTimeout(r, 3000))]).then(() => w.worker?.terminate())));
      for (const f of await this.undo.run()) log(`shutdown: ${f}`);
    })();
    return this.stopping;
  }
}

function closeQuietly(fd: number): void {
  try {
    native().close(fd);
  } catch {
    /* already closed */
  }
}

/**
 * Open and bind one UDP socket of the plan, its undo step recorded (none without
 * `undo`: the caller closes it); EADDRINUSE names the config field.
 */
function openSocket(spec: Omit<SocketSpec, 'reusePort' | 'sndbuf'> & { reusePort: boolean; sndbuf?: number }, undo?: UndoList): number {
  try {
    const { field: _field, ...opts } = spec;
    const fd = native().udpOpen(opts);
    undo?.push(`UDP socket ${spec.address}:${spec.port}`, () => closeQuietly(fd));
    return fd;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'EADDRINUSE') {
      const choose = spec.field === 'port' ? 'choose another --port or --local' : 'choose another --srcport-range or --local';
      throw new ConfigError(spec.field, `${e.message}: ${spec.address}:${spec.port} is in use by another socket (another vxtap instance, kernel VXLAN or flanneld?); ${choose}`);
    }
    throw err;
  }
}

/**
 * The receive sockets, one per worker, in one SO_REUSEPORT group that must be
 * ours alone. The kernel lets another process of the same user join the group
 * (a second `vxtap up` under another name on the same --local and --port), and
 * would then hand it a share of our datagrams. A probe bound without
 * SO_REUSEPORT fails on any socket already there, so we never join a group in
 * use; after binding, /proc/net/udp must show no one else on the binding (two
 * instances starting at the same moment: at least the later one refuses).
 */
function openReceivePort(spec: SocketSpec, workers: number, undo: UndoList): number[] {
  // no undo step for the probe: its number is free again at once (the next socket takes it)
  closeQuietly(openSocket({ address: spec.address, port: spec.port, reusePort: false, field: spec.field }));
  const fds = Array.from({ length: workers }, () => openSocket(spec, undo));
  // /proc/net/udp6 has no scope: fe80::1%eth0 and fe80::1%eth1 would look like one binding
  if (spec.address.includes('%')) return fds;
  const own = new Set(fds.map((fd) => fstatSync(fd).ino));
  const others = foreignSharers(udpSockets(), own);
  if (others.length > 0) {
    throw new ConfigError(
      spec.field,
      `${spec.address}:${spec.port} is also bound by ${others.length} socket(s) of another process (another vxtap instance on this --local and --port?); it would take a share of this VTEP's datagrams; choose another --port or --local`,
    );
  }
  return fds;
}

/** What the planner needs to know, read from the host (no changes made). */
async function probeHost(config: VtepConfig): Promise<HostFacts> {
  // no child processes on the way to a forwarding VTEP when they can be avoided:
  // the interface list and PATH are read in-process (ip is asked only for an
  // address on a link that is down, which Node's list leaves out)
  const facts: HostFacts = { underlay: underlayOf(config.local) ?? (await deviceOfAddress(config.local)), nft: onPath('nft'), netns: currentNetns(), cpus: availableParallelism() };
  if (config.uplinkBridge) {
    facts.uplinkKind = await linkKind(config.uplinkBridge);
    if (facts.uplinkKind === 'bridge') {
      try {
        facts.uplinkMac = native().ifGetMac(config.uplinkBridge);
      } catch {
        /* the planner refuses without it */
      }
    }
  }
  return facts;
}

/** The interface holding `address` and its MTU, from Node's interface list (links that are up). */
function underlayOf(address: string): { dev: string; mtu: number } | undefined {
  const want = normalizeAddress(address);
  for (const [dev, addrs] of Object.entries(networkInterfaces())) {
    if (!addrs?.some((a) => normalizeAddress(a.address.replace(/%.*$/, '')) === want)) continue;
    try {
      return { dev, mtu: Number(readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8')) };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Whether an executable `cmd` is on PATH (no shell spawned). */
function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    try {
      accessSync(path.join(dir || '.', cmd), fsConstants.X_OK);
      return true;
    } catch {
      /* not here */
    }
  }
  return false;
}

/**
 * The nft commands of the uplink's receive steering (one per line, for an owned
 * table): VXLAN for `local`:`port` arriving on `bridge`, above STEER_MIN_BYTES
 * and not an outer fragment, forwarded to the uplink TAP `to`.
 */
export function steeringCommands(table: string, bridge: string, local: string, port: number, to: string): string[] {
  return [
    `add chain netdev ${table} rx { type filter hook ingress device "${bridge}" priority -100; }`,
    `add rule netdev ${table} rx ip daddr ${local} udp dport ${port} ip frag-off & 0x3fff == 0 meta length > ${STEER_MIN_BYTES} fwd to "${to}"`,
  ];
}

/**
 * Turn on the kernel's own announcements for the TAP: a gratuitous ARP per IPv4
 * address (arp_notify) and an unsolicited neighbour advertisement per IPv6
 * address (ndisc_notify) when the link comes up or its MAC is set. They leave
 * through the TAP, so the workers flood them to every peer.
 */
function enableAnnouncements(dev: string): void {
  for (const f of [`/proc/sys/net/ipv4/conf/${dev}/arp_notify`, `/proc/sys/net/ipv6/conf/${dev}/ndisc_notify`]) {
    try {
      writeFileSync(f, '1');
    } catch {
      /* IPv6 disabled, or /proc/sys read-only: no announcement of that family */
    }
  }
}

/** Fetch a running instance's status over its stats socket. */
export async function fetchStatus(sock: string, what: 'stats' | 'metrics' | 'fdb' = 'stats'): Promise<string> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path: `/${what}`, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`timeout talking to ${sock}`)));
    req.end();
  });
}
