/**
 * The VTEP's packet logic, without I/O (a sans-IO core in the boringtun sense):
 * `encap` turns a batch of frames read from the TAP into a batch of VXLAN
 * datagrams to send, `decap` turns a batch of received datagrams into a batch of
 * frames to write to the TAP. The worker loop (worker.ts) moves the batches
 * between the devices and this core; unit tests drive it with plain buffers.
 *
 * Hot-path rules: nothing here allocates per packet (learning events and unknown
 * peers, which post a message, are the marked exceptions and are rate-limited);
 * every drop is a counter, never a throw.
 *
 * Buffer preconditions: every frame handed to `encap` has VXLAN_HLEN bytes of
 * headroom in front of it (offsets[i] >= VXLAN_HLEN, bytes before it are ours to
 * overwrite). `decap` leaves the inner frame in place and points at it.
 */
import { ADDR_IP, ADDR_LEN, ADDR_PORT, TUNNEL_TEMPLATE_STRIDE, VNET_HDR_LEN } from '../native/index.js';
import { flowHash, hashToIndex } from '../wire/flowhash.js';
import { checkVxlan, writeVxlanHeader, VXLAN_HLEN } from '../wire/vxlan.js';
import { recordKey, sameAddress } from '../wire/addr.js';
import { pseudoSumV4, pseudoSumV6 } from '../wire/checksum.js';
import { macHi, macLo } from '../wire/mac.js';
import { FdbView, FDB_MISS, MAX_PEERS } from './fdb.js';
import { C, P, PEER_STRIDE } from './stats.js';
import { TokenBucket } from './ratelimit.js';
import type { Batch } from './batch.js';

/** Per-frame metadata a byte kernel computed while parsing the frame (txOffload's frameHash/frameDf). */
export interface FrameMeta {
  /** Flow hash of each frame (src/wire/flowhash.ts's function). */
  hash: Uint32Array;
  /** 1 when the frame's DF bit is set (IPv6: 1), else 0. */
  df: Uint8Array;
}

/** A peer as the workers know it. */
export interface PeerInfo {
  /** Stable index (FDB values refer to it). */
  index: number;
  /** ADDR_LEN-byte address record, port = the VXLAN port. */
  record: Uint8Array;
  flood: boolean;
  /** With an uplink: the underlay next hop's MAC (6 bytes) once the kernel resolved it. */
  mac?: Uint8Array;
}

/** Uplink transmit (see VtepConfig.uplinkBridge): what the outer headers need. */
export interface UplinkOptions {
  /** Source MAC of outer frames: the bridge's own, so replies reach the host. */
  srcMac: Uint8Array;
  /** Local underlay IPv4 address (4 bytes). */
  srcIp: Uint8Array;
  /** First source port; the flow hash picks within the span of txFds. */
  srcPortMin: number;
  /** Largest outer IPv4 packet that crosses the underlay whole (its MTU). */
  maxOuterIp: number;
  /** Outer DF: 0 unset, 1 set, 2 copied from the inner IPv4 header. */
  dfMode: 0 | 1 | 2;
}

/** Messages a worker posts to the main thread. */
export type WorkerEvent = { type: 'learn'; hi: number; lo: number; peer: number } | { type: 'unknown-peer'; record: Uint8Array };

export interface EngineOptions {
  vni: number;
  fdb: FdbView;
  counters: Float64Array;
  /** Per-peer counters (PEER_STRIDE per peer index, see stats.ts); default: private. */
  peerCounters?: Float64Array;
  /** Send sockets by source-port index (DF per the df option). */
  txFds: Int32Array;
  /** With df 'inherit': sockets without DF, same indices (else empty). */
  txFdsNoDf?: Int32Array;
  learning: boolean;
  acceptUnknownPeers: boolean;
  /** The TAP's own MAC: frames from peers with this source are loops. */
  ownMac: Uint8Array;
  /** Largest UDP payload that fits the underlay MTU unfragmented. */
  maxUnfragmentedPayload: number;
  /** Receive slot size: a datagram reported larger was truncated. */
  rxSlotLen: number;
  /** TAP read slot size: a frame reported larger was truncated (default: no limit). */
  tapSlotLen?: number;
  /** TAP MTU: on the offload path, larger TCP frames are handed over as GSO super-frames. */
  tapMtu?: number;
  /** Uplink transmit, when configured. */
  uplink?: UplinkOptions;
  /** Post an event to the main thread (rate-limited by the engine). */
  post: (ev: WorkerEvent) => void;
  /** Called when the tx batch is full mid-encap; must send and reset it. */
  flush: (tx: Batch) => void;
  /** Seconds clock (for ageing marks and rate limits). */
  now: () => number;
}

