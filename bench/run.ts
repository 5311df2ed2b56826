/**
 * The bench run: probe every mode, then for R rounds set each available mode
 * up on a fresh topology, measure, tear it down, in interleaved order (A B C D,
 * B C D A, ...: rotated so no mode always runs first after a pause). The result
 * is rewritten atomically after every mode-round, so a killed run keeps what it
 * measured; SIGINT/SIGTERM abort the current mode, tear down and mark the run
 * incomplete.
 */
import { CPU_PRIORITIES, enterCpuGroup, type CpuPriority } from './placement.js';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { output, run } from '../src/host/exec.js';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectEnvironment } from './environment.js';
import { measureLatency, measureTcp, measureUdp, startServers, type MeasureContext, type ServerSet, type Pinning } from './measure.js';
import type { RemotePair } from './remote/pair.js';
import type { RemoteHost } from './remote/client.js';
import { DRIVERS, remoteUnavailableReason, parseModeSpec, BENCH_VNI, VXLAN_PORT, type ActiveMode, type ModeSpec } from './modes.js';
import { measureMtu } from './mtu.js';
import { measureClaimsRound, measuresPart, validateMeasures, type Measure } from './claim-measures.js';
import { estimateModeRoundSeconds, PROFILES, type Profile } from './profile.js';
import { derive, RESULT_SCHEMA, RESULT_SCHEMA_VERSION, type BenchResult, type ModeEntry, type ModeRoundSample } from './result.js';
import { RunState, writeFileAtomic } from './state.js';
import { renderSummaryMarkdown } from './summary.js';
import { ADDR, createTopology, destroyTopology, type NetemOptions, type Topology, type TopologyHost } from './topology.js';
import { validateResult } from './validate.js';
import type { PlanFlags } from './plan.js';
import { writeReportHtml } from './report/write.js';
import { CONTENTION_METHOD, contendedId, excludeHogCpu, Hog } from './contention.js';
import { applyUnderlayOffloads, restoreUnderlayOffloads, validateUnderlayOffloads, type HostOffloads, type UnderlayOffloads } from './offloads.js';
import { createPods, podView, validateEndpoints, type Endpoints, type Pods } from './pods.js';
import { processTicks } from '../src/host/procstat.js';
import { LATENCY_TOOLS, sockperfMissing, type LatencyTool } from './sockperf.js';

/** Options of a run (validated). */
export interface BenchOptions {
  profile: Profile['name'];
  rounds?: number;
  modes: string[];
  mtu: number;
  netem: NetemOptions;
  /** Root qdisc realising `netem` here (resolved by the CLI: netem, or tbf for a rate alone). */
  qdisc?: string[] | null;
  outDir: string;
  pin: Pinning;
  /** --cpu-priority: high = the run in a cgroup of its own with the highest CPU weight (placement.ts); default high. */
  cpuPriority?: CpuPriority;
  /**
   * --latency-tool: the request/response latency tools (sockperf.ts), each
   * measured per mode-round; the first fills latencyIdle/latencyLoaded (and the
   * metrics), the others latencyOthers. Absent = ['rr'].
   */
  latencyTools?: LatencyTool[];
  /** Progress lines to stderr. */
  progress: boolean;
  argv: string[];
  /** --measure: standard (default) and/or the claim measurements mtu-mismatch, redis (claim-measures.ts). */
  measure?: Measure[];
  /** --hosts: the two connected hosts (the CLI connects and closes them). */
  remote?: RemotePair;
  /** --target and its companions: the capacity plan report.html carries (stored as options.plan). */
  plan?: PlanFlags | null;
  /** --endpoints: load generators on the hosts (default) or in pods behind a CNI-style bridge (pods.ts). */
  endpoints?: Endpoints;
  /** --contention PCT: every mode also runs with a CPU hog taking PCT% of each host (contention.ts); null/undefined = off. */
  contention?: number | null;
  /** --underlay-offloads: full (default) or no-tunnel-tso (offloads.ts). */
  underlayOffloads?: UnderlayOffloads;
}

/**
 * Default modes: the underlay, the three classic recipes (kernel VXLAN, OVS GRE,
 * vxtap) and vxtap's uplink and plain paths. `ovs-vxlan` and `vxtap:busy-poll=500`
 * stay one `--modes` away: with them, set-up plus three rounds took 10 min 40 s
 * on a fresh machine (24 mode-rounds, round 1 with the MTU sweep), over the 10
 * minutes the default run has.
 */
