/**
 * `vxtap bench ci`: building a commit in its own git worktree. The worktree
 * is `git worktree add --detach DIR COMMIT`; node_modules is a symlink to the
 * current checkout's when both package-lock.json files are byte-identical
 * (the same dependency tree: installing again would produce the same files
 * and costs minutes), otherwise `npm ci --ignore-scripts` installs the
 * commit's own. The native addon is always rebuilt from the commit's sources
 * (node-gyp into the worktree's native/build; never the checkout's), then
 * `tsc -p` builds dist/. The worktree is removed with `git worktree remove
 * --force` and `git worktree prune` (also after a failure or a signal; the
 * symlink is unlinked first so nothing behind it is touched).
 *
 * Every child process goes through {@link Procs}, so a signal can stop the one
 * running (an install, a compiler, a round's bench) before the clean-up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, lstatSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Outcome of one child process. */
export interface ProcResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** Last lines of stderr (and stdout when it goes to a log), for error messages. */
  tail: string;
}

/** Runs child processes one at a time and can stop the running one. */
export class Procs {
  private current: ChildProcess | null = null;
  aborted = false;

  /**
   * Run argv; stdout is captured (or appended to `logFile` with stderr).
   * Never rejects for a non-zero exit: the caller reads `code`.
   */
  run(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; logFile?: string; captureStdout?: boolean } = {}): Promise<ProcResult> {
    if (this.aborted) return Promise.resolve({ code: null, signal: 'SIGINT', stdout: '', tail: 'aborted' });
    return new Promise((resolve) => {
      // Own process group: a Ctrl-C at the terminal reaches only us, and we pass it on once
      // (the bench exits at once on a second SIGINT, without tearing down).
      const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      this.current = child;
      const log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : null;
      let stdout = '';
      let tail = '';
      const keep = (d: Buffer) => {
        tail = (tail + d.toString()).slice(-4000);
      };
      child.stdout.on('data', (d: Buffer) => {
        if (opts.captureStdout !== false && !log) stdout += d.toString();
        else log?.write(d);
        if (log) keep(d);
      });
      child.stderr.on('data', (d: Buffer) => {
        log?.write(d);
        keep(d);
      });
      child.on('error', (err) => {
        tail += `\n${err.message}`;
      });
      child.on('close', (code, signal) => {
        this.current = null;
        log?.end();
        resolve({ code, signal, stdout, tail: tail.trim().split('\n').slice(-12).join('\n') });
      });
    });
  }

  /**
   * Stop the running child's process group (if any) with `signal`, as Ctrl-C at a terminal
   * would (npx passes nothing on to node-gyp and make; the bench expects its load generators
   * to get the signal too); later runs resolve at once as aborted.
   */
  abort(signal: NodeJS.Signals = 'SIGINT'): void {
    this.aborted = true;
    const pid = this.current?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        this.current?.kill(signal);
      } catch {
        /* gone */
      }
    }
  }
}

