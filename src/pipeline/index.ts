/**
 * The worker's packet path as one pipeline of stages.
 *
 * Design note. A pass reads one batch from each device and hands it down a
 * chain of stages; the currency between stages is the one `Batch` object
 * (src/dataplane/batch.ts): frames or datagrams in a slab, with sizes, peers,
 * sender handles, address records and GSO sizes per entry. The stages:
 *
 * - plain (`plain.ts`): one MTU-sized frame per TAP read and per datagram; the
 *   engine writes the VXLAN header in the read slot's headroom (encap) or
 *   points past it (decap).
 * - offload (`offload.ts`): TSO super-frames from a vnet_hdr TAP are cut into
 *   wire-size VXLAN segments (txOffload) and sent as UDP GSO messages; GRO runs
 *   are split and their TCP segments re-coalesced (rxOffload) into GSO
 *   super-frames for the TAP.
 * - uplink (`uplink.ts`), in front of offload: frames the engine selects are
 *   wrapped whole (txTunnel) and written to the uplink port; the rest go to the
 *   offload stage, run by run in batch order. Receive reads the uplink before
 *   the socket and keeps arrival order within a read.
 *
 * Who does what: the devices (src/tap, src/transport, src/uplink) move bytes;
 * the byte kernels (the addon) touch every byte; the engine
 * (src/dataplane/engine.ts) decides (peers, flooding, learning, drops by
 * reason); accounting (src/dataplane/accounting.ts) counts what the devices did.
 * Nothing here allocates per packet; every buffer is allocated when the
 * pipeline is built. A test-only knob (`slowdown.ts`, VXTAP_TEST_SLOWDOWN_PCT)
 * makes `pass()` spin after each batch for a set share of its time. With fakes for the devices the whole path runs in a unit
 * test (test/unit/pipeline.test.ts), no root needed.
 */
import { native } from '../native/index.js';
import { Accounting } from '../dataplane/accounting.js';
import type { Batch } from '../dataplane/batch.js';
import { Engine, type PeerInfo, type UplinkOptions, type WorkerEvent } from '../dataplane/engine.js';
import type { FdbView } from '../dataplane/fdb.js';
import type { FrameQueue } from '../tap/index.js';
import type { Transport } from '../transport/index.js';
import type { UplinkPort } from '../uplink/index.js';
import { PlainPath } from './plain.js';
import { OffloadPath } from './offload.js';
import { UplinkPath } from './uplink.js';
import { spinAfterBatch, TEST_SLOWDOWN_MAX_PCT } from './slowdown.js';

/** What shapes a worker's pipeline (the worker's init without its fds and shared blocks). */
export interface PipelineConfig {
  /** Worker index (spreads the uplink's outer IPv4 IDs). */
  index: number;
  vni: number;
  /** Frames per TAP read. */
  batchSize: number;
  /** Bytes a TAP read may return. */
  tapSlotLen: number;
  /** Bytes a UDP receive may return. */
  udpSlotLen: number;
  learning: boolean;
  acceptUnknownPeers: boolean;
  ownMac: Uint8Array;
  maxUnfragmentedPayload: number;
  /** TAP MTU. */
  mtu: number;
  /** vnet_hdr TAP with TSO + UDP GSO/GRO (the offload stage); else the plain stage. */
  offload: boolean;
  /** Largest UDP payload of one GSO message (65507). */
  maxGsoBytes: number;
  /** Uplink transmit: what the outer headers need (with an uplink port). */
  uplink?: UplinkOptions;
  /** The VXLAN UDP port (what uplink receive accepts). */
  vxlanPort: number;
  peers: PeerInfo[];
  /**
   * Test-only (VXTAP_TEST_SLOWDOWN_PCT, see slowdown.ts): after each batch, busy-wait
   * this percent of the batch's wall time. 0 or absent: off.
   */
  testSlowdownPct?: number;
}

/** A worker's devices. */
export interface Devices {
  tap: FrameQueue;
  transport: Transport;
  uplink?: UplinkPort;
}

/** What the pipeline shares with its worker. */
export interface PipelineContext {
  fdb: FdbView;
  counters: Float64Array;
  peerCounters: Float64Array;
  /** Post an event to the supervisor (learn, unknown peer). */
  post: (ev: WorkerEvent) => void;
  /** Seconds clock. */
  now: () => number;
}

/** Devices a pass reads (a bit set): after a poll, only those poll found readable. */
export const READY_TAP = 1;
export const READY_UPLINK = 2;
export const READY_SOCKET = 4;
export const READY_ALL = READY_TAP | READY_UPLINK | READY_SOCKET;

/** One path of the pipeline: what a pass does with each device's batch. */
export interface Path {
  /**
   * The most frames (TAP, uplink) or datagrams (socket) one read takes. A read
   * that returned fewer found its device empty (reads go on until EAGAIN), so
   * the pass after it need not ask that device again before a poll.
   */
  readonly batchLimits: { tap: number; uplink: number; socket: number };
  /** Read the TAP and send what it gave; returns the frames read. */
  transmit(): number;
  /** Read the uplink port (when it receives) and write what it gave to the TAP; returns the frames read. */
  receiveUplink(): number;
  /** Receive datagrams and write their frames to the TAP; returns the datagrams received. */
  receive(): number;
}

