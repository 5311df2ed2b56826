/**
 * NDR/PDR search: the highest offered packet rate with zero loss (NDR, "no drop
 * rate") and with loss at most a small ratio (PDR, "partial drop rate", 0.5 % as
 * FD.io CSIT reports), found by a bisection over paced trials under a time and
 * trial budget.
 *
 * Design note: a flood rate rewards the wrong thing (a sender that overfills a
 * queue drops cheaply), so rates are always offered paced. The first trial runs
 * at the maximum rate; its received rate (the "maximum receive rate", MRR) is
 * the second candidate, which usually lands close to the PDR. After that both
 * bounds are recomputed from every trial so far (the highest passing rate and
 * the lowest failing rate above it), which tolerates a noisy non-monotonic trial.
 * The search is pure: trials come from an injected function, so it is tested on
 * a simulated device with a known loss curve.
 */

/** What one paced trial measured. */
export interface TrialOutcome {
  /** Packets the sender sent. */
  txPackets: number;
  /** Packets the receiver got. */
  rxPackets: number;
  /** Trial length in seconds (sender side). */
  seconds: number;
  /** Anything else the caller wants to keep with this trial (raw tool output, CPU). */
  extra?: Record<string, unknown>;
}

/** One trial as recorded by the search. */
export interface SearchTrial extends TrialOutcome {
  /** Rate the search asked for, packets/s. */
  requestedPps: number;
  /** Rate actually offered to the device: the requested rate, or the achieved sender rate when the sender fell short. */
  offeredPps: number;
  /** Packets/s the sender achieved (tx / seconds). */
  achievedTxPps: number;
  /** Packets/s received (rx / seconds). */
  rxPps: number;
  /** Loss ratio 0..1 ((tx - rx) / tx, clamped at 0). */
  loss: number;
}

/** Search limits. */
export interface SearchOptions {
  /** Lowest rate worth trying, packets/s. */
  minPps: number;
  /** Highest rate to offer, packets/s. */
  maxPps: number;
  /** PDR loss bound (ratio); default 0.005. */
  pdrLoss?: number;
  /** Stop when (upper - lower) / upper is at most this; default 0.05. */
  precision?: number;
  /** At most this many trials; default 12. */
  maxTrials?: number;
  /** Wall-clock budget for the search in ms; a trial is started only if one more fits. */
  budgetMs?: number;
  /** Estimated cost of one trial in ms, to respect the budget; default 1000. */
  trialCostMs?: number;
  /** Clock (ms), injectable for tests. */
  now?: () => number;
}

/** One bound found by the search. */
export interface BoundResult {
  /** The highest verified rate within the loss bound (pps), or null if none passed. */
  ratePps: number | null;
  /** The lowest failing rate above it (pps), or null if the top rate passed. */
  upperPps: number | null;
  /** True when the top rate passed, so the true figure is at least `ratePps`. */
  atLeast: boolean;
  /** Relative width (upper - rate) / upper, null when unbounded. */
  width: number | null;
}

/** Result of an NDR/PDR search. */
export interface SearchResult {
  ndr: BoundResult;
  pdr: BoundResult;
  trials: SearchTrial[];
  /** Why the search stopped. */
  stoppedBy: 'precision' | 'trials' | 'budget' | 'floor';
  /** True when the sender could not reach the rate it was asked for (achieved < 90 % of offered). */
  senderLimited: boolean;
  /** Highest rate the sender reached in any trial (pps). */
  maxAchievedTxPps: number;
}

/** Turn a trial outcome into the recorded form. */
export function toTrial(offeredPps: number, o: TrialOutcome): SearchTrial {
  const seconds = o.seconds > 0 ? o.seconds : 1;
  const loss = o.txPackets > 0 ? Math.max(0, (o.txPackets - o.rxPackets) / o.txPackets) : 1;
  const achievedTxPps = o.txPackets / seconds;
  const offered = achievedTxPps < 0.9 * offeredPps ? Math.round(achievedTxPps) : offeredPps;
  return { ...o, requestedPps: offeredPps, offeredPps: offered, achievedTxPps, rxPps: o.rxPackets / seconds, loss };
}

