/**
 * The comparison page and the trend view. Several results side by side (the
 * same modes, each run a series) and, when the runs form a history (three or
 * more runs of one environment fingerprint), the trend of each headline metric
 * over the runs with `vxtap bench history`'s change points (E-divisive means,
 * bench/history.ts) drawn on each chart and listed in a table below them.
 *
 * The same trend view renders a whole history directory
 * ({@link renderHistoryHtml}: `vxtap report --history DIR`, one trend per
 * environment group) and, as {@link historySectionHtml}, the section a single
 * run's report gets (`vxtap bench ci --history DIR`, `vxtap report RESULT
 * --history DIR`). Renderers over the analysis only: the numbers in the
 * tables are the History's, never recomputed here. `ComparisonOptions.trendExtra`
 * still appends HTML to the comparison's trend section.
 */
import { metricOf, type BenchResult, type MetricByMode } from '../result.js';
import { analyzeHistory, fingerprint, type History, type HistoryGroup, type Series } from '../history.js';
import { bars, PALETTE, renderSvg, type Chart } from './charts.js';
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

// ---------------------------------------------------------------- the trend view (change points)

/** "#N YYYY-MM-DD HH:MM": a run by its position in its group (1 = oldest) and start time. */
function runLabel(startedAt: string, index: number): string {
  return `#${index + 1} ${startedAt.slice(0, 16).replace('T', ' ')}`;
}

const TREND_FONT = { fontFamily: 'Arial, "Liberation Sans", Helvetica, sans-serif', fontSize: 12 };
const CHANGE_COLOR = { regression: '#c62828', progression: '#1a7f37' };

/** Words for a change's direction: `worse` or `better` by the metric's higherIsBetter. */
function direction(kind: 'regression' | 'progression'): 'worse' | 'better' {
  return kind === 'regression' ? 'worse' : 'better';
}

function fmtPct(d: number | null): string {
  return d === null ? 'n/a' : `${d > 0 ? '+' : ''}${d.toFixed(1)}%`;
}

/**
 * The trend chart of one metric of a group: a line per mode over the runs
 * (x = run number, 1 = oldest), the level between change points dashed, and
 * each change point a triangle at the first run of the new level with a
 * vertical line labelled "mode ±x.x%" (red worse, green better). Hover text on
 * every point and marker. `marks` lists the markers as "mode@run" (1-based).
 */
