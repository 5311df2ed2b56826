/**
 * `vxtap bench ci --base REF [--head REF]`: the regression check CI runs
 * (bench/ci/ does the work; this module parses flags, checks root and maps
 * the outcome to the exit status). The implementation is loaded only when
 * the command runs.
 */
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';

function fail(message: string): never {
  process.stderr.write(`vxtap bench ci: ${message}\n`);
  process.exit(2);
}

/** Register `ci` under the `bench` command. */
export function registerCi(bench: Command): void {
  bench
    .command('ci')
    .description(
      'Regression check: build --base (and --head) in git worktrees, bench base and head interleaved (ABAB) on the same hosts, add rounds while the gating metrics are unknown (the stopping rule of bench/decide.ts), compare, write comparison.md/.json and report.html; exit 1 on a worse verdict.',
    )
    .addOption(new Option('--base <ref>', 'the commit to compare against, e.g. origin/main or the last good main commit (built in a git worktree)').env('VXTAP_BENCH_CI_BASE'))
    .addOption(new Option('--head <ref>', 'the commit to check, built in a worktree too (default: the current checkout, working tree as it is)').env('VXTAP_BENCH_CI_HEAD'))
    .addOption(new Option('--quick', 'quick profile for every round (short trials; a smoke test, too noisy to decide)').env('VXTAP_BENCH_QUICK'))
    .addOption(new Option('--full', 'full profile for every round (RFC 2544-length trials; hours)').env('VXTAP_BENCH_FULL'))
    .addOption(new Option('--modes <list>', 'comma-separated modes, as for vxtap bench').default('kernel-vxlan,vxtap').env('VXTAP_BENCH_MODES'))
    .addOption(new Option('--rounds <n>', 'cap on rounds per side: looks at 6, 9, ... up to the cap (below 6: one look at the cap)').default('12').env('VXTAP_BENCH_ROUNDS'))
    .addOption(
      new Option(
        '--looks <rounds>',
        'rounds per side at each look of the stopping rule, e.g. 8,16,24 (its last is the cap; overrides --rounds). On the 2-core development machine 8,16,24 met both targets by resampling (A/A 2.7% false alarms, a 10% slowdown found in 95%) where 6,9,12 found 65%',
      ).env('VXTAP_BENCH_CI_LOOKS'),
    )
    .addOption(new Option('--out <dir>', 'results directory (a <timestamp>-<hostname>-ci folder is created inside)').default('results').env('VXTAP_BENCH_OUT'))
    .addOption(
      new Option(
        '--measure <list>',
        "what each round measures, as vxtap bench --measure (e.g. tcp,latency: only what the default gating metrics need, a third of the time; both builds must know the list; default: the bench's own)",
      ).env('VXTAP_BENCH_CI_MEASURE'),
    )
    .addOption(new Option('--metrics <keys>', 'the gating metrics: comma-separated keys judged per mode (Holm within each look)').default('tcp1Gbps,tcpNGbps,latIdleP50').env('VXTAP_BENCH_CI_METRICS'))
    .addOption(
      new Option('--thresholds <file>', 'per-metric minimum effect, detect size and CV limit (JSON from vxtap bench compare --calibrate); default: built-in placeholders').env(
        'VXTAP_BENCH_CI_THRESHOLDS',
      ),
    )
    .addOption(new Option('--alpha <p>', 'family-wise false-alarm budget over all looks and gating metrics').default('0.05').env('VXTAP_BENCH_CI_ALPHA'))
    .addOption(
      new Option(
        '--history <dir>',
        "earlier results (searched recursively for result.json): report.html gets a History section, the trend of this run's environment with change points (E-divisive means)",
      ).env('VXTAP_BENCH_CI_HISTORY_DIR'),
    )
    .addOption(new Option('--fail-on-regression <percent>', 'exit 1 when a worse verdict changes its metric by more than this many percent').default('0').env('VXTAP_BENCH_CI_FAIL_ON_REGRESSION'))
    .addOption(
      new Option('--inject-slowdown <percent>', 'TEST-ONLY: run the head side with VXTAP_TEST_SLOWDOWN_PCT=percent (1-90), a known vxtap slowdown, to check that the decision catches it').env(
        'VXTAP_BENCH_CI_INJECT_SLOWDOWN',
      ),
    )
    .addOption(new Option('--json', 'print ci.json (builds, looks, counts, exit status) to stdout when done').env('VXTAP_BENCH_CI_JSON'))
    .addOption(new Option('--no-progress', 'no progress lines on stderr').env('VXTAP_BENCH_NO_PROGRESS'))
    .addOption(new Option('--hosts <A,B>', 'bench across two real hosts (as vxtap bench --hosts); each round deploys its own build (--deploy)').env('VXTAP_BENCH_HOSTS'))
    .addOption(new Option('--ssh-config <file>', 'with --hosts: ssh -F FILE').env('VXTAP_BENCH_SSH_CONFIG'))
    .addOption(
      new Option('--ssh-option <opt>', 'with --hosts: ssh -o OPT (repeatable; env VXTAP_BENCH_SSH_OPTIONS, one per line)').argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]),
    )
    .addOption(new Option('--underlay <A,B>', 'with --hosts: the addresses the hosts use to reach each other').env('VXTAP_BENCH_UNDERLAY'))
    .addOption(new Option('--overlay <cidr>', 'with --hosts: overlay network').env('VXTAP_BENCH_OVERLAY'))
    .addOption(new Option('--vni <n>', 'with --hosts: VXLAN network identifier').env('VXTAP_BENCH_VNI'))
    .addOption(new Option('--port <n>', 'with --hosts: VXLAN UDP port').env('VXTAP_BENCH_PORT'))
    .addOption(new Option('--data-dev <A,B>', 'with --hosts: interfaces the OVS modes may take over').env('VXTAP_BENCH_DATA_DEV'))
    .addOption(new Option('--lease <seconds>', 'with --hosts: agent lease').env('VXTAP_BENCH_LEASE'))
    .addHelpText(
      'after',
      `
Each round is one "vxtap bench --rounds 1" of that side's own build (bench code
included), base and head alternating on the same hosts: base 1, head 1, base 2,
head 2, ... The stopping rule (bench/decide.ts): compare at 6 rounds per side;
while a gating metric is "unknown", add 3 round pairs, up to --rounds; each look
is tested at alpha / looks (Holm over the gating rows inside a look), so adding
rounds does not inflate false alarms. Stops early on a "worse".

The base build: git worktree add --detach under a temporary directory;
node_modules is a symlink to this checkout's when package-lock.json is
identical, else npm ci; the native addon (node-gyp) and dist/ (tsc) are always
built from the commit. Worktrees are removed at the end, also after a failure
or Ctrl-C.

Output in <out>/<timestamp>-<hostname>-ci/: result.json (head, all rounds),
base-result.json, comparison.md, comparison.json, ci.json, report.html (head's
report with a "CI comparison" section, and with --history DIR a "History"
section: DIR's runs of this environment plus this head, change points marked),
build-*.log, rounds/*.log.

Exit status: 0 no failing regression (metrics still unknown at the cap are
reported, not failed), 1 a worse verdict beyond --fail-on-regression, a
failed build or bench, or another bench running here (bench ci holds the
one-local-run lock for all its rounds), 2 bad input (unknown ref, bad flag;
nothing is left behind), 130 interrupted. Needs root like vxtap bench (unless both --hosts are
remote).`,
    )
    .action(async (o: Record<string, string | boolean | string[] | undefined>) => {
      const { parseCiOptions } = await import('../../bench/ci/plan.js');
      const sshEnv = process.env.VXTAP_BENCH_SSH_OPTIONS ? process.env.VXTAP_BENCH_SSH_OPTIONS.split('\n') : [];
      const opts = parseCiOptions(o, sshEnv);
      if (opts instanceof Error) fail(opts.message);
      if (o.out === 'results') opts.outDir = path.join((await import('../../bench/run.js')).repoRoot(), 'results'); // as vxtap bench: the checkout's results/
      const controllerOnly = opts.remote !== null && !opts.remote.hosts.includes('local');
      if (controllerOnly && process.getuid?.() !== 0 && !process.env.VXTAP_BENCH_STATE_DIR) process.env.VXTAP_BENCH_STATE_DIR = path.join(os.tmpdir(), `vxtap-bench-${String(process.getuid?.())}`);
      if (process.getuid?.() !== 0 && !controllerOnly) fail('needs root (each round is a vxtap bench: network namespaces, veth, OVS); run with sudo');
      // One local run per machine (vxtap bench): held for all the rounds, which run under it,
      // and taken before minutes of building, so another bench can neither start between
      // two rounds nor be the reason a round fails.
      const lock = await import('../../bench/state.js');
      if (!opts.remote) {
        const holder = lock.takeLocalBenchLock();
        if (holder) {
          process.stderr.write(`vxtap bench ci: ${lock.localBenchBusy(holder)}\nnothing was created\n`);
          process.exit(1);
        }
        process.once('exit', lock.releaseLocalBenchLock); // also on a second Ctrl-C's process.exit
      }
      const { runCi, CiInputError } = await import('../../bench/ci/index.js');
      let abort: ((sig: NodeJS.Signals) => void) | null = null;
      const onSignal = (sig: NodeJS.Signals) => {
        if (abort) abort(sig);
        else process.exit(130);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      process.on('SIGHUP', onSignal);
      process.on('SIGHUP', () => undefined); // stays after the finally: see bench.ts
      try {
        const run = await runCi(opts, { log: (l) => process.stderr.write(`${l}\n`), setAbort: (a) => (abort = a) });
        if (run.dir) process.stderr.write(`vxtap bench ci: exit ${run.exitStatus}; ${run.dir}\n`);
        if (opts.json && run.summary) process.stdout.write(`${JSON.stringify(run.summary, null, 2)}\n`);
        process.exitCode = run.exitStatus;
      } catch (err) {
        if (err instanceof CiInputError) fail(err.message);
        throw err;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.off('SIGHUP', onSignal);
        lock.releaseLocalBenchLock();
      }
    });
}
