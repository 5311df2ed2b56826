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
import {
  calibrateThresholds,
  COMPARE_DEFAULTS,
  compareResults,
  parseCompareOptions,
  parseThresholds,
  regressions,
  renderCompareMarkdown,
  sharedMetrics,
  formatDelta,
  thresholdFor,
  type Thresholds,
} from '../../bench/compare.js';
import { METRICS, udpMetricDefs, type BenchResult, type MetricDef } from '../../bench/result.js';
import { DECIDE_DEFAULTS, estimateRates, lookAlpha, parseSchedule, poolDrawsWithReplacement, resampledDraw, roundTable, simulatedDraw, type FamilyMetric } from '../../bench/decide.js';
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

/** The metric definition of a key (fixed metrics and udp<frame>... keys), or null. */
function metricDef(key: string): MetricDef | null {
  const m = /^udp(\d+)/.exec(key);
  return METRICS.find((d) => d.key === key) ?? (m ? (udpMetricDefs(Number(m[1])).find((d) => d.key === key) ?? null) : null);
}

/** Identifier and version of `bench validate-decision` output. */
export const VALIDATION_SCHEMA = 'vxtap-bench-decision-validation';

/** Register `compare` and `validate-decision` under the `bench` command. */
export function registerCompare(bench: Command): void {
  registerValidateDecision(bench);
  bench
    .command('compare')
    .description(
      'Compare two bench results (result.json) mode by mode and metric by metric: medians over rounds, change in %, Mann-Whitney U test with Holm correction, verdict better/worse/same/unknown. With --calibrate: derive thresholds from A/A results.',
    )
    .argument('<files...>', 'OLD.json NEW.json: baseline (e.g. the last good main) and candidate; with --calibrate: two or more A/A results')
    .addOption(new Option('--json', 'print the comparison as JSON (schema "vxtap-bench-compare") instead of Markdown').env('VXTAP_BENCH_COMPARE_JSON'))
    .addOption(new Option('--alpha <p>', 'significance level of the two-sided test, 0 < p < 1').default(String(COMPARE_DEFAULTS.alpha)).env('VXTAP_BENCH_COMPARE_ALPHA'))
    .addOption(new Option('--fail-on-regression <percent>', 'exit 1 when any significant "worse" change exceeds this many percent (e.g. 5)').env('VXTAP_BENCH_COMPARE_FAIL_ON_REGRESSION'))
    .addOption(
      new Option('--correction <how>', 'multiple-testing correction over all rows: holm (family-wise error <= alpha) or none')
        .default(COMPARE_DEFAULTS.correction)
        .env('VXTAP_BENCH_COMPARE_CORRECTION'),
    )
    .addOption(
      new Option('--thresholds <file>', 'per-metric minimum effect, detect size and CV limit (JSON, as printed by --calibrate); default: built-in placeholders').env('VXTAP_BENCH_COMPARE_THRESHOLDS'),
    )
    .addOption(new Option('--calibrate', 'read two or more A/A results (same build, same machine) and print thresholds JSON for --thresholds').env('VXTAP_BENCH_COMPARE_CALIBRATE'))
    .addOption(new Option('--metrics <keys>', 'comma-separated metric keys to compare (default: all), e.g. tcp1Gbps,latIdleP50,udp64NdrKpps').env('VXTAP_BENCH_COMPARE_METRICS'))
    .addHelpText(
      'after',
      `
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
  vxtap bench compare baseline.json new.json --thresholds thresholds.json --fail-on-regression 0`,
    )
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
      const opts = parseCompareOptions({
        alpha: o.alpha as string | undefined,
        metrics: o.metrics as string | undefined,
        failOnRegression: o.failOnRegression as string | undefined,
        correction: o.correction as string | undefined,
        json: o.json,
      });
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
        for (const r of bad)
          process.stderr.write(
            `vxtap bench compare: regression: ${r.mode} ${r.metric} ${formatDelta(r.deltaPct)} (adjusted p = ${r.pAdjusted?.toPrecision(2) ?? 'n/a'}) beyond ${opts.failOnRegressionPct}%\n`,
          );
        process.exitCode = bad.length ? 1 : 0;
      }
    });
}

