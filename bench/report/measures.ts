/**
 * report.html's "What containers see" section: the opt-in claim measurements
 * of a run rendered from its result. `--measure mtu-mismatch` (TCP transfers
 * with the endpoints forced to the underlay MTU, as a container left at 1500
 * B), `--measure redis` (a database client and server through each mode) and
 * `--contention PCT` (every mode again under a CPU hog), with a note of how
 * the endpoints (`--endpoints`) and the underlay offloads
 * (`--underlay-offloads`) were set up. claims.ts judges these measurements;
 * this section shows them. Pure: the claim figures are read from the round-1
 * samples that carry them and the contention figures from `derived.byMode`;
 * nothing is measured here. A run without any of them has no section (and
 * the page no nav link to one).
 */
import { metricOf, type BenchResult } from '../result.js';
import { contendedId, CONTENTION_GROWTH_HELD, medianOf, overheadGrowthPerRound, plainBare } from '../contention.js';
import { forcedLabel, type MismatchOutcome, type MismatchTransfer, type MtuMismatchResult } from '../mtu-mismatch.js';
import type { RedisBenchLine, RedisResult, RedisRun } from '../redis.js';
import { bars, lines } from './charts.js';
import { fmtNum, ranModes } from './data.js';
import { esc, figure, htmlTable } from './html.js';

/** Id of the section (and its nav anchor). */
export const MEASURES_SECTION_ID = 'containers';
/** Title of the section. */
export const MEASURES_SECTION_TITLE = 'What containers see';
/** Label of its nav link. */
export const MEASURES_NAV_LABEL = 'Containers';

/** Label of each transfer outcome as the table shows it. */
export const OUTCOME_LABEL: Record<MismatchOutcome, string> = {
  completes: 'completed',
  fragments: 'completed, fragmented',
  stalls: 'stalled',
  slow: 'unfinished (slow)',
  fails: 'failed (no connection)',
};

/** The plain (not contended) modes that ran, with the first sample carrying `pick`. */
function withMeasure<T>(r: BenchResult, pick: (s: BenchResult['samples'][number]) => T | null | undefined): { mode: string; m: T }[] {
  const out: { mode: string; m: T }[] = [];
  for (const mode of ranModes(r)) {
    if (mode.variant) continue;
    const s = r.samples.filter((x) => x.mode === mode.id).sort((a, b) => a.round - b.round);
    for (const x of s) {
      const m = pick(x);
      if (m) {
        out.push({ mode: mode.id, m });
        break;
      }
    }
  }
  return out;
}

/** Modes with an MTU-mismatch result. */
export function mtuMismatchOf(r: BenchResult): { mode: string; m: MtuMismatchResult }[] {
  return withMeasure(r, (s) => s.mtuMismatch);
}

/** Modes with a redis result. */
export function redisOf(r: BenchResult): { mode: string; m: RedisResult }[] {
  return withMeasure(r, (s) => s.redis);
}

/** Plain modes whose contended variant ran, with the variant's id (none without --contention). */
export function contendedPairs(r: BenchResult): { mode: string; contended: string }[] {
  const c = r.options.contention;
  if (!c) return [];
  const ran = new Set(ranModes(r).map((m) => m.id));
  return ranModes(r)
    .filter((m) => !m.variant && ran.has(contendedId(m.id, c.pct)))
    .map((m) => ({ mode: m.id, contended: contendedId(m.id, c.pct) }))
    .filter((p) => r.samples.some((s) => s.mode === p.contended));
}

/** Whether the result has anything for the section. */
export function hasContainerMeasures(r: BenchResult): boolean {
  return mtuMismatchOf(r).length > 0 || redisOf(r).length > 0 || contendedPairs(r).length > 0;
}

/** One line on how the run was made: endpoints, underlay offloads, CPU contention (text, not HTML). */
export function runSetupLine(r: BenchResult): string {
  const o = r.options;
  const podMtu = r.samples.find((s) => s.pods)?.pods?.mtu;
  const endpoints =
    o.endpoints === 'pod'
      ? `pod to pod (a pod per host behind a bridge, attached as the CNI bridge plugin does${podMtu ? `, pod MTU ${podMtu}` : ''})`
      : "host to host (the load generators on the hosts' overlay addresses)";
  const rec = r.environment?.underlayOffloads;
  const feats = rec
    ? rec.hosts
        .map(
          (h) =>
            `${h.label} ${h.dev}: tunnel TSO ${h.features['tx-udp_tnl-segmentation'] ?? '?'}, USO ${h.features['tx-udp-segmentation'] ?? '?'}, GRO ${h.features['generic-receive-offload'] ?? '?'}`,
        )
        .join('; ')
    : '';
  const offloads = `${o.underlayOffloads ?? 'full'}${o.underlayOffloads === 'no-tunnel-tso' ? ' (tunnel segmentation off, as a NIC without UDP-tunnel TSO)' : ''}${feats ? ` — ${feats}` : ''}`;
  const contention = o.contention ? `${o.contention.pct}% of the CPUs taken by ${o.contention.method} in the @cpu${o.contention.pct} runs` : 'none';
  return `Endpoints: ${endpoints}. Underlay offloads: ${offloads}. CPU contention: ${contention}.`;
}

