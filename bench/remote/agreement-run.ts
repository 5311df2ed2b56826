/**
 * `node scripts/hosts-agreement.mjs`: the I/O of the agreement check
 * (agreement.ts has the logic). It builds two SSH-reached namespaces on this
 * machine (ssh-netns.ts, as the integration tests do), runs `vxtap bench`
 * across them (`--hosts`) and between local namespaces (no `--hosts`), one
 * round each, N pairs in ABBA order, keeps every result.json under
 * `--out/<timestamp>-hosts-agreement/`, and prints the agreement table
 * (Markdown; `--json`: agreement.json) on stdout, progress on stderr.
 *
 * Each bench runs in its own process group so one Ctrl-C reaches it once,
 * from here (a second SIGINT makes the bench exit without cleaning). On
 * Ctrl-C or failure the current bench is stopped, `vxtap bench --cleanup
 * --hosts` clears the agents' state, the namespaces go, and the table is
 * printed over what was measured. Exit status: 0 every run complete, 1 a run
 * incomplete or interrupted, 2 bad options.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { parseThresholds, type Thresholds } from '../compare.js';
import { roundEnv } from '../ci/plan.js';
import { estimateModeRoundSeconds, PROFILES } from '../profile.js';
import type { BenchResult } from '../result.js';
import { validateResult } from '../validate.js';
import {
  AGREEMENT_DEFAULTS,
  benchArgv,
  estimateCheckSeconds,
  judgeAgreement,
  minPairsForVerdict,
  pairOrder,
  parseAgreementOptions,
  poolRounds,
  renderAgreementMarkdown,
  runSchedule,
  type Agreement,
  type AgreementOptions,
  type AgreementRun,
  type RawAgreementOptions,
  type Side,
} from './agreement.js';
import { createSshNetnsPair, removeSshNetnsPair, sshNetnsSkipReason, type SshNetnsPair } from './ssh-netns.js';

const MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
/** A bench run that takes longer than this is stopped (SIGINT): bounded, never hung. */
const RUN_TIMEOUT_MS = 30 * 60_000;

function log(o: Pick<AgreementOptions, 'progress'>, line: string): void {
  if (o.progress) process.stderr.write(`hosts-agreement: ${line}\n`);
}

/** Run `vxtap ARGS` in its own process group; its stderr goes to ours with `tag` in front of each line. */
function startVxtap(args: string[], tag: string, o: Pick<AgreementOptions, 'progress'>): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: roundEnv(process.env) });
  let partial = '';
  child.stderr.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    if (o.progress) for (const l of lines) process.stderr.write(`[${tag}] ${l}\n`);
  });
  const timer = setTimeout(() => child.kill('SIGINT'), RUN_TIMEOUT_MS);
  const done = new Promise<number | null>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      if (partial && o.progress) process.stderr.write(`[${tag}] ${partial}\n`);
      resolve(code);
    });
    child.on('error', () => resolve(null));
  });
  return { child, done };
}

/** The result.json a bench wrote under `outDir` (it makes one `<timestamp>-<hostname>` folder), or null. */
function findResult(outDir: string): string | null {
  if (!existsSync(outDir)) return null;
  for (const d of readdirSync(outDir).sort().reverse()) {
    const f = path.join(outDir, d, 'result.json');
    if (existsSync(f)) return f;
  }
  return null;
}

function readResult(file: string | null): BenchResult | null {
  if (!file) return null;
  try {
    const r: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return validateResult(r).length === 0 ? (r as BenchResult) : null;
  } catch {
    return null;
  }
}

function runDirOf(checkDir: string, pair: number, side: Side): string {
  return path.join(checkDir, `pair${pair + 1}-${side}`);
}

