/**
 * The local device: one queue of a TAP, seen as a batch reader and writer of
 * Ethernet frames.
 *
 * Design note. The worker never calls the addon for frame I/O; it holds a
 * `FrameQueue`, which the Linux implementation (`linux.ts`, a TAP queue fd over
 * the addon's readBatch/writeBatch) and the fake (`fake.ts`, in-memory,
 * deterministic) both provide, as wireguard-go's `tun.Device` has `tuntest`. The
 * same behavioural suite (test/unit/devices.test.ts) runs over both, so the
 * packet path is tested without root against a fake that behaves as the kernel
 * does at the edges (truncation, short frames, a full queue).
 *
 * Batch shape (the one vocabulary of the dataplane): the caller owns one slab
 * `bufs`; frame i lives at `bufs[offsets[i]]`, `sizes[i]` bytes. On a vnet_hdr
 * queue every frame starts with the virtio_net_hdr (`vnetHdrLen` bytes), on
 * read and on write. The uplink's TAP is the same kind of queue with a 24-byte
 * header (src/uplink).
 */

/** A batch reader and writer of frames: one TAP queue. */
export interface FrameQueue {
  /**
   * Read up to `max` frames without blocking: frame i lands at bufs[offsets[i]]
   * with at most `slotLen` bytes, sizes[i] its length; a frame longer than its
   * slot is reported as slotLen + 1 (drop it). Returns how many (0: none ready).
   * Preconditions: offsets[i] + slotLen <= bufs.length for i < max.
   */
  read(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, slotLen: number, max: number): number;
  /**
   * Write frames 0..count-1, one frame each. errs[i] = 0, or the errno of a frame
   * the device refused (EINVAL for one shorter than an Ethernet header plus the
   * vnet header); the batch goes on. Stops early only when the queue is full.
   * Returns how many were consumed (written or refused).
   */
  write(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number, errs: Int32Array): number;
  /** A file descriptor that polls readable when a read would return frames; -1 when there is none (fakes). */
  readonly pollFd: number;
  /** Bytes of virtio_net_hdr in front of every frame (0, 10, or 24 for the uplink). */
  readonly vnetHdrLen: number;
  /** Release the queue (idempotent). */
  close(): void;
}

/** errno values the devices report in `errs` (Linux). */
export const EINVAL = 22;
export const EMSGSIZE = 90;
export const EAGAIN = 11;

export { LinuxTapQueue } from './linux.js';
export { FakeTap, type FakeTapOptions } from './fake.js';
