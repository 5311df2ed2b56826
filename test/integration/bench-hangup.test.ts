/**
 * A bench whose reader goes away: `vxtap bench | head` closes the pipes while
 * the run goes on, and a closed terminal sends SIGHUP. Before the fix the first
 * EPIPE on stderr was an uncaught exception that ended the bench mid-round and
 * left its namespace behind, and SIGHUP killed it without clean-up. Now a run
 * whose output pipes are closed finishes and cleans up, and SIGHUP is an
 * interrupt like Ctrl-C (a second one, as a closing terminal sends, does not cut
 * the teardown short as a second Ctrl-C does): the run ends incomplete, keeps
 * what it measured, and leaves nothing. A second bench started beside a running one is refused
 * (both figures would be wrong), and a killed run's lock does not block the next. One short
 * `--modes bare --measure tcp` run each, with names of its own (VXTAP_BENCH_PREFIX=vxh) and its
 * own state directory.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { deleteNetns, listNetns } from '../../src/host/netns.js';
import type { BenchResult } from '../../bench/result.js';
import { benchLeftovers } from '../helpers/bench-leftovers.js';

const PREFIX = 'vxh';
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const main = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const skipReason = process.getuid?.() !== 0 ? 'needs root' : !existsSync(main) ? 'needs a build (npx tsc -p .)' : null;
const out = mkdtempSync(path.join(os.tmpdir(), 'vxh-bench-it-'));
const state = mkdtempSync(path.join(os.tmpdir(), 'vxh-bench-state-'));
// TCP only, 1-s transfers: two rounds take a few seconds
const TEST_PROFILE = JSON.stringify({ tcpSeconds: 1, udpFrameSizes: [], latencySeconds: 0.2, latencyLoadedSeconds: 0.3, mtuSweepSizes: [] });
const BENCH_ARGS = ['bench', '--modes', 'bare', '--measure', 'tcp', '--rounds', '2', '--out', out];
const BENCH_ENV = { ...process.env, VXTAP_BENCH_PREFIX: PREFIX, VXTAP_BENCH_STATE_DIR: state, VXTAP_BENCH_TEST_PROFILE: TEST_PROFILE };
const lockFile = path.join(state, 'local.lock');
/** A lock as a SIGKILLed run leaves it: its pid is gone. */
const staleLock = () => {
  const gone = spawnSync('true').pid;
  writeFileSync(lockFile, `${JSON.stringify({ pid: gone, startTicks: 1, since: '2026-01-01T00:00:00.000Z', command: 'main.js bench' })}\n`);
  return gone;
};
const leftovers = () => benchLeftovers(PREFIX, /iperf3|dist\/bench\/(rr|sockperf)\.js/);

/**
 * Start a bench run (2 rounds of bare, TCP only); `onFirstLine` sees the child once stderr has its first
 * line, `onStopping` once it prints that it is tearing down after a signal.
 */
function bench(
  onFirstLine: (child: ReturnType<typeof spawn>) => void,
  onStopping: (child: ReturnType<typeof spawn>) => void = () => undefined,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const child = spawn(process.execPath, [main, ...BENCH_ARGS], { stdio: ['ignore', 'pipe', 'pipe'], env: BENCH_ENV });
  let stderr = '';
  let first = true;
  let stopping = false;
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (first && stderr.includes('\n')) {
      first = false;
      onFirstLine(child);
    }
    if (!stopping && /stopping the running test/.test(stderr)) {
      stopping = true;
      onStopping(child);
    }
  });
  child.stdout.resume();
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

/** The newest run's result. */
function lastResult(): BenchResult {
  const runs = readdirSync(out).sort();
  return JSON.parse(readFileSync(path.join(out, runs[runs.length - 1], 'result.json'), 'utf8')) as BenchResult;
}

afterAll(async () => {
  if (!skipReason) for (const ns of await listNetns()) if (ns.startsWith(PREFIX)) await deleteNetns(ns);
  rmSync(out, { recursive: true, force: true });
  rmSync(state, { recursive: true, force: true });
});

