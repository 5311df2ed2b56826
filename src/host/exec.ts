/**
 * Running host commands (iproute2, ethtool, iperf3, ovs-*) in the root namespace
 * or inside a named network namespace. Shared by the CLI, the tests and the bench.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/** Result of a finished command. */
export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface RunOptions {
  /** Run inside this network namespace (`ip netns exec NAME ...`). */
  netns?: string;
  /** Do not throw on a non-zero exit status. */
  allowFail?: boolean;
  /** Kill the command after this many milliseconds (default 60 s). */
  timeoutMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
  input?: string;
}

/** Error from a command that exited non-zero; carries the command and its stderr. */
export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly result: RunResult,
  ) {
    super(`command failed (${result.code}): ${argv.join(' ')}: ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'CommandError';
  }
}

/** The argv that runs `argv` inside `netns` (or `argv` itself). */
export function inNetns(netns: string | undefined, argv: string[]): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
}

/** Run a command to completion. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const full = inNetns(opts.netns, argv);
  return new Promise((resolve, reject) => {
    const child = execFile(
      full[0],
      full.slice(1),
      {
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 64 * 1024 * 1024,
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? (err as unknown as { code: number }).code : (err as { killed?: boolean }).killed ? 124 : 127) : 0;
        const result = { stdout, stderr, code };
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          result.stderr = `${full[0]}: command not found`;
        }
        if (code !== 0 && !opts.allowFail) reject(new CommandError(full, result));
        else resolve(result);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Run a command; resolve to its trimmed stdout. */
export async function output(argv: string[], opts: RunOptions = {}): Promise<string> {
  return (await run(argv, opts)).stdout.trim();
}

/** True when `name` is an executable on PATH. */
export async function haveCommand(name: string): Promise<boolean> {
  const r = await run(['sh', '-c', `command -v ${name}`], { allowFail: true });
  return r.code === 0;
}

/**
 * Start a long-running command (optionally in a namespace). The child is
 * spawned directly (`ip netns exec` execs the command, so the pid is the
 * command's own), in its own process group, so `stop()` can kill it and its children.
 */
export function start(argv: string[], opts: { netns?: string; env?: Record<string, string>; stdio?: SpawnOptions['stdio'] } = {}): ChildProcess {
  const full = inNetns(opts.netns, argv);
  return spawn(full[0], full.slice(1), {
    stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    detached: true,
  });
}

/** SIGTERM a started child (its process group), then SIGKILL after `graceMs`. Resolves when it exited. */
export function stop(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        try {
          child.kill(sig);
        } catch {
          /* already gone */
        }
      }
    };
    const timer = setTimeout(() => kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    kill('SIGTERM');
  });
}
