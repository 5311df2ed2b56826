/**
 * `vxtap bench ci --base REF [--head REF]`: the regression check CI runs.
 * Checks everything it can before touching anything (flags, refs, the
 * thresholds file, the metric keys: exit 2, nothing created), builds the base
 * (and a --head ref) in git worktrees under a temporary directory
 * (build.ts), runs base and head interleaved, one `vxtap bench --rounds 1` of
 * each side's own build per round, under decide.ts's stopping rule
 * (sequential.ts), and writes into `<out>/<timestamp>-<hostname>-ci/`:
 * result.json (head, all rounds merged), base-result.json, comparison.md,
 * comparison.json, ci.json (the looks, the builds, the exit status),
 * report.html (head's report with a "CI comparison" section) and
 * rounds/<side>-<NN>.log. Worktrees are removed at the end, after a failure
 * and on SIGINT/SIGTERM.
 *
 * Exit status: 0 no failing regression (also when the cap leaves metrics
 * `unknown`: reported, not failed), 1 a `worse` verdict beyond
 * --fail-on-regression or a build/bench that failed, 2 bad input, 130 interrupted.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseThresholds, renderCompareMarkdown, type Comparison, type Thresholds } from '../compare.js';
import { lookAlpha } from '../decide.js';
import { loadHistoryDir } from '../history.js';
import { COMPARE_KEYS } from '../report/compare.js';
import { markdownToHtml, renderReportHtml } from '../report/html.js';
import { ResultInputError } from '../report/migrate.js';
import { historySectionFor } from '../report/write.js';
import { METRICS, udpMetricDefs, type BenchResult } from '../result.js';
import { repoRoot } from '../run.js';
import { writeFileAtomic } from '../state.js';
import { validateResult } from '../validate.js';
import { buildWorktree, gitToplevel, isDirty, Procs, removeWorktree, resolveCommit, type SideBuild } from './build.js';
import { ciPlan, mergeRounds, roundArgv, roundEnv, sideEnv, type CiOptions, type Side } from './plan.js';
import { ciExitStatus, compareAtLevel, runAbab, type AbabOutcome } from './sequential.js';

/** Schema identifier and version of ci.json. */
export const CI_SCHEMA = 'vxtap-bench-ci';
export const CI_SCHEMA_VERSION = 1;

/** Bad input found before anything was created (exit 2). */
export class CiInputError extends Error {
  override name = 'CiInputError';
}

/** What {@link runCi} ends with. */
export interface CiRun {
  exitStatus: 0 | 1 | 2 | 130;
  /** The output directory (null when nothing was written). */
  dir: string | null;
  /** ci.json's content (null when the run did not get that far). */
  summary: Record<string, unknown> | null;
}

function knownMetric(key: string): boolean {
  const m = /^udp(\d+)/.exec(key);
  return METRICS.some((d) => d.key === key) || (!!m && udpMetricDefs(Number(m[1])).some((d) => d.key === key));
}