function trendChart(g: HistoryGroup, metric: string, list: Series[], colors: Record<string, string>): { chart: Chart; marks: string[] } {
  const first = list[0];
  const runs = g.runs;
  const changes = list.flatMap((s) => s.changes.map((c) => ({ s, c }))).sort((a, b) => a.c.index - b.c.index || a.s.mode.localeCompare(b.s.mode));
  const valueAt = (s: Series, i: number) => s.values[i] ?? s.segments.find((x) => i >= x.from && i < x.to)?.median ?? null;
  const lineSeries = list.map((s) => ({
    type: 'line' as const,
    name: s.mode,
    data: s.values.flatMap((v, i): [number, number][] => (v === null ? [] : [[i + 1, v]])),
    showSymbol: true,
    symbolSize: 4,
    lineStyle: { color: colors[s.mode], width: 1.5 },
    itemStyle: { color: colors[s.mode] },
  }));
  // Levels: only where a change point splits the series (one flat level says nothing the line does not).
  const levelSeries = list
    .filter((s) => s.changes.length)
    .map((s) => ({
      type: 'line' as const,
      name: s.mode,
      data: [] as number[],
      markLine: {
        symbol: 'none',
        silent: true,
        label: { show: false },
        lineStyle: { color: colors[s.mode], type: 'dashed' as const, width: 1.5, opacity: 0.8 },
        data: s.segments.map((x): [{ coord: number[] }, { coord: number[] }] => [{ coord: [x.from + 1, x.median] }, { coord: [x.to, x.median] }]),
      },
    }));
  const changeSeries = changes.length
    ? [
        {
          type: 'scatter' as const,
          name: 'change point',
          symbol: 'triangle',
          symbolSize: 12,
          z: 5,
          itemStyle: { color: '#444' },
          data: changes.map(({ s, c }) => ({ value: [c.index + 1, valueAt(s, c.index) ?? c.after], itemStyle: { color: CHANGE_COLOR[c.kind] } })),
          markLine: {
            symbol: 'none',
            silent: true,
            data: changes.map(({ s, c }, k) => ({
              xAxis: c.index + 1,
              lineStyle: { color: CHANGE_COLOR[c.kind], type: 'dotted' as const, width: 1.5 },
              label: { formatter: `${s.mode} ${fmtPct(c.changePct)}`, position: k % 2 ? ('insideEndTop' as const) : ('end' as const), color: CHANGE_COLOR[c.kind], ...TREND_FONT },
            })),
          },
        },
      ]
    : [];
  const names = [...list.map((s) => s.mode), ...(changes.length ? ['change point'] : [])];
  const lineCount = lineSeries.length;
  const levelCount = levelSeries.length;
  const svg = renderSvg(
    {
      title: { text: `${first.title} over runs`, left: 'center', top: 22, textStyle: { ...TREND_FONT, fontSize: 14 } },
      legend: { type: 'plain', top: 4, left: 8, right: 8, itemGap: 12, data: names, textStyle: TREND_FONT },
      grid: { left: 84, right: 24, top: 64, bottom: 56 },
      xAxis: {
        type: 'value',
        name: 'run (oldest first)',
        nameLocation: 'middle',
        nameGap: 28,
        nameTextStyle: TREND_FONT,
        axisLabel: TREND_FONT,
        min: 1,
        max: Math.max(runs.length, 2),
        minInterval: 1,
      },
      yAxis: { type: 'value', name: first.unit, nameTextStyle: TREND_FONT, scale: true },
      series: [...lineSeries, ...levelSeries, ...changeSeries],
    },
    undefined,
    (si, di) => {
      if (si < lineCount) {
        const p = lineSeries[si].data.at(di);
        return p ? `${lineSeries[si].name}: run ${runLabel(runs[p[0] - 1].startedAt, p[0] - 1)}, ${fmtNum(p[1])} ${first.unit}` : null;
      }
      if (si < lineCount + levelCount) return null;
      const ch = changes.at(di);
      return ch
        ? `change point: ${ch.s.mode} ${metric} at run ${runLabel(runs[ch.c.index].startedAt, ch.c.index)}: ${fmtNum(ch.c.before)} -> ${fmtNum(ch.c.after)} ${first.unit} (${fmtPct(ch.c.changePct)}, ${direction(ch.c.kind)})`
        : null;
    },
  );
  const points = lineSeries.reduce((t, s) => t + s.data.length, 0) + changes.length;
  return { chart: { svg, points }, marks: changes.map(({ s, c }) => `${s.mode}@${c.index + 1}`) };
}

/** Options of the trend view. */
export interface TrendOptions {
  /** Metric keys drawn, in this order (default {@link COMPARE_KEYS}); the table lists every analysed series. */
  metrics?: readonly string[];
  /** Prefix of element ids (unique per group on a page); default "trend". */
  idPrefix?: string;
  /** The run this report is about (its runId): named in the runs line. */
  current?: string | null;
}

/**
 * One environment group's trend: a chart per metric with its change points
 * marked, and the table of change points (mode, metric, the run where it
 * changed with its start time and commit, median before -> after, change,
 * direction better/worse), or one line saying there is none. Fewer than three
 * runs: one line saying a trend needs more.
 */
