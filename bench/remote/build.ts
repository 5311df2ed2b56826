/**
 * Identity of this vxtap build (version, git commit, Node ABI, native addon
 * hash). The controller and every agent compute it the same way; a host whose
 * build differs is refused. A deployed bundle carries `build.json` (written by
 * `--deploy`) because it has no .git.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { BuildId } from './protocol.js';

/** Path of the native addon in a checkout or bundle. */
export function addonPath(root: string): string {
  return path.join(root, 'native', 'build', 'Release', 'vxtap_native.node');
}

/** The build at `root` (a checkout or a deployed bundle). */
export function buildId(root: string): BuildId {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version?: string };
  let commit: string | null;
  const stamp = path.join(root, 'build.json');
  if (existsSync(stamp)) {
    commit = (JSON.parse(readFileSync(stamp, 'utf8')) as { commit?: string | null }).commit ?? null;
  } else {
    try {
      commit = execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
    } catch {
      commit = null;
    }
  }
  const addon = addonPath(root);
  const addonHash = existsSync(addon) ? createHash('sha256').update(readFileSync(addon)).digest('hex').slice(0, 16) : null;
  return { version: pkg.version ?? '0.0.0', commit, nodeAbi: process.versions.modules, addon: addonHash };
}
