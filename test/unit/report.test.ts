/**
 * report.html and the result reader: every checked-in result of every schema
 * version renders; the page is self-contained (no scripts, no external
 * references, the result embedded and safe inside its script element); bad
 * input is one clear message and exit 2; claim verdicts carry the rounds'
 * uncertainty; several results give a comparison and, as a history, a trend.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeHistory } from '../../bench/history.js';
import { derive, RESULT_SCHEMA_VERSION, type BenchResult } from '../../bench/result.js';
import { judge, judgeClaims } from '../../bench/report/claims.js';
import { COMPARE_KEYS, environmentFingerprint, notAHistory, renderComparisonHtml, renderHistoryHtml } from '../../bench/report/compare.js';
import { markdownToHtml, renderReportHtml, shellJoin } from '../../bench/report/html.js';
import { loadResult, migrateResult, readableVersions, ResultInputError } from '../../bench/report/migrate.js';
import { historySectionFor, renderReportFor } from '../../bench/report/write.js';
import { latencyDistribution } from '../../bench/report/data.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const main = path.join(repo, 'dist', 'src', 'cli', 'main.js');
/** Checked-in results of each schema version (older writers of a version included). */
const FIXTURES: Record<number, string[]> = {
  1: [path.join(repo, 'test', 'fixtures', 'bench', 'golden-result.json'), path.join(repo, 'test', 'fixtures', 'report', 'v1-current.json')],
};
const [older, current] = FIXTURES[1];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vxr-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** What makes a page reach outside itself (fragment references such as url(#clip) and href="#tcp" stay inside). */
function externalReferences(html: string): string[] {
  const found: string[] = [];
  for (const re of [
    /<script(?![^>]*type="application\/json")[^>]*>/gi,
    /<link\b[^>]*>/gi,
    /<[a-z][^>]*\s(src|href|xlink:href)\s*=\s*(?!["']?#)[^\s>]*/gi,
    /url\((?!#)/gi,
    /@import/gi,
    /<iframe/gi,
    /<object/gi,
    /https?:\/\/(?!www\.w3\.org\/)[^\s"'<)]+/gi,
  ]) {
    for (const m of html.matchAll(re)) found.push(m[0]);
  }
  return found;
}

describe('reading results', () => {
  it('there is a checked-in result for every version this build reads', () => {
    expect(readableVersions()).toContain(RESULT_SCHEMA_VERSION);
    for (const v of readableVersions()) expect((FIXTURES[v] as string[] | undefined)?.length, `fixture of version ${v}`).toBeGreaterThan(0);
  });
  it('older version-1 results get the fields added since as "not recorded", and derived is recomputed', () => {
    const raw = JSON.parse(readFileSync(older, 'utf8'));
    expect(raw.samples[0].tcp1.intervalBps).toBeUndefined();
    const r = loadResult(older);
    expect(r.samples[0].tcp1?.intervalBps).toEqual([]);
    expect(r.samples[0].dataplaneCounters).toBeNull();
    expect(r.derived.metrics.map((m) => m.key)).toContain('tcp1DataplaneRssMb');
    expect(r.derived.byMode.vxtap.tcp1Gbps.summary.median).toBeCloseTo(raw.derived.byMode.vxtap.tcp1Gbps.summary.median, 9);
  });
  it('does not modify its input', () => {
    const raw = JSON.parse(readFileSync(older, 'utf8'));
    const before = JSON.stringify(raw);
    migrateResult(raw, 'x');
    expect(JSON.stringify(raw)).toBe(before);
  });
  it('refuses what is not a result, with the file and the reason', () => {
    const base = JSON.parse(readFileSync(current, 'utf8'));
    const cases: [unknown, RegExp][] = [
      [null, /x: not a vxtap bench result/],
      [[1, 2], /not a vxtap bench result/],
      [{ hello: 'world' }, /not a vxtap bench result/],
      [{ ...base, schemaVersion: '1' }, /schemaVersion must be an integer \(got "1"\)/],
      [{ ...base, schemaVersion: 2 }, /unknown schemaVersion 2 \(this vxtap reads 1\); it was written by a newer vxtap/],
      [{ ...base, schemaVersion: 0 }, /unknown schemaVersion 0/],
      [{ ...base, samples: 'none' }, /does not match result.schema.json version 1: \$\.samples: expected array/],
    ];
    for (const [data, re] of cases) {
      expect(() => migrateResult(data, 'x')).toThrow(ResultInputError);
      expect(() => migrateResult(data, 'x')).toThrow(re);
    }
  });
  it('names unreadable and non-JSON files', () => {
    const bad = path.join(tmp, 'bad.json');
    writeFileSync(bad, '{"schema": ');
    expect(() => loadResult(bad)).toThrow(/bad\.json: not JSON/);
    expect(() => loadResult(path.join(tmp, 'missing.json'))).toThrow(/missing\.json: cannot read \(ENOENT\)/);
  });
});

describe('report.html', () => {
  for (const [version, files] of Object.entries(FIXTURES)) {
    for (const file of files) {
      it(`renders ${path.basename(file)} (version ${version}) as one self-contained page`, () => {
        const r = loadResult(file);
        const html = renderReportFor(r);
        expect(externalReferences(html)).toEqual([]);
        for (const id of ['verdicts', 'tcp', 'intervals', 'latency', 'cpu', 'pps', 'mtu', 'claims', 'environment', 'data']) expect(html, id).toContain(`<section id="${id}">`);
        const json = /<script type="application\/json" id="vxtap-result">([\s\S]*?)<\/script>/.exec(html)?.[1];
        expect(JSON.parse(json ?? 'null').runId).toBe(r.runId);
        expect(html.match(/<figure class="chart"/g)?.length).toBeGreaterThanOrEqual(8);
        expect(html).not.toMatch(/data-points="0"/);
        expect(html).toContain(`vxtap ${shellJoin(r.options.argv)}`);
      });
    }
  }
  it('the plan stored by bench --target lands in the report; --target on report overrides it', () => {
    const r = loadResult(current);
    expect(renderReportFor(r)).toMatch(/<section id="plan">[\s\S]*5\.00 Gbit\/s shown\?/);
    expect(renderReportFor(r, { target: '20gbit' })).toMatch(/20\.0 Gbit\/s shown\?/);
    expect(renderReportHtml(loadResult(older))).not.toContain('<section id="plan">');
  });
  it('text from the result cannot break out of the page or its embedded JSON', () => {
    const r = loadResult(current);
    r.status = 'incomplete';
    r.incompleteReasons = ['</script><script>alert(1)</script><img src=x onerror=alert(2)>'];
    const html = renderReportHtml(r);
    expect(externalReferences(html)).toEqual([]);
    expect(html.match(/<\/script>/g)).toHaveLength(1);
    expect(html).toContain('&lt;/script&gt;&lt;script&gt;alert(1)');
    const json = /<script type="application\/json" id="vxtap-result">([\s\S]*?)<\/script>/.exec(html)?.[1];
    expect(JSON.parse(json ?? 'null').incompleteReasons).toEqual(r.incompleteReasons);
  });
  it('takes extra sections from other tools (a CI comparison) before the environment, with a nav link', () => {
    const html = renderReportHtml(loadResult(current), { extraSections: [{ id: 'ci-compare', title: 'Against main', html: '<p>same</p>' }] });
    expect(html).toContain('<a href="#ci-compare">Against main</a>');
    expect(html.indexOf('<section id="ci-compare"><h2>Against main</h2><p>same</p></section>')).toBeLessThan(html.indexOf('<section id="environment">'));
  });
  it('the MTU grid colours each probe by outcome', () => {
    const html = renderReportHtml(loadResult(older));
    for (const o of ['whole', 'inner-fragmented', 'refused-locally', 'dropped']) expect(html, o).toMatch(new RegExp(`<td class="o-${o}" title="`));
  });
  it('is small enough to mail: under 1 MB for the default profile', () => {
    expect(Buffer.byteLength(renderReportFor(loadResult(current)))).toBeLessThan(1_000_000);
  });
});

describe('latency distribution', () => {
  it("merges the rounds' HDR histograms: the merged p50 lies within the rounds' p50s, percentiles ascend", () => {
    const r = loadResult(older);
    for (const mode of ['bare', 'vxtap']) {
      const d = latencyDistribution(r, mode, 'idle')!;
      const p50s = r.samples.filter((s) => s.mode === mode).map((s) => s.latencyIdle!.percentiles.p50Us);
      const merged = d.find((x) => x.percentile === 50)!.us;
      expect(merged).toBeGreaterThanOrEqual(Math.min(...p50s));
      expect(merged).toBeLessThanOrEqual(Math.max(...p50s));
      for (let i = 1; i < d.length; i++) expect(d[i].us).toBeGreaterThanOrEqual(d[i - 1].us);
    }
  });
});

describe('claims with uncertainty', () => {
  it('held inside the bound, not held outside it, undecided when the rounds straddle it', () => {
    // "~40% below VXLAN", bound 30-50%: rounds 42 and 46 held; 51 and 55 not held; 46 and 52 undecided
    expect(judge([0.42, 0.46], 0.3, 0.5)).toBe('held');
    expect(judge([0.51, 0.55], 0.3, 0.5)).toBe('not held');
    expect(judge([0.46, 0.52], 0.3, 0.5)).toBe('undecided');
    expect(judge([0.1, 0.2], 0.3, 0.5)).toBe('not held');
    expect(judge([null, 12], null, 20)).toBe('held');
    expect(judge([18, 25], null, 20)).toBe('undecided');
    expect(judge([null, null], 0, 1)).toBe('n/a');
  });
  it("judges the result's claims round by round", () => {
    const claims = judgeClaims(loadResult(older));
    const below = claims.find((c) => c.id === 'userspace-40pct-below-vxlan')!;
    expect(below.evidence?.perRound.every((v) => v !== null && v > 0.5)).toBe(true);
    expect(below.judged).toBe('not held');
    expect(claims.find((c) => c.id === 'inner-mtu-1450-1472')!.judged).toBe(claims.find((c) => c.id === 'inner-mtu-1450-1472')!.verdict);
  });
});

describe('comparison and trend', () => {
  const base = loadResult(current);
  const run = (i: number, host = base.environment!.hostname) => {
    const r = structuredClone(base);
    r.runId = `run-${i}`;
    r.startedAt = `2026-12-0${i}T10:00:00.000Z`;
    r.environment!.hostname = host;
    return r;
  };
  it('three runs of one fingerprint are a history, sorted by start time', () => {
    expect(notAHistory([run(1), run(2)])).toMatch(/three or more runs/);
    expect(notAHistory([run(1), run(2), run(3, 'other')])).toMatch(/differ in environment/);
    expect(environmentFingerprint(run(1))).toBe(environmentFingerprint(run(2)));
    const html = renderComparisonHtml([run(3), run(1), run(2)]);
    expect(html.indexOf('run-1')).toBeLessThan(html.indexOf('run-3'));
    expect(html).toMatch(/<figure class="chart" id="chart-trend-tcp1Gbps"/);
    expect(externalReferences(html)).toEqual([]);
  });
  it('two runs: side by side, and the trend section says why there is none', () => {
    const html = renderComparisonHtml([run(1), run(2)]);
    expect(html).toMatch(/<figure class="chart" id="chart-compare-tcp1Gbps"/);
    expect(html).toContain('No trend: a trend needs three or more runs (got 2).');
  });
});

// ---------------------------------------------------------------- history: change points in the trend view

/**
 * `n` runs of the current fixture one day apart (commit = the run's index in hex), vxtap's TCP
 * throughput x `factor` from run `step` (0-based) on, and a deterministic 1% jitter on every TCP figure.
 */
function synthHistory(n: number, step: number | null, factor = 0.9): BenchResult[] {
  const base = loadResult(current);
  return Array.from({ length: n }, (_, d) => {
    const r = structuredClone(base);
    r.runId = `hist-${String(d).padStart(2, '0')}`;
    r.startedAt = new Date(Date.parse(base.startedAt) + d * 86_400_000).toISOString();
    r.environment!.git.commit = `${d.toString(16).padStart(2, '0')}${'e'.repeat(38)}`;
    const jitter = 1 + 0.01 * Math.sin(d * 1.7);
    for (const s of r.samples) for (const t of [s.tcp1, s.tcpN]) if (t) t.receivedBps *= jitter * (s.mode === 'vxtap' && step !== null && d >= step ? factor : 1);
    r.derived = derive(r);
    return r;
  });
}

/** Write results as DIR/<runId>/result.json. */
function writeHistory(dir: string, runs: BenchResult[]): string {
  for (const r of runs) {
    mkdirSync(path.join(dir, r.runId), { recursive: true });
    writeFileSync(path.join(dir, r.runId, 'result.json'), JSON.stringify(r));
  }
  return dir;
}

const entriesOf = (runs: BenchResult[]) => runs.map((r) => ({ file: `${r.runId}/result.json`, result: r }));

describe('history in the trend view', () => {
  // 20 runs, vxtap 10% slower from run index 12 (run #13) on.
  const stepped = synthHistory(20, 12);
  const flat = synthHistory(20, null);

  it('a 10% step at a known run: a row in the change-point table and a marker on the chart, at that run', () => {
    const html = renderHistoryHtml(analyzeHistory(entriesOf([...stepped].reverse()), { metrics: COMPARE_KEYS }), { source: 'synthetic' });
    expect(externalReferences(html)).toEqual([]);
    // The table: mode, metric, the run (#13, its start time, its id), its commit, median before -> after, change, direction.
    const row = /<tr data-change="vxtap tcp1Gbps 13">([\s\S]*?)<\/tr>/.exec(html)?.[1] ?? '';
    expect(row).toContain(`#13 ${stepped[12].startedAt.slice(0, 16).replace('T', ' ')} <code>hist-12</code>`);
    expect(row).toContain('<code>0ceeeeeeeeee</code>');
    const [before, after] = /<td class="num">([\d.]+) → ([\d.]+)<\/td>/.exec(row)!.slice(1).map(Number);
    expect(after / before).toBeCloseTo(0.9, 1);
    expect(row).toMatch(/<td class="num">-(9|10)\.\d%<\/td>/);
    expect(row).toContain('<span class="v-worse">worse</span>');
    expect(html).toContain('<tr data-change="vxtap tcpNGbps 13">');
    // Only vxtap's throughput changed (and nothing of the other modes).
    expect([...html.matchAll(/<tr data-change="([^"]*)"/g)].map((m) => m[1]).every((k) => k.startsWith('vxtap ') && k.endsWith(' 13'))).toBe(true);
    // The marker: the chart of tcp1Gbps records it, draws the labelled line, and its hover text names the run.
    const fig = /<figure class="chart" id="chart-trend-1-tcp1Gbps"[^>]* data-changes="([^"]*)">[\s\S]*?<\/figure>/.exec(html);
    expect(fig?.[1]).toBe('vxtap@13');
    expect(fig?.[0]).toMatch(/<text[^>]*>vxtap -(9|10)\.\d%<\/text>/);
    expect(fig?.[0]).toMatch(/<title>change point: vxtap tcp1Gbps at run #13 [^<]*worse\)<\/title>/);
    expect(html).toMatch(/<figure class="chart" id="chart-trend-1-latIdleP50"[^>]* data-changes="">/);
  });

  it('a flat history says so in one line, with no marker', () => {
    const html = renderHistoryHtml(analyzeHistory(entriesOf(flat), { metrics: COMPARE_KEYS }));
    expect(html).not.toContain('<tr data-change=');
    expect(html).not.toMatch(/<figure class="chart"[^>]* data-changes="[^"]/);
    expect(html).toContain('<div class="trend-group" data-runs="20" data-changes="0">');
    expect(html.match(/<p class="nochange"[^>]*>No change point in 20 runs[^<]*<\/p>/g)).toHaveLength(1);
  });

  it('the comparison page of runs that form a history marks the change too', () => {
    const html = renderComparisonHtml(stepped.slice(4));
    expect(html).toMatch(/<figure class="chart" id="chart-trend-tcp1Gbps"[^>]* data-changes="vxtap@9">/);
    expect(html).toContain('<tr data-change="vxtap tcp1Gbps 9">');
  });

  it("one run's report gets a History section of its environment, this run included", () => {
    const dir = writeHistory(mkdtempSync(path.join(tmp, 'hs-')), stepped.slice(0, 19));
    const other = structuredClone(stepped[0]);
    other.runId = 'elsewhere';
    other.environment!.kernel = '6.1.0';
    writeHistory(dir, [other]);
    const html = renderReportFor(stepped[19], null, [historySectionFor(dir, stepped[19])]);
    const section = /<section id="history"><h2>History<\/h2>([\s\S]*?)<\/section>/.exec(html)?.[1] ?? '';
    expect(section).toContain('20 run(s) of this environment');
    expect(section).toContain("this report's run is #20");
    expect(section).toContain('1 run(s) of 1 other environment(s) are not drawn');
    expect(section).toContain('<tr data-change="vxtap tcp1Gbps 13">');
    expect(html).toContain('<a href="#history">History</a>');
    expect(externalReferences(html)).toEqual([]);
  });

  it('text from the results cannot break out of the history page', () => {
    const runs = synthHistory(12, 6);
    const evil = '</script><script>alert(1)</script><img src=x onerror=alert(2)>';
    runs[6].runId = evil;
    const html = renderHistoryHtml(analyzeHistory(entriesOf(runs), { metrics: ['tcp1Gbps'] }), { source: evil });
    expect(externalReferences(html)).toEqual([]);
    expect(html.match(/<\/script>/g)).toHaveLength(1);
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;/script&gt;&lt;script&gt;alert(1)');
    expect(html).toContain('<tr data-change="vxtap tcp1Gbps 7">');
  });
});

describe('markdownToHtml', () => {
  it("turns the plan's subset into tables, lists and headings, escaping text", () => {
    const html = markdownToHtml('# T\n\n**bold** `code` <b>\n\n| a | b \\| c |\n| --- | --- |\n| 1 | 2 |\n\n- x\n- y\n');
    expect(html).toContain('<h2>T</h2>');
    expect(html).toContain('<strong>bold</strong> <code>code</code> &lt;b&gt;');
    expect(html).toContain('<th>b | c</th>');
    expect(html).toContain('<ul><li>x</li><li>y</li></ul>');
  });
});

describe.skipIf(!existsSync(main))('vxtap report (CLI)', () => {
  // Asynchronous: a chain of synchronous CLI runs blocked the worker past vitest's 60 s RPC timeout on a loaded CI machine.
  const cli = (args: string[]) =>
    new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [main, 'report', ...args], { encoding: 'utf8' }, (err, _stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr });
      });
    });
  it('writes the report, and exits 2 with one line on bad input', async () => {
    const out = path.join(tmp, 'r.html');
    expect((await cli([current, '--out', out])).code).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/^<!doctype html>/);
    const v9 = path.join(tmp, 'v9.json');
    writeFileSync(v9, JSON.stringify({ schema: 'vxtap-bench-result', schemaVersion: 9 }));
    const cases: [string[], RegExp][] = [
      [[path.join(repo, 'package.json')], /not a vxtap bench result/],
      [[v9], /unknown schemaVersion 9/],
      [[current, '--target', '-1gbit'], /--target must be greater than 0/],
      [[current, '--target', 'fast'], /--target must be a bit rate/],
      [[current, current, '--target', '1g'], /apply to one result/],
    ];
    for (const [args, re] of cases) {
      const r = await cli([...args, '--out', path.join(tmp, 'never.html')]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
    expect(existsSync(path.join(tmp, 'never.html'))).toBe(false);
  });
  it('--history DIR: the page with the change points; with one result, its History section; the fixtures render; bad directories exit 2 naming the path', async () => {
    const dir = writeHistory(mkdtempSync(path.join(tmp, 'hcli-')), synthHistory(12, 6));
    const page = path.join(tmp, 'history.html');
    expect((await cli(['--history', dir, '--out', page])).code).toBe(0);
    const html = readFileSync(page, 'utf8');
    expect(html).toContain('<tr data-change="vxtap tcp1Gbps 7">');
    expect(html).toMatch(/<figure class="chart" id="chart-trend-1-tcp1Gbps"[^>]* data-changes="vxtap@7">/);
    expect(externalReferences(html)).toEqual([]);
    const one = path.join(tmp, 'one.html');
    expect((await cli([path.join(dir, 'hist-11', 'result.json'), '--history', dir, '--out', one])).code).toBe(0);
    expect(readFileSync(one, 'utf8')).toMatch(/<section id="history"><h2>History<\/h2>[\s\S]*<tr data-change="vxtap tcp1Gbps 7">/);
    const fixtures = path.join(tmp, 'fixtures.html');
    expect((await cli(['--history', path.join(repo, 'test', 'fixtures', 'history'), '--out', fixtures])).code).toBe(0);
    const fx = readFileSync(fixtures, 'utf8');
    expect(fx).toContain('<code>20261203T155453Z-vm</code>');
    expect(fx).toContain('No trend: a trend needs three or more runs of one environment (got 1).');
    expect(externalReferences(fx)).toEqual([]);
    const empty = mkdtempSync(path.join(tmp, 'empty-'));
    const broken = mkdtempSync(path.join(tmp, 'broken-'));
    mkdirSync(path.join(broken, 'x'));
    writeFileSync(path.join(broken, 'x', 'result.json'), '{');
    const cases: [string[], RegExp][] = [
      [['--history', path.join(tmp, 'missing-dir')], /missing-dir: cannot read \(ENOENT\)/],
      [['--history', empty], /empty-\w+: no finished result\.json under it/],
      [['--history', broken], /broken-\w+\/x\/result\.json: not JSON/],
      [[current, current, '--history', dir], /takes one result .* or none/],
      [[], /give one or more result\.json files, or --history DIR/],
    ];
    for (const [args, re] of cases) {
      const r = await cli([...args, '--out', path.join(tmp, 'never.html')]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
    expect(existsSync(path.join(tmp, 'never.html'))).toBe(false);
  });
});