/** Bounds for one loss threshold from every trial so far. */
export function boundsFor(trials: readonly SearchTrial[], lossBound: number): BoundResult {
  let lo: number | null = null;
  for (const t of trials) if (t.loss <= lossBound && (lo === null || t.offeredPps > lo)) lo = t.offeredPps;
  let hi: number | null = null;
  for (const t of trials) {
    if (t.loss > lossBound && (lo === null || t.offeredPps > lo) && (hi === null || t.offeredPps < hi)) hi = t.offeredPps;
  }
  return { ratePps: lo, upperPps: hi, atLeast: lo !== null && hi === null, width: lo !== null && hi !== null ? (hi - lo) / hi : null };
}

function converged(b: BoundResult, precision: number, minPps: number, tried: (r: number) => boolean): boolean {
  if (b.ratePps !== null && b.upperPps === null) return true; // top passed
  if (b.ratePps === null) return b.upperPps !== null && b.upperPps <= minPps && tried(minPps); // floor failed
  return (b.width ?? 1) <= precision;
}

function nextCandidate(b: BoundResult, minPps: number): number {
  if (b.upperPps === null) return minPps; // unreachable when converged
  if (b.ratePps === null) return Math.max(minPps, b.upperPps / 2);
  return (b.ratePps + b.upperPps) / 2;
}

/**
 * Search NDR and PDR. `trial(pps)` must offer `pps` packets/s paced and
 * report what was sent and received. Rates are rounded to whole packets/s.
 */
export async function searchNdrPdr(trial: (pps: number) => Promise<TrialOutcome>, opts: SearchOptions): Promise<SearchResult> {
  const pdrLoss = opts.pdrLoss ?? 0.005;
  const precision = opts.precision ?? 0.05;
  const maxTrials = opts.maxTrials ?? 12;
  const now = opts.now ?? (() => Date.now());
  const cost = opts.trialCostMs ?? 1000;
  const started = now();
  const minPps = Math.max(1, Math.round(opts.minPps));
  let maxPps = Math.max(minPps, Math.round(opts.maxPps));
  const trials: SearchTrial[] = [];
  let senderLimited = false;
  const tried = (r: number) => trials.some((t) => Math.abs(t.offeredPps - r) < 1 || Math.abs(t.requestedPps - r) < 1);

  const runTrial = async (pps: number) => {
    const rate = Math.max(minPps, Math.min(maxPps, Math.round(pps)));
    const t = toTrial(rate, await trial(rate));
    trials.push(t);
    if (t.offeredPps !== rate) {
      senderLimited = true;
      // Rates above what the sender can produce cannot be tested: cap the search there.
      maxPps = Math.max(minPps, Math.min(maxPps, Math.round(t.achievedTxPps)));
    }
    return t;
  };

  let stoppedBy: SearchResult['stoppedBy'];
  const first = await runTrial(maxPps);
  let mrrHint: number | null = first.loss > 0 ? Math.max(minPps, Math.min(maxPps, first.rxPps * 0.99)) : null;

  for (;;) {
    const pdr = boundsFor(trials, pdrLoss);
    const ndr = boundsFor(trials, 0);
    const pdrDone = converged(pdr, precision, minPps, tried);
    const ndrDone = converged(ndr, precision, minPps, tried);
    if (pdrDone && ndrDone) {
      stoppedBy = pdr.ratePps === null && ndr.ratePps === null ? 'floor' : 'precision';
      break;
    }
    if (trials.length >= maxTrials) {
      stoppedBy = 'trials';
      break;
    }
    if (opts.budgetMs !== undefined && now() - started + cost > opts.budgetMs) {
      stoppedBy = 'budget';
      break;
    }
    let candidate: number;
    if (mrrHint !== null && !tried(Math.round(mrrHint))) {
      candidate = mrrHint;
      mrrHint = null;
    } else {
      candidate = !pdrDone ? nextCandidate(pdr, minPps) : nextCandidate(ndr, minPps);
    }
    if (tried(Math.round(candidate))) {
      // Bisection cannot split further at whole-pps resolution.
      stoppedBy = 'precision';
      break;
    }
    await runTrial(candidate);
  }
  return {
    ndr: boundsFor(trials, 0),
    pdr: boundsFor(trials, pdrLoss),
    trials,
    stoppedBy,
    senderLimited,
    maxAchievedTxPps: trials.reduce((m, t) => Math.max(m, t.achievedTxPps), 0),
  };
}
