import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readLockFile, releaseLockFile, takeLockFile } from '../../bench/lockfile.js';

interface Holder {
  runId: string;
  pid: number;
}

const dirs: string[] = [];
const lockIn = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'vxtap-lockfile-'));
  dirs.push(d);
  return path.join(d, 'the.lock');
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('lock file', () => {
  it('is taken when absent, names its holder, and leaves no temporary file', () => {
    const file = lockIn();
    expect(takeLockFile<Holder>(file, { runId: 'a', pid: 1 }, () => true)).toEqual({ taken: true });
    expect(readLockFile(file)).toEqual({ runId: 'a', pid: 1 });
    expect(readdirSync(path.dirname(file))).toEqual(['the.lock']);
  });

  it('is refused while its holder lives, naming that holder; the file is left as it was', () => {
    const file = lockIn();
    takeLockFile<Holder>(file, { runId: 'a', pid: 1 }, () => true);
    const seen: Holder[] = [];
    const got = takeLockFile<Holder>(file, { runId: 'b', pid: 2 }, (h) => (seen.push(h), true));
    expect(got).toEqual({ taken: false, holder: { runId: 'a', pid: 1 } });
    expect(seen).toEqual([{ runId: 'a', pid: 1 }]);
    expect(readLockFile(file)).toEqual({ runId: 'a', pid: 1 });
  });

  it('replaces a holder that is gone, and a file that is not a holder (empty, not JSON)', () => {
    const file = lockIn();
    takeLockFile<Holder>(file, { runId: 'a', pid: 1 }, () => true);
    expect(takeLockFile<Holder>(file, { runId: 'b', pid: 2 }, (h) => h.pid !== 1)).toEqual({ taken: true });
    expect(readLockFile(file)).toEqual({ runId: 'b', pid: 2 });
    for (const junk of ['', '{"runId":', 'garbage']) {
      writeFileSync(file, junk);
      expect(takeLockFile<Holder>(file, { runId: 'c', pid: 3 }, () => true)).toEqual({ taken: true });
      expect(readLockFile(file)).toEqual({ runId: 'c', pid: 3 });
    }
  });

  it('is released only by the holder it still names (a lock taken over stays with its new holder)', () => {
    const file = lockIn();
    takeLockFile<Holder>(file, { runId: 'a', pid: 1 }, () => true);
    takeLockFile<Holder>(file, { runId: 'b', pid: 2 }, () => false); // a's run was judged gone
    releaseLockFile(file, { runId: 'a', pid: 1 });
    expect(readLockFile(file)).toEqual({ runId: 'b', pid: 2 });
    releaseLockFile(file, { runId: 'b', pid: 2 });
    expect(existsSync(file)).toBe(false);
    releaseLockFile(file, { runId: 'b', pid: 2 }); // idempotent
  });

  it('reports a directory it cannot write to as the error it is', () => {
    expect(() => takeLockFile<Holder>('/nonexistent-vxtap-dir/the.lock', { runId: 'a', pid: 1 }, () => true)).toThrow(/ENOENT/);
  });
});
