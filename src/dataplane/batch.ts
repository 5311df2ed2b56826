/**
 * The one batch object the pipeline's stages hand each other: entries in a slab
 * (`bufs[offsets[i]]`, `sizes[i]` bytes, i < count), read from a device, or
 * queued for one. A frame batch (TAP or uplink) uses `peers` and `errs`; a
 * datagram batch (the UDP transport) also `socks` (the sender of each entry),
 * `addrs` (ADDR_LEN-byte address records: destination on send, source on
 * receive) and `gso` (UDP GSO/GRO segment size, 0 for a single datagram).
 * Every array is allocated once, `cap` entries long; entries may share bytes
 * (head-end replication sends one frame to many peers without a copy).
 */
import { ADDR_LEN } from '../native/limits.js';

export interface Batch {
  /** The slab the offsets point into (set by whoever fills the batch). */
  bufs: Uint8Array;
  offsets: Uint32Array;
  sizes: Uint32Array;
  /** 0, or the errno a device reported for the entry. */
  errs: Int32Array;
  /** Peer index of each entry (-1: an accepted unknown source). */
  peers: Int32Array;
  /** Datagram batches: the transport sender handle of each entry. */
  socks: Int32Array;
  /** Datagram batches: address records, ADDR_LEN bytes per entry. */
  addrs: Uint8Array;
  /** Datagram batches: UDP GSO/GRO segment size (0: single datagram). */
  gso: Uint16Array;
  count: number;
}

const EMPTY = new Uint8Array(0);

/** A batch with room for `cap` entries (its slab set later, or given). */
export function newBatch(cap: number, bufs: Uint8Array = EMPTY): Batch {
  return {
    bufs,
    offsets: new Uint32Array(cap),
    sizes: new Uint32Array(cap),
    errs: new Int32Array(cap),
    peers: new Int32Array(cap),
    socks: new Int32Array(cap),
    addrs: new Uint8Array(cap * ADDR_LEN),
    gso: new Uint16Array(cap),
    count: 0,
  };
}
