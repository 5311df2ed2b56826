/**
 * `vxtap bench compare OLD.json NEW.json`: compare two bench results for
 * regression tracking (bench/compare.ts does the statistics). This module does
 * the I/O: it reads both files, validates them against
 * bench/result.schema.json, prints Markdown (default) or JSON to stdout and
 * sets the exit status: 0 no failing regression, 1 a significant `worse`
 * change beyond --fail-on-regression, 2 bad input or options.
 */
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { COMPARE_DEFAULTS, compareResults, parseCompareOptions, regressions, renderCompareMarkdown, sharedMetrics, formatDelta } from '../../bench/compare.js';
import type { BenchResult } from '../../bench/result.js';
import { validateResult } from '../../bench/validate.js';

/** Most schema errors printed per file. */
const MAX_SCHEMA_ERRORS = 10;

function fail(message: string): never {
  process.stderr.write(`vxtap bench compare: ${message}\n`);
  process.exit(2);
}

/** Read, parse and schema-check one result; exits 2 with a message naming the file and field. */
async function loadResult(role: 'OLD' | 'NEW', file: string): Promise<BenchResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    fail(`${role} ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    fail(`${role} ${file}: not JSON (${(err as Error).message})`);
  }
  const errs = validateResult(value);
  if (errs.length) {
    const more = errs.length > MAX_SCHEMA_ERRORS ? `\n  ... and ${errs.length - MAX_SCHEMA_ERRORS} more` : '';
    fail(`${role} ${file}: not a valid bench result (bench/result.schema.json):\n  ${errs.slice(0, MAX_SCHEMA_ERRORS).join('\n  ')}${more}`);
  }
  return value as BenchResult;
}

/** Register `compare` under the `bench` command. */
export function registerCompare(bench: Command): void {
  bench
    .command('compare')
    .description('Compare two bench results (result.json) mode by mode and metric by metric: medians over rounds, change in %, Mann-Whitney U test, verdict.')
    .argument('<old>', 'baseline result.json (e.g. from the main branch)')
    .argument('<new>', 'candidate result.json')
    .addOption(new Option('--json', 'print the comparison as JSON (schema "vxtap-bench-compare") instead of Markdown').env('VXTAP_BENCH_COMPARE_JSON'))
    .addOption(new Option('--alpha <p>', 'significance level of the two-sided test, 0 < p < 1').default(String(COMPARE_DEFAULTS.alpha)).env('VXTAP_BENCH_COMPARE_ALPHA'))
    .addOption(new Option('--fail-on-regression <percent>', 'exit 1 when any significant "worse" change exceeds this many percent (e.g. 5)').env('VXTAP_BENCH_COMPARE_FAIL_ON_REGRESSION'))
    .addOption(new Option('--metrics <keys>', 'comma-separated metric keys to compare (default: all), e.g. tcp1Gbps,latIdleP50,udp64NdrKpps').env('VXTAP_BENCH_COMPARE_METRICS'))
    .addHelpText('after', `
Rows: every mode present in both results x every metric of the metric table
(derived.metrics keys: tcp1Gbps, tcpNGbps, tcp1Retransmits, tcp1CpuPerGbit, latIdleP50 ...
latLoadedMax, udp<frame>NdrKpps/PdrKpps/CpuPerMpkt). old/new = medians over rounds;
delta = (new - old) / |old|; p = two-sided Mann-Whitney U test on the per-round
values (exact for n1 + n2 <= 50, ties included; normal approximation with tie
correction above). Verdict: better/worse by the metric's direction when p <= alpha,
"~" otherwise.

Significance needs rounds: 3 vs 3 rounds can never reach p < 0.05 (smallest
possible p = 0.100, said in a footnote); 4 vs 4 only when every round of one run
beats every round of the other. Run both results with --rounds 5 or more
(vxtap bench --rounds 5), on the same machine, kernel and options; differences
in kernel, CPU, tool versions, profile, MTU, netem or pinning are warned about
(the git commit and hostname may differ).

Exit status: 0 no failing regression (always without --fail-on-regression),
1 a significant "worse" change larger than --fail-on-regression percent,
2 bad input (unreadable file, not JSON, fails bench/result.schema.json) or options.
Every flag has an environment mirror (VXTAP_BENCH_COMPARE_ALPHA, ...).

Example (CI):
  vxtap bench --rounds 5 --json > new.json
  vxtap bench compare baseline.json new.json --fail-on-regression 5`)
    .action(async (oldFile: string, newFile: string, o: Record<string, string | boolean | undefined>) => {
      const opts = parseCompareOptions({ alpha: o.alpha as string | undefined, metrics: o.metrics as string | undefined, failOnRegression: o.failOnRegression as string | undefined, json: o.json });
      if (opts instanceof Error) fail(opts.message);
      const oldR = await loadResult('OLD', oldFile);
      const newR = await loadResult('NEW', newFile);
      const defs = sharedMetrics(oldR, newR, opts.metrics);
      if (defs instanceof Error) fail(defs.message);
      const c = compareResults({ label: oldFile, result: oldR }, { label: newFile, result: newR }, opts);
      process.stdout.write(opts.json ? `${JSON.stringify(c, null, 2)}\n` : renderCompareMarkdown(c));
      if (opts.json) for (const w of c.warnings) process.stderr.write(`vxtap bench compare: warning: ${w}\n`);
      if (opts.failOnRegressionPct !== null) {
        const bad = regressions(c, opts.failOnRegressionPct);
        for (const r of bad) process.stderr.write(`vxtap bench compare: regression: ${r.mode} ${r.metric} ${formatDelta(r.deltaPct)} (p = ${r.p?.toFixed(3)}) beyond ${opts.failOnRegressionPct}%\n`);
        process.exitCode = bad.length ? 1 : 0;
      }
    });
}