export const DEFAULT_MODES = ['bare', 'kernel-vxlan', 'ovs-gre', 'vxtap', 'vxtap:uplink=on', 'vxtap:offload=off'];
/** --quick (CI smoke, <= 90 s): each dataplane once. */
export const QUICK_MODES = ['bare', 'kernel-vxlan', 'ovs-gre', 'vxtap'];

/** Validate options; returns an Error naming the field, or null. */
export function validateOptions(o: BenchOptions): Error | null {
  if (!(o.profile in PROFILES)) return new TypeError(`--profile must be quick, default or full (got "${o.profile}")`);
  if (o.rounds !== undefined && (!Number.isInteger(o.rounds) || o.rounds < 1 || o.rounds > 100)) return new TypeError('--rounds must be an integer between 1 and 100');
  if (!Number.isInteger(o.mtu) || o.mtu < 1280 || o.mtu > 9000) return new TypeError('--mtu must be an integer between 1280 and 9000');
  if (o.modes.length === 0) return new TypeError('--modes must name at least one mode');
  try {
    const ids = o.modes.map((m) => parseModeSpec(m).id);
    if (new Set(ids).size !== ids.length) return new TypeError('--modes lists a mode twice');
  } catch (e) {
    return e as Error;
  }
  if (o.netem.delay && !/^\d+(\.\d+)?(us|ms|s)$/.test(o.netem.delay)) return new TypeError('--delay must look like 2ms, 500us or 1s');
  if (o.netem.loss && !/^\d+(\.\d+)?%$/.test(o.netem.loss)) return new TypeError('--loss must look like 0.1%');
  if (o.netem.rate && !/^\d+(\.\d+)?(bit|kbit|mbit|gbit)$/i.test(o.netem.rate)) return new TypeError('--rate must look like 1gbit or 100mbit');
  if (!['cross', 'same', 'none'].includes(o.pin)) return new TypeError('--pin must be cross, same or none');
  if (o.cpuPriority !== undefined && !CPU_PRIORITIES.includes(o.cpuPriority)) return new TypeError(`--cpu-priority must be high or normal (got "${o.cpuPriority}")`);
  if (o.latencyTools !== undefined) {
    const bad = o.latencyTools.find((t) => !LATENCY_TOOLS.includes(t));
    if (o.latencyTools.length === 0 || bad !== undefined) return new TypeError(`--latency-tool must be ${LATENCY_TOOLS.join(' or ')}, or both as rr,sockperf (got "${o.latencyTools.join(',')}")`);
    if (new Set(o.latencyTools).size !== o.latencyTools.length) return new TypeError('--latency-tool lists a tool twice');
  }
  if (o.measure !== undefined && validateMeasures(o.measure)) return validateMeasures(o.measure);
  if (o.endpoints !== undefined && validateEndpoints(o.endpoints)) return validateEndpoints(o.endpoints);
  if (o.contention !== undefined && o.contention !== null && !(typeof o.contention === 'number' && o.contention > 0 && o.contention < 100))
    return new TypeError(`--contention must be a CPU share in percent, more than 0 and less than 100 (got "${String(o.contention)}")`);
  if (o.underlayOffloads !== undefined && validateUnderlayOffloads(o.underlayOffloads)) return validateUnderlayOffloads(o.underlayOffloads);
  return null;
}

/**
 * Tests only: VXTAP_BENCH_TEST_PROFILE, a JSON object of Profile fields laid over
 * the chosen profile (shorter trials, fewer frame sizes), so an integration test
 * can run the bench's whole path in seconds. The result's `profile` shows it.
 */
function testProfileOverride(): Partial<Profile> {
  const text = process.env.VXTAP_BENCH_TEST_PROFILE;
  if (!text) return {};
  const o = JSON.parse(text) as Partial<Profile>;
  delete o.name;
  return o;
}

/** The repository root (the directory holding package.json above dist/bench/). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

function fmtDuration(s: number): string {
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

/** Rotate `list` by `k` (interleaving order of round k). */
export function rotate<T>(list: readonly T[], k: number): T[] {
  if (list.length === 0) return [];
  const n = k % list.length;
  return [...list.slice(n), ...list.slice(0, n)];
}

