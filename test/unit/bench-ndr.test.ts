import { describe, expect, it } from 'vitest';
import { boundsFor, searchNdrPdr, toTrial, type TrialOutcome } from '../../bench/ndr.js';

/**
 * A simulated device: lossless up to `ndr` pps, then loss grows linearly to
 * 2 % at `knee`, then it forwards at most `capacity` pps. The sender tops out at
 * `senderMax` pps.
 */
function device(o: { ndr: number; knee: number; capacity: number; senderMax?: number; seconds?: number }) {
  const calls: number[] = [];
  const lossAt = (r: number) => {
    if (r <= o.ndr) return 0;
    if (r <= o.knee) return (0.02 * (r - o.ndr)) / (o.knee - o.ndr);
    return Math.max(0.02, 1 - o.capacity / r);
  };
  const trial = async (pps: number): Promise<TrialOutcome> => {
    calls.push(pps);
    const seconds = o.seconds ?? 1;
    const offered = Math.min(pps, o.senderMax ?? Infinity);
    const tx = Math.round(offered * seconds);
    return { txPackets: tx, rxPackets: Math.round(tx * (1 - lossAt(offered))), seconds };
  };
  return { trial, calls, lossAt };
}

describe('NDR/PDR search', () => {
  it('finds NDR and PDR of a known loss curve within the precision', async () => {
    const d = device({ ndr: 300_000, knee: 400_000, capacity: 390_000 });
    // PDR (0.5 % loss) on this curve: ndr + (knee - ndr) * 0.005 / 0.02 = 325 000.
    const r = await searchNdrPdr(d.trial, { minPps: 1000, maxPps: 1_000_000, precision: 0.02, maxTrials: 30 });
    expect(r.stoppedBy).toBe('precision');
    expect(r.ndr.ratePps).not.toBeNull();
    expect(r.ndr.ratePps!).toBeLessThanOrEqual(300_000);
    expect(r.ndr.ratePps!).toBeGreaterThan(300_000 * 0.98);
    expect(r.pdr.ratePps!).toBeLessThanOrEqual(325_000);
    expect(r.pdr.ratePps!).toBeGreaterThan(325_000 * 0.98);
    // Every reported rate was actually trialled and passed its bound.
    expect(d.lossAt(r.ndr.ratePps!)).toBe(0);
    expect(d.lossAt(r.pdr.ratePps!)).toBeLessThanOrEqual(0.005);
  });

  it('starts at the top rate and uses the received rate as the second candidate', async () => {
    const d = device({ ndr: 200_000, knee: 200_001, capacity: 200_000 });
    await searchNdrPdr(d.trial, { minPps: 1000, maxPps: 800_000, precision: 0.05, maxTrials: 20 });
    expect(d.calls[0]).toBe(800_000);
    expect(Math.abs(d.calls[1] - 198_000)).toBeLessThan(1000);
  });

  it('reports a lower bound when the top rate passes', async () => {
    const d = device({ ndr: 5_000_000, knee: 6_000_000, capacity: 6_000_000 });
    const r = await searchNdrPdr(d.trial, { minPps: 1000, maxPps: 100_000 });
    expect(r.trials.length).toBe(1);
    expect(r.ndr).toEqual({ ratePps: 100_000, upperPps: null, atLeast: true, width: null });
  });

  it('caps the search at what a slow sender achieves and says so', async () => {
    const d = device({ ndr: 1_000_000, knee: 1_100_000, capacity: 1_100_000, senderMax: 440_000 });
    const r = await searchNdrPdr(d.trial, { minPps: 1000, maxPps: 2_000_000 });
    expect(r.senderLimited).toBe(true);
    expect(r.maxAchievedTxPps).toBe(440_000);
    expect(r.ndr.ratePps).toBe(440_000);
    expect(r.ndr.atLeast).toBe(true);
  });

  it('stops at the trial limit and at the time budget', async () => {
    const d = device({ ndr: 300_000, knee: 400_000, capacity: 390_000 });
    const r = await searchNdrPdr(d.trial, { minPps: 1000, maxPps: 1_000_000, precision: 0.0001, maxTrials: 4 });
    expect(r.trials.length).toBe(4);
    expect(r.stoppedBy).toBe('trials');
    let clock = 0;
    const timed = async (pps: number) => {
      clock += 1000;
      return d.trial(pps);
    };
    const b = await searchNdrPdr(timed, { minPps: 1000, maxPps: 1_000_000, precision: 0.0001, maxTrials: 100, budgetMs: 5000, trialCostMs: 1000, now: () => clock });
    expect(b.stoppedBy).toBe('budget');
    expect(b.trials.length).toBeLessThanOrEqual(5);
  });

  it('gives null rates when even the floor loses', async () => {
    const d = device({ ndr: 10, knee: 20, capacity: 10 });
    const r = await searchNdrPdr(d.trial, { minPps: 1000, maxPps: 100_000, maxTrials: 30 });
    expect(r.ndr.ratePps).toBeNull();
    expect(r.pdr.ratePps).toBeNull();
    expect(r.stoppedBy).toBe('floor');
  });

  it('bounds tolerate a non-monotonic noisy trial', () => {
    const t = [
      toTrial(100, { txPackets: 100, rxPackets: 100, seconds: 1 }),
      toTrial(200, { txPackets: 200, rxPackets: 150, seconds: 1 }),
      toTrial(300, { txPackets: 300, rxPackets: 300, seconds: 1 }),
    ];
    const b = boundsFor(t, 0);
    expect(b.ratePps).toBe(300);
    expect(b.upperPps).toBeNull();
  });
});