/**
 * With an uplink: frames up to this size (not GSO) take the batched socket path
 * while they lead a batch; larger ones are worth one uplink write each.
 */
const SOCKET_FRAME_MAX = 1024;

/** Minimum seconds between two learn events for one MAC (or unknown-peer events for one source). */
const LEARN_REPOST_SECONDS = 1;
/**
 * Learn events one worker posts per second (and burst): random source MACs cost
 * at most this many messages, whatever the packet rate. A peer at its share of
 * the table costs none (FdbView.learnFull).
 */
const LEARN_EVENTS_PER_SECOND = 500;
/** Unknown-peer events one worker posts per second (and burst). */
const UNKNOWN_EVENTS_PER_SECOND = 20;
/** Entries of the direct-mapped "recently reported" caches (power of two). */
const RECENT_SLOTS = 1024;

/** The per-worker packet core. */
export class Engine {
  private readonly vni: number;
  private readonly fdb: FdbView;
  private readonly c: Float64Array;
  /** Per-peer counters: PEER_STRIDE slots per peer index. */
  private readonly pc: Float64Array;
  /** Peer of every datagram of the last checkSources batch, -1 when mixed or none. */
  private batchPeer = -1;
  private readonly txFds: Int32Array;
  private readonly txFdsNoDf: Int32Array | undefined;
  private readonly span: number;
  private readonly learning: boolean;
  private readonly acceptUnknown: boolean;
  private readonly ownHi: number;
  private readonly ownLo: number;
  private readonly maxPayload: number;
  private readonly rxSlotLen: number;
  private readonly tapSlotLen: number;
  private readonly tapMtu: number;
  private readonly post: (ev: WorkerEvent) => void;
  private readonly flush: (tx: Batch) => void;
  private readonly now: () => number;

  private readonly uplink: UplinkOptions | undefined;
  /** Outer header templates by peer index (TUNNEL_TEMPLATE_STRIDE bytes each). */
  private templates = new Uint8Array(0);
  /** By peer index: 1 when its next-hop MAC is known (uplink usable). */
  private uplinkOk = new Uint8Array(0);
  /** By peer index: second of the last frame sent through the socket path. */
  private lastSocket = new Float64Array(0);
  /** By peer index: the selectTunnel call that last saw it. */
  private peerBatch = new Float64Array(0);
  private batchSeq = 0;
  private peers: (PeerInfo | undefined)[] = [];
  private floodList: PeerInfo[] = [];
  /** source key -> peers with that key (IPv6 keys may collide) */
  private bySource = new Map<number, PeerInfo[]>();
  /** Rate limits: direct-mapped caches of recently reported MACs / sources (no allocation), and token buckets. */
  private readonly recentHi = new Int32Array(RECENT_SLOTS).fill(-1);
  private readonly recentLo = new Int32Array(RECENT_SLOTS);
  private readonly recentAt = new Float64Array(RECENT_SLOTS);
  private readonly recentSrc = new Float64Array(RECENT_SLOTS).fill(-1);
  private readonly recentSrcAt = new Float64Array(RECENT_SLOTS);
  private readonly learnBucket = new TokenBucket(LEARN_EVENTS_PER_SECOND, LEARN_EVENTS_PER_SECOND);
  private readonly unknownBucket = new TokenBucket(UNKNOWN_EVENTS_PER_SECOND, UNKNOWN_EVENTS_PER_SECOND);