const mbit = (bps: number | null) => (bps === null ? 'n/a' : fmtNum(bps / 1e6));
const msCell = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(3));

function outcomeBadge(t: MismatchTransfer): string {
  const label = `${OUTCOME_LABEL[t.outcome]}${t.outcome === 'fragments' && t.fragmentedAt ? ` (${t.fragmentedAt})` : ''}`;
  return `<span class="mm mm-${t.outcome}" data-outcome="${t.outcome}">${esc(label)}</span>`;
}

function timeCell(t: MismatchTransfer, stallMs: number): string {
  if (t.seconds === null) return 'n/a';
  const quiet = `no ACK for ${(stallMs / 1000).toFixed(1)} s`;
  if (t.outcome === 'stalls') return esc((t.output?.deliveredBytes ?? 0) > 0 ? `last ACK at ${t.seconds.toFixed(3)}, then ${quiet}` : `nothing delivered, ${quiet}`);
  if (t.outcome === 'slow') return `unfinished after ${esc(((t.output?.elapsedMs ?? 0) / 1000).toFixed(1))} s`;
  return esc(t.seconds.toFixed(3));
}

function deliveredCell(t: MismatchTransfer): string {
  const total = t.messageBytes * t.count;
  const got = t.output?.deliveredBytes ?? 0;
  return esc(`${fmtNum(got / 1024)} / ${fmtNum(total / 1024)}`);
}

function evidenceCell(t: MismatchTransfer): string {
  const e = t.evidence;
  const seen = [
    e.fragCreatesA || e.fragCreatesB ? `${e.fragCreatesA}/${e.fragCreatesB} fragments made by A/B` : '',
    e.hosts?.fragCreatesA || e.hosts?.fragCreatesB ? `${e.hosts.fragCreatesA}/${e.hosts.fragCreatesB} fragments made by host A/B` : '',
    e.hosts?.fragFailsA ? `${e.hosts.fragFailsA} DF packets refused by host A` : '',
    e.underlayFragments ? `${e.underlayFragments} fragments on the underlay wire` : '',
    e.reassembled ? `${e.reassembled} reassembled` : '',
    e.icmpUnreachReceivedA ? `${e.icmpUnreachReceivedA} ICMP unreachable to A` : '',
    t.error ?? '',
  ].filter(Boolean);
  return seen.length ? esc(seen.join('; ')) : '<span class="muted">none</span>';
}

