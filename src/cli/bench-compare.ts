/**
 * `vxtap bench compare OLD.json NEW.json`: compare two bench results for
 * regression tracking (bench/compare.ts does the statistics). This module does
 * the I/O: it reads both files (and a `--thresholds` file), validates them
 * against bench/result.schema.json, prints Markdown (default) or JSON to stdout
 * and sets the exit status: 0 no failing regression, 1 a `worse` change beyond
 * --fail-on-regression, 2 bad input or options. `--calibrate A1 A2 ...` reads
 * A/A results instead and prints per-metric thresholds as JSON.
 */
import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { calibrateThresholds, COMPARE_DEFAULTS, compareResults, parseCompareOptions, parseThresholds, regressions, renderCompareMarkdown, sharedMetrics, formatDelta, type Thresholds } from '../../bench/compare.js';
import type { BenchResult } from '../../bench/result.js';
import { validateResult } from '../../bench/validate.js';

/** Most schema errors printed per file. */
const MAX_SCHEMA_ERRORS = 10;

function fail(message: string): never {
  process.stderr.write(`vxtap bench compare: ${message}\n`);
  process.exit(2);
}

/** Read, parse and schema-check one result; exits 2 with a message naming the file and field. */
export async function loadResult(role: string, file: string): Promise<BenchResult> {
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

/** Read and check a thresholds file (`--thresholds`); exits 2 naming the file and field. */
async function loadThresholds(file: string): Promise<Thresholds> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    fail(`--thresholds ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const t = parseThresholds(value);
  if (t instanceof Error) fail(`--thresholds ${file}: ${t.message}`);
  return t;
}

/** Register `compare` under the `bench` command. */
export function registerCompare(bench: Command): void {
  bench
    .command('compare')
    .description('Compare two bench results (result.json) mode by mode and metric by metric: medians over rounds, change in %, Mann-Whitney U test with Holm correction, verdict better/worse/same/unknown. With --calibrate: derive thresholds from A/A results.')
    .argument('<files...>', 'OLD.json NEW.json: baseline (e.g. the last good main) and candidate; with --calibrate: two or more A/A results')
    .addOption(new Option('--json', 'print the comparison as JSON (schema "vxtap-bench-compare") instead of Markdown').env('VXTAP_BENCH_COMPARE_JSON'))
    .addOption(new Option('--alpha <p>', 'significance level of the two-sided test, 0 < p < 1').default(String(COMPARE_DEFAULTS.alpha)).env('VXTAP_BENCH_COMPARE_ALPHA'))
    .addOption(new Option('--fail-on-regression <percent>', 'exit 1 when any significant "worse" change exceeds this many percent (e.g. 5)').env('VXTAP_BENCH_COMPARE_FAIL_ON_REGRESSION'))
    .addOption(new Option('--correction <how>', 'multiple-testing correction over all rows: holm (family-wise error <= alpha) or none').default(COMPARE_DEFAULTS.correction).env('VXTAP_BENCH_COMPARE_CORRECTION'))
    .addOption(new Option('--thresholds <file>', 'per-metric minimum effect, detect size and CV limit (JSON, as printed by --calibrate); default: built-in placeholders').env('VXTAP_BENCH_COMPARE_THRESHOLDS'))
    .addOption(new Option('--calibrate', 'read two or more A/A results (same build, same machine) and print thresholds JSON for --thresholds').env('VXTAP_BENCH_COMPARE_CALIBRATE'))
    .addOption(new Option('--metrics <keys>', 'comma-separated metric keys to compare (default: all), e.g. tcp1Gbps,latIdleP50,udp64NdrKpps').env('VXTAP_BENCH_COMPARE_METRICS'))
    .addHelpText('after', `
Rows: every mode present in both results x every metric of the metric table
(derived.metrics keys: tcp1Gbps, tcpNGbps, tcp1Retransmits, tcp1CpuPerGbit, latIdleP50 ...
latLoadedMax, udp<frame>NdrKpps/PdrKpps/CpuPerMpkt). old/new = medians over rounds;
delta = (new - old) / |old|; p = two-sided Mann-Whitney U test on the per-round
values (exact for n1 + n2 <= 50, ties included; normal approximation with tie
correction above), Holm-adjusted over all rows (--correction none: raw).
Verdicts: better/worse = adjusted p <= alpha and |delta| >= the metric's minimum
effect; same = significant but below it, or not significant although a change
of the metric's detect size would have been seen (80% power at the observed
noise); unknown = too noisy or too few rounds to say; "noisy" flags a CV over
rounds above the metric's limit. Thresholds: built-in placeholders until
derived from A/A runs of the runner (--calibrate A1.json A2.json ... > t.json,
then --thresholds t.json).

Significance needs rounds: 3 vs 3 rounds can never reach p < 0.05 (smallest
possible p = 0.100, said in a footnote), and the Holm level alpha / tests is
smaller still; the footnote names the rounds needed. Run both results on the
same machine, kernel and options; differences in kernel, CPU, tool versions,
profile, MTU, netem or pinning are warned about (the git commit and hostname
may differ).

Exit status: 0 no failing regression (always without --fail-on-regression),
1 a "worse" verdict with a change larger than --fail-on-regression percent,
2 bad input (unreadable file, not JSON, fails bench/result.schema.json) or options.
Every flag has an environment mirror (VXTAP_BENCH_COMPARE_ALPHA, ...).

Example (CI; scripts/bench-ci.sh does this):
  vxtap bench --rounds 8 --json > new.json
  vxtap bench compare baseline.json new.json --thresholds thresholds.json --fail-on-regression 0`)
    .action(async (files: string[], o: Record<string, string | boolean | undefined>) => {
      if (o.calibrate) {
        if (files.length < 2) fail('--calibrate needs two or more A/A result files');
        const results = [];
        for (const [i, f] of files.entries()) results.push({ label: f, result: await loadResult(`A${i + 1}`, f) });
        process.stdout.write(`${JSON.stringify(calibrateThresholds(results), null, 2)}\n`);
        return;
      }
      if (files.length !== 2) fail(`needs exactly two files, OLD.json NEW.json (got ${files.length})`);
      const [oldFile, newFile] = files;
      const opts = parseCompareOptions({ alpha: o.alpha as string | undefined, metrics: o.metrics as string | undefined, failOnRegression: o.failOnRegression as string | undefined, correction: o.correction as string | undefined, json: o.json });
      if (opts instanceof Error) fail(opts.message);
      const thresholds = o.thresholds ? await loadThresholds(String(o.thresholds)) : null;
      const oldR = await loadResult('OLD', oldFile);
      const newR = await loadResult('NEW', newFile);
      const defs = sharedMetrics(oldR, newR, opts.metrics);
      if (defs instanceof Error) fail(defs.message);
      const c = compareResults({ label: oldFile, result: oldR }, { label: newFile, result: newR }, { ...opts, thresholds });
      process.stdout.write(opts.json ? `${JSON.stringify(c, null, 2)}\n` : renderCompareMarkdown(c));
      if (opts.json) for (const w of c.warnings) process.stderr.write(`vxtap bench compare: warning: ${w}\n`);
      if (opts.failOnRegressionPct !== null) {
        const bad = regressions(c, opts.failOnRegressionPct);
        for (const r of bad) process.stderr.write(`vxtap bench compare: regression: ${r.mode} ${r.metric} ${formatDelta(r.deltaPct)} (adjusted p = ${r.pAdjusted?.toPrecision(2)}) beyond ${opts.failOnRegressionPct}%\n`);
        process.exitCode = bad.length ? 1 : 0;
      }
    });
}
