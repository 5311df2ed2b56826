/**
 * Batch sizes a worker derives from `--batch`, kept within the addon's limits
 * (native/limits.json). A send batch may hold more entries than frames were read
 * (head-end replication: one entry per flood peer; UDP GSO: up to two messages
 * per TSO frame), but never more than one sendBatch call takes: the engine
 * flushes a full batch and starts the next, so a cap costs one more syscall, while
 * an entry count above MAX_BATCH makes sendBatch throw and ends the worker.
 */
import { MAX_BATCH } from '../native/limits.js';

/** Send entries per read frame before the engine flushes mid-batch. */
const SEND_ENTRIES_PER_FRAME = 4;

/** Capacity of a worker's send batch for `batchSize` frames per read: at most MAX_BATCH. */
export function sendBatchCapacity(batchSize: number): number {
  return Math.max(1, Math.min(MAX_BATCH, batchSize * SEND_ENTRIES_PER_FRAME));
}

/**
 * TSO super-frames per TAP read on the offload path. Each is up to 64 KiB and
 * needs a read slot plus its segmented copy, so the transmit slab grows by
 * ~145 KiB per frame of batch; 16 super-frames (1 MiB of payload) are already
 * past a core's L2. A larger `--batch` (64 by default, sized for MTU frames on
 * the plain path) only made more of the slab resident: the dataplane's RSS fell
 * 8 MB per host at 16 with no TCP throughput change in the bench (issue 12 note).
 */
export const SUPER_FRAMES_PER_READ = 16;

/** Frames per TAP read on the offload path for `batchSize`. */
export function superFrameBatch(batchSize: number): number {
  return Math.max(1, Math.min(batchSize, SUPER_FRAMES_PER_READ));
}
