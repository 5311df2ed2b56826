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
