/**
 * A lock file that names its holder: JSON a person can read (`cat` says which run
 * and which pid hold it), taken atomically, and replaced when its holder is gone.
 *
 * The file is written whole to a temporary name and then hard-linked to the lock's
 * name: link(2) fails with EEXIST when the lock exists, and a reader never sees a
 * half-written holder. A holder that `live` says is gone (a SIGKILLed run) is stale:
 * its file is removed and the lock taken. Two processes that find the same stale
 * holder at the same instant can both remove it; the window is one unlink and one
 * link wide, after a killed run, and the only harm is two runs side by side.
 */
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

/** The outcome of `takeLockFile`: taken, or held by the live holder it names. */
export type LockAttempt<T> = { taken: true } | { taken: false; holder: T };

/** Read a lock file's holder (as written, unchecked); null when the file is gone or not JSON. */
export function readLockFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch {
    return null;
  }
}

/** Take `file` for `holder` unless a holder that `live` accepts has it. */
export function takeLockFile<T>(file: string, holder: T, live: (held: T) => boolean): LockAttempt<T> {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(holder)}\n`);
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(tmp, file);
        return { taken: true };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const held = readLockFile(file) as T | null;
      if (held !== null && live(held)) return { taken: false, holder: held };
      rmSync(file, { force: true }); // stale: its holder is gone (or the file is not a holder)
    }
    throw Object.assign(new Error(`${file}: could not take the lock (it came back after each removal)`), { code: 'EBUSY' });
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Remove `file` if it still names `holder` (as `takeLockFile` wrote it): a lock taken over meanwhile stays. */
export function releaseLockFile(file: string, holder: unknown): void {
  const held = readLockFile(file);
  if (held !== null && JSON.stringify(held) === JSON.stringify(holder)) rmSync(file, { force: true });
}