/** The commit `ref` names in `repo`, or null when it names none (not a ref, or a tree or blob). */
export async function resolveCommit(procs: Procs, repo: string, ref: string): Promise<string | null> {
  if (ref.startsWith('-')) return null;
  const r = await procs.run(['git', '-C', repo, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
  return r.code === 0 ? r.stdout.trim() : null;
}

/** The top of the git checkout holding `dir`, or null. */
export async function gitToplevel(procs: Procs, dir: string): Promise<string | null> {
  const r = await procs.run(['git', '-C', dir, 'rev-parse', '--show-toplevel']);
  return r.code === 0 ? r.stdout.trim() : null;
}

/** Whether the checkout at `dir` has uncommitted changes (null when git cannot say). */
export async function isDirty(procs: Procs, dir: string): Promise<boolean | null> {
  const r = await procs.run(['git', '-C', dir, 'status', '--porcelain', '--untracked-files=no']);
  return r.code === 0 ? r.stdout.trim().length > 0 : null;
}

/** A build that a round can run: its CLI and where it came from. */
export interface SideBuild {
  ref: string;
  commit: string;
  /** The checkout or worktree root (the bench's repoRoot for that side). */
  root: string;
  /** dist/src/cli/main.js of that build. */
  cli: string;
  /** The worktree to remove at the end; null for the current checkout. */
  worktree: string | null;
  dirty: boolean | null;
  /** How node_modules got there. */
  nodeModules: 'checkout' | 'symlink' | 'npm ci';
  /** Wall seconds per build step. */
  seconds: Record<string, number>;
  /**
   * Environment additions for that build's processes: a worktree's
   * node_modules symlink would make `git status` (the result's
   * environment.git.dirty) report it as untracked, since .gitignore's
   * `node_modules/` matches directories only; an excludes file says it is not.
   */
  env: Record<string, string>;
}

/**
 * Add a worktree of `commit` at `dir` and build it. Throws an Error naming
 * the step (with the end of its output) when one fails; the worktree is left
 * for the caller's {@link removeWorktree} (the caller registers `dir` first).
 */
export async function buildWorktree(o: {
  procs: Procs;
  repo: string;
  ref: string;
  commit: string;
  dir: string;
  nodeModulesFrom: string;
  logFile: string;
  log: (line: string) => void;
}): Promise<SideBuild> {
  const { procs, dir, log } = o;
  const seconds: Record<string, number> = {};
  const step = async (name: string, argv: string[], cwd: string, env?: NodeJS.ProcessEnv) => {
    const t0 = Date.now();
    writeFileSync(o.logFile, `\n$ ${argv.join(' ')}\n`, { flag: 'a' });
    const r = await procs.run(argv, { cwd, env, logFile: o.logFile });
    seconds[name] = (Date.now() - t0) / 1000;
    if (procs.aborted) throw new Error(`${name}: interrupted`);
    if (r.code !== 0) throw Object.assign(new Error(`${name} failed (exit ${String(r.code ?? r.signal)}); log ${o.logFile}:\n${r.tail}`), { step: name, code: r.code });
    return r;
  };
  const short = o.commit.slice(0, 12);
  log(`bench ci: ${o.ref} (${short}): git worktree add --detach ${dir}`);
  await step('git worktree add', ['git', '-C', o.repo, 'worktree', 'add', '--detach', dir, o.commit], o.repo);

  let nodeModules: SideBuild['nodeModules'] = 'npm ci';
  const ours = path.join(o.nodeModulesFrom, 'package-lock.json');
  const theirs = path.join(dir, 'package-lock.json');
  const same = existsSync(ours) && existsSync(theirs) && existsSync(path.join(o.nodeModulesFrom, 'node_modules')) && readFileSync(ours).equals(readFileSync(theirs));
  if (same) {
    symlinkSync(path.join(o.nodeModulesFrom, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    nodeModules = 'symlink';
    log(`bench ci: ${o.ref}: node_modules -> ${path.join(o.nodeModulesFrom, 'node_modules')} (package-lock.json identical)`);
  } else {
    log(`bench ci: ${o.ref}: package-lock.json differs from ${ours}: npm ci (minutes)`);
    await step('npm ci', ['npm', 'ci', '--ignore-scripts', '--no-audit', '--no-fund'], dir);
  }

  const gyp = path.join(dir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!existsSync(gyp)) throw new Error(`node-gyp is not in ${path.join(dir, 'node_modules')}: cannot build the native addon of ${short}`);
  log(`bench ci: ${o.ref}: native addon (node-gyp rebuild)`);
  // Through npx, as package.json's install script runs it through npm: npm's configuration
  // (nodedir, proxy) reaches node-gyp as npm_config_* (without it node-gyp downloads headers).
  await step('node-gyp', ['npx', '--no-install', 'node-gyp', 'rebuild', '--directory', 'native', '-j', String(Math.max(1, os.cpus().length))], dir);
  log(`bench ci: ${o.ref}: native addon built in ${seconds['node-gyp'].toFixed(0)} s; tsc`);
  const tsc = path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
  const t0 = Date.now();
  writeFileSync(o.logFile, `\n$ tsc -p ${dir}\n`, { flag: 'a' });
  const r = await procs.run([process.execPath, tsc, '-p', dir], { cwd: dir, logFile: o.logFile });
  seconds.tsc = (Date.now() - t0) / 1000;
  if (procs.aborted) throw new Error('tsc: interrupted');
  const cli = path.join(dir, 'dist', 'src', 'cli', 'main.js');
  // tsc emits despite type errors (exit 2); a commit that type-checks badly still benches.
  if (!existsSync(cli)) throw new Error(`tsc failed (exit ${String(r.code)}), no ${cli}; log ${o.logFile}:\n${r.tail}`);
  if (r.code !== 0) log(`bench ci: ${o.ref}: warning: tsc reported type errors (exit ${String(r.code)}); dist/ was emitted, see ${o.logFile}`);
  log(
    `bench ci: ${o.ref}: built in ${Object.values(seconds)
      .reduce((a, b) => a + b, 0)
      .toFixed(0)} s (${Object.entries(seconds)
      .map(([k, v]) => `${k} ${v.toFixed(0)} s`)
      .join(', ')})`,
  );
  const env: Record<string, string> = {};
  if (nodeModules === 'symlink') {
    const exclude = path.join(path.dirname(dir), `${path.basename(dir)}.exclude`);
    writeFileSync(exclude, '/node_modules\n');
    Object.assign(env, { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'core.excludesFile', GIT_CONFIG_VALUE_0: exclude });
  }
  return { ref: o.ref, commit: o.commit, root: dir, cli, worktree: dir, dirty: false, nodeModules, seconds, env };
}

/**
 * Remove a worktree made by {@link buildWorktree}: the node_modules symlink
 * first (never what it points to), then `git worktree remove --force`, the
 * directory if git left it, and `git worktree prune`. Synchronous, so it can
 * run from a signal handler too; never throws.
 */
export function removeWorktree(repo: string, dir: string, spawnSyncFn: (cmd: string, args: string[]) => void): void {
  try {
    const nm = path.join(dir, 'node_modules');
    if (lstatSync(nm, { throwIfNoEntry: false })?.isSymbolicLink()) unlinkSync(nm);
  } catch {
    /* not there */
  }
  spawnSyncFn('git', ['-C', repo, 'worktree', 'remove', '--force', dir]);
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    /* best effort */
  }
  spawnSyncFn('git', ['-C', repo, 'worktree', 'prune']);
}
