/**
 * The compiled CLI for tests that run it as a user would. `ensureBuilt()`
 * compiles TypeScript only when a source is newer than dist/ (npm test's
 * pretest has normally built it already), so test files that run in parallel
 * do not each recompile the tree. `runVxtap()` runs the CLI and never throws.
 */
import { execFile, spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO, 'dist', 'src', 'cli', 'main.js');

function newestTs(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestTs(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Compile (tsc -p) when dist/ is missing or older than a source under src/ or bench/. */
export async function ensureBuilt(): Promise<void> {
  let built = 0;
  try {
    built = statSync(CLI).mtimeMs;
  } catch {
    /* not built */
  }
  if (built >= Math.max(newestTs(path.join(REPO, 'src')), newestTs(path.join(REPO, 'bench')))) return;
  await new Promise((resolve) => execFile(process.execPath, [path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', REPO], { timeout: 300_000 }, resolve));
}

/**
 * Run `vxtap ARGS` in `cwd` without the VXTAP_BENCH_* environment of the caller
 * (`env` laid over what is left); past `timeoutMs` it is sent `killSignal`
 * (SIGTERM, or SIGINT for the bench's own clean stop). Never throws.
 */
export function runVxtap(
  args: string[],
  opts: { cwd?: string; timeoutMs?: number; env?: Record<string, string>; killSignal?: NodeJS.Signals } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VXTAP_BENCH'))), ...opts.env };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: opts.cwd, encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, killSignal: opts.killSignal ?? 'SIGTERM', env, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
      },
    );
  });
}

/**
 * Run `vxtap ARGS` with `env` laid over this process's environment, collecting
 * its output; SIGINT (the bench's own clean stop) when it runs past `timeoutMs`.
 * Never throws: the exit code (null when killed) and both streams come back.
 */
export function runCliInterruptible(args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `vxtap bench ARGS` from the repository, isolated as runVxtap does, with a test's VXTAP_BENCH_PREFIX (and state directory) in `env`; SIGINT past `timeoutMs`. */
export function runBenchIsolated(args: string[], timeoutMs: number, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runVxtap(['bench', ...args], { cwd: REPO, timeoutMs, env, killSignal: 'SIGINT' });
}