  constructor(o: EngineOptions) {
    this.vni = o.vni;
    this.fdb = o.fdb;
    this.c = o.counters;
    this.pc = o.peerCounters ?? new Float64Array(MAX_PEERS * PEER_STRIDE);
    this.txFds = o.txFds;
    this.txFdsNoDf = o.txFdsNoDf && o.txFdsNoDf.length ? o.txFdsNoDf : undefined;
    this.span = o.txFds.length;
    this.learning = o.learning;
    this.acceptUnknown = o.acceptUnknownPeers;
    this.ownHi = macHi(o.ownMac, 0);
    this.ownLo = macLo(o.ownMac, 0);
    this.maxPayload = o.maxUnfragmentedPayload;
    this.rxSlotLen = o.rxSlotLen;
    this.tapSlotLen = o.tapSlotLen ?? Infinity;
    this.tapMtu = o.tapMtu ?? 0;
    this.uplink = o.uplink;
    this.post = o.post;
    this.flush = o.flush;
    this.now = o.now;
  }

  /** Replace the peer set (a control-plane message). */
  setPeers(peers: PeerInfo[]): void {
    const byIndex: (PeerInfo | undefined)[] = [];
    const bySource = new Map<number, PeerInfo[]>();
    for (const p of peers) {
      byIndex[p.index] = p;
      const key = recordKey(p.record, 0);
      const list = bySource.get(key);
      if (list) list.push(p);
      else bySource.set(key, [p]);
    }
    this.peers = byIndex;
    this.floodList = peers.filter((p) => p.flood);
    this.bySource = bySource;
    this.recentSrc.fill(-1);
    if (this.uplink) this.buildTemplates(byIndex.length);
  }