/** Everything checked before anything is created. Throws {@link CiInputError}. */
async function preflight(o: CiOptions, procs: Procs): Promise<{ repo: string; headRoot: string; baseCommit: string; headCommit: string; headDirty: boolean | null; thresholds: Thresholds | null }> {
  const unknown = o.metrics.filter((k) => !knownMetric(k));
  if (unknown.length)
    throw new CiInputError(
      `--metrics: unknown metric ${unknown.map((k) => `"${k}"`).join(', ')}; e.g. ${METRICS.slice(0, 4)
        .map((d) => d.key)
        .join(', ')}`,
    );
  let thresholds: Thresholds | null = null;
  if (o.thresholdsFile) {
    let v: unknown;
    try {
      v = JSON.parse(readFileSync(o.thresholdsFile, 'utf8'));
    } catch (err) {
      throw new CiInputError(`--thresholds ${o.thresholdsFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const t = parseThresholds(v);
    if (t instanceof Error) throw new CiInputError(`--thresholds ${o.thresholdsFile}: ${t.message}`);
    thresholds = t;
  }
  if (o.historyDir !== null) {
    // Read now so a bad history is exit 2 before anything runs; read again for the report (this run's head joins it then).
    try {
      loadHistoryDir(o.historyDir, { allowEmpty: true });
    } catch (err) {
      if (err instanceof ResultInputError) throw new CiInputError(`--history ${err.message}`);
      throw err;
    }
  }
  const headRoot = repoRoot();
  const repo = await gitToplevel(procs, headRoot);
  if (!repo) throw new CiInputError(`${headRoot} is not a git checkout: bench ci builds commits of the checkout it runs from`);
  const baseCommit = await resolveCommit(procs, repo, o.base);
  if (!baseCommit) throw new CiInputError(`--base ${o.base}: not a commit in ${repo}`);
  let headCommit: string | null;
  let headDirty: boolean | null = false;
  if (o.head !== null) {
    headCommit = await resolveCommit(procs, repo, o.head);
    if (!headCommit) throw new CiInputError(`--head ${o.head}: not a commit in ${repo}`);
  } else {
    headCommit = await resolveCommit(procs, repo, 'HEAD');
    if (!headCommit) throw new CiInputError(`${repo}: HEAD is not a commit (an empty repository?)`);
    headDirty = await isDirty(procs, repo);
    if (!existsSync(path.join(headRoot, 'dist', 'src', 'cli', 'main.js'))) throw new CiInputError(`${headRoot} is not built (no dist/src/cli/main.js): npx tsc -p ${headRoot}`);
  }
  if (o.remote && !o.remote.hosts.includes('local') && !existsSync(path.join(headRoot, 'native', 'build', 'Release', 'vxtap_native.node'))) {
    throw new CiInputError(`${headRoot} has no native addon (native/build/Release/vxtap_native.node): --hosts deploys each build with it; npm install builds it`);
  }
  return { repo, headRoot, baseCommit, headCommit, headDirty, thresholds };
}

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** Read the single result a round's bench wrote under `dir`, or null. */
function roundResult(dir: string): BenchResult | null {
  if (!existsSync(dir)) return null;
  for (const d of readdirSync(dir).sort().reverse()) {
    const f = path.join(dir, d, 'result.json');
    if (existsSync(f)) return JSON.parse(readFileSync(f, 'utf8')) as BenchResult;
  }
  return null;
}

/** The decision part of comparison.md. */
function renderDecision(s: { plan: number[]; level: number; outcome: AbabOutcome; exitStatus: number; failPct: number; builds: Record<Side, SideBuild>; injectSlowdownPct: number | null }): string {
  const out = ['## Decision (vxtap bench ci)', ''];
  for (const side of ['base', 'head'] as const) {
    const b = s.builds[side];
    out.push(
      `- ${side}: \`${b.ref}\` = ${b.commit.slice(0, 12)}${b.dirty ? ' with uncommitted changes (working tree as it is)' : ''}; ${b.worktree ? `built in a worktree (node_modules: ${b.nodeModules})` : 'the current checkout'}`,
    );
  }
  if (s.injectSlowdownPct !== null) out.push(`- **test-only**: head ran with an injected slowdown (VXTAP_TEST_SLOWDOWN_PCT=${s.injectSlowdownPct}, --inject-slowdown)`);
  out.push(`- rounds: base and head interleaved (ABAB), one \`vxtap bench --rounds 1\` of each build per round, on the same hosts`);
  out.push(`- stopping rule (bench/decide.ts): looks at ${s.plan.join(', ')} rounds per side, each at level ${s.level.toPrecision(3)} (alpha / ${s.plan.length} looks, Holm inside a look)`);
  for (const l of s.outcome.looks)
    out.push(`- look ${l.look} at ${l.rounds} round(s) per side: ${l.counts.worse} worse, ${l.counts.better} better, ${l.counts.same} same, ${l.counts.unknown} unknown: ${l.decision.why}`);
  const verdict =
    s.exitStatus === 1
      ? `**fail**: a \`worse\` verdict beyond ${s.failPct}%`
      : s.outcome.stoppedBy === 'cap' && s.outcome.comparison.counts.unknown
        ? `pass: no \`worse\` verdict; ${s.outcome.comparison.counts.unknown} metric(s) still unknown at the cap (more rounds or less noise would decide them)`
        : 'pass: no `worse` verdict';
  out.push('', `Verdict: ${verdict} (exit ${s.exitStatus}).`, '');
  return out.join('\n');
}

/**
 * Run `vxtap bench ci`. `onSignal` receives the abort function the caller's
 * signal handler calls. Throws {@link CiInputError} for bad input found before
 * anything was created; any later failure is exit status 1 or 2 in the result.
 */
export async function runCi(o: CiOptions, hooks: { log: (line: string) => void; setAbort: (abort: ((sig: NodeJS.Signals) => void) | null) => void }): Promise<CiRun> {
  const log = (l: string) => {
    if (o.progress) hooks.log(l);
  };
  const procs = new Procs();
  const pre = await preflight(o, procs);
  const t0 = Date.now();
  const plan = ciPlan(o.cap, o.alpha, o.looks);
  const level = lookAlpha(plan);

  // From here on things are created; everything below is undone in `finally`.
  const dir = path.join(path.resolve(o.outDir), `${stamp(new Date())}-${os.hostname()}-ci`);
  mkdirSync(path.join(dir, 'rounds'), { recursive: true });
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'vxtap-bench-ci-'));
  const worktrees: string[] = [];
  const cleanup = () => {
    for (const w of worktrees.splice(0)) {
      log(`bench ci: removing worktree ${w}`);
      removeWorktree(pre.repo, w, (cmd, args) => void spawnSync(cmd, args, { stdio: 'ignore' }));
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  // A holder, not a let: the signal handler sets it behind the compiler's back.
  const sig: { interrupted: NodeJS.Signals | null } = { interrupted: null };
  hooks.setAbort((signal) => {
    if (sig.interrupted) {
      if (signal === 'SIGHUP') return; // a closed terminal hangs up twice: only Ctrl-C or SIGTERM cuts the teardown short
      // A second signal: no more waiting for the round's teardown.
      cleanup();
      process.exit(130);
    }
    sig.interrupted = signal;
    log(`bench ci: ${signal}: stopping the running step, then removing the worktrees`);
    procs.abort(signal === 'SIGINT' ? 'SIGINT' : 'SIGTERM');
  });

  const summary: Record<string, unknown> = {
    schema: CI_SCHEMA,
    schemaVersion: CI_SCHEMA_VERSION,
    dir,
    base: { ref: o.base, commit: pre.baseCommit },
    head: { ref: o.head ?? 'working tree', commit: pre.headCommit, dirty: pre.headDirty },
    options: {
      profile: o.profile,
      modes: o.modes,
      cap: o.cap,
      metrics: o.metrics,
      alpha: o.alpha,
      failOnRegressionPct: o.failOnRegressionPct,
      hosts: o.remote?.hosts ?? null,
      injectSlowdownPct: o.injectSlowdownPct,
    },
  };
  const finish = (exitStatus: CiRun['exitStatus'], extra: Record<string, unknown>): CiRun => {
    Object.assign(summary, extra, { exitStatus, wallSeconds: (Date.now() - t0) / 1000 });
    if (exitStatus === 2) {
      // Bad input found late (a side's bench refused the options): nothing is left behind either.
      rmSync(dir, { recursive: true, force: true });
      return { exitStatus, dir: null, summary };
    }
    writeFileAtomic(path.join(dir, 'ci.json'), `${JSON.stringify(summary, null, 2)}\n`);
    return { exitStatus, dir, summary };
  };
  try {
    log(
      `bench ci: base ${o.base} = ${pre.baseCommit.slice(0, 12)}, head ${o.head ?? 'the working tree'} = ${pre.headCommit.slice(0, 12)}${pre.headDirty ? ' (uncommitted changes)' : ''}${o.injectSlowdownPct !== null ? ` with a TEST-ONLY injected slowdown of ${o.injectSlowdownPct}%` : ''}; ${o.profile} profile, modes ${o.modes.join(' ')}, looks at ${plan.schedule.join(', ')} rounds per side; output ${dir}`,
    );
    const builds = {} as Record<Side, SideBuild>;
    for (const side of ['base', 'head'] as const) {
      const ref = side === 'base' ? o.base : o.head;
      if (ref === null) {
        builds.head = {
          ref: 'working tree',
          commit: pre.headCommit,
          root: pre.headRoot,
          cli: path.join(pre.headRoot, 'dist', 'src', 'cli', 'main.js'),
          worktree: null,
          dirty: pre.headDirty,
          nodeModules: 'checkout',
          seconds: {},
          env: {},
        };
        continue;
      }
      const wt = path.join(tmp, side);
      worktrees.push(wt);
      builds[side] = await buildWorktree({
        procs,
        repo: pre.repo,
        ref,
        commit: side === 'base' ? pre.baseCommit : pre.headCommit,
        dir: wt,
        nodeModulesFrom: pre.headRoot,
        logFile: path.join(dir, `build-${side}.log`),
        log,
      });
    }
    summary.builds = Object.fromEntries(Object.entries(builds).map(([k, b]) => [k, { ref: b.ref, commit: b.commit, worktree: b.worktree, nodeModules: b.nodeModules, seconds: b.seconds }]));

    let done = 0;
    const refused: { side: Side | null } = { side: null }; // set inside runRound
    const runRound = async (side: Side, round: number): Promise<BenchResult> => {
      const b = builds[side];
      const name = `${side}-${String(round).padStart(2, '0')}`;
      const out = path.join(dir, 'rounds', name);
      const started = Date.now();
      log(`bench ci: [${++done}] round ${round} ${side} (${b.commit.slice(0, 12)})`);
      const r = await procs.run([process.execPath, b.cli, ...roundArgv(o, round, out)], {
        cwd: b.root,
        env: { ...roundEnv(process.env), ...b.env, ...sideEnv(o, side) },
        logFile: path.join(dir, 'rounds', `${name}.log`),
      });
      if (procs.aborted) throw new Error('interrupted');
      if (r.code === 2) {
        refused.side = side;
        throw new Error(`the ${side} build's bench refused the options (exit 2): ${r.tail.split('\n').filter(Boolean).slice(-1)[0] ?? ''}`);
      }
      const res = roundResult(out);
      if (!res) throw new Error(`round ${round} ${side}: the bench wrote no result.json (exit ${String(r.code ?? r.signal)}); log ${path.join(dir, 'rounds', `${name}.log`)}:\n${r.tail}`);
      const errs = validateResult(res);
      if (errs.length) throw new Error(`round ${round} ${side}: result.json does not match the schema: ${errs.slice(0, 3).join('; ')}`);
      log(`bench ci:     ${res.status}${res.incompleteReasons.length ? ` (${res.incompleteReasons.join('; ')})` : ''}, ${((Date.now() - started) / 1000).toFixed(0)} s`);
      // The round's samples live on in the merged results; its own directory would be one more single-round run for `bench history` to find.
      rmSync(out, { recursive: true, force: true });
      return res;
    };
    const host = os.hostname();
    const merge = (side: Side, parts: BenchResult[]) =>
      mergeRounds(parts, {
        runId: `${stamp(new Date(t0))}-${host}-ci-${side}`,
        argv: process.argv.slice(2),
        modes: o.modes,
        ci: { side, ref: builds[side].ref, commit: builds[side].commit, dirty: builds[side].dirty, rounds: parts.map((p) => p.runId) },
      });
    const label = (side: Side) => `${side} ${builds[side].ref} (${builds[side].commit.slice(0, 12)}${builds[side].dirty ? ', uncommitted changes' : ''})`;
    let outcome: AbabOutcome;
    try {
      outcome = await runAbab({
        plan,
        runRound,
        merge,
        compare: (base, head, lv) => compareAtLevel({ label: label('base'), result: base }, { label: label('head'), result: head }, { metrics: o.metrics, thresholds: pre.thresholds, level: lv }),
        log,
      });
    } catch (err) {
      if (sig.interrupted) return finish(130, { error: `interrupted by ${sig.interrupted}` });
      const msg = (err as Error).message;
      hooks.log(`vxtap bench ci: ${msg}`);
      return finish(refused.side ? 2 : 1, { error: msg });
    }
    const c: Comparison = outcome.comparison;
    const exitStatus = ciExitStatus(c, o.failOnRegressionPct);
    writeFileAtomic(path.join(dir, 'result.json'), `${JSON.stringify(outcome.head, null, 2)}\n`);
    writeFileAtomic(path.join(dir, 'base-result.json'), `${JSON.stringify(outcome.base, null, 2)}\n`);
    writeFileAtomic(path.join(dir, 'comparison.json'), `${JSON.stringify(c, null, 2)}\n`);
    const md = `${renderCompareMarkdown(c)}\n${renderDecision({ plan: plan.schedule, level, outcome, exitStatus, failPct: o.failOnRegressionPct, builds, injectSlowdownPct: o.injectSlowdownPct })}`;
    writeFileAtomic(path.join(dir, 'comparison.md'), md);
    try {
      const sections = [{ id: 'ci', title: 'CI comparison', html: markdownToHtml(md.replace(/^# .*\n/, ''), 1) }];
      if (o.historyDir !== null) {
        try {
          sections.push(historySectionFor(o.historyDir, outcome.head, [...new Set([...COMPARE_KEYS, ...o.metrics])]));
        } catch (err) {
          hooks.log(`vxtap bench ci: warning: report.html has no history: ${(err as Error).message}`); // changed while the bench ran
        }
      }
      const html = renderReportHtml(outcome.head, { extraSections: sections });
      writeFileAtomic(path.join(dir, 'report.html'), html);
    } catch (err) {
      hooks.log(`vxtap bench ci: warning: report.html not written: ${(err as Error).message}`);
    }
    for (const r of c.rows.filter((x) => x.verdict === 'worse'))
      hooks.log(`vxtap bench ci: worse: ${r.mode} ${r.metric} ${r.deltaPct === null ? 'n/a' : `${r.deltaPct.toFixed(1)}%`} (adjusted p = ${r.pAdjusted?.toPrecision(2) ?? 'n/a'})`);
    return finish(exitStatus, {
      plan: { schedule: plan.schedule, alpha: plan.alpha, lookAlpha: level, correction: plan.correction, spending: 'bonferroni over looks' },
      looks: outcome.looks,
      stoppedBy: outcome.stoppedBy,
      roundsPerSide: outcome.looks[outcome.looks.length - 1].rounds,
      counts: c.counts,
      warnings: c.warnings,
      status: { base: outcome.base.status, head: outcome.head.status },
    });
  } catch (err) {
    if (sig.interrupted) return finish(130, { error: `interrupted by ${sig.interrupted}` });
    const msg = (err as Error).message;
    hooks.log(`vxtap bench ci: ${msg}`);
    return finish(1, { error: msg });
  } finally {
    hooks.setAbort(null);
    cleanup();
  }
}
