/**
 * A lock file that names its holder: JSON a person can read (`cat` says which run
 * and which pid hold it), taken atomically, and replaced when its holder is gone.
 *
 * The file is written whole to a temporary name and then hard-linked to the lock's
 * name: link(2) fails with EEXIST when the lock exists, and a reader never sees a
 * half-written holder. A holder that `live` says is gone (a SIGKILLed run) is stale:
 * its file is removed and the lock taken. A lock released between our link and our
 * read is simply tried again. Two processes that judge the same stale holder at the
 * same instant can both remove a file, the second perhaps the first's new lock: that
 * window is one read and one unlink wide, only after a killed run, and its only harm
 * is two runs side by side.
 */
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

/** The outcome of `takeLockFile`: taken, or held by the live holder it names. */
export type LockAttempt<T> = { taken: true } | { taken: false; holder: T };

/** Read a lock file's holder (as written, unchecked); null when the file is gone or not JSON. */
export function readLockFile(file: string): unknown {
  const text = readText(file);
  return text === null ? null : parseHolder(text);
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function parseHolder(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
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
      const text = readText(file);
      if (text === null) continue; // released meanwhile: try again
      const held = parseHolder(text) as T | null;
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