  /** Outer Ethernet/IPv4/UDP/VXLAN templates for txTunnel (control-plane time only). */
  private buildTemplates(n: number): void {
    const u = this.uplink;
    if (u === undefined) return;
    const t = new Uint8Array(Math.max(1, n) * TUNNEL_TEMPLATE_STRIDE);
    const ok = new Uint8Array(n);
    const last = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const p = this.peers[i];
      if (!p || !p.mac || p.record[0] !== 4) continue;
      const o = i * TUNNEL_TEMPLATE_STRIDE;
      t.set(p.mac, o);
      t.set(u.srcMac, o + 6);
      t[o + 12] = 0x08; // IPv4
      t[o + 14] = 0x45;
      t[o + 22] = 64; // TTL
      t[o + 23] = 17; // UDP
      t.set(u.srcIp, o + 26);
      t.set(p.record.subarray(ADDR_IP, ADDR_IP + 4), o + 30);
      t[o + 36] = p.record[ADDR_PORT];
      t[o + 37] = p.record[ADDR_PORT + 1];
      writeVxlanHeader(t, o + 42, this.vni);
      ok[i] = 1;
      last[i] = i < this.lastSocket.length ? this.lastSocket[i] : 0;
    }
    this.templates = t;
    this.uplinkOk = ok;
    this.lastSocket = last;
    this.peerBatch = new Float64Array(n);
  }

  /** The uplink's outer header templates (for txTunnel). */
  get tunnelTemplates(): Uint8Array {
    return this.templates;
  }

  /**
   * Uplink transmit, step 1: for frames 0..count-1 of a vnet_hdr TAP batch, sel[i]
   * = the peer index when the frame is unicast to a peer whose next hop is known,
   * else -1 (flood, unknown peer, no MAC yet: the socket path). srcPort[i] = the
   * flow's source port. Once a second per peer one frame takes the socket path
   * anyway, so the kernel keeps the peer's neighbour entry fresh (it never sees
   * the uplink's frames). Returns how many were selected.
   */
  selectTunnel(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number, sel: Int32Array, srcPort: Uint16Array): number {
    const u = this.uplink;
    if (!u) {
      sel.fill(-1, 0, count);
      return 0;
    }
    let now = -1;
    let chosen = 0;
    const batch = ++this.batchSeq;
    for (let i = 0; i < count; i++) {
      sel[i] = -1;
      const len = sizes[i] - VNET_HDR_LEN;
      if (len < 14) continue;
      const o = offsets[i] + VNET_HDR_LEN;
      const peer = this.destination(bufs, o);
      if (peer === undefined || this.uplinkOk[peer.index] !== 1) continue;
      if (now < 0) now = this.now();
      // A peer's frames take the socket path only until its first uplink frame of
      // the batch, so a batch splits into few runs (the worker sends runs in batch
      // order, one syscall each): small frames (one write each on the uplink,
      // batched on the socket) and, once a second, one frame that makes the kernel
      // refresh the peer's neighbour entry.
      if (this.peerBatch[peer.index] !== batch) {
        if (bufs[offsets[i] + 1] === 0 && len <= SOCKET_FRAME_MAX) {
          this.lastSocket[peer.index] = now;
          continue;
        }
        if (now - this.lastSocket[peer.index] >= 1) {
          this.lastSocket[peer.index] = now;
          continue;
        }
      }
      this.peerBatch[peer.index] = batch;
      sel[i] = peer.index;
      srcPort[i] = u.srcPortMin + this.portIndex(bufs, o, len);
      chosen++;
    }
    return chosen;
  }

  /** The peer index of the source record at addrs[off..], or -1. */
  private sourcePeer(addrs: Uint8Array, off: number): number {
    const list = this.bySource.get(recordKey(addrs, off));
    if (list === undefined) return -1;
    if (list.length === 1 && addrs[off] === 4) return list[0].index;
    for (const p of list) if (sameAddress(p.record, 0, addrs, off)) return p.index;
    return -1;
  }

  private push(tx: Batch, fd: number, off: number, size: number, gso: number, peer: PeerInfo): void {
    if (tx.count === tx.socks.length) this.flush(tx);
    const k = tx.count++;
    tx.socks[k] = fd;
    tx.offsets[k] = off;
    tx.sizes[k] = size;
    tx.gso[k] = gso;
    tx.peers[k] = peer.index;
    tx.addrs.set(peer.record, k * ADDR_LEN);
  }

  /** The peer that holds the destination MAC of the frame at `o`; undefined means flood. */
  private destination(bufs: Uint8Array, o: number): PeerInfo | undefined {
    if ((bufs[o] & 1) !== 0) return undefined;
    const idx = this.fdb.lookup(macHi(bufs, o), macLo(bufs, o));
    return idx === FDB_MISS ? undefined : this.peers[idx];
  }

  /** The source port index (into txFds) of the inner flow of the frame at `o`. */
  private portIndex(bufs: Uint8Array, o: number, len: number): number {
    return this.span === 1 ? 0 : hashToIndex(flowHash(bufs, o, len), this.span);
  }

  /** The send socket (source port) for a flow of hash `hash` whose frame has DF `df`. */
  private socketForFlow(hash: number, df: boolean): number {
    const portIdx = this.span === 1 ? 0 : hashToIndex(hash, this.span);
    return this.txFdsNoDf !== undefined && !df ? this.txFdsNoDf[portIdx] : this.txFds[portIdx];
  }

  /** The send socket (source port) for the inner flow of the frame at `o`. */
  private socketFor(bufs: Uint8Array, o: number, len: number): number {
    const portIdx = this.portIndex(bufs, o, len);
    return this.txFdsNoDf !== undefined && !innerDf(bufs, o, len) ? this.txFdsNoDf[portIdx] : this.txFds[portIdx];
  }

  /**
   * Queue one datagram to `peer`, or to every flood peer when it is undefined.
   * Returns the number of flood copies, or -1 when there is nowhere to send it.
   */
  private queue(tx: Batch, fd: number, off: number, size: number, gso: number, peer: PeerInfo | undefined): number {
    if (peer !== undefined) {
      this.push(tx, fd, off, size, gso, peer);
      return 0;
    }
    const list = this.floodList;
    if (list.length === 0) return -1;
    for (let p = 0; p < list.length; p++) this.push(tx, fd, off, size, gso, list[p]);
    return list.length;
  }

  /**
   * Encapsulate frames 0..count-1 (at bufs[offsets[i]], sizes[i] bytes, each with
   * VXLAN_HLEN bytes of headroom) into `tx`.
   */
  encap(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number, tx: Batch): void {
    const c = this.c;
    const vni = this.vni;
    let bytes = 0;
    let flooded = 0;
    let frag = 0;
    let noPeer = 0;
    let trunc = 0;
    let short = 0;
    for (let i = 0; i < count; i++) {
      const o = offsets[i];
      const len = sizes[i];
      bytes += len;
      if (len > this.tapSlotLen) {
        trunc++; // larger than the read slot: only part of it is here
        continue;
      }
      if (len < 14) {
        short++; // not even an Ethernet header
        continue;
      }
      const h = o - VXLAN_HLEN;
      writeVxlanHeader(bufs, h, vni); // in the headroom
      const size = len + VXLAN_HLEN;
      if (size > this.maxPayload) frag++;
      const copies = this.queue(tx, this.socketFor(bufs, o, len), h, size, 0, this.destination(bufs, o));
      if (copies < 0) noPeer++;
      else flooded += copies;
    }
    c[C.tap_rx_packets] += count;
    c[C.tap_rx_bytes] += bytes;
    c[C.tx_flood_packets] += flooded;
    c[C.tx_fragmented] += frag;
    c[C.drop_no_peer] += noPeer;
    c[C.drop_truncated] += trunc;
    c[C.drop_short] += short;
  }

  /**
   * Decapsulate datagrams 0..count-1 (bufs[offsets[i]], sizes[i] bytes, sources in
   * addrs) into `out` (inner frames, in place).
   */
  decap(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number, addrs: Uint8Array, out: Batch): void {
    const c = this.c;
    const vni = this.vni;
    let bytes = 0;
    let short = 0;
    let trunc = 0;
    let flags = 0;
    let wrongVni = 0;
    let unknown = 0;
    let loops = 0;
    let n = out.count;
    let now = -1;
    const pc = this.pc;
    for (let i = 0; i < count; i++) {
      const o = offsets[i];
      const len = sizes[i];
      bytes += len;
      const peer = this.sourcePeer(addrs, i * ADDR_LEN);
      if (peer < 0) {
        if (!this.admitUnknown(addrs, i * ADDR_LEN)) {
          unknown++;
          continue;
        }
      } else {
        pc[peer * PEER_STRIDE + P.rx_packets]++;
        pc[peer * PEER_STRIDE + P.rx_bytes] += len;
      }
      let bad: string | null;
      if (len > this.rxSlotLen) {
        trunc++;
        bad = 'truncated';
      } else {
        bad = checkVxlan(bufs, o, len, vni);
        if (bad === 'short') short++;
        else if (bad === 'bad-flags') flags++;
        else if (bad !== null) wrongVni++;
      }
      const f = o + VXLAN_HLEN;
      if (bad === null && macHi(bufs, f + 6) === this.ownHi && macLo(bufs, f + 6) === this.ownLo) {
        loops++;
        bad = 'loop';
      }
      if (bad !== null) {
        if (peer >= 0) pc[peer * PEER_STRIDE + P.rx_drops]++;
        continue;
      }
      if (this.learning && peer >= 0 && (bufs[f + 6] & 1) === 0) {
        if (now < 0) now = this.now();
        this.learn(macHi(bufs, f + 6), macLo(bufs, f + 6), peer, now);
      }
      out.offsets[n] = f;
      out.sizes[n] = len - VXLAN_HLEN;
      out.peers[n] = peer;
      n++;
    }
    out.count = n;
    c[C.rx_packets] += count;
    c[C.rx_bytes] += bytes;
    c[C.drop_short] += short;
    c[C.drop_truncated] += trunc;
    c[C.drop_bad_flags] += flags;
    c[C.drop_wrong_vni] += wrongVni;
    c[C.drop_unknown_peer] += unknown;
    c[C.drop_loop] += loops;
  }

  /**
   * Decide where each message produced by txOffload goes and queue it. The
   * messages come from frames 0..count-1 of the vnet_hdr TAP batch (Ethernet
   * frame at offsets[i] + VNET_HDR_LEN); message k lies at msgOffsets[k] of the
   * slab (txOffload writes its output region's offsets slab-relative), `gso` its
   * UDP GSO segment size. `meta` (from txOffload, which parsed each frame) gives
   * each frame's flow hash and DF bit, so the engine does not parse it again;
   * without it the engine reads the headers itself.
   */
  encapMessages(
    bufs: Uint8Array,
    offsets: Uint32Array,
    sizes: Uint32Array,
    count: number,
    nmsg: number,
    msgOffsets: Uint32Array,
    msgSizes: Uint32Array,
    msgGso: Uint16Array,
    msgFrame: Uint32Array,
    segments: number,
    tx: Batch,
    meta?: FrameMeta,
  ): void {
    const c = this.c;
    let bytes = 0;
    let flooded = 0;
    let noPeer = 0;
    let frag = 0;
    for (let i = 0; i < count; i++) bytes += sizes[i] - VNET_HDR_LEN;
    let lastFrame = -1;
    let fd = 0;
    let peer: PeerInfo | undefined;
    for (let k = 0; k < nmsg; k++) {
      const i = msgFrame[k];
      if (i !== lastFrame) {
        // every message of one frame shares its flow and destination
        lastFrame = i;
        const o = offsets[i] + VNET_HDR_LEN;
        fd = meta !== undefined ? this.socketForFlow(meta.hash[i], meta.df[i] !== 0) : this.socketFor(bufs, o, sizes[i] - VNET_HDR_LEN);
        peer = this.destination(bufs, o);
      }
      const g = msgGso[k];
      if (g > this.maxPayload) {
        // segments larger than an unfragmented datagram (the TAP MTU was raised
        // past the underlay's): UDP GSO cannot fragment, so send each segment on
        // its own and let the kernel fragment it (or refuse it with DF set)
        for (let at = 0; at < msgSizes[k]; at += g) {
          const copies = this.queue(tx, fd, msgOffsets[k] + at, Math.min(g, msgSizes[k] - at), 0, peer);
          if (copies < 0) noPeer++;
          else flooded += copies;
          frag++;
        }
        continue;
      }
      if (g === 0 && msgSizes[k] > this.maxPayload) frag++;
      const copies = this.queue(tx, fd, msgOffsets[k], msgSizes[k], g, peer);
      if (copies < 0) noPeer++;
      else flooded += copies;
    }
    c[C.tap_rx_packets] += count;
    c[C.tap_rx_bytes] += bytes;
    c[C.tap_rx_segments] += segments;
    c[C.tx_flood_packets] += flooded;
    c[C.tx_fragmented] += frag;
    c[C.drop_no_peer] += noPeer;
  }

  /**
   * Check the sources of received (possibly GRO-coalesced) datagrams 0..count-1
   * before rxOffload: ok[i] = 1 for a peer (or an accepted unknown source),
   * peerOf[i] its index (-1 when unknown). Truncated datagrams are dropped.
   * `gso` (UDP GRO segment sizes) makes the per-peer packet counts wire packets;
   * without it each datagram or frame counts once.
   */
  checkSources(sizes: Uint32Array, count: number, addrs: Uint8Array, ok: Uint8Array, peerOf: Int32Array, gso?: Uint16Array): void {
    const pc = this.pc;
    let unknown = 0;
    let trunc = 0;
    let bytes = 0;
    let single = -2;
    for (let i = 0; i < count; i++) {
      const size = sizes[i];
      bytes += size;
      ok[i] = 0;
      const peer = this.sourcePeer(addrs, i * ADDR_LEN);
      peerOf[i] = peer;
      single = single === -2 || single === peer ? peer : -1;
      if (peer < 0) {
        if (!this.admitUnknown(addrs, i * ADDR_LEN)) {
          unknown++;
          continue;
        }
      } else {
        const g = gso === undefined ? 0 : gso[i];
        pc[peer * PEER_STRIDE + P.rx_packets] += g > 0 ? Math.ceil(size / g) : 1;
        pc[peer * PEER_STRIDE + P.rx_bytes] += size;
      }
      if (size > this.rxSlotLen) {
        trunc++;
        if (peer >= 0) pc[peer * PEER_STRIDE + P.rx_drops]++;
        continue;
      }
      ok[i] = 1;
    }
    this.batchPeer = single < 0 ? -1 : single;
    this.c[C.rx_bytes] += bytes;
    this.c[C.drop_unknown_peer] += unknown;
    this.c[C.drop_truncated] += trunc;
  }

  /**
   * After rxOffload: learn from and loop-check the TAP frames 0..n-1 (vnet_hdr
   * frames in `out`), and keep the ones to write in `frames` (compacted in place).
   * The VXLAN drops rxOffload found (`drops`) are charged to `dropPeer` when it is
   * known (default: the peer of the whole last checkSources batch, if it had one).
   */
  afterRxOffload(out: Uint8Array, frames: Batch, n: number, learnSrc: Uint32Array, peerOf: Int32Array, segmentsIn: number, drops: Uint32Array, dropPeer = this.batchPeer): void {
    const c = this.c;
    const pc = this.pc;
    let kept = 0;
    let loops = 0;
    let now = -1;
    for (let k = 0; k < n; k++) {
      const v = frames.offsets[k];
      const f = v + VNET_HDR_LEN;
      const srcHi = macHi(out, f + 6);
      const srcLo = macLo(out, f + 6);
      const peer = peerOf[learnSrc[k]];
      if (srcHi === this.ownHi && srcLo === this.ownLo) {
        loops++;
        if (peer >= 0) pc[peer * PEER_STRIDE + P.rx_drops]++;
        continue;
      }
      if (this.learning && peer >= 0 && (out[f + 6] & 1) === 0) {
        if (now < 0) now = this.now();
        this.learn(srcHi, srcLo, peer, now);
      }
      // A whole frame above the TAP MTU (kernel VXLAN with TSO sends such) is
      // handed over as GSO so the kernel can forward it. That write tells the
      // kernel to trust the payload, so only frames whose checksum is settled
      // qualify: NEEDS_CSUM (the sender left it partial, as kernel VXLAN over
      // veth does: there is no sum to check) or DATA_VALID. A plain header (flags
      // 0) means rxOffload did not verify it (wrong checksum, or a segment it does
      // not coalesce): it goes as it is, and the kernel checks it.
      if (this.tapMtu > 0 && frames.sizes[k] > VNET_HDR_LEN + 18 + this.tapMtu && out[v + 1] === 0 && (out[v] & (VIRTIO_NEEDS_CSUM | VIRTIO_DATA_VALID)) !== 0) {
        markGso(out, v, frames.sizes[k] - VNET_HDR_LEN, this.tapMtu);
      }
      frames.offsets[kept] = v;
      frames.sizes[kept] = frames.sizes[k];
      frames.peers[kept] = peer;
      kept++;
    }
    if (dropPeer >= 0) pc[dropPeer * PEER_STRIDE + P.rx_drops] += drops[0] + drops[1] + drops[2];
    frames.count = kept;
    c[C.rx_packets] += segmentsIn;
    c[C.drop_short] += drops[0];
    c[C.drop_bad_flags] += drops[1];
    c[C.drop_wrong_vni] += drops[2];
    c[C.drop_loop] += loops;
  }

  /**
   * A unicast source MAC seen from `peer`: refresh a matching entry, else report
   * it, unless the peer has its full share of the table, the MAC was reported
   * within LEARN_REPOST_SECONDS, or the worker's learn budget is spent.
   */
  private learn(hi: number, lo: number, peer: number, now: number): void {
    if (this.fdb.lookup(hi, lo) === peer) {
      this.fdb.touch(now);
      return;
    }
    if (this.fdb.learnFull(peer)) {
      this.c[C.learn_suppressed]++;
      return;
    }
    const slot = (lo ^ (lo >>> 10) ^ (lo >>> 20) ^ hi) & (RECENT_SLOTS - 1);
    if (this.recentHi[slot] === hi && this.recentLo[slot] === lo && now - this.recentAt[slot] < LEARN_REPOST_SECONDS) return;
    if (!this.learnBucket.take(now)) {
      this.c[C.learn_suppressed]++;
      return;
    }
    this.recentHi[slot] = hi;
    this.recentLo[slot] = lo;
    this.recentAt[slot] = now;
    this.c[C.learned]++;
    this.post({ type: 'learn', hi, lo, peer }); // allocation: learn events only, bounded by learnBucket
  }

  /**
   * A datagram from a source that is not a peer: with --accept-unknown-peers and
   * room in the peer table, report the source (rate-limited) and take the
   * datagram; else drop it.
   */
  private admitUnknown(addrs: Uint8Array, off: number): boolean {
    if (!this.acceptUnknown || this.fdb.unknownPeersClosed()) return false;
    const now = this.now();
    const key = recordKey(addrs, off);
    const slot = (key ^ (key >>> 10) ^ (key >>> 20)) & (RECENT_SLOTS - 1);
    if (this.recentSrc[slot] === key && now - this.recentSrcAt[slot] < LEARN_REPOST_SECONDS) return true;
    if (!this.unknownBucket.take(now)) return true;
    this.recentSrc[slot] = key;
    this.recentSrcAt[slot] = now;
    this.post({ type: 'unknown-peer', record: addrs.slice(off, off + ADDR_LEN) }); // allocation: unknown-peer events only, bounded by unknownBucket
    return true;
  }
}