describe.skipIf(skipReason !== null)(`vxtap bench without its reader, or beside another (integration${skipReason ? `: skipped, ${skipReason}` : ''})`, () => {
  it('finishes and cleans up when its stdout and stderr pipes are closed after the first line (vxtap bench | head -1)', async () => {
    const r = await bench((child) => {
      child.stderr?.destroy();
      child.stdout?.destroy();
    });
    expect(r.signal, r.stderr).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    const result = lastResult();
    expect(result.status).toBe('complete');
    expect(result.samples.filter((s) => s.tcp1 !== null)).toHaveLength(2);
    expect(await leftovers()).toEqual([]);
  }, 120_000);

  it('SIGHUP (the terminal went away) interrupts like Ctrl-C, sent twice as a closing terminal does: incomplete, what was measured kept, nothing left', async () => {
    // The shell passes the hang-up on, then the kernel signals the old foreground group:
    // the second, sent while the first one's teardown runs, must not skip the teardown
    // as a second Ctrl-C does.
    const r = await bench(
      (child) => setTimeout(() => child.kill('SIGHUP'), 1500),
      (child) => child.kill('SIGHUP'),
    );
    expect(r.stderr).toMatch(/stopping the running test/);
    expect(r.stderr).not.toMatch(/again: exiting now/);
    // A bare-mode teardown can be done before the second signal lands. Once Node has begun
    // to exit, its signal watchers are closed and a SIGHUP ends the process by default
    // action: that is acceptable only after the run printed its result (all was kept).
    if (r.signal === 'SIGHUP') expect(r.stderr, 'died of the second SIGHUP before the run had ended').toMatch(/\nresult: \S+result\.json/);
    else {
      expect(r.signal, r.stderr).toBeNull();
      expect(r.code, r.stderr).toBe(1);
    }
    const result = lastResult();
    expect(result.status).toBe('incomplete');
    expect(result.incompleteReasons).toContain('interrupted by SIGHUP');
    expect(await leftovers()).toEqual([]);
  }, 120_000);

  it('a second bench beside a running one is refused, naming the first and creating nothing; the first completes; a killed run’s lock was taken over', async () => {
    staleLock(); // the first run takes it over
    const runsBefore = readdirSync(out).length;
    let second: { status: number | null; stderr: string } | null = null;
    let firstPid = 0;
    const r = await bench((child) => {
      firstPid = child.pid ?? 0;
      const s2 = spawnSync(process.execPath, [main, ...BENCH_ARGS], { env: BENCH_ENV, encoding: 'utf8', timeout: 30_000 });
      second = { status: s2.status, stderr: s2.stderr };
    });
    expect(second, 'the second bench never ran').not.toBeNull();
    const s2 = second as unknown as { status: number | null; stderr: string };
    expect(s2.status, s2.stderr).toBe(1);
    expect(s2.stderr).toMatch(new RegExp(`another bench is running on this machine \\(pid ${String(firstPid)}, since .*kill -INT ${String(firstPid)}\nnothing was created`, 's'));
    expect(r.code, r.stderr).toBe(0);
    expect(lastResult().status).toBe('complete');
    expect(readdirSync(out).length, 'the refused run wrote a results directory').toBe(runsBefore + 1);
    expect(existsSync(lockFile), 'the lock outlived its run').toBe(false);
    expect(await leftovers()).toEqual([]);
  }, 120_000);

  it('a round of bench ci whose bench ci is SIGKILLed stops itself as Ctrl-C does: incomplete, what was measured kept, nothing left', async () => {
    // A stand-in for bench ci: it takes the lock, starts a round (detached, as bench ci does)
    // with its stderr passed through, prints the round's pid, and is SIGKILLed by the test.
    const stateJs = path.join(repo, 'dist', 'bench', 'state.js');
    const script = `
      const { spawn } = require('node:child_process');
      import(${JSON.stringify(stateJs)}).then((st) => {
        if (st.takeLocalBenchLock() !== null) process.exit(3);
        const round = spawn(process.execPath, ${JSON.stringify([main, ...BENCH_ARGS])}, { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
        process.stdout.write(String(round.pid) + '\\n');
        setInterval(() => undefined, 1000);
      });`;
    const ci = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: BENCH_ENV });
    let stdout = '';
    let stderr = '';
    ci.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    ci.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const until = async (what: () => boolean, ms: number) => {
      for (const end = Date.now() + ms; !what() && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
      return what();
    };
    expect(await until(() => /^\d+\n/.test(stdout) && stderr.includes('round 1/2'), 30_000), `the round never started: ${stdout} ${stderr}`).toBe(true);
    const round = Number(stdout.trim());
    ci.kill('SIGKILL');
    const gone = () => {
      try {
        process.kill(round, 0);
        return false;
      } catch {
        return true;
      }
    };
    expect(await until(gone, 60_000), `the round (pid ${String(round)}) ran on: ${stderr}`).toBe(true);
    expect(stderr).toMatch(/bench ci \(pid \d+\) is gone; stopping this round/);
    const result = lastResult();
    expect(result.status).toBe('incomplete');
    expect(result.incompleteReasons).toContain('interrupted by SIGINT');
    expect(await leftovers()).toEqual([]);
  }, 120_000);

  it('--cleanup removes a killed run’s lock and says so', () => {
    const gone = staleLock();
    const r = spawnSync(process.execPath, [main, 'bench', '--cleanup', '--json'], { env: BENCH_ENV, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`removed file ${lockFile} (bench pid ${String(gone)})`);
    expect((JSON.parse(r.stdout) as { files: string[] }).files).toEqual([`${lockFile} (bench pid ${String(gone)})`]);
    expect(existsSync(lockFile)).toBe(false);
    // (not 'nothing to clean up': the other project's bench tests may leave an empty CPU group to remove)
    expect(spawnSync(process.execPath, [main, 'bench', '--cleanup'], { env: BENCH_ENV, encoding: 'utf8' }).stderr).not.toContain('removed file');
  });
});
