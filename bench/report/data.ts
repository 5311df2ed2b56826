/**
 * Read-only views over a BenchResult shared by the HTML report and the
 * capacity plan: the modes that ran, per-round series taken from the raw
 * samples, spreads (median, min, max over rounds) and merged HDR latency
 * histograms. Pure functions of the JSON; nothing here measures.
 */
import hdr from 'hdr-histogram-js';
import { disturbedFor, disturbedSamples, describeDisturbed } from '../disturbance.js';
import type { BenchResult, ModeEntry, ModeRoundSample } from '../result.js';
import { median } from '../stats.js';

/** A figure over rounds: the median and the spread; all null when no round measured it. */
export interface Spread {
  n: number;
  median: number | null;
  min: number | null;
  max: number | null;
}

/** Median, min and max of the finite values. */
export function spreadOf(values: readonly (number | null | undefined)[]): Spread {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return { n: v.length, median: median(v), min: v.length ? Math.min(...v) : null, max: v.length ? Math.max(...v) : null };
}

/** `s` scaled by `k` (a linear model applied to a spread). */
export function scaleSpread(s: Spread, k: number): Spread {
  const m = (x: number | null) => (x === null ? null : x * k);
  return k >= 0 ? { n: s.n, median: m(s.median), min: m(s.min), max: m(s.max) } : { n: s.n, median: m(s.median), min: m(s.max), max: m(s.min) };
}

/** The modes that ran (available), in the run's order. */
export function ranModes(r: BenchResult): ModeEntry[] {
  return r.modes.filter((m) => m.available);
}

/** The first available mode of a kind (sub-variants of vxtap count as vxtap), as result.ts picks it. */
export function modeOfKind(r: BenchResult, kind: ModeEntry['kind']): string | null {
  return r.modes.find((m) => m.kind === kind && m.available)?.id ?? null;
}

/** Samples of `mode`, by round. */
export function samplesOf(r: BenchResult, mode: string): ModeRoundSample[] {
  return r.samples.filter((s) => s.mode === mode).sort((a, b) => a.round - b.round);
}

/** A value per round of `mode` (index = round - 1), null where missing. */
export function perRound(r: BenchResult, mode: string, get: (s: ModeRoundSample) => number | null | undefined): (number | null)[] {
  const out: (number | null)[] = [];
  for (let round = 1; round <= r.options.rounds; round++) {
    const s = r.samples.find((x) => x.mode === mode && x.round === round);
    const v = s ? get(s) : null;
    out.push(typeof v === 'number' && Number.isFinite(v) ? v : null);
  }
  return out;
}

/** Percentiles plotted for latency distributions (HDR "percentile distribution"). */
export const LATENCY_PERCENTILES = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100];

/** Latency at each of LATENCY_PERCENTILES for the rounds of `mode` merged into one histogram; null when none. */
export function latencyDistribution(r: BenchResult, mode: string, condition: 'idle' | 'loaded'): { percentile: number; us: number }[] | null {
  let merged: ReturnType<typeof hdr.decodeFromCompressedBase64> | null = null;
  for (const s of samplesOf(r, mode)) {
    const l = condition === 'idle' ? s.latencyIdle : s.latencyLoaded;
    if (!l?.histogram) continue;
    try {
      const h = hdr.decodeFromCompressedBase64(l.histogram, 32, false);
      if (merged) {
        merged.add(h);
        h.destroy();
      } else merged = h;
    } catch {
      /* a histogram that does not decode is left out; its percentiles stay in the tables */
    }
  }
  if (!merged || merged.totalCount === 0) return null;
  const h = merged;
  const out = LATENCY_PERCENTILES.map((p) => ({ percentile: p, us: p === 0 ? (h.minNonZeroValue === Number.MAX_SAFE_INTEGER ? 0 : h.minNonZeroValue) : h.getValueAtPercentile(p) }));
  h.destroy();
  return out;
}

/**
 * The badge for a per-mode figure fed by disturbed TCP samples (bench/disturbance.ts):
 * `text` ("† disturbed: rounds 2, 3") for the cell, `title` (the reasons) for a tooltip; null when none.
 */
export function disturbedBadge(r: BenchResult, mode: string, key: string): { text: string; title: string } | null {
  const list = disturbedFor(disturbedSamples(r), mode, key);
  if (!list.length) return null;
  return { text: `† disturbed: round${list.length > 1 ? 's' : ''} ${list.map((d) => d.round).join(', ')}`, title: describeDisturbed(list).join('; ') };
}

/** Frame sizes the UDP search measured, ascending. */
export function udpFrames(r: BenchResult): number[] {
  return [...new Set(r.samples.flatMap((s) => s.udp.map((u) => u.frameBytes)))].sort((a, b) => a - b);
}

/** Format a number with about three significant digits. */
export function fmtNum(v: number | null | undefined, unit = ''): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return 'n/a';
  if (v === 0) return `0${unit ? ` ${unit}` : ''}`;
  const a = Math.abs(v);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a >= 0.1 ? 3 : 4;
  return `${v.toFixed(digits)}${unit ? ` ${unit}` : ''}`;
}

/** "median (min–max)" of a spread. */
export function fmtSpread(s: Spread | null | undefined, unit = ''): string {
  if (!s || s.median === null) return 'n/a';
  const body = s.n > 1 && s.min !== null && s.max !== null && s.min !== s.max ? `${fmtNum(s.median)} (${fmtNum(s.min)}–${fmtNum(s.max)})` : fmtNum(s.median);
  return unit ? `${body} ${unit}` : body;
}