function mtuMismatchPart(r: BenchResult): string {
  const all = mtuMismatchOf(r);
  if (!all.length) return '';
  const rows: string[][] = [];
  for (const { mode, m } of all) {
    const forced = `${m.configuredInnerMtu} → ${m.forcedMtu} (${forcedLabel(m.forcedBy)})`;
    if (m.skipped) {
      rows.push([esc(mode), esc(forced), '', '', `<span class="muted">not measured: ${esc(m.skipped)}</span>`, '', '', '', '', '']);
      continue;
    }
    for (const [i, t] of m.transfers.entries()) {
      rows.push([
        // mode and MTU once per mode: the rows below belong to it
        i === 0 ? esc(mode) : '',
        i === 0 ? esc(forced) : '',
        t.pmtud,
        esc(`${t.messages} ${t.messageBytes >= 1024 ? `${t.messageBytes / 1024} KiB` : `${t.messageBytes} B`} × ${t.count}${t.window === 1 ? ', one at a time' : ', streamed'}`),
        outcomeBadge(t),
        timeCell(t, m.plan.stallMs),
        t.outcome === 'stalls' || t.outcome === 'fails' ? '—' : mbit(t.goodputBps),
        deliveredCell(t),
        String(t.evidence.retransSegsA),
        evidenceCell(t),
      ]);
    }
  }
  const stalled = all.filter(({ m }) => m.transfers.some((t) => t.outcome === 'stalls' || t.outcome === 'fails')).map((x) => x.mode);
  const p = all[0].m.plan;
  const underlay = all[0].m.underlayMtu;
  const podNote = all.some(({ m }) => m.endpoints === 'pod')
    ? " With pods (forced by pods): pod A → pod B, the pods' eth0, veth host ends and bridges at the underlay MTU, each host's overlay device at the inner MTU, so the hosts' routed hop meets the oversize packets; PMTUD set in the pods and the hosts; A/B are the pods, host A/B the namespaces behind them."
    : '';
  const legend = (Object.keys(OUTCOME_LABEL) as MismatchOutcome[]).map((o) => `<span class="mm mm-${o}">${esc(OUTCOME_LABEL[o])}</span>`).join(' ');
  return `<h3 id="containers-mtu">MTU mismatch: a container left at the underlay MTU</h3>
<p>A container whose interface keeps the underlay's ${underlay} B MTU sends packets the overlay cannot carry whole (it needs its encapsulation headroom inside the same ${underlay} B): each one must be fragmented, refused with an ICMP "fragmentation needed" (PMTUD then shrinks the segments) or dropped, and dropped silently is a black hole: the connection opens and small messages pass, large transfers stall.</p>
<p>${stalled.length ? `<span class="mm mm-stalls">Black hole</span> in ${esc(stalled.join(', '))}: at least one transfer stalled.` : '<span class="mm mm-completes">No black hole</span>: every transfer completed, whole or fragmented.'}</p>
${htmlTable(['mode', 'inner MTU → forced (by)', 'PMTUD', 'messages', 'outcome', 'seconds', 'goodput Mbit/s', 'delivered KiB', 'retransmits', 'fragments, ICMP'], rows, 'mismatch')}
<p class="muted">Bounded TCP transfers A → B with both endpoints at the underlay MTU; PMTUD off = net.ipv4.ip_no_pmtu_disc=1 on both hosts (no DF bit, PMTU updates ignored). Stalled = no acknowledgement for ${esc(p.stallMs)} ms; every transfer bounded by ${esc(p.timeoutMs)} ms. Retransmits: TCP segments A retransmitted; fragments and ICMP: counters of both hosts' stacks and an underlay capture during the transfer.${podNote} Outcomes: ${legend}</p>`;
}

const REDIS_SERIES = [
  { name: 'GET idle', color: '#4e79a7', cond: 'idle', op: 'get' },
  { name: 'GET loaded', color: '#a0cbe8', cond: 'loaded', op: 'get' },
  { name: 'SET idle', color: '#f28e2b', cond: 'idle', op: 'set' },
  { name: 'SET loaded', color: '#ffbe7d', cond: 'loaded', op: 'set' },
] as const;

function pcts(l: RedisBenchLine | null): string {
  return l ? `${msCell(l.p50Ms)} / ${msCell(l.p95Ms)} / ${msCell(l.p99Ms)}` : 'n/a';
}

function conditionLabel(run: RedisRun): string {
  return run.condition === 'delayed' ? `+${run.addedRttMs} ms RTT` : run.condition === 'loaded' ? 'under load' : 'idle';
}

