/**
 * `vxtap bench ci`: the ABAB rounds under decide.ts's stopping rule. Rounds
 * run in pairs (base k, head k) up to the plan's first look; at each look the
 * rounds so far are merged per side and compared on the gating metrics at the
 * look's level (alpha / looks, Holm inside the look); {@link nextStep} says
 * stop (a `worse`, everything decided, or the cap) or how many round pairs to
 * add. No rule of its own: the plan's looks and alpha split are decide.ts's.
 *
 * The round runner and the comparison are parameters, so the loop is tested
 * with simulated rounds and no bench.
 */
import { lookAlpha, nextStep, type SequentialPlan, type StepDecision } from '../decide.js';
import { compareResults, regressions, type Comparison, type Thresholds } from '../compare.js';
import type { BenchResult } from '../result.js';
import { abSchedule, type Side } from './plan.js';

/** One look of the plan as it happened. */
export interface LookRecord {
  /** 1-based look. */
  look: number;
  /** Rounds per side compared at this look. */
  rounds: number;
  /** The per-look level: alpha / looks. */
  level: number;
  counts: Comparison['counts'];
  decision: StepDecision;
}

/** What the ABAB run ends with. */
export interface AbabOutcome {
  looks: LookRecord[];
  stoppedBy: 'worse' | 'decided' | 'cap';
  base: BenchResult;
  head: BenchResult;
  comparison: Comparison;
}

/** Parameters of {@link runAbab}. */
export interface AbabParams {
  plan: SequentialPlan;
  /** Run one round of a side's build (1-based round of that side); rejects when the round produced no result. */
  runRound: (side: Side, round: number) => Promise<BenchResult>;
  /** Merge a side's round results into one result. */
  merge: (side: Side, parts: BenchResult[]) => BenchResult;
  /** Compare at a look's level. */
  compare: (base: BenchResult, head: BenchResult, level: number) => Comparison;
  log: (line: string) => void;
}

/** Run base and head interleaved under the plan; resolves at the look where the rule stops. */
export async function runAbab(p: AbabParams): Promise<AbabOutcome> {
  const parts: Record<Side, BenchResult[]> = { base: [], head: [] };
  const looks: LookRecord[] = [];
  const level = lookAlpha(p.plan);
  for (let look = 0; ; look++) {
    const target = p.plan.schedule[look];
    for (const r of abSchedule(parts.base.length + 1, target)) parts[r.side].push(await p.runRound(r.side, r.round));
    const base = p.merge('base', parts.base);
    const head = p.merge('head', parts.head);
    const comparison = p.compare(base, head, level);
    const decision = nextStep(
      p.plan,
      look,
      comparison.rows.map((r) => r.verdict),
    );
    looks.push({ look: look + 1, rounds: target, level, counts: comparison.counts, decision });
    const c = comparison.counts;
    p.log(
      `bench ci: look ${look + 1}/${p.plan.schedule.length} at ${target} round(s) per side (level ${level.toPrecision(3)}): ${c.worse} worse, ${c.better} better, ${c.same} same, ${c.unknown} unknown; ${decision.why}`,
    );
    if (decision.action === 'stop') return { looks, stoppedBy: decision.reason, base, head, comparison };
  }
}

/** The comparison of two merged results on the gating metrics (Holm at `level`). */
export function compareAtLevel(
  base: { label: string; result: BenchResult },
  head: { label: string; result: BenchResult },
  o: { metrics: string[]; thresholds: Thresholds | null; level: number },
): Comparison {
  return compareResults(base, head, { alpha: o.level, metrics: o.metrics, correction: 'holm', thresholds: o.thresholds });
}

/** Exit status of a finished run: 1 when a `worse` verdict exceeds `failPct` percent, else 0. */
export function ciExitStatus(c: Pick<Comparison, 'rows'>, failPct: number): 0 | 1 {
  return regressions(c, failPct).length ? 1 : 0;
}
