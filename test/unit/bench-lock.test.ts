import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readLockFile } from '../../bench/lockfile.js';
import { localBenchBusy, localLockFile, releaseLocalBenchLock, removeStaleLocalBenchLock, takeLocalBenchLock, underParentLock, type LocalBenchLock } from '../../bench/state.js';
import { pidStartTicks } from '../../src/host/procstat.js';

// The one-local-run lock (bench/state.ts) in a state directory of the test's own.
let dir = '';
const saved = process.env.VXTAP_BENCH_STATE_DIR;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vxtap-bench-lock-'));
  process.env.VXTAP_BENCH_STATE_DIR = dir;
});
afterEach(() => {
  releaseLocalBenchLock();
  if (saved === undefined) delete process.env.VXTAP_BENCH_STATE_DIR;
  else process.env.VXTAP_BENCH_STATE_DIR = saved;
  rmSync(dir, { recursive: true, force: true });
});

const other = { pid: 4_000_001, ppid: 1, command: 'main.js bench --modes bare' };
const gonePid = () => spawnSync('true').pid;
const writeHolder = (h: LocalBenchLock) => writeFileSync(localLockFile(), `${JSON.stringify(h)}\n`);

describe('one local bench at a time', () => {
  it('the first run takes the lock, naming itself with its start time; a second is refused, naming the first', () => {
    expect(takeLocalBenchLock()).toBeNull();
    const held = readLockFile(localLockFile()) as LocalBenchLock;
    expect(held).toMatchObject({ pid: process.pid, startTicks: pidStartTicks(process.pid) });
    const refused = takeLocalBenchLock(other);
    expect(refused).toEqual(held);
    expect(localBenchBusy(held)).toMatch(new RegExp(`^another bench is running on this machine \\(pid ${String(process.pid)}, .*kill -INT ${String(process.pid)}$`));
    releaseLocalBenchLock();
    expect(existsSync(localLockFile())).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a round of bench ci runs under its parent’s lock and leaves it in place', () => {
    expect(takeLocalBenchLock()).toBeNull();
    expect(underParentLock()).toBe(false);
    expect(takeLocalBenchLock({ ...other, ppid: process.pid })).toBeNull();
    expect(underParentLock()).toBe(true);
    expect((readLockFile(localLockFile()) as LocalBenchLock).pid).toBe(process.pid);
    expect(takeLocalBenchLock(other)).not.toBeNull();
    expect(underParentLock()).toBe(false);
  });

  it('a killed run’s lock is taken over: its pid gone, or reused by another process (another start time)', () => {
    writeHolder({ pid: gonePid(), startTicks: 1, since: 'then', command: 'bench' });
    expect(takeLocalBenchLock(other)).toBeNull();
    expect((readLockFile(localLockFile()) as LocalBenchLock).pid).toBe(other.pid);
    writeHolder({ pid: process.pid, startTicks: (pidStartTicks(process.pid) ?? 0) - 1, since: 'then', command: 'bench' });
    expect(takeLocalBenchLock(other)).toBeNull();
  });

  it('--cleanup removes a killed run’s lock and orphaned temporary files, never a live run’s', () => {
    writeHolder({ pid: process.pid, startTicks: pidStartTicks(process.pid), since: 'now', command: 'bench' });
    const orphan = path.join(dir, `local.lock.${String(gonePid())}.tmp`);
    writeFileSync(orphan, '{}');
    expect(removeStaleLocalBenchLock()).toEqual([orphan]);
    expect(existsSync(localLockFile())).toBe(true);
    const gone = gonePid();
    writeHolder({ pid: gone, startTicks: 1, since: 'then', command: 'bench' });
    expect(removeStaleLocalBenchLock()).toEqual([`${localLockFile()} (bench pid ${String(gone)})`]);
    expect(readdirSync(dir)).toEqual([]);
  });
});