function redisPart(r: BenchResult, colors: Record<string, string>): string {
  const all = redisOf(r);
  if (!all.length) return '';
  const bare = plainBare(r);
  const bareGet = all.find((x) => x.mode === bare)?.m.runs.find((x) => x.condition === 'idle')?.get?.rps ?? null;
  const rows: string[][] = [];
  const notes = new Set<string>();
  const anyError = all.some(({ m }) => m.runs.some((x) => x.error));
  for (const { mode, m } of all) {
    if (m.skipped) notes.add(`${mode}: ${m.skipped}`);
    if (m.sweepSkipped) notes.add(m.sweepSkipped);
    for (const run of m.runs) {
      const ofBare = bareGet && run.get && run.condition !== 'delayed' ? `${((run.get.rps / bareGet) * 100).toFixed(0)}%` : '';
      rows.push([
        esc(mode),
        esc(conditionLabel(run)),
        `${msCell(run.rttMinMs)} / ${msCell(run.rttMs)}`,
        run.get ? fmtNum(run.get.rps) : 'n/a',
        ofBare,
        pcts(run.get),
        run.set ? fmtNum(run.set.rps) : 'n/a',
        pcts(run.set),
        String(run.requests),
        ...(anyError ? [run.error ? `<span class="v-worse">${esc(run.error)}</span>` : ''] : []),
      ]);
    }
  }
  const modes = all.map((x) => x.mode);
  const figs: string[] = [];
  const series = REDIS_SERIES.map((s) => ({
    name: s.name,
    color: s.color,
    data: all.map(({ m }) => m.runs.find((x) => x.condition === s.cond)?.[s.op]?.rps ?? null),
  }));
  // A measurement that failed before any run has only its note (below).
  const table = !rows.length
    ? ''
    : htmlTable(
        [
          'mode',
          'condition',
          'ping RTT min / avg (ms)',
          'GET req/s',
          'GET vs bare idle',
          'GET p50 / p95 / p99 (ms)',
          'SET req/s',
          'SET p50 / p95 / p99 (ms)',
          'requests per test',
          ...(anyError ? ['error'] : []),
        ],
        rows,
        'redis',
      );
  if (series.some((s) => s.data.some((v) => v !== null))) {
    const chart = bars({ title: 'redis requests/s, idle and under load', unit: 'req/s', categories: modes, series });
    const numbers = htmlTable(
      ['mode', ...series.map((s) => esc(s.name))],
      modes.map((m, i) => [esc(m), ...series.map((s) => fmtNum(s.data[i]))]),
    );
    figs.push(figure('redis-rps', 'redis-benchmark GET and SET requests/s per mode, one connection, no pipelining; idle and with a background TCP flow through the same overlay.', chart, numbers));
  }
  const swept = all.filter(({ m }) => m.runs.some((x) => x.condition === 'delayed' && x.get));
  if (swept.length) {
    const lineSeries = swept.map(({ mode, m }) => ({
      name: mode,
      color: colors[mode] ?? '#555',
      points: m.runs
        .filter((x) => (x.condition === 'idle' || x.condition === 'delayed') && x.get)
        .map((x): [number, number] => [x.addedRttMs, (x.get as RedisBenchLine).rps])
        .sort((a, b) => a[0] - b[0]),
    }));
    const sweepRows = swept.flatMap(({ mode, m }) =>
      m.runs.filter((x) => x.condition === 'idle' || x.condition === 'delayed').map((x) => [esc(mode), `+${x.addedRttMs} ms`, msCell(x.rttMs), x.get ? fmtNum(x.get.rps) : 'n/a', pcts(x.get)]),
    );
    const chart = lines({ title: 'redis GET requests/s against added RTT', xName: 'added round-trip time (ms)', unit: 'req/s (log)', series: lineSeries, yLog: true });
    figs.push(
      figure(
        'redis-rtt',
        'GET requests/s with netem delay added on the underlay (half on each end): with one request in flight, each request waits a round trip, so requests/s fall as 1 / RTT.',
        chart,
        htmlTable(['mode', 'added RTT', 'ping RTT avg (ms)', 'GET req/s', 'GET p50 / p95 / p99 (ms)'], sweepRows),
      ),
    );
  } else if (rows.length) {
    const why = all.map((x) => x.m.sweepSkipped).find((x): x is string => !!x);
    figs.push(`<p class="nodata" data-nodata="redis-rtt">${esc(`No added-RTT sweep${why ? `: ${why}` : ''}.`)}</p>`);
  }
  const first = all[0].m;
  const load = all.flatMap((x) => x.m.runs).find((x) => x.load)?.load;
  return `<h3 id="containers-redis">A database over the overlay (redis)</h3>
${table}
${figs.length ? `<div class="grid">${figs.join('')}</div>` : ''}
<p class="muted">redis-server ${esc(first.serverVersion ?? '')} on host B (no persistence), redis-benchmark ${esc(first.benchmarkVersion ?? '')} on host A: ${esc(first.plan.clients)} connection(s), no pipelining (-P 1), requests sized to ~${esc(first.plan.secondsPerTest)} s per test.${load ? ` Under load: ${esc(load)}.` : ''}${notes.size ? ` ${esc([...notes].join('. '))}.` : ''}</p>`;
}

const growthText = (g: number) => `${g >= 0 ? '+' : ''}${(g * 100).toFixed(1)} points`;

