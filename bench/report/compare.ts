/**
 * The comparison page: several results side by side (the same modes, each
 * run a series) and, when the runs form a history (three or more runs of one
 * environment fingerprint), the trend of each headline metric over time.
 * Regression tracking (issue 11: `vxtap bench history`, change points) plugs
 * in at `ComparisonOptions.trendExtra`: HTML placed in the trend section.
 */
import { metricOf, type BenchResult, type MetricByMode } from '../result.js';
import { fingerprint } from '../history.js';
import { bars, lines, PALETTE } from './charts.js';
import { esc, figure, htmlTable, page, scriptJson } from './html.js';
import { fmtNum, fmtSpread } from './data.js';

/** The summary of metric `key` for mode `m` in run `r`; undefined where that run did not measure it (runs differ in modes and metrics). */
function summaryOf(r: BenchResult, m: string, key: string): MetricByMode['summary'] | undefined {
  return metricOf(r.derived.byMode, m, key)?.summary;
}

/** Headline metrics of the comparison and the trend. */
export const COMPARE_KEYS = ['tcp1Gbps', 'tcpNGbps', 'latIdleP50', 'latLoadedP99', 'tcp1CpuPerGbit', 'udp64PdrKpps'];

/** What must match for runs to be one history: `vxtap bench history`'s fingerprint (hosts, kernel, CPU, profile, modes, MTU, netem, pinning), as a string. */
export function environmentFingerprint(r: BenchResult): string {
  return JSON.stringify(fingerprint(r));
}

/** Why `results` are not a history (null when they are): fewer than 3 runs, or differing fingerprints. */
export function notAHistory(results: BenchResult[]): string | null {
  if (results.length < 3) return `a trend needs three or more runs (got ${results.length})`;
  const fps = new Set(results.map(environmentFingerprint));
  if (fps.size > 1) return `the runs differ in environment (host, kernel, CPU, profile, MTU, netem or pinning): ${fps.size} fingerprints`;
  return null;
}

/** Options of renderComparisonHtml. */
export interface ComparisonOptions {
  /** File names of the results, in order (shown beside run ids). */
  sources?: string[];
  /** Extra HTML for the trend section (change points, verdicts). */
  trendExtra?: string;
}

function label(r: BenchResult, i: number): string {
  return `#${i + 1} ${r.startedAt.slice(0, 16).replace('T', ' ')}`;
}

/** Render the comparison of several results (in the given order; a history is sorted by start time). */
export function renderComparisonHtml(input: BenchResult[], opts: ComparisonOptions = {}): string {
  const history = notAHistory(input) === null;
  const results = history ? [...input].sort((a, b) => a.startedAt.localeCompare(b.startedAt)) : input;
  const modes = [...new Set(results.flatMap((r) => r.modes.filter((m) => m.available).map((m) => m.id)))];
  const defs = COMPARE_KEYS.map((k) => results.flatMap((r) => r.derived.metrics).find((d) => d.key === k)).filter((d): d is NonNullable<typeof d> => !!d);
  const runRows = results.map((r, i) => [
    esc(label(r, i)),
    `<code>${esc(r.runId)}</code>`,
    esc(opts.sources?.[input.indexOf(r)] ?? ''),
    esc(r.environment?.git.commit?.slice(0, 10) ?? 'n/a'),
    esc(`${r.options.profile}, ${r.options.rounds} round(s)`),
    esc(r.status),
    esc(`${r.environment?.hostname ?? '?'} ${r.environment?.kernel ?? ''}`),
  ]);
  const side: string[] = [];
  for (const d of defs) {
    const series = results.map((r, i) => ({ name: `#${i + 1}`, color: PALETTE[i % PALETTE.length], data: modes.map((m) => summaryOf(r, m, d.key)?.median ?? null) }));
    const chart = bars({ title: `${d.table}: ${d.title}`, unit: d.unit, categories: modes, series });
    const rows = modes.map((m) => {
      const first = summaryOf(results[0], m, d.key)?.median ?? null;
      return [
        esc(m),
        ...results.map((r) => {
          const s = summaryOf(r, m, d.key);
          const v = s ? fmtSpread({ n: s.n, median: s.median, min: s.min, max: s.max }) : 'n/a';
          const delta = s?.median != null && first ? ` (${s.median >= first ? '+' : ''}${(((s.median - first) / first) * 100).toFixed(1)}%)` : '';
          return `${esc(v)}${r === results[0] ? '' : esc(delta)}`;
        }),
      ];
    });
    side.push(
      figure(
        `compare-${d.key}`,
        `${d.title} (${d.unit}), median over rounds per run (#N as in Runs); ${d.higherIsBetter ? 'higher' : 'lower'} is better. Changes are against run #1 and are not significance tests (use vxtap bench compare).`,
        chart,
        htmlTable(['mode', ...results.map((r, i) => esc(label(r, i)))], rows),
      ),
    );
  }
  let trend: string;
  const why = notAHistory(results);
  if (why === null) {
    const figs = defs.map((d) => {
      const series = modes
        .map((m, mi) => ({
          name: m,
          color: PALETTE[mi % PALETTE.length],
          points: results.flatMap((r, i): [number, number][] => {
            const v = summaryOf(r, m, d.key)?.median;
            return v != null ? [[i + 1, v]] : [];
          }),
        }))
        .filter((s) => s.points.length);
      const chart = lines({ title: `${d.title} over runs`, xName: 'run (oldest first)', unit: d.unit, series });
      return figure(
        `trend-${d.key}`,
        `${d.table}: ${d.title} per run, oldest first.`,
        chart,
        htmlTable(
          ['run', ...modes.map(esc)],
          results.map((r, i) => [esc(label(r, i)), ...modes.map((m) => fmtNum(summaryOf(r, m, d.key)?.median ?? null))]),
        ),
      );
    });
    trend = `<section id="trend"><h2>Trend</h2><div class="grid">${figs.join('')}</div>${opts.trendExtra ?? ''}</section>`;
  } else trend = `<section id="trend"><h2>Trend</h2><p class="nodata" data-nodata="trend">No trend: ${esc(why)}.</p>${opts.trendExtra ?? ''}</section>`;
  const body = `<section id="runs"><h2>Runs</h2>${htmlTable(['run', 'id', 'file', 'commit', 'profile', 'status', 'host'], runRows)}</section>
<section id="side-by-side"><h2>Side by side</h2><div class="grid">${side.join('')}</div></section>
${trend}`;
  const data = results.map((r) => ({
    runId: r.runId,
    startedAt: r.startedAt,
    status: r.status,
    options: r.options,
    environment: r.environment,
    metrics: Object.fromEntries(Object.entries(r.derived.byMode).map(([m, by]) => [m, Object.fromEntries(Object.entries(by).map(([k, v]) => [k, { perRound: v.perRound, summary: v.summary }]))])),
  }));
  return page(
    `vxtap bench comparison (${results.length} runs)`,
    `<h1>vxtap bench: ${results.length} runs compared</h1><div>${history ? 'The runs form a history (one environment): trend below.' : 'Side by side.'}</div>`,
    [
      ['runs', 'Runs'],
      ['side-by-side', 'Side by side'],
      ['trend', 'Trend'],
    ],
    body,
    scriptJson(data),
  );
}