/** virtio_net_hdr flags (include/uapi/linux/virtio_net.h). */
const VIRTIO_NEEDS_CSUM = 1;
const VIRTIO_DATA_VALID = 2;

/**
 * A TCP frame larger than the TAP MTU that arrived whole (kernel VXLAN with TSO
 * over veth sends unsegmented super-datagrams): give it a GSO virtio_net_hdr so
 * the kernel can still forward it (a non-GSO frame above the MTU of the next hop
 * is dropped). The vnet header is at `v`, the `len`-byte Ethernet frame after it.
 * The TCP checksum field becomes the pseudo-header seed over the whole frame.
 */
function markGso(b: Uint8Array, v: number, len: number, mtu: number): void {
  const e = v + VNET_HDR_LEN;
  const type = (b[e + 12] << 8) | b[e + 13];
  let ipLen: number;
  let tcp: number;
  let pseudo: number;
  let gsoType: number;
  if (type === 0x0800) {
    ipLen = (b[e + 14] & 0x0f) * 4;
    if (b[e + 23] !== 6 || ((b[e + 20] & 0x3f) | b[e + 21]) !== 0) return; // TCP, not a fragment
    tcp = e + 14 + ipLen;
    const l4len = len - 14 - ipLen;
    pseudo = pseudoSumV4(b, e + 14, 6, l4len);
    gsoType = 1; // VIRTIO_NET_HDR_GSO_TCPV4
  } else if (type === 0x86dd) {
    ipLen = 40;
    if (b[e + 20] !== 6) return;
    tcp = e + 14 + 40;
    pseudo = pseudoSumV6(b, e + 14, 6, len - 14 - 40);
    gsoType = 4; // VIRTIO_NET_HDR_GSO_TCPV6
  } else return;
  const tcpLen = (b[tcp + 12] >>> 4) * 4;
  const hdrLen = 14 + ipLen + tcpLen;
  if (tcpLen < 20 || hdrLen >= len) return;
  const mss = mtu - ipLen - tcpLen;
  // little-endian virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
  b[v] = 1; // NEEDS_CSUM
  b[v + 1] = gsoType;
  b[v + 2] = hdrLen & 0xff;
  b[v + 3] = hdrLen >>> 8;
  b[v + 4] = mss & 0xff;
  b[v + 5] = mss >>> 8;
  b[v + 6] = (14 + ipLen) & 0xff;
  b[v + 7] = (14 + ipLen) >>> 8;
  b[v + 8] = 16;
  b[v + 9] = 0;
  b[tcp + 16] = pseudo >>> 8;
  b[tcp + 17] = pseudo & 0xff;
}

/** Inner IPv4 DF bit (for df 'inherit'); non-IPv4 frames count as DF set, as Linux does for IPv6. */
function innerDf(b: Uint8Array, o: number, len: number): boolean {
  let l3 = o + 14;
  let type = (b[o + 12] << 8) | b[o + 13];
  if (type === 0x8100 && len >= 18) {
    type = (b[o + 16] << 8) | b[o + 17];
    l3 += 4;
  }
  if (type !== 0x0800) return type === 0x86dd;
  if (l3 + 20 > o + len) return false;
  return (b[l3 + 6] & 0x40) !== 0;
}