/**
 * `vxtap bench validate-decision [RESULT.json ...]`: the false-alarm and
 * detection rates of the whole decision procedure (compare's verdicts, Holm,
 * minimum effects, the sequential stopping rule of bench/decide.ts), by
 * resampling the per-round data of a long run, or by simulation
 * (--simulate-cv) when no file is given. JSON on stdout.
 */
function registerValidateDecision(bench: Command): void {
  bench
    .command('validate-decision')
    .description(
      'Estimate the A/A false-alarm rate and the detection rate of a slowdown for compare + the sequential stopping rule, by resampling rounds of long runs (or by simulation with --simulate-cv). Prints JSON.',
    )
    .argument('[results...]', 'result.json files of one build with many rounds (a long interleaved run; several files are pooled)')
    .addOption(new Option('--mode <id>', 'mode whose rounds form the pool').default('vxtap').env('VXTAP_BENCH_VALIDATE_MODE'))
    .addOption(new Option('--slow-mode <id>', 'mode of the same run carrying a real slowdown (e.g. a test-only knob); default: the pool shifted by --shift').env('VXTAP_BENCH_VALIDATE_SLOW_MODE'))
    .addOption(new Option('--metrics <keys>', 'the family judged together (Holm within each look)').default('tcp1Gbps,tcpNGbps,latIdleP50').env('VXTAP_BENCH_VALIDATE_METRICS'))
    .addOption(new Option('--targets <keys>', 'metrics a detection must flag worse (default: the first of --metrics)').env('VXTAP_BENCH_VALIDATE_TARGETS'))
    .addOption(new Option('--shift <percent>', 'change applied to the targets on the new side, e.g. -10 (throughput 10% lower)').default('-10').env('VXTAP_BENCH_VALIDATE_SHIFT'))
    .addOption(new Option('--simulate-cv <ratio>', 'no files: simulated independent normal noise with this coefficient of variation, e.g. 0.05').env('VXTAP_BENCH_VALIDATE_SIMULATE_CV'))
    .addOption(
      new Option('--schedule <rounds>', 'rounds per side at each look')
        .default(`${DECIDE_DEFAULTS.initialRounds},${DECIDE_DEFAULTS.initialRounds + DECIDE_DEFAULTS.stepRounds},${DECIDE_DEFAULTS.maxRounds}`)
        .env('VXTAP_BENCH_VALIDATE_SCHEDULE'),
    )
    .addOption(new Option('--alpha <p>', 'family-wise false-alarm budget over all looks and metrics').default(String(DECIDE_DEFAULTS.alpha)).env('VXTAP_BENCH_VALIDATE_ALPHA'))
    .addOption(new Option('--comparisons <n>', 'comparisons per rate').default(String(DECIDE_DEFAULTS.comparisons)).env('VXTAP_BENCH_VALIDATE_COMPARISONS'))
    .addOption(new Option('--seed <n>', 'random seed (results are reproducible)').default(String(DECIDE_DEFAULTS.seed)).env('VXTAP_BENCH_VALIDATE_SEED'))
    .addOption(new Option('--thresholds <file>', 'thresholds file as for compare').env('VXTAP_BENCH_VALIDATE_THRESHOLDS'))
    .addHelpText(
      'after',
      `
A/A: pairs of disjoint sets of rounds drawn from the pool, compared with the
sequential rule; any better/worse is a false alarm. Detection: the new side's
targets shifted by --shift (or drawn from --slow-mode); all targets worse is a
detection. With fewer than 2 x cap rounds in the pool, rounds are drawn with
replacement and the output says so. Exit status: 0, 2 on bad input.`,
    )
    .action(async (files: string[], o: Record<string, string | undefined>) => {
      const plan = parseSchedule(String(o.schedule), Number(o.alpha));
      if (plan instanceof Error) fail(plan.message);
      const comparisons = Number(o.comparisons);
      if (!Number.isInteger(comparisons) || comparisons < 1 || comparisons > 1_000_000) fail(`--comparisons must be an integer 1..1000000 (got "${String(o.comparisons)}")`);
      const seed = Number(o.seed);
      if (!Number.isInteger(seed)) fail(`--seed must be an integer (got "${String(o.seed)}")`);
      const shiftPct = Number(String(o.shift).replace(/%$/, ''));
      if (!Number.isFinite(shiftPct) || shiftPct <= -100) fail(`--shift must be a percentage > -100, e.g. -10 (got "${String(o.shift)}")`);
      const keys = String(o.metrics)
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean);
      const defs = keys.map((k) => metricDef(k));
      const unknownKey = keys.find((_, i) => !defs[i]);
      if (!keys.length || unknownKey !== undefined) fail(`--metrics: unknown metric "${unknownKey ?? ''}"`);
      const targetKeys = o.targets
        ? o.targets
            .split(',')
            .map((k) => k.trim())
            .filter(Boolean)
        : [keys[0]];
      const targets = targetKeys.map((k) => keys.indexOf(k));
      if (targets.some((t) => t < 0)) fail(`--targets must be among --metrics (got "${String(o.targets)}")`);
      const thresholds = o.thresholds ? await loadThresholds(o.thresholds) : null;
      const mode = String(o.mode);
      const family: FamilyMetric[] = keys.map((k, i) => ({ key: k, higherIsBetter: (defs[i] as MetricDef).higherIsBetter, threshold: thresholdFor(thresholds, mode, k) }));
      const cap = plan.schedule[plan.schedule.length - 1];
      let source: Record<string, unknown>;
      let aaDraw;
      let shiftDraw;
      if (files.length === 0) {
        if (o.simulateCv === undefined) fail('give result files, or --simulate-cv RATIO for simulated data');
        const cv = Number(o.simulateCv);
        if (!(cv >= 0 && cv < 1)) fail(`--simulate-cv must be a ratio 0 <= cv < 1, e.g. 0.05 (got "${o.simulateCv}")`);
        source = { kind: 'simulated', cv, noise: 'independent normal, per metric and round' };
        aaDraw = simulatedDraw(keys.length, cv, 0, []);
        shiftDraw = simulatedDraw(keys.length, cv, shiftPct, targets);
      } else {
        const results: BenchResult[] = [];
        for (const [i, f] of files.entries()) results.push(await loadResult(`RESULT${i + 1}`, f));
        const a = roundTable(results, mode, keys);
        if (a.length < 2) fail(`mode ${mode}: ${a.length} round(s) with data in ${files.join(', ')}; a pool needs many rounds (a long interleaved run)`);
        const b = o.slowMode ? roundTable(results, o.slowMode, keys) : undefined;
        if (b && b.length < 2) fail(`--slow-mode ${String(o.slowMode)}: ${b.length} round(s) with data`);
        source = {
          kind: 'resampled',
          files,
          mode,
          rounds: a.length,
          slowMode: o.slowMode ?? null,
          slowRounds: b?.length ?? null,
          withReplacement: { aa: poolDrawsWithReplacement({ a }, cap), shifted: poolDrawsWithReplacement({ a, b }, cap) },
        };
        if (poolDrawsWithReplacement({ a }, cap) || (b && poolDrawsWithReplacement({ a, b }, cap))) {
          process.stderr.write(
            `vxtap bench validate-decision: warning: ${a.length} round(s) of ${mode}${b ? ` and ${b.length} of ${String(o.slowMode)}` : ''} are fewer than the plan needs without replacement (${b ? cap : 2 * cap}); rounds are drawn with replacement and the rates are optimistic\n`,
          );
        }
        aaDraw = resampledDraw({ a }, 0, []);
        shiftDraw = b ? resampledDraw({ a, b }, 0, []) : resampledDraw({ a }, shiftPct, targets);
      }
      const aa = estimateRates(aaDraw, family, plan, { comparisons, seed, targets: [] });
      const sh = estimateRates(shiftDraw, family, plan, { comparisons, seed: seed + 1, targets });
      const out = {
        schema: VALIDATION_SCHEMA,
        schemaVersion: 1,
        source,
        plan: { schedule: plan.schedule, alpha: plan.alpha, lookAlpha: lookAlpha(plan), correction: plan.correction, spending: 'bonferroni over looks' },
        family,
        aa: { falseAlarmRate: aa.anySignificant / comparisons, worseRate: aa.anyWorse / comparisons, ...aa },
        shifted: {
          shiftPct: o.slowMode && files.length ? null : shiftPct,
          slowMode: files.length ? (o.slowMode ?? null) : null,
          targets: targetKeys,
          detectionRate: sh.targetsWorse / comparisons,
          ...sh,
        },
      };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    });
}
