/**
 * Accounting: every counter that records what the devices did with a batch
 * (datagrams sent or refused, frames written or refused, uplink frames and the
 * wire packets the kernel makes of them, batches, polls, per-stage time) is
 * written here and nowhere else. The engine writes only its policy counters
 * (drops by reason, floods, learning). Counters live in the worker's shared
 * block (stats.ts): plain stores, one writer.
 */
import { TNL_VNET_HDR_LEN } from '../native/limits.js';
import type { Batch } from './batch.js';
import { C, P, PEER_STRIDE } from './stats.js';

/** errno of a datagram above the path MTU with DF. */
const EMSGSIZE = 90;

export class Accounting {
  /** `counters`: the named counters; `peerCounters`: PEER_STRIDE slots per peer index. */
  constructor(
    readonly c: Float64Array,
    readonly pc: Float64Array,
  ) {}

  /**
   * A transport send of `tx` consumed `consumed` entries: count sent datagrams
   * (wire datagrams of a GSO message), errors by reason, and entries not taken
   * (a full socket buffer) as drops. Resets the batch.
   */
  sent(tx: Batch, consumed: number): void {
    const c = this.c;
    const pc = this.pc;
    let pkts = 0;
    let bytes = 0;
    for (let k = 0; k < consumed; k++) {
      const e = tx.errs[k];
      const at = tx.peers[k] * PEER_STRIDE;
      if (e === 0) {
        const g = tx.gso[k];
        const n = g === 0 ? 1 : Math.ceil(tx.sizes[k] / g);
        pkts += n;
        bytes += tx.sizes[k];
        pc[at + P.tx_packets] += n;
        pc[at + P.tx_bytes] += tx.sizes[k];
      } else {
        if (e === EMSGSIZE) c[C.drop_oversize]++;
        else c[C.drop_tx_error]++;
        pc[at + P.tx_drops]++;
      }
    }
    c[C.drop_tx_error] += tx.count - consumed;
    for (let k = consumed; k < tx.count; k++) pc[tx.peers[k] * PEER_STRIDE + P.tx_drops]++;
    c[C.tx_packets] += pkts;
    c[C.tx_bytes] += bytes;
    tx.count = 0;
  }

  /** A TAP write of `out` consumed `consumed` frames: count them and the refused ones. Resets the batch. */
  written(out: Batch, consumed: number): void {
    const c = this.c;
    let pkts = 0;
    let bytes = 0;
    for (let k = 0; k < out.count; k++) {
      if (k < consumed && out.errs[k] === 0) {
        pkts++;
        bytes += out.sizes[k];
      } else {
        c[C.drop_tap_write]++;
        if (out.peers[k] >= 0) this.pc[out.peers[k] * PEER_STRIDE + P.rx_drops]++;
      }
    }
    c[C.tap_tx_packets] += pkts;
    c[C.tap_tx_bytes] += bytes;
    out.count = 0;
  }

  /**
   * An uplink write of `run` (frames with the tunnel virtio header first, peer
   * per entry) consumed `consumed`: count frames, bytes and the wire packets the
   * kernel makes of each (payload after hdr_len in gso_size pieces), per peer.
   */
  uplinkWritten(run: Batch, consumed: number): void {
    const c = this.c;
    const pc = this.pc;
    const bufs = run.bufs;
    let ok = 0;
    let bytes = 0;
    for (let k = 0; k < run.count; k++) {
      const at = run.peers[k] * PEER_STRIDE;
      if (k < consumed && run.errs[k] === 0) {
        ok++;
        const size = run.sizes[k] - TNL_VNET_HDR_LEN;
        bytes += size;
        const v = run.offsets[k];
        const gso = bufs[v + 4] | (bufs[v + 5] << 8);
        const hdr = bufs[v + 2] | (bufs[v + 3] << 8);
        pc[at + P.tx_packets] += gso > 0 && size > hdr ? Math.ceil((size - hdr) / gso) : 1;
        pc[at + P.tx_bytes] += size;
      } else {
        c[C.drop_uplink_write]++;
        pc[at + P.tx_drops]++;
      }
    }
    c[C.tx_uplink_frames] += ok;
    c[C.tx_uplink_bytes] += bytes;
    run.count = 0;
  }

  /** A TAP batch of which `frames` (frameBytes bytes, `segments` wire packets) went through the uplink. */
  uplinkBatch(segments: number, frames: number, frameBytes: number): void {
    const c = this.c;
    c[C.tx_uplink_packets] += segments;
    c[C.tap_rx_packets] += frames;
    c[C.tap_rx_bytes] += frameBytes;
    c[C.tap_rx_segments] += segments;
  }

  /** An uplink read: `frames` kept frames and `runs` UDP GSO runs standing for `packets` wire packets; `supers` super-frames; `ignored` not VXLAN for us. */
  uplinkRead(frames: number, runs: number, packets: number, supers: number, ignored: number): void {
    const c = this.c;
    c[C.tap_tx_superframes] += supers;
    c[C.rx_packets] += packets;
    c[C.rx_uplink_frames] += frames + runs;
    c[C.rx_uplink_ignored] += ignored;
  }

  /** Drops found while unwrapping uplink frames. */
  tunnelDrops(malformed: number, badFlags: number, wrongVni: number): void {
    this.c[C.drop_malformed] += malformed;
    this.c[C.drop_bad_flags] += badFlags;
    this.c[C.drop_wrong_vni] += wrongVni;
  }

  /** rxOffload built `supers` super-frames and dropped `noRoom` segments for want of room. */
  coalesced(supers: number, noRoom: number): void {
    this.c[C.tap_tx_superframes] += supers;
    this.c[C.drop_truncated] += noRoom;
  }

  /** txOffload dropped `frames` frames it could not segment. */
  segmentDrops(frames: number): void {
    this.c[C.drop_tx_error] += frames;
  }

  /** CHECKSUM_PARTIAL inner checksums completed on the plain path. */
  checksumsCompleted(n: number): void {
    this.c[C.checksums_completed] += n;
  }

  /** A non-empty TAP read. */
  tapBatch(): void {
    this.c[C.batches_tap]++;
  }

  /** A non-empty UDP receive. */
  udpBatch(): void {
    this.c[C.batches_udp]++;
  }

  /** The worker blocked in poll(). */
  poll(): void {
    this.c[C.polls]++;
  }

  /** Transmit stage times (ms from performance.now(): t0 read start, t1 encap start, t2 send start, t3 end). */
  txTimes(t0: number, t1: number, t2: number, t3: number): void {
    const c = this.c;
    c[C.ns_tap_read] += (t1 - t0) * 1e6;
    c[C.ns_encap] += (t2 - t1) * 1e6;
    c[C.ns_udp_send] += (t3 - t2) * 1e6;
  }

  /** Receive stage times (t0 receive start, t1 decap start, t2 write start, t3 end). */
  rxTimes(t0: number, t1: number, t2: number, t3: number): void {
    const c = this.c;
    c[C.ns_udp_recv] += (t1 - t0) * 1e6;
    c[C.ns_decap] += (t2 - t1) * 1e6;
    c[C.ns_tap_write] += (t3 - t2) * 1e6;
  }
}