/**
 * What the run's latency tools lack on its hosts (--hosts: A and B through
 * their agents; else this machine, whose namespaces share its programs), one
 * message per host naming the fix; empty when nothing is missing.
 */
export async function latencyToolsMissing(opts: Pick<BenchOptions, 'latencyTools' | 'remote'>): Promise<string[]> {
  if (!opts.latencyTools?.includes('sockperf')) return [];
  const hosts = opts.remote ? [opts.remote.a, opts.remote.b] : [{ label: 'A/B (this machine)', exec: (argv: string[], o?: { allowFail?: boolean; timeoutMs?: number }) => run(argv, o) }];
  return (await Promise.all(hosts.map((h) => sockperfMissing(h)))).filter((m): m is string => m !== null);
}

/** Run the bench; resolves to the result and the directory it was written to. */
export async function runBench(opts: BenchOptions): Promise<{ result: BenchResult; dir: string }> {
  const profile: Profile = { ...PROFILES[opts.profile], ...testProfileOverride() };
  if (opts.rounds) profile.rounds = opts.rounds;
  const root = repoRoot();
  const started = new Date();
  const runId = `${started
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${os.hostname()}`;
  const dir = path.join(opts.outDir, runId);
  mkdirSync(dir, { recursive: true });
  const state = new RunState(`vxb-${process.pid}-${Date.now().toString(36)}`);
  // Before anything is spawned: every child (load generators, dataplanes, daemons) inherits the group.
  // With --hosts, the group is named by the remote run's id, the one the agents join: a controller on
  // one of the hosts (or both hosts on this machine) then competes in one group, as the local bench does.
  const placed = opts.remote ? enterCpuGroup(opts.remote.runId, opts.cpuPriority ?? 'high', undefined, true) : enterCpuGroup(state.data.runId, opts.cpuPriority ?? 'high');
  const log = (line: string) => {
    if (opts.progress) process.stderr.write(`${line}\n`);
  };

  // A holder, not two lets: the signal handler sets it while the run awaits.
  const abort = { requested: false, reason: '' };
  const aborted = (): boolean => abort.requested; // a call, so a check after an await reads it afresh
  const onSignal = (sig: NodeJS.Signals) => {
    if (abort.requested) {
      // A closed terminal hangs up twice (the shell passes SIGHUP on, then the kernel
      // signals the old foreground group): only a second Ctrl-C or SIGTERM skips the teardown.
      if (sig === 'SIGHUP') return;
      process.stderr.write(`${sig} again: exiting now; run 'vxtap bench --cleanup' to remove leftovers\n`);
      process.exit(130);
    }
    abort.requested = true;
    abort.reason = `interrupted by ${sig}`;
    opts.remote?.interrupt();
    log(`\n${sig}: stopping the running test, tearing down the current mode...`);
    // Stop in-flight load generators now (they live in the run's namespaces); teardown follows.
    for (const ns of state.data.namespaces) {
      void output(['ip', 'netns', 'pids', ns], { allowFail: true }).then((pids) => {
        for (const pid of pids.split(/\s+/).filter(Boolean)) {
          const cl = (() => {
            try {
              return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
            } catch {
              return '';
            }
          })();
          if (/iperf3|rr\.js|sockperf|ping|tcpdump/.test(cl) && !/-s\0|server/.test(cl)) {
            try {
              process.kill(Number(pid), 'SIGTERM');
            } catch {
              /* gone */
            }
          }
        }
      });
    }
  };
  const specs: ModeSpec[] = opts.modes.map(parseModeSpec); // before the handlers: it can throw
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal); // the terminal went away: tear down as for Ctrl-C
  const result: BenchResult = {
    schema: RESULT_SCHEMA,
    schemaVersion: RESULT_SCHEMA_VERSION,
    runId,
    status: 'running',
    incompleteReasons: [],
    startedAt: started.toISOString(),
    finishedAt: null,
    durationSeconds: null,
    options: {
      profile: opts.profile,
      rounds: profile.rounds,
      modes: specs.map((s) => s.id),
      mtu: opts.mtu,
      netem: { delay: opts.netem.delay ?? null, loss: opts.netem.loss ?? null, rate: opts.netem.rate ?? null },
      pin: opts.pin,
      cpuPriority: opts.cpuPriority ?? 'high',
      latencyTool: opts.latencyTools?.[0] ?? 'rr',
      ...(opts.latencyTools && opts.latencyTools.length > 1 ? { latencyTools: opts.latencyTools } : {}),
      argv: opts.argv,
      measure: opts.measure ?? ['standard'],
      endpoints: opts.endpoints ?? 'host',
      contention: opts.contention ? { pct: opts.contention, method: CONTENTION_METHOD } : null,
      underlayOffloads: opts.underlayOffloads ?? 'full',
    },
    profile,
    environment: null,
    topology: {
      kind: 'netns-veth',
      hosts: [],
      underlay: { a: ADDR.underlayA, b: ADDR.underlayB, prefix: ADDR.underlayPrefix, mtu: opts.mtu, netem: null },
      overlay: { a: ADDR.overlayA, b: ADDR.overlayB, prefix: ADDR.overlayPrefix },
      vni: BENCH_VNI,
      udpPort: VXLAN_PORT,
    },
    modes: [],
    order: [],
    samples: [],
    derived: { metrics: [], byMode: {}, claims: [] },
  };

  let hostOffloads: { host: RemoteHost; rec: HostOffloads }[] = [];
  // Plan flags ride in options (the schema leaves options open), so `vxtap report` re-renders the same plan.
  if (opts.plan) Object.assign(result.options, { plan: opts.plan });
  const save = () => {
    result.derived = derive(result);
    writeFileAtomic(path.join(dir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileAtomic(path.join(dir, 'summary.md'), renderSummaryMarkdown(result));
  };

  try {
    log(`vxtap bench: profile ${profile.name}, ${profile.rounds} round(s), modes ${specs.map((s) => s.id).join(' ')}; results in ${dir}`);
    result.environment = await collectEnvironment(root, 1000);
    result.environment.cpuPlacement = placed.placement;
    if (placed.placement.note && placed.placement.priority === 'high') log(`  note: ${placed.placement.note}`);
    opts.remote?.describe(result);
    // --latency-tool sockperf: refuse before any mode is set up when a host lacks it (the CLI checks first; this covers other callers).
    const missing = await latencyToolsMissing(opts);
    if (missing.length) throw new Error(missing.join('; '));
    for (const spec of specs) {
      const reason = await (opts.remote ? remoteUnavailableReason(spec, opts.remote) : DRIVERS[spec.kind].unavailable(spec, root)).catch(
        (e: unknown) => `probe failed: ${e instanceof Error ? e.message : String(e)}`,
      );
      const entry: ModeEntry = { id: spec.id, kind: spec.kind, params: spec.params, available: reason === null, unavailableReason: reason, info: null };
      result.modes.push(entry);
      if (reason) log(`  ${spec.id}: unavailable: ${reason}`);
    }
    // --contention: each mode also runs under the CPU hog, as a variant `<mode>@cpu<PCT>` (contention.ts).
    if (opts.contention) {
      for (const m of [...result.modes]) result.modes.push({ ...m, id: contendedId(m.id, opts.contention), variant: { contention: { pct: opts.contention, method: CONTENTION_METHOD }, of: m.id } });
    }
    // --hosts --underlay-offloads no-tunnel-tso: once for the run on each host's underlay device (restored in finally).
    if (opts.remote) hostOffloads = await remoteOffloads(opts, result);
    save();

    const availableSpecs = specs.filter((s) => result.modes.find((m) => m.id === s.id)?.available);
    // Run units: each mode, and with --contention each mode again under the hog, interleaved.
    const available: RunUnit[] = availableSpecs.flatMap((s) =>
      opts.contention
        ? [
            { ...s, unitId: s.id, contention: null },
            { ...s, unitId: contendedId(s.id, opts.contention), contention: opts.contention },
          ]
        : [{ ...s, unitId: s.id, contention: null }],
    );
    const perRound = (withMtu: boolean) => available.reduce((t, s) => t + estimateModeRoundSeconds(profile, withMtu) + (s.kind.startsWith('ovs') ? 3 : 1), 0);
    let remaining = perRound(true) + perRound(false) * (profile.rounds - 1);
    let estimatedDone = 0;
    const t0 = Date.now();
    let done = 0;
    const total = available.length * profile.rounds;

    for (let round = 1; round <= profile.rounds && !aborted(); round++) {
      const order = rotate(available, round - 1);
      result.order.push(order.map((s) => s.unitId));
      for (const spec of order) {
        if (aborted()) break;
        const withMtu = round === 1 && spec.contention === null;
        const est = estimateModeRoundSeconds(profile, withMtu) + (spec.kind.startsWith('ovs') ? 3 : 1);
        const elapsed = (Date.now() - t0) / 1000;
        // Scale the static estimate by how fast this machine has been so far.
        const pace = estimatedDone > 0 ? elapsed / estimatedDone : 1;
        log(`[${done + 1}/${total}] round ${round}/${profile.rounds} ${spec.unitId}  elapsed ${fmtDuration(elapsed)}  ETA ${fmtDuration(Math.max(0, remaining * pace))}`);
        const sample = await runModeRound(spec, round, withMtu, { opts, profile, root, state, aborted, log, workDir: path.join(state.runDir(), `${spec.kind}-${round}`), result });
        result.samples.push(sample);
        if (sample.error) {
          result.incompleteReasons.push(`round ${round} ${spec.unitId}: ${sample.error}`);
          log(`  ${spec.unitId}: failed: ${sample.error}`);
        }
        remaining -= est;
        estimatedDone += est;
        done++;
        save();
      }
    }
    if (aborted()) result.incompleteReasons.push(abort.reason);
  } catch (err) {
    result.incompleteReasons.push(`bench failed: ${(err as Error).message}`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    if (opts.remote) for (const rec of hostOffloads) await restoreUnderlayOffloads(rec.host, rec.rec);
    await opts.remote?.finish().catch(() => undefined);
    result.status = result.incompleteReasons.length ? 'incomplete' : 'complete';
    result.finishedAt = new Date().toISOString();
    result.durationSeconds = (Date.now() - started.getTime()) / 1000;
    save();
    state.finish();
    placed.leave();
    // report.html once at the end (complete or not): rendering costs ~1 s of CPU, too much between mode-rounds.
    try {
      const rep = writeReportHtml(dir, result);
      log(`report: ${rep.file} (${Math.round(rep.bytes / 1024)} KiB)`);
    } catch (err) {
      log(`warning: report.html not written: ${(err as Error).message}`);
    }
  }
  const errors = validateResult(result);
  if (errors.length) log(`warning: result.json does not match the schema: ${errors.slice(0, 5).join('; ')}`);
  return { result, dir };
}

/** A mode as one round runs it: the mode, and whether under the CPU hog (`unitId` = `<mode>@cpu<PCT>` then). */
interface RunUnit extends ModeSpec {
  unitId: string;
  contention: number | null;
}

/** --hosts: apply --underlay-offloads to each host's underlay device once (restore registered with the agents first). */
async function remoteOffloads(opts: BenchOptions, result: BenchResult): Promise<{ host: RemoteHost; rec: HostOffloads }[]> {
  const pair = opts.remote as RemotePair;
  const variant = opts.underlayOffloads ?? 'full';
  const ends =
    pair.sameMachine && pair.underlay.devA === pair.underlay.devB
      ? [[pair.a, pair.underlay.devA] as const]
      : ([
          [pair.a, pair.underlay.devA],
          [pair.b, pair.underlay.devB],
        ] as const);
  const out: { host: RemoteHost; rec: HostOffloads }[] = [];
  for (const [host, dev] of ends) out.push({ host, rec: await applyUnderlayOffloads(host, dev, variant, host) });
  if (result.environment) result.environment.underlayOffloads = { variant, hosts: out.map((o) => o.rec) };
  return out;
}

interface RoundContext {
  opts: BenchOptions;
  profile: Profile;
  root: string;
  state: RunState;
  aborted: () => boolean;
  log: (line: string) => void;
  workDir: string;
  result: BenchResult;
}

/** Set up, measure and tear down one mode for one round. Never throws: failures land in `error`. */
async function runModeRound(spec: RunUnit, round: number, withMtu: boolean, rc: RoundContext): Promise<ModeRoundSample> {
  const sample: ModeRoundSample = {
    round,
    mode: spec.unitId,
    startedAt: new Date().toISOString(),
    setupSeconds: null,
    durationSeconds: null,
    error: null,
    innerMtu: null,
    tcp1: null,
    tcpN: null,
    udp: [],
    latencyIdle: null,
    latencyLoaded: null,
    mtu: null,
  };
  const t0 = Date.now();
  let topo: Topology | null = null;
  let mode: ActiveMode | null = null;
  let servers: ServerSet | null = null;
  let pods: Pods | null = null;
  let hog: Hog | null = null;
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | null> => {
    if (rc.aborted()) throw new Error('aborted');
    try {
      return await fn();
    } catch (err) {
      if (rc.aborted()) throw new Error('aborted', { cause: err });
      const msg = `${name}: ${(err as Error).message}`;
      sample.error = sample.error ? `${sample.error}; ${msg}` : msg;
      return null;
    }
  };
  try {
    // Unique per mode, variants included: two vxtap variants in one round once shared
    // namespace names, so anything left of one (a process, a socket) could meet the next.
    const modeIndex = Math.max(
      0,
      rc.result.modes.findIndex((m) => m.id === spec.unitId),
    );
    const tag = `${(process.pid % 1296).toString(36)}${round % 10}${spec.kind[0]}${modeIndex.toString(36)}`.slice(0, 9);
    topo = await createTopology(tag, { mtu: rc.opts.mtu, netem: rc.opts.netem, qdisc: rc.opts.qdisc, remote: rc.opts.remote }, rc.state);
    if (rc.result.topology.hosts.length === 0) {
      rc.result.topology.hosts = [
        { label: 'A', namespace: topo.a.where },
        { label: 'B', namespace: topo.b.where },
      ];
      rc.result.topology.underlay.netem = topo.netem;
    }
    // --underlay-offloads on the fresh veth pair (--hosts: applied once for the run, see remoteOffloads).
    if (!topo.remote) {
      const variant = rc.opts.underlayOffloads ?? 'full';
      const recs = [await applyUnderlayOffloads(topo.a, topo.devA, variant), await applyUnderlayOffloads(topo.b, topo.devB, variant)];
      if (rc.result.environment && !rc.result.environment.underlayOffloads) rc.result.environment.underlayOffloads = { variant, hosts: recs };
    }
    mode = await DRIVERS[spec.kind].setup(spec, { topo, repoRoot: rc.root, state: rc.state, workDir: rc.workDir, readyTimeoutMs: 20_000 });
    const entry = rc.result.modes.find((m) => m.id === spec.id);
    if (entry) entry.info = mode.info;
    sample.innerMtu = mode.innerMtu;
    sample.setupSeconds = (Date.now() - t0) / 1000;
    // --endpoints pod: the load generators run in pods behind a bridge on each host (pods.ts).
    let view = { topo, mode };
    if ((rc.opts.endpoints ?? 'host') === 'pod') {
      pods = await createPods(topo, mode, tag, rc.state);
      sample.pods = pods.info;
      view = podView(topo, mode, pods);
    }
    // --contention: the CPU hog runs while this mode-round measures, its own CPU left out of the samples.
    if (spec.contention !== null) {
      hog = await startHog(topo, spec.contention, estimateModeRoundSeconds(rc.profile, withMtu) * 3 + 60);
      view = { ...view, mode: excludeHogCpu(view.mode, hog) };
    }
    const latencyTools = rc.opts.latencyTools ?? ['rr'];
    servers = await startServers({ topo: view.topo, mode: view.mode, pin: rc.opts.pin, repoRoot: rc.root, latencyTool: latencyTools[0], latencyTools });
    const ctx: MeasureContext = {
      topo: view.topo,
      mode: view.mode,
      profile: rc.profile,
      repoRoot: rc.root,
      pin: rc.opts.pin,
      latencyTool: latencyTools[0],
      latencyTools,
      aborted: rc.aborted,
      servers,
    };
    // Warm-up: one ping so neighbour and flow caches are filled before the first timed trial.
    const warm = await view.topo.a.exec(['ping', '-c', '3', '-i', '0.05', '-W', '2', view.mode.addrB], { allowFail: true });
    if (pods && warm.code !== 0) throw new Error(`pod ${pods.addrA} cannot reach pod ${pods.addrB}: ${(warm.stdout + warm.stderr).trim().split('\n').slice(-2).join(' | ')}`);
    // --measure: the standard set unless left out; the claim measurements (claim-measures.ts) on request, round 1.
    const measures = rc.opts.measure ?? ['standard'];
    {
      if (measuresPart(measures, 'tcp')) {
        sample.tcp1 = await step('tcp 1 stream', () => measureTcp(ctx, 1));
        sample.tcpN = await step(`tcp ${rc.profile.tcpStreams} streams`, () => measureTcp(ctx, rc.profile.tcpStreams));
      }
      for (const frame of measuresPart(measures, 'udp') ? rc.profile.udpFrameSizes : []) {
        const u = await step(`udp ${frame} B`, () => measureUdp(ctx, frame));
        if (u) sample.udp.push(u);
      }
      const loadBps = sample.tcp1 ? sample.tcp1.receivedBps * 0.5 : 0;
      // Several --latency-tool tools: each condition by each tool back to back, the order rotated per round so no tool always goes first.
      for (const condition of measuresPart(measures, 'latency') ? (['idle', 'loaded'] as const) : []) {
        for (const tool of rotate(latencyTools, round - 1)) {
          const what = `latency ${condition}${latencyTools.length > 1 ? ` (${tool})` : ''}`;
          const lat = await step(what, () => measureLatency(ctx, condition, condition === 'loaded' ? loadBps : undefined, tool));
          if (tool !== latencyTools[0]) {
            if (lat) (sample.latencyOthers ??= []).push(lat);
          } else if (condition === 'idle') sample.latencyIdle = lat;
          else sample.latencyLoaded = lat;
        }
      }
      if (withMtu && measuresPart(measures, 'mtu'))
        sample.mtu = await step('mtu sweep', () =>
          measureMtu(
            topo as Topology,
            mode as ActiveMode,
            rc.profile.mtuSweepSizes.map((x) => x + rc.opts.mtu - 1500),
            rc.profile.pingTimeoutSeconds,
          ),
        );
    }
    if (withMtu) await measureClaimsRound(sample, { ctx, measures, workDir: rc.workDir, userDelay: rc.opts.netem.delay ?? null, qdisc: rc.opts.qdisc ?? null, step });
  } catch (err) {
    const msg = (err as Error).message;
    sample.error = sample.error ? `${sample.error}; ${msg}` : msg;
  } finally {
    if (hog) {
      await hog.stop();
      sample.contention = hog.summary(await hostCpus(topo as Topology));
    }
    if (servers?.events.length) sample.serverEvents = [...servers.events];
    if (mode?.counters) sample.dataplaneCounters = await mode.counters().catch(() => null);
    if (pods) await pods.teardown();
    if (mode) await mode.teardown().catch(() => undefined);
    if (topo) await destroyTopology(topo, rc.state);
    sample.durationSeconds = (Date.now() - t0) / 1000;
  }
  return sample;
}

/** CPUs of the machines behind the topology (one machine for the namespace pair or two --hosts on one machine). */
async function hostCpus(topo: Topology): Promise<number> {
  const hosts = !topo.remote || topo.remote.sameMachine ? [topo.a] : [topo.a, topo.b];
  let n = 0;
  for (const h of hosts) n += topo.remote ? Number((await h.exec(['nproc'], { allowFail: true })).stdout.trim()) || 1 : os.cpus().length;
  return n;
}

/** Start the CPU hog on each machine of the topology (one for the namespace pair). */
async function startHog(topo: Topology, pct: number, maxSeconds: number): Promise<Hog> {
  const remote = topo.remote;
  if (!remote) return Hog.start([{ host: topo.a, cpus: os.cpus().length }], pct, maxSeconds, (_host, pids) => processTicks(pids));
  // --hosts: one hog per machine, its CPU read by that host's agent.
  const hosts: RemoteHost[] = remote.sameMachine ? [remote.a] : [remote.a, remote.b];
  const withCpus: { host: TopologyHost; cpus: number }[] = [];
  for (const h of hosts) withCpus.push({ host: h, cpus: Number((await h.exec(['nproc'], { allowFail: true })).stdout.trim()) || 1 });
  return Hog.start(withCpus, pct, maxSeconds, async (host, pids) => (await (hosts.find((h) => h === host) ?? hosts[0]).sample(pids)).ticks);
}
