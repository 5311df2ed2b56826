/**
 * What an integration suite needs from this machine, and the reason it is
 * skipped when that is missing. A suite that cannot run here is reported as
 * skipped with its reason in its name and on stderr, never silently passed:
 *
 *   const skip = skipReason({ root: true, tun: true, build: true, commands: ['etcd'] });
 *   describe.skipIf(skip !== null)(named('etcd mode', skip), () => { ... });
 */
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** What a suite needs. */
export interface Needs {
  /** Root (or CAP_NET_ADMIN): namespaces, TAP, links. */
  root?: boolean;
  /** /dev/net/tun. */
  tun?: boolean;
  /** The compiled CLI (dist/) and the native addon. */
  build?: boolean;
  /** Commands that must be on PATH. */
  commands?: string[];
}

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    try {
      accessSync(path.join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      /* not here */
    }
  }
  return false;
}

/** Null when everything in `needs` is here; otherwise why the suite cannot run (with the fix). */
export function skipReason(needs: Needs): string | null {
  if (needs.root && process.getuid?.() !== 0) return 'needs root (namespaces, TAP devices, links)';
  if (needs.tun && !existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  if (needs.build) {
    if (!existsSync(path.join(REPO, 'dist/src/cli/main.js'))) return 'needs the compiled CLI (npm run setup)';
    if (!existsSync(path.join(REPO, 'native/build/Release/vxtap_native.node'))) return 'needs the native addon (npm run setup)';
  }
  const missing = (needs.commands ?? []).filter((c) => !onPath(c));
  if (missing.length) return `needs ${missing.join(', ')} on PATH (npm run setup installs them)`;
  return null;
}

/** A suite name that carries its skip reason, which is also printed once on stderr. */
export function named(name: string, reason: string | null): string {
  if (reason === null) return name;
  process.stderr.write(`${name}: skipped: ${reason}\n`);
  return `${name} (skipped: ${reason})`;
}
