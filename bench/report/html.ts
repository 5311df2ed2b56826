/**
 * report.html: one self-contained page rendered from a BenchResult. Charts are
 * SVG rendered at build time (charts.ts), styles are inline, fonts are the
 * system's, and nothing is fetched: the page opens offline and as a CI
 * artifact, and shows everything without JavaScript. The result's JSON is
 * embedded (script type application/json, never executed), so the report
 * carries its own data. Every chart sits in a <figure class="chart"> with
 * data-points (points drawn), a <title> on each data mark (the value on
 * hover) and a <details> table of its numbers (a click away).
 */
import { metricOf, type BenchResult, type MetricByMode } from '../result.js';
import type { MtuProbe } from '../mtu.js';
import type { CapacityPlan } from '../plan.js';
import { renderPlanMarkdown } from '../plan.js';
import { bars, lines, medianWithRounds, PALETTE, type Chart } from './charts.js';
import { judgeClaims } from './claims.js';
import { hasContainerMeasures, measuresSection, MEASURES_NAV_LABEL, MEASURES_SECTION_ID } from './measures.js';
import { disturbedBadge, fmtNum, fmtSpread, latencyDistribution, LATENCY_PERCENTILES, modeOfKind, perRound, ranModes, samplesOf, spreadOf, udpFrames } from './data.js';
import { variantLine } from '../summary.js';
import { defaultThreshold } from '../compare.js';