function contentionPart(r: BenchResult): string {
  const c = r.options.contention;
  const pairs = contendedPairs(r);
  if (!c || !pairs.length) return '';
  const by = r.derived.byMode;
  const med = (id: string, key: string) => metricOf(by, id, key)?.summary.median ?? null;
  const bare = plainBare(r);
  const bareC = bare ? contendedId(bare, c.pct) : null;
  const deficit = (id: string, b: string | null) => {
    const x = med(id, 'tcp1Gbps');
    const y = b ? med(b, 'tcp1Gbps') : null;
    return x !== null && y !== null && y > 0 ? 1 - x / y : null;
  };
  const pct = (v: number | null) => (v === null ? 'n/a' : `${(v * 100).toFixed(1)}%`);
  const arrow = (a: string, b: string) => `${a} → ${b}`;
  const rows = pairs.map(({ mode, contended }) => {
    const plain1 = med(mode, 'tcp1Gbps');
    const busy1 = med(contended, 'tcp1Gbps');
    const change = plain1 !== null && busy1 !== null && plain1 > 0 ? busy1 / plain1 - 1 : null;
    const isBare = mode === bare;
    const perRound = bare && !isBare ? overheadGrowthPerRound(by, mode, bare, c.pct) : [];
    const growth = medianOf(perRound);
    const growthCell = isBare
      ? '—'
      : growth === null
        ? 'n/a'
        : `${growth >= CONTENTION_GROWTH_HELD ? `<span class="v-worse">${esc(growthText(growth))}</span>` : esc(growthText(growth))} <span class="muted">(rounds ${esc(perRound.map((v) => (v === null ? 'n/a' : (v * 100).toFixed(1))).join(', '))})</span>`;
    const hog = medianOf(r.samples.filter((s) => s.mode === contended).map((s) => s.contention?.achievedShare ?? null));
    return [
      esc(mode),
      fmtNum(plain1),
      fmtNum(busy1),
      change === null ? 'n/a' : `${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)}%`,
      isBare ? '—' : esc(arrow(pct(deficit(mode, bare)), pct(deficit(contended, bareC)))),
      growthCell,
      esc(arrow(fmtNum(med(mode, 'tcpNGbps')), fmtNum(med(contended, 'tcpNGbps')))),
      esc(arrow(fmtNum(med(mode, 'latIdleP50')), fmtNum(med(contended, 'latIdleP50')))),
      esc(arrow(fmtNum(med(mode, 'tcp1CpuPerGbit')), fmtNum(med(contended, 'tcp1CpuPerGbit')))),
      esc(pct(hog)),
    ];
  });
  const modes = pairs.map((p) => p.mode);
  const chart = bars({
    title: `TCP 1 stream, plain and under ${c.pct}% CPU contention`,
    unit: 'Gbit/s',
    categories: modes,
    series: [
      { name: 'plain', color: '#4e79a7', data: pairs.map((p) => med(p.mode, 'tcp1Gbps')) },
      { name: `under ${c.pct}% CPU`, color: '#e15759', data: pairs.map((p) => med(p.contended, 'tcp1Gbps')) },
    ],
  });
  const numbers = htmlTable(
    ['mode', 'plain', `under ${esc(c.pct)}% CPU`],
    pairs.map((p) => [esc(p.mode), fmtNum(med(p.mode, 'tcp1Gbps')), fmtNum(med(p.contended, 'tcp1Gbps'))]),
  );
  const table = htmlTable(
    [
      'mode',
      'TCP 1 stream plain (Gbit/s)',
      `under ${esc(c.pct)}% CPU`,
      'change',
      'deficit to bare: plain → contended',
      'deficit growth',
      'TCP N streams (Gbit/s)',
      'idle p50 (µs)',
      'machine CPU-s/Gbit',
      'hog took',
    ],
    rows,
    'contention',
  );
  return `<h3 id="containers-contention">Shared CPUs: every mode again under a CPU hog</h3>
<p>On a host with noisy neighbours or shared CPU cores, the dataplane and the containers' own processes compete with them for the CPU. Each mode ran again with a CPU hog taking ${esc(c.pct)}% of every host's CPUs, interleaved with the plain run in the same round. Deficit growth = how many points of bare's throughput the mode's deficit to bare grew under contention (median over rounds, same round's bare); from ${esc(CONTENTION_GROWTH_HELD * 100)} points it counts as grown.</p>
${table}
<div class="grid">${figure('contention-tcp1', `TCP 1-stream goodput per mode, plain and under ${c.pct}% CPU contention (${c.method}), medians over rounds; each mode and its contended run alternate in the same round.`, chart, numbers)}</div>`;
}

/** The section's HTML, or '' when the result has none of its measurements. */
export function measuresSection(r: BenchResult, colors: Record<string, string>): string {
  if (!hasContainerMeasures(r)) return '';
  const parts = [mtuMismatchPart(r), redisPart(r, colors), contentionPart(r)].filter(Boolean);
  return `<section id="${MEASURES_SECTION_ID}"><h2>${esc(MEASURES_SECTION_TITLE)}</h2><p class="muted" data-run-setup>${esc(runSetupLine(r))}</p>${parts.join('\n')}</section>`;
}
