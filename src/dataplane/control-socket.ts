/**
 * The control socket's file: claimed at start (a stale socket of a killed
 * instance is removed, a live instance or a file that is not a socket is
 * refused) and removed at stop, only while it still is a socket.
 */
import { lstatSync, rmdirSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { ConfigError } from '../config.js';

/**
 * Make `sock` free for a new instance: nothing there, or a socket nobody answers
 * on (left by a killed instance), which is removed. Refuses a live instance and
 * anything that is not a socket (a file someone put there is never deleted).
 */
export async function claimSocketPath(sock: string, field: string): Promise<void> {
  let st;
  try {
    st = lstatSync(sock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ConfigError(field, `cannot inspect ${sock}: ${(err as Error).message}`);
  }
  if (!st.isSocket()) throw new ConfigError(field, `${sock} exists and is not a socket; refusing to remove it`);
  if (await socketAlive(sock)) throw new ConfigError(field, `an instance is already serving ${sock}`);
  unlinkSync(sock);
}

/** Remove a socket file, only if it still is one, and its per-namespace directory once empty (never throws). */
export function removeSocketFile(sock: string): void {
  try {
    if (lstatSync(sock).isSocket()) unlinkSync(sock);
  } catch {
    /* gone */
  }
  if (/^netns-/.test(path.basename(path.dirname(sock)))) {
    try {
      rmdirSync(path.dirname(sock)); // fails while another instance of the namespace has its socket there
    } catch {
      /* not empty */
    }
  }
}

/** Whether something answers on the unix socket `sock`. */
export function socketAlive(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(sock);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}