/** Sends a datagram batch through the transport and accounts the result. */
export class Sender {
  constructor(
    private readonly transport: Transport,
    private readonly acct: Accounting,
  ) {}
  send(tx: Batch): void {
    if (tx.count === 0) return;
    const consumed = this.transport.send(tx.socks, tx.bufs, tx.offsets, tx.sizes, tx.count, tx.addrs, tx.gso, tx.errs);
    this.acct.sent(tx, consumed);
  }
}

/** A built pipeline: `pass()` moves one batch per device; 0 means every device was idle. */
export class Pipeline {
  constructor(
    readonly engine: Engine,
    readonly acct: Accounting,
    private readonly path: Path,
    /** Test-only slowdown, percent of each batch's wall time (0: off). */
    readonly testSlowdownPct = 0,
  ) {}

  /**
   * True when the last pass left every device it read empty (each read returned
   * less than a full batch): the worker may poll now instead of making one more
   * pass only to find nothing. Each wasted read is a syscall, ~1 us in this VM.
   */
  drained = true;

  /**
   * One pass over the devices in `ready` (default all): TAP to underlay, then the
   * uplink (before the socket: a flow's large segments before its small tail),
   * then the socket. Returns what was read; sets `drained`.
   */
  pass(ready = READY_ALL): number {
    if (this.testSlowdownPct > 0) return this.slowedPass(ready);
    const n = ready & READY_TAP ? this.path.transmit() : 0;
    const u = ready & READY_UPLINK ? this.path.receiveUplink() : 0;
    const m = ready & READY_SOCKET ? this.path.receive() : 0;
    this.setDrained(n, u, m);
    return n + u + m;
  }

  /** pass() with the test-only slowdown: each device's batch is timed and followed by a spin (an idle read is not). */
  private slowedPass(ready: number): number {
    const pct = this.testSlowdownPct;
    let t0 = performance.now();
    const n = ready & READY_TAP ? this.path.transmit() : 0;
    let t1 = performance.now();
    if (n > 0) t1 = spinAfterBatch(t0, t1, pct);
    t0 = t1;
    const u = ready & READY_UPLINK ? this.path.receiveUplink() : 0;
    t1 = performance.now();
    if (u > 0) t1 = spinAfterBatch(t0, t1, pct);
    t0 = t1;
    const m = ready & READY_SOCKET ? this.path.receive() : 0;
    if (m > 0) spinAfterBatch(t0, performance.now(), pct);
    this.setDrained(n, u, m);
    return n + u + m;
  }

  /** Drained unless a read filled its whole batch (TAP frames, uplink frames, socket datagrams). */
  private setDrained(n: number, u: number, m: number): void {
    const lim = this.path.batchLimits;
    this.drained = n < lim.tap && (lim.uplink === 0 || u < lim.uplink) && m < lim.socket;
  }

  /** Apply a new peer set (between passes). */
  setPeers(peers: PeerInfo[]): void {
    this.engine.setPeers(peers);
  }
}

/** Build a worker's pipeline over its devices. */
export function buildPipeline(cfg: PipelineConfig, dev: Devices, ctx: PipelineContext): Pipeline {
  if (cfg.batchSize < 1) throw new RangeError('batchSize must be at least 1');
  const slow = cfg.testSlowdownPct ?? 0;
  if (!Number.isInteger(slow) || slow < 0 || slow > TEST_SLOWDOWN_MAX_PCT) throw new RangeError(`testSlowdownPct must be an integer 0..${TEST_SLOWDOWN_MAX_PCT}`);
  native(); // the byte kernels: fail here, not in the first pass
  const acct = new Accounting(ctx.counters, ctx.peerCounters);
  const sender = new Sender(dev.transport, acct);
  const engine = new Engine({
    vni: cfg.vni,
    fdb: ctx.fdb,
    counters: ctx.counters,
    peerCounters: ctx.peerCounters,
    txFds: dev.transport.senders,
    txFdsNoDf: dev.transport.sendersNoDf,
    learning: cfg.learning,
    acceptUnknownPeers: cfg.acceptUnknownPeers,
    ownMac: cfg.ownMac,
    maxUnfragmentedPayload: cfg.maxUnfragmentedPayload,
    rxSlotLen: cfg.udpSlotLen,
    tapSlotLen: cfg.tapSlotLen,
    tapMtu: cfg.offload ? cfg.mtu : 0,
    uplink: dev.uplink !== undefined ? cfg.uplink : undefined,
    post: ctx.post,
    flush: (tx) => sender.send(tx),
    now: ctx.now,
  });
  engine.setPeers(cfg.peers);
  let path: Path;
  if (!cfg.offload) path = new PlainPath(cfg, dev, engine, acct, sender);
  else {
    const offload = new OffloadPath(cfg, dev, engine, acct, sender);
    path = dev.uplink !== undefined && cfg.uplink !== undefined ? new UplinkPath(cfg, dev, dev.uplink, cfg.uplink, engine, acct, offload) : offload;
  }
  return new Pipeline(engine, acct, path, cfg.testSlowdownPct ?? 0);
}

export { PlainPath, OffloadPath, UplinkPath };
export { TEST_SLOWDOWN_ENV, TEST_SLOWDOWN_MAX_PCT, testSlowdownFromEnv } from './slowdown.js';