export function trendGroupHtml(h: Pick<History, 'options'>, g: HistoryGroup, opts: TrendOptions = {}): string {
  const prefix = opts.idPrefix ?? 'trend';
  const n = g.runs.length;
  const first = g.runs[0];
  const last = g.runs[n - 1];
  const current = opts.current ? g.runs.findIndex((r) => r.runId === opts.current) : -1;
  const runsLine = `<p class="muted">${n} run(s) of this environment, ${esc(runLabel(first.startedAt, 0))} (<code>${esc(first.runId)}</code>) to ${esc(runLabel(last.startedAt, n - 1))} (<code>${esc(last.runId)}</code>)${current >= 0 ? `; this report's run is #${current + 1}` : ''}. ${esc(g.label)}.</p>`;
  if (n < 3)
    return `<div class="trend-group" data-runs="${n}" data-changes="0">${runsLine}<p class="nodata" data-nodata="${esc(prefix)}">No trend: a trend needs three or more runs of one environment (got ${n}).</p></div>`;
  const metrics = opts.metrics ?? COMPARE_KEYS;
  const modes = [...new Set(g.series.map((s) => s.mode))];
  const colors = Object.fromEntries(modes.map((m, i) => [m, PALETTE[i % PALETTE.length]]));
  const figs: string[] = [];
  for (const key of metrics) {
    const list = g.series.filter((s) => s.metric === key);
    if (!list.length) continue;
    const { chart, marks } = trendChart(g, key, list, colors);
    const numbers = htmlTable(
      ['run', 'commit', ...list.map((s) => esc(s.mode))],
      g.runs.map((r, i) => [esc(runLabel(r.startedAt, i)), esc(r.commit?.slice(0, 10) ?? 'n/a'), ...list.map((s) => fmtNum(s.values[i]))]),
    );
    const caption = `${list[0].title} (${list[0].unit}), median over rounds per run, oldest first; ${list[0].higherIsBetter ? 'higher' : 'lower'} is better. ${
      marks.length ? `Change points (triangle and dotted line, red worse, green better): ${marks.length}; dashed: the level between them.` : 'No change point.'
    }`;
    // data-changes: the markers drawn, "mode@run" (a test or a script finds them without parsing the SVG).
    figs.push(figure(`${prefix}-${key}`, caption, chart, numbers).replace(/^<figure([^>]*)>/, (_, attrs: string) => `<figure${attrs} data-changes="${esc(marks.join(' '))}">`));
  }
  const changed = g.series.flatMap((s) => s.changes.map((c) => ({ s, c }))).sort((a, b) => a.c.index - b.c.index || a.s.mode.localeCompare(b.s.mode) || a.s.metric.localeCompare(b.s.metric));
  const searched = g.series.filter((s) => !s.note);
  let table: string;
  if (changed.length) {
    const head = ['mode', 'metric', 'run where it changed', 'commit', 'median before → after', 'change', 'direction', 'p'];
    const rows = changed.map(({ s, c }) => {
      const cells = [
        esc(s.mode),
        `${esc(s.title)} (${esc(s.unit)}) <code>${esc(s.metric)}</code>`,
        `${esc(runLabel(c.startedAt, c.index))} <code>${esc(c.runId)}</code>`,
        c.commit ? `<code>${esc(c.commit.slice(0, 12))}</code>` : 'unknown',
        `${esc(fmtNum(c.before))} → ${esc(fmtNum(c.after))}`,
        esc(fmtPct(c.changePct)),
        `<span class="v-${direction(c.kind)}">${direction(c.kind)}</span>`,
        esc(c.p.toFixed(3)),
      ];
      return `<tr data-change="${esc(`${s.mode} ${s.metric} ${c.index + 1}`)}">${cells.map((x, i) => `<td${i >= 4 && i !== 6 ? ' class="num"' : ''}>${x}</td>`).join('')}</tr>`;
    });
    table = `<div class="tw"><table class="changes"><thead><tr>${head.map((x) => `<th>${x}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
  } else if (searched.length) {
    table = `<p class="nochange" data-nochange="${esc(prefix)}">No change point in ${n} runs: every searched series (${searched.length}) stayed on one level.</p>`;
  } else {
    table = `<p class="nochange" data-nochange="${esc(prefix)}">No change point searched: ${esc(g.series[0]?.note ?? 'no series with values')}.</p>`;
  }
  const method = `<p class="muted">Change points: E-divisive means (Matteson &amp; James 2014, as in Hunter/Otava), permutation test at level ${h.options.significance} with ${h.options.permutations} permutations, at least ${h.options.minSize} runs on each side; the run named is the first of the new level; before and after are the medians of the levels. <code>vxtap bench history</code> prints the same analysis.</p>`;
  return `<div class="trend-group" data-runs="${n}" data-changes="${changed.length}">${runsLine}<div class="grid">${figs.join('')}</div><h3>Change points</h3>${table}${method}</div>`;
}

/** The trend view of every group of a history (largest first), each under its own heading. */
export function historyTrendHtml(h: History, opts: TrendOptions = {}): string {
  if (!h.groups.length) return `<p class="nodata" data-nodata="trend">No trend: no finished results.</p>`;
  return h.groups.map((g, gi) => `<h3 id="group-${gi + 1}">Group ${gi + 1}: ${g.runs.length} run(s)</h3>${trendGroupHtml(h, g, { ...opts, idPrefix: `trend-${gi + 1}` })}`).join('\n');
}