/** Judge the runs found in `checkDir` (ours just now, or an earlier check's with --from) and write agreement.{json,md} and the pooled results. */
function judgeDir(checkDir: string, pairs: number, runs: AgreementRun[], o: AgreementOptions, thresholds: Thresholds | null): Agreement | Error {
  const bySide = (side: Side) => Array.from({ length: pairs }, (_, p) => readResult(findResult(runDirOf(checkDir, p, side))));
  const local = bySide('local');
  const hosts = bySide('hosts');
  if (!local.some(Boolean) || !hosts.some(Boolean)) return new Error(`no complete pair of results under ${checkDir} (need a result.json in pairN-local/ and pairN-hosts/)`);
  const labels = Array.from({ length: pairs }, (_, p) => `pair ${p + 1}`);
  mkdirSync(checkDir, { recursive: true });
  const pooledLocal = poolRounds(local, labels);
  const pooledHosts = poolRounds(hosts, labels);
  writeFileSync(path.join(checkDir, 'pooled-local.json'), `${JSON.stringify(pooledLocal, null, 2)}\n`);
  writeFileSync(path.join(checkDir, 'pooled-hosts.json'), `${JSON.stringify(pooledHosts, null, 2)}\n`);
  const known = new Set(pooledLocal.derived.metrics.map((d) => d.key));
  const unknown = o.metrics.filter((m) => !known.has(m));
  if (unknown.length) return new TypeError(`--metrics: ${unknown.join(', ')} not measured with profile ${pooledLocal.options.profile}; known: ${[...known].join(', ')}`);
  let a: Agreement;
  try {
    a = judgeAgreement(pooledLocal, pooledHosts, { metrics: o.metrics, alpha: o.alpha, thresholds, runs, order: Array.from({ length: pairs }, (_, p) => pairOrder(p)) });
  } catch (err) {
    return err as Error;
  }
  writeFileSync(path.join(checkDir, 'agreement.json'), `${JSON.stringify(a, null, 2)}\n`);
  writeFileSync(path.join(checkDir, 'agreement.md'), renderAgreementMarkdown(a));
  return a;
}

/** The runs recorded in an earlier check's directory (for --from). */
function runsIn(checkDir: string, pairs: number): AgreementRun[] {
  return runSchedule(pairs).map(({ pair, side }) => {
    const f = findResult(runDirOf(checkDir, pair, side));
    const r = readResult(f);
    return {
      pair,
      side,
      runId: r?.runId ?? null,
      status: r?.status ?? 'failed',
      result: f ? path.relative(checkDir, f) : null,
      exitCode: null,
      durationSeconds: r?.durationSeconds ?? null,
      startedAt: r?.startedAt ?? null,
    };
  });
}

function print(a: Agreement, o: AgreementOptions): void {
  process.stdout.write(o.json ? `${JSON.stringify(a, null, 2)}\n` : renderAgreementMarkdown(a));
}

