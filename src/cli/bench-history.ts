/**
 * `vxtap bench history DIR`: read every result.json under DIR, group the runs
 * by environment fingerprint and report change points per mode and metric
 * (bench/history.ts does the analysis). Markdown on stdout, or JSON with
 * --json. Exit status: 0 (also when change points are found, unless
 * --fail-on-regression), 1 with --fail-on-regression when a series' newest
 * level is a regression (its last change point is one), 2 bad input or options.
 */
import { stat } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { analyzeHistory, HISTORY_DEFAULTS, readHistoryDir, renderHistoryMarkdown } from '../../bench/history.js';

function fail(message: string): never {
  process.stderr.write(`vxtap bench history: ${message}\n`);
  process.exit(2);
}

/** Register `history` under the `bench` command. */
export function registerHistory(bench: Command): void {
  bench
    .command('history')
    .description('Find change points (E-divisive means) per mode and metric in a directory of bench results, grouped by environment fingerprint.')
    .argument('<dir>', 'directory searched recursively for result.json files (e.g. results/ or a bench-history checkout)')
    .addOption(new Option('--json', 'print the analysis as JSON (schema "vxtap-bench-history") instead of Markdown').env('VXTAP_BENCH_HISTORY_JSON'))
    .addOption(new Option('--metrics <keys>', 'comma-separated metric keys (default: all)').env('VXTAP_BENCH_HISTORY_METRICS'))
    .addOption(new Option('--significance <p>', 'permutation-test level per change point').default(String(HISTORY_DEFAULTS.significance)).env('VXTAP_BENCH_HISTORY_SIGNIFICANCE'))
    .addOption(new Option('--permutations <n>', 'permutations per test').default(String(HISTORY_DEFAULTS.permutations)).env('VXTAP_BENCH_HISTORY_PERMUTATIONS'))
    .addOption(new Option('--min-size <runs>', 'fewest runs on each side of a change point').default(String(HISTORY_DEFAULTS.minSize)).env('VXTAP_BENCH_HISTORY_MIN_SIZE'))
    .addOption(new Option('--seed <n>', 'random seed of the permutations (results are reproducible)').default(String(HISTORY_DEFAULTS.seed)).env('VXTAP_BENCH_HISTORY_SEED'))
    .addOption(new Option('--fail-on-regression', 'exit 1 when the newest level of a series is a regression (its last change point is one)').env('VXTAP_BENCH_HISTORY_FAIL_ON_REGRESSION'))
    .addHelpText(
      'after',
      `
Runs are grouped by hosts, kernel, CPU model and count, profile, modes, MTU,
netem and pinning; each group's runs are ordered by start time and each mode x
metric (median over rounds per run) is searched for change points with
E-divisive means (Matteson & James 2014, as in Hunter/Otava) and a permutation
test. A slow drift shows as one or more change points. Unreadable, invalid and
still-running results are listed as skipped.`,
    )
    .action(async (dir: string, o: Record<string, string | boolean | undefined>) => {
      const significance = Number(o.significance);
      if (!(significance > 0 && significance < 1)) fail(`--significance must be a number between 0 and 1 exclusive (got "${String(o.significance)}")`);
      const permutations = Number(o.permutations);
      if (!Number.isInteger(permutations) || permutations < 19 || permutations > 100_000) fail(`--permutations must be an integer 19..100000 (got "${String(o.permutations)}")`);
      const minSize = Number(o.minSize);
      if (!Number.isInteger(minSize) || minSize < 1) fail(`--min-size must be an integer >= 1 (got "${String(o.minSize)}")`);
      const seed = Number(o.seed);
      if (!Number.isInteger(seed)) fail(`--seed must be an integer (got "${String(o.seed)}")`);
      const metrics = o.metrics
        ? String(o.metrics)
            .split(',')
            .map((k) => k.trim())
            .filter(Boolean)
        : null;
      const st = await stat(dir).catch((err: unknown) => fail(`${dir}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`));
      if (!st.isDirectory()) fail(`${dir}: not a directory`);
      const { entries, skipped } = await readHistoryDir(dir);
      const h = analyzeHistory(entries, { significance, permutations, minSize, seed, metrics }, skipped);
      process.stdout.write(o.json ? `${JSON.stringify(h, null, 2)}\n` : renderHistoryMarkdown(h));
      for (const s of skipped) process.stderr.write(`vxtap bench history: skipped ${s.file}: ${s.reason}\n`);
      if (o.failOnRegression) {
        const recent = h.groups.flatMap((g) =>
          g.series.flatMap((s) =>
            s.changes
              .slice(-1)
              .filter((c) => c.kind === 'regression')
              .map((c) => `${s.mode} ${s.metric} ${c.changePct?.toFixed(1) ?? 'n/a'}% at ${c.runId}`),
          ),
        );
        for (const r of recent) process.stderr.write(`vxtap bench history: regression: ${r}\n`);
        process.exitCode = recent.length ? 1 : 0;
      }
    });
}
