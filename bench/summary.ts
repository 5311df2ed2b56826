/**
 * Renderers over a BenchResult: summary.md (one table per measurement, modes
 * as rows, plus the claims table) and the short terminal summary. Pure
 * functions of the JSON, tested against a golden result.
 */
import { defaultThreshold } from './compare.js';
import { describeDisturbed, disturbedFor, disturbedSamples, type DisturbedSample } from './disturbance.js';
import { metricOf, type BenchResult, type MetricByMode, type MetricDef } from './result.js';
import { renderMtuMismatchMarkdown } from './mtu-mismatch.js';
import { renderRedisMarkdown } from './redis.js';

function num(v: number | null | undefined, unit: string): string {
  if (v === null || v === undefined) return 'n/a';
  if (unit === 'ratio') return `${(v * 100).toFixed(1)}%`;
  if (unit === 'count') return v.toFixed(0);
  const a = Math.abs(v);
  const digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3;
  return v.toFixed(digits);
}

/** Marks a figure fed by a disturbed sample (bench/disturbance.ts); the footnote under the table names round and reason. */
export const DISTURBED_MARK = '†';

/**
 * A figure's cell: median (min–max, CV), `noisy` when the CV over rounds is
 * above the limit `vxtap bench compare` flags for the metric (compare.ts
 * defaultThreshold, one definition), and {@link DISTURBED_MARK} when one of its
 * rounds was disturbed.
 */
function cell(m: MetricByMode | undefined, def: MetricDef, disturbed: boolean): string {
  const unit = def.unit;
  if (!m || m.summary.n === 0) return 'n/a';
  const mark = disturbed ? ` ${DISTURBED_MARK}` : '';
  const s = m.summary;
  if (s.n === 1) return `${num(s.median, unit)}${mark}`;
  const noisy = s.cv !== null && s.cv > defaultThreshold(def.key).cvMax ? ', noisy' : '';
  const cv = s.cv !== null ? `, CV ${(s.cv * 100).toFixed(1)}%${noisy}` : '';
  return `${num(s.median, unit)} (${num(s.min, unit)}–${num(s.max, unit)}${cv})${mark}`;
}

/** The footnote under a table whose figures include disturbed samples; null when none. */
function disturbedNote(list: readonly DisturbedSample[]): string | null {
  if (!list.length) return null;
  return `${DISTURBED_MARK} Disturbed samples, flagged and kept in the figures: ${describeDisturbed(list).join('; ')}.`;
}

function ratioCell(s: MetricByMode['ratioToBare']): string {
  if (!s || s.median === null) return 'n/a';
  return `${s.median.toFixed(3)}${s.n > 1 && s.min !== null && s.max !== null ? ` (${s.min.toFixed(3)}–${s.max.toFixed(3)})` : ''}`;
}

