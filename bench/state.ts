/**
 * Run state on disk: every namespace, process and directory a bench run
 * creates is recorded under the state directory (default /run/vxtap-bench/,
 * env VXTAP_BENCH_STATE_DIR) before it is created, so `vxtap bench --cleanup`
 * can remove what a killed run (SIGKILL, power cut) left behind.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { readLockFile, releaseLockFile, takeLockFile } from './lockfile.js';
import { pidAlive, pidStartTicks } from '../src/host/procstat.js';

/**
 * Name prefix of every namespace, link and state entry the bench creates.
 * VXTAP_BENCH_PREFIX (tests only: 'vx' + 1-3 lowercase letters or digits) gives a
 * test's bench run names of its own, so another test's leftover check or clean-up
 * never meets them; anything else is ignored.
 */
export const BENCH_PREFIX = /^vx[a-z0-9]{1,3}$/.test(process.env.VXTAP_BENCH_PREFIX ?? '') ? (process.env.VXTAP_BENCH_PREFIX as string) : 'vxb';

/** The state directory. */
export function stateDir(): string {
  return process.env.VXTAP_BENCH_STATE_DIR || '/run/vxtap-bench';
}

/** A process recorded by a run. */
export interface TrackedProcess {
  pid: number;
  /** The argv it was started with (to check the pid was not reused). */
  argv: string[];
}

/** What one run has created so far. */
export interface RunStateData {
  runId: string;
  /** Pid of the bench process itself. */
  pid: number;
  startedAt: string;
  namespaces: string[];
  processes: TrackedProcess[];
  /** Directories (OVS databases and run dirs) to delete. */
  dirs: string[];
}

/** Write `data` to `file` atomically (temporary file in the same directory, then rename). */
export function writeFileAtomic(file: string, data: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** The state of the running bench, persisted on every change. */
export class RunState {
  readonly data: RunStateData;
  readonly file: string;

  constructor(runId: string) {
    this.data = { runId, pid: process.pid, startedAt: new Date().toISOString(), namespaces: [], processes: [], dirs: [] };
    this.file = path.join(stateDir(), `${runId}.json`);
    this.save();
  }

  /** Directory for this run's files (OVS databases, logs). */
  runDir(): string {
    return path.join(stateDir(), this.data.runId);
  }

  private save(): void {
    writeFileAtomic(this.file, JSON.stringify(this.data, null, 2));
  }

  addNamespace(name: string): void {
    this.data.namespaces.push(name);
    this.save();
  }

  removeNamespace(name: string): void {
    this.data.namespaces = this.data.namespaces.filter((n) => n !== name);
    this.save();
  }

  addProcess(pid: number, argv: string[]): void {
    this.data.processes.push({ pid, argv });
    this.save();
  }

  removeProcess(pid: number): void {
    this.data.processes = this.data.processes.filter((p) => p.pid !== pid);
    this.save();
  }

  addDir(dir: string): void {
    if (!this.data.dirs.includes(dir)) this.data.dirs.push(dir);
    this.save();
  }

  /** The run finished cleanly: remove its state file and run directory. */
  finish(): void {
    rmSync(this.runDir(), { recursive: true, force: true });
    rmSync(this.file, { force: true });
  }
}

/** All state files of runs (finished runs remove theirs). */
export function listRunStates(): { file: string; data: RunStateData }[] {
  let names: string[];
  try {
    names = readdirSync(stateDir());
  } catch {
    return [];
  }
  const out: { file: string; data: RunStateData }[] = [];
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    const file = path.join(stateDir(), n);
    try {
      out.push({ file, data: JSON.parse(readFileSync(file, 'utf8')) as RunStateData });
    } catch {
      out.push({ file, data: { runId: n.replace(/\.json$/, ''), pid: 0, startedAt: '', namespaces: [], processes: [], dirs: [] } });
    }
  }
  return out;
}

/** The holder of the local-run lock. */
export interface LocalBenchLock {
  pid: number;
  /** Its start time (/proc/<pid>/stat): a reused pid is another process. */
  startTicks: number | null;
  since: string;
  /** Its command line, for the message that refuses a second run. */
  command: string;
}

/**
 * The lock a local run (no --hosts) holds from before it creates anything until it has
 * torn down: two benches on one machine take each other's CPU and both figures are
 * wrong. One per state directory (the tests give each bench file its own). Not `.json`,
 * which `listRunStates` reads as run state.
 */
export function localLockFile(): string {
  return path.join(stateDir(), 'local.lock');
}

/** True while the holder's process runs (same pid, same start time). */
function holderRuns(h: LocalBenchLock): boolean {
  const t = pidStartTicks(h.pid);
  return t !== null && t === h.startTicks;
}

let localLock: LocalBenchLock | null = null;
let parentHolds = false;

/**
 * Take the local-run lock for `self` (this process unless a test says otherwise); null when
 * taken, or when the holder is self's parent (a `bench ci`, which holds the lock for all its
 * rounds, running this one); else the live run that holds it. A killed run's lock is replaced.
 */
export function takeLocalBenchLock(self: { pid: number; ppid: number; command: string } = { pid: process.pid, ppid: process.ppid, command: process.argv.slice(1).join(' ') }): LocalBenchLock | null {
  mkdirSync(stateDir(), { recursive: true });
  parentHolds = false;
  const me: LocalBenchLock = { pid: self.pid, startTicks: pidStartTicks(self.pid), since: new Date().toISOString(), command: self.command };
  const got = takeLockFile(localLockFile(), me, (h) => h.pid !== self.pid && holderRuns(h));
  if (!got.taken) {
    parentHolds = got.holder.pid === self.ppid;
    return parentHolds ? null : got.holder;
  }
  localLock = me;
  return null;
}

/** True when the last `takeLocalBenchLock` let this run go under its parent's lock (a round of `bench ci`). */
export function underParentLock(): boolean {
  return parentHolds;
}

/** Release the local-run lock if this process holds it (idempotent). */
export function releaseLocalBenchLock(): void {
  if (localLock) releaseLockFile(localLockFile(), localLock);
  localLock = null;
}

/** Why a local run cannot start beside `holder`, and what to do. */
export function localBenchBusy(holder: LocalBenchLock): string {
  return (
    `another bench is running on this machine (pid ${String(holder.pid)}, since ${holder.since}: ${holder.command}); ` +
    `two at once take each other's CPU and both figures are wrong. Wait for it, or stop it: kill -INT ${String(holder.pid)}`
  );
}

/**
 * Remove the local-run lock if its holder is gone (a killed run), and the temporary
 * files of takers killed before they linked theirs. Returns what was removed.
 * A live holder's lock stays, even under `--cleanup --force`: its run goes on.
 */
export function removeStaleLocalBenchLock(): string[] {
  const removed: string[] = [];
  const h = readLockFile(localLockFile()) as LocalBenchLock | null;
  if (h !== null && !holderRuns(h)) {
    rmSync(localLockFile(), { force: true });
    removed.push(`${localLockFile()} (bench pid ${String(h.pid)})`);
  }
  let names: string[] = [];
  try {
    names = readdirSync(stateDir());
  } catch {
    /* no state directory: nothing to remove */
  }
  for (const n of names) {
    const m = /^local\.lock\.(\d+)\.tmp$/.exec(n);
    if (m && !pidAlive(Number(m[1]))) {
      rmSync(path.join(stateDir(), n), { force: true });
      removed.push(path.join(stateDir(), n));
    }
  }
  return removed;
}
