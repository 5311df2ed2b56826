/**
 * `vxtap bench ci` for real, on a temporary clone of this repository at its
 * HEAD: the clone is built as a user would (node_modules symlinked, node-gyp,
 * tsc), then `vxtap bench ci --base <recent commit> --quick --modes bare
 * --rounds 1` builds the base in a worktree and runs one ABAB pair (the
 * shortest the bench allows: one round of the quick profile, one mode).
 * Checked: exit status, the files written, the worktree and its temporary
 * directory gone, the bench's run state clean (a private state directory and
 * name prefix), Ctrl-C during the base build, and bad input (exit 2, nothing
 * left behind).
 *
 * Opt-in (VXTAP_TEST_BENCH_CI=1): two builds (the clone and the base: node-gyp
 * and tsc each) plus two bench rounds take 2-3 minutes on this 2-core machine
 * (measured: the whole file 125 s at load ~9, of it clone build 36 s and the
 * ci run 65 s; 575 s at load 13-19), over the minute a test file may take in
 * `npm test`. The bad-input cases need no
 * build and always run, against this checkout.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, REPO, ensureBuilt } from '../helpers/cli.js';
import { validateResult } from '../../bench/validate.js';
import type { BenchResult } from '../../bench/result.js';

const isRoot = process.getuid?.() === 0;
const optIn = process.env.VXTAP_TEST_BENCH_CI === '1';
const PREFIX = 'vxci';

function run(
  cli: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; onStderr?: (s: string, child: ReturnType<typeof spawn>) => void } = {},
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VXTAP_BENCH'))), ...opts.env };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(stderr, child);
    });
    const timer = setTimeout(() => child.kill('SIGINT'), opts.timeoutMs ?? 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const worktrees = (repo: string) =>
  execFileSync('git', ['-C', repo, 'worktree', 'list', '--porcelain'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('worktree ')).length;
const ciTemps = () => new Set(readdirSync(os.tmpdir()).filter((d) => d.startsWith('vxtap-bench-ci-')));

describe.skipIf(!isRoot)(`vxtap bench ci: bad input (exit 2, nothing left behind)${isRoot ? '' : ': skipped, needs root'}`, () => {
  let out: string;
  beforeAll(async () => {
    await ensureBuilt();
    out = mkdtempSync(path.join(os.tmpdir(), 'vxci-bad-'));
  }, 300_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it.each([
    [['--quick'], /^vxtap bench ci: --base is required/],
    [['--base', 'no-such-ref-vxci'], /^vxtap bench ci: --base no-such-ref-vxci: not a commit in /],
    [['--base', 'HEAD', '--head', 'no-such-ref-vxci'], /^vxtap bench ci: --head no-such-ref-vxci: not a commit/],
    [['--base', 'HEAD', '--rounds', '0'], /^vxtap bench ci: --rounds .*\(got "0"\)/],
    [['--base', 'HEAD', '--modes', 'bare,nope'], /^vxtap bench ci: --modes: /],
    [['--base', 'HEAD', '--metrics', 'tcp1Gbps,nope'], /^vxtap bench ci: --metrics: unknown metric "nope"/],
    [['--base', 'HEAD', '--thresholds', '/nonexistent/t.json'], /^vxtap bench ci: --thresholds \/nonexistent\/t\.json: ENOENT/],
    [['--base', 'HEAD', '--quick', '--full'], /--quick and --full exclude each other/],
    [['--base', 'HEAD', '--ssh-config', '/x'], /--ssh-config needs --hosts/],
    [['--base', 'HEAD', '--no-such-flag'], /unknown option '--no-such-flag'/],
  ])(
    '%j',
    async (args, message) => {
      const before = { worktrees: worktrees(REPO), temps: ciTemps() };
      const r = await run(CLI, ['bench', 'ci', ...args, '--out', out]);
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n').find((l) => l.trim())).toMatch(message);
      expect(readdirSync(out)).toEqual([]);
      expect(worktrees(REPO)).toBe(before.worktrees);
      expect([...ciTemps()].filter((d) => !before.temps.has(d))).toEqual([]);
    },
    60_000,
  );
});

const skip = !isRoot ? 'needs root' : !optIn ? 'opt-in (VXTAP_TEST_BENCH_CI=1): two builds and two bench rounds take 2-3 minutes' : null;

describe.skipIf(skip !== null)(`vxtap bench ci on a clone of this repository${skip ? `: skipped, ${skip}` : ''}`, () => {
  let tmp: string;
  let clone: string;
  let cli: string;
  let base: string;
  let state: string;
  const started = Date.now();
  const env = () => ({ VXTAP_BENCH_STATE_DIR: state, VXTAP_BENCH_PREFIX: PREFIX });

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'vxci-it-'));
    state = path.join(tmp, 'state');
    mkdirSync(state);
    clone = path.join(tmp, 'repo');
    execFileSync('git', ['clone', '--quiet', REPO, clone]);
    // The head is the clone itself, built as a user builds a checkout (node_modules shared: same lockfile).
    symlinkSync(path.join(REPO, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
    const t0 = Date.now();
    // Asynchronously: a worker blocked for minutes misses vitest's RPC deadline.
    const exec = promisify(execFile);
    await exec('npx', ['--no-install', 'node-gyp', 'rebuild', '--directory', 'native', '-j', String(os.cpus().length)], { cwd: clone, maxBuffer: 64 << 20 });
    await exec(process.execPath, [path.join(clone, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', clone], { cwd: clone, maxBuffer: 64 << 20 }).catch((err: { code?: number }) => {
      if (!existsSync(path.join(clone, 'dist', 'src', 'cli', 'main.js'))) throw err; // type errors alone: dist/ is emitted
    });
    console.log(`bench ci test: clone built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    cli = path.join(clone, 'dist', 'src', 'cli', 'main.js');
    // The base: the most recent ancestor with the same package-lock.json (so the base build symlinks node_modules too).
    const lock = execFileSync('git', ['-C', clone, 'rev-parse', 'HEAD:package-lock.json'], { encoding: 'utf8' }).trim();
    base = '';
    for (let k = 1; k <= 30 && !base; k++) {
      try {
        if (execFileSync('git', ['-C', clone, 'rev-parse', `HEAD~${k}:package-lock.json`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() === lock) base = `HEAD~${k}`;
      } catch {
        break;
      }
    }
    expect(base, 'an ancestor with the same package-lock.json').not.toBe('');
  }, 600_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    console.log(`bench ci test file: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  it('--base <recent commit> --quick --modes bare --rounds 1: exit 0, every file, worktree removed, nothing of the bench left', async () => {
    const temps = ciTemps();
    const out = path.join(tmp, 'out');
    const t0 = Date.now();
    const r = await run(cli, ['bench', 'ci', '--base', base, '--quick', '--modes', 'bare', '--rounds', '1', '--out', out, '--json'], { cwd: clone, env: env(), timeoutMs: 540_000 });
    console.log(`bench ci --base ${base} --quick --modes bare --rounds 1: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/node_modules -> .* \(package-lock\.json identical\)/);
    expect(r.stderr).toMatch(/round 1 base[\s\S]*round 1 head/);
    const summary = JSON.parse(r.stdout) as { exitStatus: number; looks: unknown[]; base: { commit: string }; dir: string };
    expect(summary.exitStatus).toBe(0);
    expect(summary.looks).toHaveLength(1);
    const dirs = readdirSync(out);
    expect(dirs).toHaveLength(1);
    const dir = path.join(out, dirs[0]);
    expect(summary.dir).toBe(dir);
    for (const f of ['result.json', 'base-result.json', 'comparison.md', 'comparison.json', 'ci.json', 'report.html', 'build-base.log', 'rounds/base-01.log', 'rounds/head-01.log'])
      expect(existsSync(path.join(dir, f)), f).toBe(true);
    const head = JSON.parse(readFileSync(path.join(dir, 'result.json'), 'utf8')) as BenchResult;
    const baseR = JSON.parse(readFileSync(path.join(dir, 'base-result.json'), 'utf8')) as BenchResult;
    expect(validateResult(head)).toEqual([]);
    expect(validateResult(baseR)).toEqual([]);
    expect(baseR.environment?.git.commit).toBe(execFileSync('git', ['-C', clone, 'rev-parse', base], { encoding: 'utf8' }).trim());
    expect(baseR.environment?.git.dirty).toBe(false);
    expect(head.environment?.git.commit).toBe(execFileSync('git', ['-C', clone, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim());
    for (const x of [head, baseR]) expect(x.samples.map((s) => [s.mode, s.round])).toEqual([['bare', 1]]);
    expect(readFileSync(path.join(dir, 'comparison.md'), 'utf8')).toMatch(/\| bare \| tcp1Gbps[\s\S]*## Decision \(vxtap bench ci\)/);
    expect(readFileSync(path.join(dir, 'report.html'), 'utf8')).toMatch(/<section id="ci"><h2>CI comparison<\/h2>/);
    // Only the clone's own worktree; no temporary directory; the bench's state files finished.
    expect(worktrees(clone)).toBe(1);
    expect([...ciTemps()].filter((d) => !temps.has(d))).toEqual([]);
    expect(readdirSync(state).filter((f) => f.endsWith('.json'))).toEqual([]);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toMatch(new RegExp(`^${PREFIX}`, 'm'));
  }, 600_000);

  it('SIGINT while the base builds: exit 130, the worktree and its temporary directory removed', async () => {
    const temps = ciTemps();
    let sent = false;
    const r = await run(cli, ['bench', 'ci', '--base', base, '--quick', '--modes', 'bare', '--rounds', '1', '--out', path.join(tmp, 'out-int')], {
      cwd: clone,
      env: env(),
      timeoutMs: 300_000,
      onStderr: (s, child) => {
        if (!sent && /native addon \(node-gyp rebuild\)/.test(s)) {
          sent = true;
          setTimeout(() => child.kill('SIGINT'), 1000);
        }
      },
    });
    expect(sent).toBe(true);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/removing worktree/);
    expect(worktrees(clone)).toBe(1);
    expect([...ciTemps()].filter((d) => !temps.has(d))).toEqual([]);
  }, 320_000);
});
