/**
 * Per-worker counters in shared memory: each worker is the only writer of its own
 * Float64Array (plain stores, no locks on the hot path); the main thread reads and
 * sums them for `vxtap stats` and the Prometheus endpoint. After the named
 * counters, the same block holds PEER_STRIDE counters per peer index (MAX_PEERS
 * of them, as the peer table is bounded): packets, bytes and drops per peer in
 * both directions, indexed by the peer index the packet path already has, so
 * counting a packet is one store.
 */
import { MAX_PEERS } from './fdb.js';

/** Counter names, in slot order. Drops are named `drop_<reason>`. */
export const COUNTERS = [
  'tap_rx_packets', // frames read from the TAP
  'tap_rx_bytes',
  'tap_rx_segments', // with offload: wire-size segments the TAP frames were cut into
  'tx_packets', // VXLAN datagrams sent to the underlay (one per peer copy)
  'tx_bytes', // UDP payload bytes sent (VXLAN header + inner frame)
  'tx_flood_packets', // copies sent for broadcast/multicast/unknown unicast
  'tx_fragmented', // sent with DF unset and larger than the underlay MTU
  'tx_uplink_frames', // with --uplink-bridge: frames written whole to the uplink TAP (UDP-tunnel GSO)
  'tx_uplink_packets', // wire packets the kernel makes of them
  'tx_uplink_bytes', // their bytes (outer headers included)
  'rx_packets', // VXLAN datagrams received from the underlay
  'rx_uplink_frames', // with --uplink-bridge: frames read whole from the uplink TAP (UDP-tunnel GSO)
  'rx_uplink_ignored', // frames on the uplink TAP that were not VXLAN for us (a bridge multicast)
  'rx_bytes',
  'tap_tx_packets', // inner frames written to the TAP
  'tap_tx_bytes',
  'tap_tx_superframes', // with offload: GSO super-frames built from coalesced segments
  'checksums_completed', // CHECKSUM_PARTIAL inner checksums finished before the TAP write
  'learned', // learn events reported to the main thread
  'learn_suppressed', // learn events not reported: the peer has its share of the table, or the worker's learn budget was spent
  'batches_tap', // readBatch calls that returned frames
  'batches_udp', // recvBatch calls that returned datagrams
  'polls', // times the worker blocked in poll()
  'ns_tap_read', // time in non-empty TAP reads (ns)
  'ns_encap', // time in encapsulation / segmentation (ns)
  'ns_udp_send', // time in sendBatch (ns)
  'ns_udp_recv', // time in non-empty UDP receives (ns)
  'ns_decap', // time in decapsulation / re-coalescing (ns)
  'ns_tap_write', // time in TAP writes (ns)
  'drop_short', // datagram shorter than VXLAN + Ethernet headers, or TAP frame shorter than Ethernet
  'drop_truncated', // datagram or TAP frame larger than its receive slot
  'drop_malformed', // an uplink frame whose outer lengths or IPv4 header checksum are wrong
  'drop_bad_flags', // VXLAN flags other than I, or reserved bits set
  'drop_wrong_vni',
  'drop_unknown_peer', // source is not a configured/leased peer
  'drop_no_peer', // nowhere to send (no flood peers)
  'drop_oversize', // EMSGSIZE: larger than the path MTU with DF set
  'drop_tx_error', // other send errors
  'drop_tap_write', // the TAP refused a frame
  'drop_uplink_write', // the uplink TAP refused a frame (or its queue was full)
  'drop_loop', // a frame whose source MAC is our own TAP's, received from a peer
] as const;

export type CounterName = (typeof COUNTERS)[number];

/** Slot index of each counter. */
export const C: { readonly [K in CounterName]: number } = Object.freeze(Object.fromEntries(COUNTERS.map((n, i) => [n, i])) as { [K in CounterName]: number });

/** Per-peer counter names, in slot order (PEER_STRIDE slots per peer index). */
export const PEER_COUNTERS = [
  'rx_packets', // VXLAN datagrams received from the peer (wire packets of a GRO batch; uplink frames count once)
  'rx_bytes', // their UDP payload bytes
  'rx_drops', // of those, dropped (truncated, bad VXLAN header, loop, TAP refused)
  'tx_packets', // VXLAN datagrams sent to the peer (flood copies included)
  'tx_bytes', // their UDP payload bytes
  'tx_drops', // sends to the peer that failed
] as const;
export type PeerCounterName = (typeof PEER_COUNTERS)[number];
/** Slot of each per-peer counter within a peer's PEER_STRIDE slots. */
export const P: { readonly [K in PeerCounterName]: number } = Object.freeze(Object.fromEntries(PEER_COUNTERS.map((n, i) => [n, i])) as { [K in PeerCounterName]: number });
/** Slots per peer index (one 64-byte cache line). */
export const PEER_STRIDE = 8;

/** A fresh shared counter block for one worker (named counters, then per-peer counters). */
export function newCounterBlock(): SharedArrayBuffer {
  return new SharedArrayBuffer((COUNTERS.length + MAX_PEERS * PEER_STRIDE) * 8);
}

/** The per-peer part of a counter block. */
export function peerCounterView(block: SharedArrayBuffer): Float64Array {
  return new Float64Array(block, COUNTERS.length * 8, MAX_PEERS * PEER_STRIDE);
}