function table(header: string[], rows: string[][]): string {
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [`| ${header.map(esc).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

/** The modes that ran (available), in option order. */
function ranModes(r: BenchResult): string[] {
  return r.modes.filter((m) => m.available).map((m) => m.id);
}

/**
 * The run's variant options in one line (endpoints, CPU contention, underlay
 * offloads); null for results written before these options existed.
 */
export function variantLine(r: BenchResult): string | null {
  const o = r.options;
  if (o.endpoints === undefined && o.contention === undefined && o.underlayOffloads === undefined) return null;
  const endpoints = o.endpoints === 'pod' ? 'pod to pod (a pod per host behind a bridge, CNI bridge plugin style)' : 'host to host';
  const contention = o.contention ? `every mode also under ${o.contention.pct}% CPU contention (${o.contention.method}), as \`<mode>@cpu${o.contention.pct}\`` : 'no CPU contention';
  const offl = r.environment?.underlayOffloads;
  const feats = offl
    ? offl.hosts
        .map(
          (h) => `${h.label} ${h.dev}: tnl-tso ${h.features['tx-udp_tnl-segmentation'] ?? '?'}, uso ${h.features['tx-udp-segmentation'] ?? '?'}, gro ${h.features['generic-receive-offload'] ?? '?'}`,
        )
        .join('; ')
    : '';
  return `Endpoints: ${endpoints}; ${contention}; underlay offloads ${o.underlayOffloads ?? 'full'}${feats ? ` (${feats})` : ''}.`;
}

/** Render summary.md from a result. */
export function renderSummaryMarkdown(r: BenchResult): string {
  const out: string[] = [];
  const env = r.environment;
  out.push(`# vxtap bench ${r.runId}`);
  out.push('');
  out.push(
    `Status: **${r.status}**${r.incompleteReasons.length ? ` (${r.incompleteReasons.join('; ')})` : ''}. Profile ${r.options.profile}, ${r.options.rounds} round(s), modes interleaved; underlay MTU ${r.options.mtu}${r.topology.underlay.netem ? `, netem ${r.topology.underlay.netem}` : ''}; latency pinning ${r.options.pin}.`,
  );
  const variants = variantLine(r);
  if (variants) out.push('', variants);
  if (env) {
    out.push('');
    out.push(
      `Machine: ${env.hostname}, kernel ${env.kernel}, ${env.cpuCount} x ${env.cpuModel ?? 'unknown CPU'}, virtualisation ${env.virtualization ?? 'unknown'}${env.container && env.container !== 'none' ? ` (container ${env.container})` : ''}, KVM ${env.kvm ? 'yes' : 'no'}, ${env.tcpCongestionControl ? `TCP congestion control ${env.tcpCongestionControl}, ` : ''}baseline steal ${env.baselineStealRatio !== null ? (env.baselineStealRatio * 100).toFixed(2) + '%' : 'n/a'}, busy ${env.baselineBusyRatio != null ? (env.baselineBusyRatio * 100).toFixed(1) + '%' : 'n/a'}. ${env.tools.iperf3 ?? ''}; ${env.tools.ovs ?? 'no OVS'}; node ${String(env.tools.node)}; vxtap ${env.git.commit?.slice(0, 12) ?? 'unknown'}${env.git.dirty ? ' (dirty)' : ''}.`,
    );
  }
  out.push('');
  out.push(
    `Cells: median (min–max, coefficient of variation) over rounds; noisy = CV above the limit \`vxtap bench compare\` uses for the metric; ${DISTURBED_MARK} = a round was disturbed (steal, another process or a throughput dip; footnote under the table). Ratios are computed round by round, then the median taken.`,
  );
  out.push('');
  out.push('## Modes');
  out.push('');
  out.push(
    table(
      ['mode', 'status', 'inner MTU', 'details'],
      r.modes.map((m) => {
        const s = r.samples.filter((x) => x.mode === m.id);
        const failed = s.filter((x) => x.error);
        const status = !m.available
          ? `unavailable: ${String(m.unavailableReason)}`
          : failed.length
            ? `${s.length - failed.length}/${s.length} rounds clean; ${String(failed[0].error)}`
            : `${s.length} round(s)`;
        const info = m.info
          ? Object.entries(m.info)
              .filter(([k]) => ['dataplane', 'datapathType'].includes(k))
              .map(([k, v]) => `${k}=${String(v)}`)
              .join(', ')
          : '';
        return [m.id, status, String(s.find((x) => x.innerMtu !== null)?.innerMtu ?? 'n/a'), info];
      }),
    ),
  );

  const modes = ranModes(r);
  const disturbed = disturbedSamples(r);
  const tables = new Map<string, MetricDef[]>();
  for (const d of r.derived.metrics) {
    const list = tables.get(d.table);
    if (list) list.push(d);
    else tables.set(d.table, [d]);
  }
  for (const [name, defs] of tables) {
    out.push('');
    out.push(`## ${name}`);
    out.push('');
    const header = ['mode', ...defs.map((d) => `${d.title} (${d.unit === 'ratio' ? '%' : d.unit})`)];
    const withRatios = name === 'TCP throughput' || name === 'UDP NDR/PDR';
    const ratioDefs = withRatios ? defs.filter((d) => d.higherIsBetter).slice(0, 2) : [];
    for (const d of ratioDefs) header.push(`${d.title} / bare`, `${d.title} / kernel-vxlan`);
    const marked = new Set<DisturbedSample>();
    out.push(
      table(
        header,
        modes.map((m) => {
          const row = [
            m,
            ...defs.map((d) => {
              const metric = metricOf(r.derived.byMode, m, d.key);
              // Only figures with values get the mark (a kernel dataplane's RSS is n/a whatever the round).
              const behind = metric && metric.summary.n > 0 ? disturbedFor(disturbed, m, d.key) : [];
              for (const x of behind) marked.add(x);
              return cell(metric, d, behind.length > 0);
            }),
          ];
          for (const d of ratioDefs) row.push(ratioCell(metricOf(r.derived.byMode, m, d.key)?.ratioToBare ?? null), ratioCell(metricOf(r.derived.byMode, m, d.key)?.ratioToKernelVxlan ?? null));
          return row;
        }),
      ),
    );
    const note = disturbedNote(disturbed.filter((x) => marked.has(x)));
    if (note) out.push('', note);
    if (name.startsWith('Latency')) {
      const cond = name === 'Latency idle' ? 'latencyIdle' : 'latencyLoaded';
      const first = r.samples.find((x) => x[cond]);
      const load = first?.[cond]?.load;
      const counts = modes.map(
        (m) =>
          `${m} ${r.samples
            .filter((x) => x.mode === m)
            .map((x) => x[cond]?.percentiles.count ?? 0)
            .join('/')}`,
      );
      out.push('');
      out.push(
        `TCP request/response, 1-byte messages, one outstanding (HDR histogram, 1 us - 10 s); pinning ${first?.[cond]?.pinning ?? r.options.pin}${cond === 'latencyLoaded' && load ? `; background: ${load} (50% of the round's 1-stream rate)` : ''}. Round trips per round: ${counts.join('; ')}.`,
      );
    }
    if (name === 'UDP NDR/PDR') {
      out.push('');
      const notes: string[] = [];
      for (const s of r.samples.filter((x) => x.round === 1)) {
        for (const u of s.udp) {
          if (u.skipped) notes.push(`${s.mode} ${u.frameBytes} B: skipped (${u.skipped})`);
          else if (u.search?.senderLimited) notes.push(`${s.mode} ${u.frameBytes} B: sender-limited at ${(u.search.maxAchievedTxPps / 1000).toFixed(0)} kpps`);
          if (u.search && u.search.pdr.atLeast) notes.push(`${s.mode} ${u.frameBytes} B: top rate passed (figure is a lower bound)`);
          if (u.search && u.search.ndr.ratePps === null) {
            const firstTrial = u.search.trials.at(0);
            const lowest = firstTrial && u.search.trials.reduce((m, t) => (t.offeredPps < m.offeredPps ? t : m), firstTrial);
            if (lowest) notes.push(`${s.mode} ${u.frameBytes} B: no zero-loss trial (lowest tried ${(lowest.offeredPps / 1000).toFixed(1)} kpps lost ${(lowest.loss * 100).toFixed(2)}%)`);
          }
        }
      }
      out.push(`Paced iperf3 UDP trials (${r.profile.udpTrialSeconds} s each), binary search for zero loss (NDR) and 0.5% loss (PDR).${notes.length ? ` Round 1 notes: ${notes.join('; ')}.` : ''}`);
    }
  }

  out.push('');
  out.push('## MTU and fragmentation');
  out.push('');
  const mtuRows: string[][] = [];
  for (const s of r.samples) {
    for (const sw of s.mtu?.sweeps ?? []) {
      const byOutcome = (df: boolean) =>
        sw.probes
          .filter((p) => p.df === df)
          .map((p) => `${p.ipBytes}:${p.outcome}${p.icmpUnreachReceived || p.fragNeededReported ? '+icmp' : ''}`)
          .join(' ');
      mtuRows.push([s.mode, `${sw.config} (inner MTU ${sw.innerMtu})`, String(sw.largestWholeDf ?? 'none'), byOutcome(true), byOutcome(false)]);
    }
  }
  out.push(mtuRows.length ? table(['mode', 'configuration', 'largest whole with DF (B)', 'sweep with DF', 'sweep without DF'], mtuRows) : 'Not measured.');
  out.push('');
  out.push(
    "Sizes are inner IPv4 packet bytes. whole = carried unfragmented; inner-fragmented = the inner stack fragmented before encapsulation; underlay-fragmented = fragments seen on the underlay (capture / IpFragCreates); refused-locally = the sender's route MTU refused it (EMSGSIZE); dropped = no reply; +icmp = ICMP destination unreachable / frag needed seen.",
  );

  // --measure claim measurements: sections only when measured (older results render as before).
  const claimSections = [...renderMtuMismatchMarkdown(r, table), ...renderRedisMarkdown(r, table)];
  if (claimSections.length) out.push('', ...claimSections.slice(0, -1));

  out.push('');
  out.push('## Claims');
  out.push('');
  out.push(
    table(
      ['claim', 'measured here', 'verdict'],
      r.derived.claims.map((c) => [c.claim, c.measured, c.verdict]),
    ),
  );
  out.push('');
  return `${out.join('\n')}\n`;
}

/** A short plain-text summary for the terminal. */
export function renderTerminalSummary(r: BenchResult, dir: string): string {
  const modes = ranModes(r);
  const m = (mode: string, key: string) => metricOf(r.derived.byMode, mode, key)?.summary.median ?? null;
  const f = (v: number | null, d = 2) => (v === null ? 'n/a' : v.toFixed(d));
  const small = r.profile.udpFrameSizes[0];
  const lines = [
    `vxtap bench: ${r.status}${r.incompleteReasons.length ? ` (${r.incompleteReasons.length} problem(s))` : ''}, ${r.durationSeconds?.toFixed(0) ?? '?'} s`,
    `${'mode'.padEnd(16)} ${'tcp1 Gb/s'.padStart(10)} ${'tcpN Gb/s'.padStart(10)} ${`${small}B PDR kpps`.padStart(14)} ${'rtt p50 us'.padStart(11)} ${'rtt p99 us'.padStart(11)}`,
  ];
  for (const mode of modes) {
    lines.push(
      `${mode.padEnd(16)} ${f(m(mode, 'tcp1Gbps')).padStart(10)} ${f(m(mode, 'tcpNGbps')).padStart(10)} ${f(m(mode, `udp${small}PdrKpps`), 0).padStart(14)} ${f(m(mode, 'latIdleP50'), 0).padStart(11)} ${f(m(mode, 'latIdleP99'), 0).padStart(11)}`,
    );
  }
  for (const u of r.modes.filter((x) => !x.available)) lines.push(`${u.id.padEnd(16)} unavailable: ${String(u.unavailableReason)}`);
  for (const c of r.derived.claims) lines.push(`claim [${c.verdict}] ${c.claim}: ${c.measured}`);
  const disturbed = disturbedSamples(r);
  if (disturbed.length) lines.push(`disturbed (flagged, kept): ${disturbed.map((d) => `${d.mode} round ${d.round} ${d.sample}`).join(', ')}; reasons in summary.md`);
  lines.push(`result: ${dir}/result.json, ${dir}/summary.md`);
  return `${lines.join('\n')}\n`;
}