/** Escape text for HTML content and attribute values. */
export function esc(s: unknown): string {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A table; cells are HTML (escape text before). */
export function htmlTable(header: string[], rows: string[][], cls = ''): string {
  return `<div class="tw"><table${cls ? ` class="${cls}"` : ''}><thead><tr>${header.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`;
}

/** A chart figure with its numbers a click away. */
export function figure(id: string, caption: string, chart: Chart, numbers: string): string {
  return `<figure class="chart" id="chart-${esc(id)}" data-chart="${esc(id)}" data-points="${chart.points}">${chart.svg}<figcaption>${esc(caption)}</figcaption><details><summary>Numbers</summary>${numbers}</details></figure>`;
}

/** A note standing where a chart would be when the result has no data for it. */
function noData(id: string, why: string): string {
  return `<p class="nodata" data-nodata="${esc(id)}">${esc(why)}</p>`;
}

/** Shell-quote a command line. */
export function shellJoin(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Minimal Markdown (our own renderers' subset: headings, tables, bullets, bold, code) to HTML. */
export function markdownToHtml(md: string, headingShift = 1): string {
  const inline = (s: string) =>
    esc(s)
      .replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')
      .replace(/`([^`]+)`/g, '<code>$1</code>');
  const out: string[] = [];
  const rows = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replace(/\\\|/g, '|'));
  const ls = md.split('\n');
  for (let i = 0; i < ls.length; i++) {
    const line = ls[i];
    const h = /^(#+)\s+(.*)$/.exec(line);
    if (h) out.push(`<h${h[1].length + headingShift}>${inline(h[2])}</h${h[1].length + headingShift}>`);
    else if (line.startsWith('|')) {
      const block: string[] = [];
      while (i < ls.length && ls[i].startsWith('|')) block.push(ls[i++]);
      i--;
      const [head, , ...body] = block;
      out.push(
        htmlTable(
          rows(head).map(inline),
          body.map((b) => rows(b).map(inline)),
        ),
      );
    } else if (line.startsWith('- ')) {
      const items: string[] = [];
      while (i < ls.length && ls[i].startsWith('- ')) items.push(ls[i++].slice(2));
      i--;
      out.push(`<ul>${items.map((it) => `<li>${inline(it)}</li>`).join('')}</ul>`);
    } else if (line.trim()) out.push(`<p>${inline(line)}</p>`);
  }
  return out.join('\n');
}

/** Inline styles: system fonts only, readable from 1280 px down. */
export const STYLE = `
:root{--fg:#1d2330;--mute:#5b6475;--line:#d9dde5;--bg:#fff;--card:#f6f7f9;--good:#1a7f37;--bad:#c62828;--warn:#9a6700}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{padding:16px 24px;border-bottom:1px solid var(--line);background:var(--card)}header h1{margin:0 0 4px;font-size:20px}
nav{position:sticky;top:0;z-index:1;background:#fff;border-bottom:1px solid var(--line);padding:6px 24px;display:flex;flex-wrap:wrap;gap:4px 14px}
nav a{color:#2457a6;text-decoration:none;font-size:13px}main{max-width:1240px;margin:0 auto;padding:8px 24px 48px}
section{margin:28px 0}h2{font-size:18px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
figure.chart{margin:0;padding:8px;border:1px solid var(--line);border-radius:6px;background:#fff;min-width:0}
figure.chart svg{display:block;width:100%;height:auto;max-width:600px;margin:0 auto}figcaption{color:var(--mute);font-size:12px;margin:4px 4px 0}
details{margin:6px 4px 0}summary{cursor:pointer;color:#2457a6;font-size:13px}
.tw{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:6px 0;font-size:13px}th,td{border:1px solid var(--line);padding:3px 7px;text-align:left;vertical-align:top}
th{background:var(--card);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.s-complete{background:var(--good)}.s-incomplete,.s-running{background:var(--bad)}
.v-held,.v-better{color:var(--good);font-weight:600}.v-not-held,.v-worse{color:var(--bad);font-weight:600}.v-undecided,.v-noise{color:var(--warn);font-weight:600}.v-na{color:var(--mute)}
.nodata{color:var(--mute);font-style:italic;border:1px dashed var(--line);padding:10px;border-radius:6px}
.warnbox{border:1px solid var(--bad);background:#fff4f4;padding:8px 12px;border-radius:6px}
table.mtu td{text-align:center;min-width:44px;font-size:12px}.o-whole{background:#c9ecd2}.o-inner-fragmented{background:#fff1b8}.o-underlay-fragmented{background:#ffd59e}.o-refused-locally{background:#cfd8ff}.o-dropped{background:#ffb3b3}.o-none{background:#f0f0f0;color:#999}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}pre{background:var(--card);padding:8px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.muted{color:var(--mute)}
.mm{display:inline-block;padding:0 6px;border-radius:3px;font-weight:600;white-space:nowrap}.mm-completes{background:#c9ecd2}.mm-fragments{background:#fff1b8}.mm-slow{background:#ffd59e}.mm-stalls,.mm-fails{background:#c62828;color:#fff}table.mismatch td:nth-child(-n+4),table.redis td:nth-child(-n+3){white-space:nowrap}
`;

function modeColors(r: BenchResult): Record<string, string> {
  const c: Record<string, string> = {};
  r.modes.forEach((m, i) => {
    c[m.id] = PALETTE[i % PALETTE.length];
  });
  return c;
}

const METRIC_UNITS: Record<string, string> = { tcp1Gbps: 'Gbit/s', tcpNGbps: 'Gbit/s' };

function roundCells(values: (number | null)[]): string {
  return values.map((v) => fmtNum(v)).join(', ');
}

function spreadRow(mode: string, m: MetricByMode | undefined, key: string, badge: { text: string; title: string } | null = null): string[] {
  if (!m) return [esc(mode), 'n/a', 'n/a', 'n/a', 'n/a'];
  const s = m.summary;
  // Too noisy to compare: the same limit compare uses (one definition, compare.ts).
  const noisy = s.cv !== null && s.cv > defaultThreshold(key).cvMax ? ' <span class="v-worse" data-noisy="1">noisy</span>' : '';
  // A disturbed round (disturbance.ts) is flagged beside the figure, never dropped from it.
  const mark = badge ? ` <span class="muted" data-disturbed="${esc(mode)}" title="${esc(badge.title)}">${esc(badge.text)}</span>` : '';
  return [esc(mode), roundCells(m.perRound), fmtNum(s.median) + mark, s.min !== null ? `${fmtNum(s.min)}–${fmtNum(s.max)}` : 'n/a', s.cv !== null ? `${(s.cv * 100).toFixed(1)}%${noisy}` : 'n/a'];
}

/** Verdict of one ratio: beyond the run's noise when every round's ratio is on the same side of 1. */
function ratioVerdict(s: MetricByMode['ratioToBare'], higherIsBetter: boolean): { cls: string; text: string } {
  if (!s || s.median === null || s.min === null || s.max === null) return { cls: 'v-na', text: 'n/a' };
  const body = s.n > 1 ? `${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${s.max.toFixed(2)})` : `${s.median.toFixed(2)}×`;
  if (s.n < 2) return { cls: 'v-na', text: `${body} · 1 round, noise unknown` };
  const above = s.min > 1;
  const below = s.max < 1;
  if (!above && !below) return { cls: 'v-noise', text: `${body} · within noise` };
  const better = above === higherIsBetter;
  return { cls: better ? 'v-better' : 'v-worse', text: `${body} · ${better ? 'better' : 'worse'}, beyond noise` };
}

function verdictSection(r: BenchResult): string {
  const bare = modeOfKind(r, 'bare');
  const kv = modeOfKind(r, 'kernel-vxlan');
  const frames = udpFrames(r);
  const keys = ['tcp1Gbps', 'tcpNGbps', 'latIdleP50', 'tcp1CpuPerGbit', ...(frames.length ? [`udp${frames[0]}PdrKpps`] : [])];
  const defs = keys.map((k) => r.derived.metrics.find((d) => d.key === k)).filter((d): d is NonNullable<typeof d> => !!d);
  const rows: string[][] = [];
  for (const m of ranModes(r)) {
    if (m.id === bare) continue;
    for (const [label, base, pick] of [
      ['bare', bare, 'ratioToBare'],
      ['kernel-vxlan', kv, 'ratioToKernelVxlan'],
    ] as const) {
      if (!base || base === m.id) continue;
      rows.push([
        esc(m.id),
        `vs ${label}`,
        ...defs.map((d) => {
          const v = ratioVerdict(metricOf(r.derived.byMode, m.id, d.key)?.[pick] ?? null, d.higherIsBetter);
          return `<span class="${v.cls}">${esc(v.text)}</span>`;
        }),
      ]);
    }
  }
  const head = ['mode', 'against', ...defs.map((d) => esc(`${d.table === 'TCP throughput' ? '' : `${d.table} `}${d.title}`.trim()))];
  return `<section id="verdicts"><h2>Verdicts</h2><p class="muted">Ratios taken round by round (mode ÷ reference in the same round), median and min–max over ${r.options.rounds} round(s). "Beyond noise" when every round's ratio lies on the same side of 1; "within noise" when the rounds straddle 1. Higher is better for throughput and packets/s, lower for latency and CPU.</p>${rows.length ? htmlTable(head, rows, 'verdicts') : noData('verdicts', 'No mode to compare with bare or kernel-vxlan in this run.')}</section>`;
}

function tcpSection(r: BenchResult, colors: Record<string, string>): string {
  const modes = ranModes(r).map((m) => m.id);
  const figs: string[] = [];
  for (const key of ['tcp1Gbps', 'tcpNGbps']) {
    const title = key === 'tcp1Gbps' ? 'TCP 1 stream' : `TCP ${r.profile.tcpStreams} streams`;
    const by = modes.map((m) => metricOf(r.derived.byMode, m, key));
    if (!by.some((b) => b && b.summary.n > 0)) {
      figs.push(noData(`tcp-${key}`, `${title}: not measured in this run.`));
      continue;
    }
    const chart = medianWithRounds({
      title: `${title}: median (bar) and each round (dot)`,
      unit: METRIC_UNITS[key],
      categories: modes,
      medians: by.map((b) => b?.summary.median ?? null),
      rounds: by.map((b) => b?.perRound ?? []),
      colors: modes.map((m) => colors[m]),
    });
    figs.push(
      figure(
        `tcp-${key}`,
        `${title}, goodput at the receiver (iperf3), Gbit/s.`,
        chart,
        htmlTable(
          ['mode', 'rounds', 'median', 'min–max', 'CV'],
          modes.map((m, i) => spreadRow(m, by[i], key, disturbedBadge(r, m, key))),
        ),
      ),
    );
  }
  return `<section id="tcp"><h2>TCP throughput</h2><div class="grid">${figs.join('')}</div></section>`;
}

function intervalsSection(r: BenchResult, colors: Record<string, string>): string {
  const figs: string[] = [];
  for (const which of ['tcp1', 'tcpN'] as const) {
    const title = which === 'tcp1' ? 'TCP 1 stream' : `TCP ${r.profile.tcpStreams} streams`;
    const series: { name: string; color: string; points: [number, number][]; dashed?: boolean; tipName?: string }[] = [];
    const rows: string[][] = [];
    for (const m of ranModes(r)) {
      for (const s of samplesOf(r, m.id)) {
        const iv = s[which]?.intervalBps ?? [];
        if (!iv.length) continue;
        series.push({ name: m.id, tipName: `${m.id} round ${s.round}`, color: colors[m.id], points: iv.map((b, i) => [i + 1, b / 1e9]), dashed: s.round % 2 === 0 });
        const sp = spreadOf(iv.map((b) => b / 1e9));
        rows.push([
          esc(m.id),
          String(s.round),
          iv.map((b) => fmtNum(b / 1e9)).join(', '),
          sp.min !== null && sp.max !== null && sp.median ? `${(((sp.max - sp.min) / sp.median) * 100).toFixed(0)}%` : 'n/a',
        ]);
      }
    }
    if (!series.length) {
      figs.push(noData(`intervals-${which}`, `${title}: this result does not record per-interval throughput (written before iperf3 intervals were kept).`));
      continue;
    }
    const chart = lines({ title: `${title}: throughput per interval`, xName: 'second of the test', unit: 'Gbit/s', series, yMin: 0, xInteger: true });
    figs.push(
      figure(
        `intervals-${which}`,
        `${title}: sender bits/s per iperf3 interval, one line per mode and round (rounds alternate solid and dashed); a ramp or a dip shows an unstable test.`,
        chart,
        htmlTable(['mode', 'round', 'Gbit/s per interval', '(max − min) / median'], rows),
      ),
    );
  }
  return `<section id="intervals"><h2>Throughput over time</h2><div class="grid">${figs.join('')}</div></section>`;
}

const PCT_AXIS = (x: number) => {
  const p = 100 - 100 / x;
  return `${p >= 99.9 ? p.toFixed(2) : p >= 99 ? p.toFixed(1) : p.toFixed(0)}%`;
};

function latencySection(r: BenchResult, colors: Record<string, string>): string {
  const figs: string[] = [];
  const plotted = LATENCY_PERCENTILES.filter((p) => p >= 50 && p < 100);
  for (const cond of ['idle', 'loaded'] as const) {
    const series: { name: string; color: string; points: [number, number][] }[] = [];
    const rows: string[][] = [];
    for (const m of ranModes(r)) {
      const d = latencyDistribution(r, m.id, cond);
      if (!d) continue;
      series.push({ name: m.id, color: colors[m.id], points: d.filter((x) => plotted.includes(x.percentile)).map((x) => [1 / (1 - x.percentile / 100), Math.max(1, x.us)]) });
      const count = samplesOf(r, m.id).reduce((t, s) => t + ((cond === 'idle' ? s.latencyIdle : s.latencyLoaded)?.percentiles.count ?? 0), 0);
      rows.push([esc(m.id), String(count), ...d.map((x) => fmtNum(x.us))]);
    }
    const title = cond === 'idle' ? 'idle' : 'under load (TCP stream at 50% of the 1-stream rate)';
    if (!series.length) {
      figs.push(noData(`latency-${cond}`, `Latency ${title}: not measured in this run.`));
      continue;
    }
    const chart = lines({ title: `Round-trip latency, ${cond}`, xName: 'percentile', unit: 'µs (log)', series, xLog: true, yLog: true, xLabels: PCT_AXIS, xMin: 2 });
    figs.push(
      figure(
        `latency-${cond}`,
        `TCP request/response round trip ${title}; HDR histograms of all rounds merged; both axes logarithmic.`,
        chart,
        htmlTable(['mode', 'round trips', ...LATENCY_PERCENTILES.map((p) => (p === 0 ? 'min' : p === 100 ? 'max' : `p${p}`))], rows),
      ),
    );
  }
  return `<section id="latency"><h2>Latency percentile distribution</h2><div class="grid">${figs.join('')}</div></section>`;
}

function cpuSection(r: BenchResult): string {
  const figs: string[] = [];
  const cats = [
    ['userSeconds', 'user', '#4e79a7'],
    ['systemSeconds', 'system', '#f28e2b'],
    ['softirqSeconds', 'softirq', '#59a14f'],
    ['irqSeconds', 'irq', '#76b7b2'],
    ['stealSeconds', 'steal', '#e15759'],
  ] as const;
  for (const which of ['tcp1', 'tcpN'] as const) {
    const title = which === 'tcp1' ? 'TCP 1 stream' : `TCP ${r.profile.tcpStreams} streams`;
    const modes = ranModes(r)
      .map((m) => m.id)
      .filter((m) => samplesOf(r, m).some((s) => s[which]));
    if (!modes.length) {
      figs.push(noData(`cpu-${which}`, `CPU during ${title}: not measured.`));
      continue;
    }
    type Tcp = NonNullable<BenchResult['samples'][number]['tcp1']>;
    /** Median over rounds of f(test) per Gbit carried in that test. */
    const per = (m: string, f: (t: Tcp) => number) =>
      spreadOf(
        perRound(r, m, (s) => {
          const t = s[which];
          const gbit = t ? (t.receivedBps * t.seconds) / 1e9 : 0;
          return t && gbit > 0 ? f(t) / gbit : null;
        }),
      );
    const series = [
      ...cats.map(([k, name, color]) => ({ name, color, stack: 'machine', data: modes.map((m) => per(m, (t) => (t.cpu.machine as unknown as Record<string, number>)[k] ?? 0).median) })),
      { name: 'dataplane', color: '#b07aa1', stack: 'dataplane', data: modes.map((m) => per(m, (t) => t.cpu.dataplaneSeconds).median) },
    ];
    const chart = bars({ title: `CPU-seconds per Gbit, ${title}`, unit: 'CPU-s/Gbit', categories: modes, series, horizontal: true });
    const rows = modes.map((m, i) => [esc(m), ...series.map((s) => fmtNum(s.data[i])), fmtSpread(per(m, (t) => t.cpu.machine.busySeconds))]);
    figs.push(
      figure(
        `cpu-${which}`,
        `Machine CPU per Gbit carried during ${title} (both hosts and the load generators), split by /proc/stat category (user, system, softirq, irq, steal); the dataplane processes' own CPU (ovs-vswitchd, vxtap up; part of the machine figure) drawn apart. CPU-s per Gbit = cores per Gbit/s.`,
        chart,
        htmlTable(['mode', ...series.map((s) => esc(s.name)), 'machine busy (min–max)'], rows),
      ),
    );
  }
  return `<section id="cpu"><h2>CPU per Gbit/s</h2><div class="grid">${figs.join('')}</div></section>`;
}

function ppsSection(r: BenchResult, colors: Record<string, string>): string {
  const frames = udpFrames(r);
  const modes = ranModes(r).map((m) => m.id);
  if (!frames.length) return `<section id="pps"><h2>Packets/s at NDR and PDR</h2>${noData('pps', 'No UDP search in this run.')}</section>`;
  const figs: string[] = [];
  for (const which of ['ndr', 'pdr'] as const) {
    const key = (f: number) => `udp${f}${which === 'ndr' ? 'Ndr' : 'Pdr'}Kpps`;
    const series = modes.map((m) => ({ name: m, color: colors[m], data: frames.map((f) => metricOf(r.derived.byMode, m, key(f))?.summary.median ?? null) }));
    const chart = bars({ title: `${which.toUpperCase()} (${which === 'ndr' ? 'no loss' : '≤ 0.5% loss'}) by inner frame size`, unit: 'kpps', categories: frames.map((f) => `${f} B`), series });
    const rows = modes.flatMap((m) =>
      frames.map((f) => {
        const ss = samplesOf(r, m).map((s) => s.udp.find((u) => u.frameBytes === f));
        const skipped = ss.find((u) => u?.skipped)?.skipped;
        const limited = ss.some((u) => u?.search?.senderLimited);
        const metric = metricOf(r.derived.byMode, m, key(f));
        return [
          esc(m),
          `${f} B`,
          roundCells(metric?.perRound ?? []),
          fmtSpread(metric?.summary),
          fmtSpread(spreadOf(ss.map((u) => u?.cpuSecondsPerMpkt))),
          esc(skipped ?? (limited ? 'sender-limited in a round: at least this much' : '')),
        ];
      }),
    );
    figs.push(
      figure(
        `pps-${which}`,
        `Paced UDP trials A→B, bisection per frame size; medians over rounds (a missing bar: no rate passed, or the size exceeds the inner MTU).`,
        chart,
        htmlTable(['mode', 'frame', 'kpps per round', 'median (min–max)', 'CPU-s/Mpkt at PDR', 'note'], rows),
      ),
    );
  }
  return `<section id="pps"><h2>Packets/s at NDR and PDR</h2><div class="grid">${figs.join('')}</div></section>`;
}

const OUTCOME_SHORT: Record<MtuProbe['outcome'], string> = { whole: 'whole', 'inner-fragmented': 'frag in', 'underlay-fragmented': 'frag out', 'refused-locally': 'refused', dropped: 'dropped' };

function mtuSection(r: BenchResult): string {
  const withMtu = ranModes(r)
    .map((m) => ({ m: m.id, mtu: r.samples.find((s) => s.mode === m.id && s.mtu)?.mtu ?? null }))
    .filter((x) => x.mtu);
  if (!withMtu.length) return `<section id="mtu"><h2>MTU sweep</h2>${noData('mtu', 'No MTU sweep in this run.')}</section>`;
  const parts: string[] = [];
  for (const config of ['configured', 'raised'] as const) {
    const sweeps = withMtu.map((x) => ({ m: x.m, sweep: x.mtu?.sweeps.find((s) => s.config === config) ?? null, skipped: x.mtu?.raisedSkipped ?? null }));
    const sizes = [...new Set(sweeps.flatMap((s) => s.sweep?.probes.map((p) => p.ipBytes) ?? []))].sort((a, b) => a - b);
    if (!sizes.length) continue;
    const rows: string[][] = [];
    for (const s of sweeps) {
      for (const df of [true, false]) {
        const cells = sizes.map((size) => {
          const p = s.sweep?.probes.find((x) => x.ipBytes === size && x.df === df);
          if (!p) return '<span class="o-none">–</span>';
          const title = `${s.m}, ${size} B, DF ${df ? 'set' : 'unset'}: ${p.outcome}; replied ${p.replied}; local error ${p.localError ?? 'none'}; ICMP unreachable ${p.icmpUnreachReceived}; IpFragCreates A ${p.fragCreatesA}; underlay fragments ${p.underlayFragments}`;
          return `<span class="cell o-${p.outcome}" title="${esc(title)}">${esc(OUTCOME_SHORT[p.outcome])}</span>`;
        });
        rows.push([
          esc(s.m),
          df ? 'DF' : 'no DF',
          s.sweep ? String(s.sweep.innerMtu) : 'n/a',
          ...cells,
          s.sweep?.largestWholeDf != null && df ? String(s.sweep.largestWholeDf) : df ? esc(s.sweep ? 'none' : (s.skipped ?? 'not measured')) : '',
        ]);
      }
    }
    const html = htmlTable(['mode', 'DF', 'inner MTU', ...sizes.map((x) => `${x}`), 'largest whole (DF)'], rows, 'mtu')
      // the outcome class goes on the cell itself, so the colour fills the grid square
      .replace(/<td><span class="cell (o-[a-z-]+)" title="([^"]*)">([^<]*)<\/span><\/td>/g, '<td class="$1" title="$2">$3</td>')
      .replace(/<td><span class="o-none">–<\/span><\/td>/g, '<td class="o-none">–</td>');
    parts.push(`<h3>${config === 'configured' ? "At each mode's configured inner MTU" : 'Inner MTU raised to the underlay MTU (what the tunnel itself does with too-big packets)'}</h3>${html}`);
  }
  const legend = Object.entries(OUTCOME_SHORT)
    .map(([o, s]) => `<td class="o-${o}">${esc(s)}</td><td>${esc(o)}</td>`)
    .join('');
  return `<section id="mtu"><h2>MTU sweep</h2><p class="muted">Inner IPv4 packet sizes (bytes) pinged with DF set and unset; each cell's outcome from the reply, ping's local error, ICMP unreachables, fragment counters and an underlay capture (hover a cell for the evidence).</p><div class="tw"><table class="mtu legend"><tr>${legend}</tr></table></div>${parts.join('')}</section>`;
}

function claimsSection(r: BenchResult): string {
  const rows = judgeClaims(r).map((c) => {
    const cls = `v-${c.judged.replace(/[^a-z]+/g, '-').replace('n-a', 'na')}`;
    const ev = c.evidence;
    const fmtV = (v: number | null) => (v === null ? 'n/a' : ev?.unit === 'fraction' ? `${(v * 100).toFixed(1)}%` : fmtNum(v));
    const evidence = ev
      ? `${esc(ev.quantity)}: ${ev.perRound.map(fmtV).join(', ')} (bound ${ev.bound[0] !== null ? fmtV(ev.bound[0]) : '−∞'} … ${ev.bound[1] !== null ? fmtV(ev.bound[1]) : '∞'})`
      : 'exact (no round-to-round spread)';
    return [esc(c.claim), esc(c.measured), evidence, `<span class="${cls}">${esc(c.judged)}</span>`, esc(c.verdict), esc(c.detail)];
  });
  return `<section id="claims"><h2>Claims</h2><p class="muted">Judged on every round: <span class="v-held">held</span> when all rounds are within the claim's bound, <span class="v-not-held">not held</span> when all are outside it, <span class="v-undecided">undecided</span> when the rounds straddle the bound. "On the median" is the verdict of summary.md.</p>${htmlTable(['claim', 'measured (median)', 'per round', 'verdict', 'on the median', 'how'], rows)}</section>`;
}

const KNOWN_ENV = new Set([
  'hostname',
  'kernel',
  'os',
  'cpuModel',
  'cpuCount',
  'memoryBytes',
  'virtualization',
  'container',
  'kvm',
  'baselineStealRatio',
  'baselineBusyRatio',
  'git',
  'tools',
  'tcpCongestionControl',
]);

/** Offload facts a mode recorded (any info or stats key naming offloads), for the environment table. */
function offloadFacts(info: Record<string, unknown> | null): string {
  const found: string[] = [];
  const walk = (o: unknown, at: string, depth: number) => {
    if (!o || typeof o !== 'object' || depth > 3) return;
    for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
      if (/offload|gso|gro|tso|csum|checksum/i.test(k)) found.push(`${at}${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
      else walk(v, `${at}${k}.`, depth + 1);
    }
  };
  walk(info, '', 0);
  return found.length ? found.slice(0, 12).join(', ') : 'not recorded';
}

/** --hosts runs: each real host as its agent saw it (build, underlay, clock offset, environment with NIC offloads). */
function hostsTable(r: BenchResult): string {
  const hosts = (r as { hosts?: Record<string, unknown>[] }).hosts;
  if (!Array.isArray(hosts) || !hosts.length) return '';
  const rows = hosts.map((h) => {
    const u = h.underlay as { address?: string; dev?: string; mtu?: number | null } | undefined;
    return [
      esc(h.label ?? ''),
      esc(h.ssh ?? ''),
      esc(h.hostname ?? ''),
      esc(u ? `${u.address ?? '?'} on ${u.dev ?? '?'}, MTU ${u.mtu ?? '?'}` : 'n/a'),
      `<details><summary>environment, offloads, clock</summary><code>${esc(JSON.stringify({ build: h.build, clockOffsetMs: h.clockOffsetMs, environment: h.environment, preflight: h.preflight }))}</code></details>`,
    ];
  });
  return `<h3>Hosts</h3>${htmlTable(['label', 'SSH', 'hostname', 'underlay', 'facts'], rows)}`;
}

function environmentSection(r: BenchResult): string {
  const e = r.environment;
  const envRows: string[][] = e
    ? [
        ['hostname', esc(e.hostname)],
        ['kernel', esc(e.kernel)],
        ['OS', esc(e.os ?? 'n/a')],
        ['CPU', `${esc(e.cpuModel ?? 'n/a')} × ${e.cpuCount}`],
        ['memory', e.memoryBytes ? `${(e.memoryBytes / 2 ** 30).toFixed(1)} GiB` : 'n/a'],
        ['virtualisation', `${esc(e.virtualization ?? 'n/a')}${e.container && e.container !== 'none' ? ` (container ${esc(e.container)})` : ''}, /dev/kvm ${e.kvm ? 'present' : 'absent'}`],
        [
          'baseline steal / busy',
          `${e.baselineStealRatio != null ? (e.baselineStealRatio * 100).toFixed(1) : 'n/a'}% / ${e.baselineBusyRatio != null ? (e.baselineBusyRatio * 100).toFixed(1) : 'n/a'}%`,
        ],
        ['TCP congestion control', esc(e.tcpCongestionControl ?? 'not recorded')],
        ['vxtap commit', `${esc(e.git.commit ?? 'n/a')}${e.git.dirty ? ' (dirty)' : ''}`],
        ...Object.entries(e.tools).map(([k, v]) => [esc(k), esc(v ?? 'not found')]),
        // fields added by later writers (remote hosts, CPU placement, offloads, ...) show as they are
        ...Object.entries(e)
          .filter(([k]) => !KNOWN_ENV.has(k))
          .map(([k, v]) => [esc(k), `<code>${esc(typeof v === 'string' ? v : JSON.stringify(v))}</code>`]),
      ]
    : [['environment', 'not recorded']];
  const t = r.topology;
  const topoRows = [
    ['hosts', t.hosts.map((h) => `${esc(h.label)} = ${esc(h.namespace)}`).join(', ') || 'n/a'],
    ['kind', esc(t.kind)],
    ['underlay', `${esc(t.underlay.a)} – ${esc(t.underlay.b)} /${t.underlay.prefix}, MTU ${t.underlay.mtu}${t.underlay.netem ? `, ${esc(t.underlay.netem)}` : ''}`],
    ['overlay', `${esc(t.overlay.a)} – ${esc(t.overlay.b)} /${t.overlay.prefix}, VNI ${t.vni}, UDP ${t.udpPort}`],
    ['latency pinning', esc(r.options.pin)],
    ['profile', esc(JSON.stringify(r.profile))],
  ];
  const modeRows = r.modes.map((m) => [
    esc(m.id),
    m.available ? 'yes' : `no: ${esc(m.unavailableReason ?? '')}`,
    esc(offloadFacts(m.info)),
    `<details><summary>facts</summary><code>${esc(JSON.stringify(m.info ?? {}))}</code></details>`,
  ]);
  return `<section id="environment"><h2>Environment and command</h2><h3>Command</h3><pre>vxtap ${esc(shellJoin(r.options.argv))}</pre>
<div class="grid"><div><h3>Machine</h3>${htmlTable(['', ''], envRows)}</div><div><h3>Topology</h3>${htmlTable(['', ''], topoRows)}</div></div>
${hostsTable(r)}<h3>Modes</h3>${htmlTable(['mode', 'ran', 'offloads recorded', 'setup facts (datapath, command, counters)'], modeRows)}<p class="muted">Underlay NIC offloads are the veth defaults unless a mode records otherwise.</p>
<h3>Rounds</h3>${htmlTable(
    ['round', 'order'],
    r.order.map((o, i) => [String(i + 1), esc(o.join(' → '))]),
  )}</section>`;
}

/** Options of renderReportHtml. */
export interface ReportOptions {
  /** The capacity plan to include (vxtap bench --target, or vxtap report --target). */
  plan?: CapacityPlan | null;
  /** Embed the result's JSON (default true). */
  embedJson?: boolean;
  /** Sections added by other tools (e.g. a CI comparison against a base run), placed before the environment. */
  extraSections?: { id: string; title: string; html: string }[];
}

/** JSON safe inside a <script> element. */
export function scriptJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Page shell: head with inline style, header, nav, main. */
export function page(title: string, header: string, nav: [string, string][], body: string, dataJson: string | null): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title><style>${STYLE}</style></head>
<body><header>${header}</header><nav>${nav.map(([id, label]) => `<a href="#${id}">${esc(label)}</a>`).join('')}</nav><main>
${body}
</main>${dataJson !== null ? `<script type="application/json" id="vxtap-result">${dataJson}</script>` : ''}</body></html>
`;
}

/** Render report.html for one result. */
export function renderReportHtml(r: BenchResult, opts: ReportOptions = {}): string {
  const colors = modeColors(r);
  const statusNote =
    r.status === 'complete'
      ? ''
      : `<div class="warnbox"><strong>This run is ${esc(r.status)}.</strong> ${r.status === 'running' ? 'The bench was killed or is still running; figures cover what was measured so far.' : ''}<ul>${r.incompleteReasons.map((x) => `<li>${esc(x)}</li>`).join('')}</ul></div>`;
  const unavailable = r.modes.filter((m) => !m.available);
  const header = `<h1>vxtap bench report</h1><div>run <code>${esc(r.runId)}</code> · <span class="badge s-${esc(r.status)}">${esc(r.status)}</span> · ${esc(r.options.profile)} profile, ${r.options.rounds} round(s) · started ${esc(r.startedAt)}${r.durationSeconds != null ? ` · ${(r.durationSeconds / 60).toFixed(1)} min` : ''} · ${esc(r.environment?.hostname ?? '')} ${esc(r.environment?.kernel ?? '')}</div>${variantLine(r) ? `<div>${esc(variantLine(r))}</div>` : ''}`;
  const nav: [string, string][] = [
    ['verdicts', 'Verdicts'],
    ['tcp', 'TCP'],
    ['intervals', 'Over time'],
    ['latency', 'Latency'],
    ['cpu', 'CPU'],
    ['pps', 'Packets/s'],
    ['mtu', 'MTU'],
    ...(hasContainerMeasures(r) ? [[MEASURES_SECTION_ID, MEASURES_NAV_LABEL] as [string, string]] : []),
    ['claims', 'Claims'],
    ...(opts.plan ? [['plan', 'Capacity plan'] as [string, string]] : []),
    ...(opts.extraSections ?? []).map((x) => [x.id, x.title] as [string, string]),
    ['environment', 'Environment'],
    ['data', 'Data'],
  ];
  const body = [
    statusNote,
    unavailable.length ? `<p class="muted">Not run: ${unavailable.map((m) => `${esc(m.id)} (${esc(m.unavailableReason ?? '')})`).join('; ')}</p>` : '',
    verdictSection(r),
    tcpSection(r, colors),
    intervalsSection(r, colors),
    latencySection(r, colors),
    cpuSection(r),
    ppsSection(r, colors),
    mtuSection(r),
    measuresSection(r, colors),
    claimsSection(r),
    opts.plan ? `<section id="plan"><h2>Capacity plan</h2>${markdownToHtml(renderPlanMarkdown(opts.plan).replace(/^# .*\n/, ''), 1)}</section>` : '',
    ...(opts.extraSections ?? []).map((x) => `<section id="${esc(x.id)}"><h2>${esc(x.title)}</h2>${x.html}</section>`),
    environmentSection(r),
    `<section id="data"><h2>Data</h2><p class="muted">The result (schema ${esc(r.schema)} version ${r.schemaVersion}) is embedded in this file as JSON: <code>document.getElementById('vxtap-result').textContent</code>, or extract it with any HTML parser. summary.md and the terminal summary are rendered from the same JSON.</p></section>`,
  ].join('\n');
  return page(`vxtap bench ${r.runId}`, header, nav, body, opts.embedJson === false ? null : scriptJson(r));
}
