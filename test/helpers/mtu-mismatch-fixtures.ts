/**
 * Building blocks of MTU-mismatch results for the unit tests: no fragment or
 * ICMP counted anywhere, and a transfer's output (64 KiB x 32, completed in
 * 100 ms) with the fields a test varies laid over.
 */
import type { MismatchEvidence } from '../../bench/mtu-mismatch.js';
import type { TransferOutput } from '../../bench/transfer.js';

export const noEvidence: MismatchEvidence = { fragCreatesA: 0, fragCreatesB: 0, fragFailsA: 0, reassembled: 0, underlayFragments: 0, icmpUnreachReceivedA: 0, icmpUnreachSentB: 0, retransSegsA: 0 };

export const transferOutput = (o: Partial<TransferOutput> = {}): TransferOutput => ({
  messageBytes: 65536,
  count: 32,
  window: 32,
  connected: true,
  connectMs: 1,
  acked: 32,
  deliveredBytes: 32 * 65536,
  end: 'completed',
  elapsedMs: 100,
  lastProgressMs: 100,
  error: null,
  ...o,
});