/** Run the check; resolves to the exit status. */
export async function runAgreement(o: AgreementOptions): Promise<number> {
  let thresholds: Thresholds | null = null;
  if (o.thresholds) {
    let parsed: Thresholds | Error;
    try {
      parsed = parseThresholds(JSON.parse(readFileSync(o.thresholds, 'utf8')));
    } catch (err) {
      parsed = new TypeError(`--thresholds ${o.thresholds}: ${(err as Error).message}`);
    }
    if (parsed instanceof Error) {
      process.stderr.write(`hosts-agreement: ${parsed.message}\n`);
      return 2;
    }
    thresholds = parsed;
  }
  if (o.from) {
    const pairs = Math.max(0, ...readdirSync(o.from).map((d) => Number(/^pair(\d+)-(local|hosts)$/.exec(d)?.[1] ?? 0)));
    const a = judgeDir(o.from, pairs, runsIn(o.from, pairs), o, thresholds);
    if (a instanceof Error) {
      process.stderr.write(`hosts-agreement: ${a.message}\n`);
      return 2;
    }
    print(a, o);
    return 0;
  }
  const skip = sshNetnsSkipReason();
  if (skip) {
    process.stderr.write(`hosts-agreement: ${skip}\n`);
    return 2;
  }
  if (o.cleanup) {
    const removed = await removeSshNetnsPair(o.prefix);
    process.stderr.write(removed.length ? removed.map((r) => `hosts-agreement: removed ${r}\n`).join('') : `hosts-agreement: nothing of prefix ${o.prefix} left\n`);
    return 0;
  }
  if (!existsSync(MAIN)) {
    process.stderr.write(`hosts-agreement: no build at ${MAIN} (npx tsc -p tsconfig.json)\n`);
    return 2;
  }
  const profile = PROFILES[o.quick ? 'quick' : 'default'];
  const udpMissing = o.metrics.filter((m) => {
    const f = /^udp(\d+)/.exec(m);
    return f !== null && !profile.udpFrameSizes.includes(Number(f[1]));
  });
  if (udpMissing.length) {
    process.stderr.write(`hosts-agreement: --metrics: ${udpMissing.join(', ')} not measured by the ${profile.name} profile (UDP frame sizes ${profile.udpFrameSizes.join(', ')})\n`);
    return 2;
  }
  const stamp = new Date()
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d+Z$/, 'Z');
  const checkDir = path.join(o.out, `${stamp}-${os.hostname()}-hosts-agreement`);
  const tests = o.modes.length * o.metrics.length;
  const need = minPairsForVerdict(tests, o.alpha);
  const estMin = Math.ceil(estimateCheckSeconds(o.pairs, o.modes.length, estimateModeRoundSeconds(profile, true)) / 60);
  log(o, `${o.pairs} pairs x (hosts, local), profile ${profile.name}, modes ${o.modes.join(',')}: about ${estMin} min; results in ${checkDir}`);
  if (o.pairs < need) log(o, `note: with ${tests} tests (modes x metrics) a verdict needs --pairs ${need} or more; with ${o.pairs} the rows show figures and spreads and say unknown`);

  // Set by the signal handler (an object, so the loop re-reads it after each await).
  const stop: { signal: NodeJS.Signals | null } = { signal: null };
  let current: ChildProcess | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal) {
      log(o, `${sig} again: still cleaning up, please wait`);
      return;
    }
    stop.signal = sig;
    log(o, `${sig}: stopping the current bench, then cleaning up`);
    if (current?.pid) {
      try {
        process.kill(current.pid, 'SIGINT'); // its own process group did not get the terminal's signal
      } catch {
        /* gone */
      }
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const runs: AgreementRun[] = [];
  let pair: SshNetnsPair | null = null;
  let failed = false;
  const t0 = Date.now();
  try {
    log(o, `building the SSH hosts ${o.prefix}-a, ${o.prefix}-b (namespaces ${o.prefix}a, ${o.prefix}b; ${AGREEMENT_DEFAULTS.mgmtNet}.0/24 management, ${AGREEMENT_DEFAULTS.dataNet}.0/24 underlay)`);
    pair = await createSshNetnsPair({ prefix: o.prefix, mgmtNet: AGREEMENT_DEFAULTS.mgmtNet, dataNet: AGREEMENT_DEFAULTS.dataNet });
    const hosts = {
      a: pair.a.alias,
      b: pair.b.alias,
      sshConfig: pair.sshConfig,
      underlay: [pair.a.dataAddr, pair.b.dataAddr] as [string, string],
      dataDev: [pair.a.dataDev, pair.b.dataDev] as [string, string],
    };
    const schedule = runSchedule(o.pairs);
    for (const [i, { pair: p, side }] of schedule.entries()) {
      if (stop.signal) break;
      const dir = runDirOf(checkDir, p, side);
      const tag = `${i + 1}/${schedule.length} pair ${p + 1} ${side}`;
      log(o, `run ${tag}: vxtap bench ${benchArgv(o, side, dir, hosts).join(' ')}`);
      const started = new Date();
      const s = startVxtap(['bench', ...benchArgv(o, side, dir, hosts)], tag, o);
      current = s.child;
      const code = await s.done;
      current = null;
      const f = findResult(dir);
      const r = readResult(f);
      if (code !== 0 || r?.status !== 'complete') failed = true;
      runs.push({
        pair: p,
        side,
        runId: r?.runId ?? null,
        status: r?.status ?? 'failed',
        result: f ? path.relative(checkDir, f) : null,
        exitCode: code,
        durationSeconds: r?.durationSeconds ?? (Date.now() - started.getTime()) / 1000,
        startedAt: started.toISOString(),
      });
      log(o, `run ${tag}: exit ${String(code)}, ${r ? `run ${r.runId} ${r.status}` : 'no result'}`);
    }
  } catch (err) {
    failed = true;
    process.stderr.write(`hosts-agreement: ${(err as Error).message}\n`);
  } finally {
    if (pair) {
      log(o, 'cleaning up: vxtap bench --cleanup --hosts, then the SSH namespaces');
      const c = startVxtap(['bench', '--cleanup', '--hosts', `${pair.a.alias},${pair.b.alias}`, '--ssh-config', pair.sshConfig], 'cleanup', o);
      const t = setTimeout(() => c.child.kill('SIGKILL'), 60_000);
      await c.done;
      clearTimeout(t);
      await pair.destroy();
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  log(o, `runs took ${((Date.now() - t0) / 60_000).toFixed(1)} min`);
  const done = runs.length ? Math.max(...runs.map((r) => r.pair)) + 1 : 0;
  if (done === 0) {
    process.stderr.write('hosts-agreement: no run finished; nothing to judge\n');
    return 1;
  }
  const a = judgeDir(checkDir, done, runs, o, thresholds);
  if (a instanceof Error) {
    process.stderr.write(`hosts-agreement: ${a.message}\n`);
    return 1;
  }
  print(a, o);
  log(o, `wrote ${path.join(checkDir, 'agreement.md')} and agreement.json`);
  return stop.signal || failed ? 1 : 0;
}

/** The command line (commander), with an environment mirror per flag. */
export function agreementProgram(): Command {
  const env = (n: string) => `VXTAP_HOSTS_AGREEMENT_${n}`;
  return new Command('hosts-agreement')
    .description(
      'Check that `vxtap bench --hosts` measures what the local bench measures: two SSH-reached namespaces on this machine (OpenSSH servers with a key made for the check), N pairs of one-round benches with and without --hosts in alternating order (ABBA), and a table per mode and headline metric judged by `vxtap bench compare`. Needs root, openssh-server and a build.',
    )
    .addOption(new Option('--pairs <n>', 'pairs of runs (hosts + local each)').default(String(AGREEMENT_DEFAULTS.pairs)).env(env('PAIRS')))
    .addOption(new Option('--modes <list>', 'comma-separated modes, as for vxtap bench (ovs-* modes get the data veths as --data-dev)').default(AGREEMENT_DEFAULTS.modes).env(env('MODES')))
    .addOption(new Option('--quick', 'quick bench profile (a smoke test: short trials, too noisy to judge agreement)').env(env('QUICK')))
    .addOption(new Option('--metrics <keys>', 'metric keys judged per mode (keys of result.json derived.metrics)').default(AGREEMENT_DEFAULTS.metrics).env(env('METRICS')))
    .addOption(new Option('--alpha <p>', 'family-wise significance level of the verdicts (Holm over modes x metrics)').default(String(AGREEMENT_DEFAULTS.alpha)).env(env('ALPHA')))
    .addOption(
      new Option('--thresholds <file>', 'per-metric minimum effect, detect size and CV limit (JSON from vxtap bench compare --calibrate); default: built-in placeholders').env(env('THRESHOLDS')),
    )
    .addOption(
      new Option('--out <dir>', 'results directory (a <timestamp>-<hostname>-hosts-agreement folder is created inside, one pairN-SIDE folder per run)').default(AGREEMENT_DEFAULTS.out).env(env('OUT')),
    )
    .addOption(new Option('--json', 'print agreement.json to stdout instead of the Markdown table').env(env('JSON')))
    .addOption(new Option('--no-progress', 'no progress lines on stderr').env(env('NO_PROGRESS')))
    .addOption(new Option('--prefix <name>', 'name prefix of the SSH namespaces (<prefix>a, <prefix>b)').default(AGREEMENT_DEFAULTS.prefix).env(env('PREFIX')))
    .addOption(new Option('--from <dir>', 'judge the runs of an earlier check (its -hosts-agreement folder) again, e.g. with --thresholds; runs nothing').env(env('FROM')))
    .addOption(new Option('--cleanup', "remove the SSH namespaces a killed check left (the local bench's own leftovers: vxtap bench --cleanup)").env(env('CLEANUP')))
    .argument('[bench-args...]', 'after --: more vxtap bench flags for both sides alike, e.g. -- --pin same')
    .addHelpText(
      'after',
      `
Order: pair 1 hosts then local, pair 2 local then hosts, ... (drift cancels).
Addresses: management ${AGREEMENT_DEFAULTS.mgmtNet}.0/24, underlay ${AGREEMENT_DEFAULTS.dataNet}.0/24 between the SSH namespaces; the local bench uses its own.
Verdicts: vxtap bench compare (local OLD, hosts NEW) over the per-pair values; "same" on every row = agreement.
  With modes x metrics tests, fewer than ~6 pairs cannot reach a verdict (Mann-Whitney, Holm): the table says unknown.
Files: pairN-{hosts,local}/<run>/result.json, pooled-{local,hosts}.json (vxtap bench compare takes them), agreement.{md,json}.
Exit status: 0 every run complete, 1 a run incomplete or interrupted, 2 bad options.`,
    );
}

/** Entry point of scripts/hosts-agreement.mjs. */
export async function main(argv: string[]): Promise<number> {
  const program = agreementProgram().exitOverride();
  let raw: RawAgreementOptions;
  try {
    program.parse(argv, { from: 'user' });
    raw = { ...program.opts<RawAgreementOptions>(), benchArgs: program.args };
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : 2;
  }
  const o = parseAgreementOptions(raw);
  if (o instanceof Error) {
    process.stderr.write(`hosts-agreement: ${o.message}\n`);
    return 2;
  }
  return runAgreement(o);
}