/**
 * The history section of one run's report: the trend of the group `r`
 * belongs to, from `entries` (a history directory) plus `r` itself unless a
 * run with its runId is already there. Other groups are counted, not drawn.
 */
export function historySectionHtml(
  entries: readonly { file: string; result: BenchResult }[],
  r: BenchResult,
  opts: TrendOptions & { source?: string; skipped?: { file: string; reason: string }[] } = {},
): { id: string; title: string; html: string } {
  const all = entries.some((e) => e.result.runId === r.runId) ? [...entries] : [...entries, { file: '(this run)', result: r }];
  const metrics = opts.metrics ?? COMPARE_KEYS;
  const h = analyzeHistory(all, { metrics: [...metrics] }, opts.skipped ?? []);
  const fp = JSON.stringify(fingerprint(r));
  const g = h.groups.find((x) => JSON.stringify(x.fingerprint) === fp);
  const others = h.groups.filter((x) => x !== g);
  const intro = `<p class="muted">Runs of ${opts.source ? `<code>${esc(opts.source)}</code>` : 'the history'} with this run's environment fingerprint (hosts, kernel, CPU, profile, modes, MTU, netem, pinning), this run included.${
    others.length ? ` ${others.reduce((t, x) => t + x.runs.length, 0)} run(s) of ${others.length} other environment(s) are not drawn (<code>vxtap report --history</code> draws every group).` : ''
  }${h.skipped.length ? ` Skipped: ${h.skipped.map((s) => `${esc(s.file)} (${esc(s.reason)})`).join('; ')}.` : ''}</p>`;
  return { id: 'history', title: 'History', html: `${intro}${g ? trendGroupHtml(h, g, { ...opts, idPrefix: 'trend', current: r.runId }) : ''}` };
}

/** Options of {@link renderHistoryHtml}. */
export interface HistoryPageOptions extends TrendOptions {
  /** The directory the history was read from (shown). */
  source?: string;
}

/** The page of a whole history directory: the runs of each environment group, then each group's trend with its change points. */
export function renderHistoryHtml(h: History, opts: HistoryPageOptions = {}): string {
  const runs = h.groups.map((g, gi) => {
    const rows = g.runs.map((r, i) => [esc(runLabel(r.startedAt, i)), `<code>${esc(r.runId)}</code>`, esc(r.file), esc(r.commit?.slice(0, 12) ?? 'n/a'), esc(r.status)]);
    return `<h3>Group ${gi + 1}: ${g.runs.length} run(s)</h3><p class="muted">${esc(g.label)}</p><details${h.groups.length === 1 ? ' open' : ''}><summary>Runs</summary>${htmlTable(['run', 'id', 'file', 'commit', 'status'], rows)}</details>`;
  });
  const skipped = h.skipped.length ? `<section id="skipped"><h2>Skipped</h2><ul>${h.skipped.map((s) => `<li><code>${esc(s.file)}</code>: ${esc(s.reason)}</li>`).join('')}</ul></section>` : '';
  const body = `<section id="runs"><h2>Runs</h2>${runs.join('\n')}</section>
<section id="trend"><h2>Trend</h2>${historyTrendHtml(h, opts)}</section>
${skipped}`;
  const header = `<h1>vxtap bench history: ${h.counts.runs} run(s)</h1><div>${opts.source ? `<code>${esc(opts.source)}</code> · ` : ''}${h.counts.groups} environment group(s) · ${h.counts.changes} change point(s), ${h.counts.regressions} of them regressions</div>`;
  const nav: [string, string][] = [['runs', 'Runs'], ['trend', 'Trend'], ...(h.skipped.length ? [['skipped', 'Skipped'] as [string, string]] : [])];
  return page(`vxtap bench history (${h.counts.runs} runs)`, header, nav, body, scriptJson(h));
}

// ---------------------------------------------------------------- the comparison page

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
    // One group (notAHistory checked the fingerprint); files numbered in this order so ties in start time keep it.
    const keys = defs.map((d) => d.key);
    const h = analyzeHistory(
      results.map((r, i) => ({ file: String(i).padStart(6, '0'), result: r })),
      { metrics: keys },
    );
    trend = `<section id="trend"><h2>Trend</h2>${trendGroupHtml(h, h.groups[0], { metrics: keys })}${opts.trendExtra ?? ''}</section>`;
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
