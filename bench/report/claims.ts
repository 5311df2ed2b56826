/**
 * Claim verdicts that carry the run's uncertainty. result.ts judges each
 * claim on the median over rounds; here the same claims are judged on every
 * round: "held" when all rounds fall within the claim's bound, "not held"
 * when all fall outside it on one side, "undecided" when the rounds' spread
 * straddles the bound (two runs on one day judged "~40% below VXLAN" not held
 * at 50% below and held at 46%: their rounds straddled 50%). Claims without a
 * numeric bound (MTU facts) keep result.ts's verdict.
 */
import type { BenchResult, Claim } from '../result.js';
import { modeOfKind, perRound, spreadOf, type Spread } from './data.js';
import { CONTENTION_GROWTH_HELD, overheadGrowthPerRound, plainBare } from '../contention.js';
import { ratioToKvPerRound } from '../offloads.js';

/** held / not held / undecided (the spread straddles the bound) / n/a. */
export type UncertainVerdict = 'held' | 'not held' | 'undecided' | 'n/a';

/** A claim with its per-round evidence. */
export interface JudgedClaim extends Claim {
  judged: UncertainVerdict;
  /** The per-round quantity compared with the bound (null for claims without one). */
  evidence: { quantity: string; unit: string; perRound: (number | null)[]; spread: Spread; bound: [number | null, number | null] } | null;
}

/** Judge values against [lo, hi] (null = unbounded on that side). */
export function judge(values: readonly (number | null)[], lo: number | null, hi: number | null): UncertainVerdict {
  const s = spreadOf(values);
  if (s.n === 0 || s.min === null || s.max === null) return 'n/a';
  const inside = (v: number) => (lo === null || v >= lo) && (hi === null || v <= hi);
  if (inside(s.min) && inside(s.max)) return 'held';
  if ((hi !== null && s.min > hi) || (lo !== null && s.max < lo)) return 'not held';
  return 'undecided';
}

function pairwise(a: (number | null)[], b: (number | null)[], f: (x: number, y: number) => number | null): (number | null)[] {
  return a.map((x, i) => {
    const y = b.at(i);
    return x !== null && y !== null && y !== undefined ? f(x, y) : null;
  });
}

/** Every claim of the result judged round by round where it has a numeric bound. */
export function judgeClaims(r: BenchResult): JudgedClaim[] {
  const bare = modeOfKind(r, 'bare');
  const kv = modeOfKind(r, 'kernel-vxlan');
  const tap = modeOfKind(r, 'vxtap');
  const tcp1 = (m: string | null) => (m ? perRound(r, m, (s) => (s.tcp1 ? s.tcp1.receivedBps / 1e9 : null)) : []);
  const p50 = (m: string | null) => (m ? perRound(r, m, (s) => s.latencyIdle?.percentiles.p50Us) : []);
  const bounded: Partial<Record<string, () => JudgedClaim['evidence']>> = {
    'userspace-40pct-below-vxlan': () => {
      const v = pairwise(tcp1(tap), tcp1(kv), (x, y) => (y > 0 ? 1 - x / y : null));
      return { quantity: `${tap ?? 'vxtap'} below kernel-vxlan, TCP 1 stream`, unit: 'fraction', perRound: v, spread: spreadOf(v), bound: [0.3, 0.5] };
    },
    'vxlan-overhead-3-5pct': () => {
      const v = pairwise(tcp1(kv), tcp1(bare), (x, y) => (y > 0 ? 1 - x / y : null));
      return { quantity: 'kernel-vxlan below bare, TCP 1 stream', unit: 'fraction', perRound: v, spread: spreadOf(v), bound: [0.03, 0.05] };
    },
    'added-latency': () => {
      const v = pairwise(p50(kv), p50(bare), (x, y) => x - y);
      return { quantity: 'kernel-vxlan idle p50 minus bare, same round', unit: 'us', perRound: v, spread: spreadOf(v), bound: [null, 20] };
    },
  };
  // --contention rows (one per mode) and the no-tunnel-tso row, judged per round like the others.
  const variantEvidence = (id: string): (() => JudgedClaim['evidence']) | undefined => {
    const c = r.options.contention;
    const base = plainBare(r);
    if (id.startsWith('contention-overhead-grows:') && c && base) {
      const mode = id.slice('contention-overhead-grows:'.length);
      return () => {
        const v = overheadGrowthPerRound(r.derived.byMode, mode, base, c.pct);
        return {
          quantity: `${mode}: growth of the TCP 1-stream deficit to bare under ${c.pct}% CPU contention`,
          unit: 'fraction',
          perRound: v,
          spread: spreadOf(v),
          bound: [CONTENTION_GROWTH_HELD, null],
        };
      };
    }
    if (id === 'no-tunnel-tso-vxtap-ahead' && tap && kv) {
      return () => {
        const v = ratioToKvPerRound(r.derived.byMode, tap, kv);
        return { quantity: `${tap} / kernel-vxlan, TCP 1 stream, no tunnel TSO`, unit: 'ratio', perRound: v, spread: spreadOf(v), bound: [1, null] };
      };
    }
    return undefined;
  };
  return r.derived.claims.map((c) => {
    const ev = (bounded[c.id] ?? variantEvidence(c.id))?.() ?? null;
    if (!ev || ev.spread.n === 0) return { ...c, judged: c.verdict, evidence: ev };
    return { ...c, judged: judge(ev.perRound, ev.bound[0], ev.bound[1]), evidence: ev };
  });
}