/** One peer's counters. */
export type PeerCounters = Record<PeerCounterName, number>;

/** Sum one peer index's counters over the workers' blocks. */
export function readPeerCounters(blocks: SharedArrayBuffer[], index: number): PeerCounters {
  const out = {} as PeerCounters;
  for (const n of PEER_COUNTERS) out[n] = 0;
  for (const b of blocks) {
    const v = peerCounterView(b);
    PEER_COUNTERS.forEach((n, i) => (out[n] += v[index * PEER_STRIDE + i]));
  }
  return out;
}

/** `a - b` per counter (counters of a reused peer index count from its reuse). */
export function subPeerCounters(a: PeerCounters, b: PeerCounters): PeerCounters {
  const out = {} as PeerCounters;
  for (const n of PEER_COUNTERS) out[n] = a[n] - b[n];
  return out;
}

/** Counters as a plain object. */
export type CounterSnapshot = Record<CounterName, number>;

/** Read one block. */
export function readCounters(block: SharedArrayBuffer): CounterSnapshot {
  const a = new Float64Array(block);
  const out = {} as CounterSnapshot;
  COUNTERS.forEach((n, i) => (out[n] = a[i]));
  return out;
}

/** Sum several snapshots. */
export function sumCounters(snaps: CounterSnapshot[]): CounterSnapshot {
  const out = {} as CounterSnapshot;
  for (const n of COUNTERS) out[n] = snaps.reduce((s, x) => s + x[n], 0);
  return out;
}

/** Drops by reason (non-zero only) from a snapshot. */
export function dropsByReason(s: CounterSnapshot): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of COUNTERS) if (n.startsWith('drop_') && s[n] > 0) out[n.slice(5)] = s[n];
  return out;
}

/** A peer's counters for the Prometheus text (label peer="ADDR"). */
export interface PeerMetrics {
  address: string;
  counters: PeerCounters;
  /** Seconds since a datagram last came from it (-1: never). */
  rxIdleSeconds: number;
}

/** Prometheus text exposition (version 0.0.4) of per-worker counters (and per-peer ones). */
export function renderPrometheus(instance: string, perWorker: CounterSnapshot[], gauges: Record<string, number> = {}, peers: PeerMetrics[] = []): string {
  const lines: string[] = [];
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  for (const n of COUNTERS) {
    if (n.startsWith('drop_')) continue;
    lines.push(`# TYPE vxtap_${n}_total counter`);
    perWorker.forEach((s, w) => lines.push(`vxtap_${n}_total{instance="${esc(instance)}",worker="${w}"} ${s[n]}`));
  }
  lines.push('# HELP vxtap_drops_total Packets dropped, by reason.');
  lines.push('# TYPE vxtap_drops_total counter');
  for (const n of COUNTERS) {
    if (!n.startsWith('drop_')) continue;
    perWorker.forEach((s, w) => lines.push(`vxtap_drops_total{instance="${esc(instance)}",worker="${w}",reason="${n.slice(5)}"} ${s[n]}`));
  }
  for (const [g, v] of Object.entries(gauges)) {
    lines.push(`# TYPE vxtap_${g} gauge`);
    lines.push(`vxtap_${g}{instance="${esc(instance)}"} ${v}`);
  }
  if (peers.length > 0) {
    for (const n of PEER_COUNTERS) {
      lines.push(`# TYPE vxtap_peer_${n}_total counter`);
      for (const p of peers) lines.push(`vxtap_peer_${n}_total{instance="${esc(instance)}",peer="${esc(p.address)}"} ${p.counters[n]}`);
    }
    lines.push('# HELP vxtap_peer_rx_idle_seconds Seconds since the peer last sent a datagram (-1: never).');
    lines.push('# TYPE vxtap_peer_rx_idle_seconds gauge');
    for (const p of peers) lines.push(`vxtap_peer_rx_idle_seconds{instance="${esc(instance)}",peer="${esc(p.address)}"} ${p.rxIdleSeconds}`);
  }
  return lines.join('\n') + '\n';
}

/** Nanoseconds per wire packet spent in each stage of the two directions. */
export interface StageCosts {
  /** TAP -> underlay, per VXLAN datagram sent. */
  tx: { tapRead: number; encap: number; udpSend: number; total: number };
  /** underlay -> TAP, per VXLAN datagram received. */
  rx: { udpRecv: number; decap: number; tapWrite: number; total: number };
}

/** Per-stage costs from a counter snapshot (0 where nothing moved). */
export function stageCosts(s: CounterSnapshot): StageCosts {
  const per = (ns: number, pkts: number) => (pkts > 0 ? Math.round((ns / pkts) * 10) / 10 : 0);
  const tx = { tapRead: per(s.ns_tap_read, s.tx_packets), encap: per(s.ns_encap, s.tx_packets), udpSend: per(s.ns_udp_send, s.tx_packets), total: 0 };
  tx.total = Math.round((tx.tapRead + tx.encap + tx.udpSend) * 10) / 10;
  const rx = { udpRecv: per(s.ns_udp_recv, s.rx_packets), decap: per(s.ns_decap, s.rx_packets), tapWrite: per(s.ns_tap_write, s.rx_packets), total: 0 };
  rx.total = Math.round((rx.udpRecv + rx.decap + rx.tapWrite) * 10) / 10;
  return { tx, rx };
}
