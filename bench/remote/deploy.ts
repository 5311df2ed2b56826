/**
 * `vxtap bench --hosts A,B --deploy`: copy this build to a host that lacks it
 * (or runs another one) over the run's SSH connection, into a per-user cache
 * directory (`${XDG_CACHE_HOME:-~/.cache}/vxtap/bundle/`), where
 * the agent command looks first. The bundle is what `vxtap` needs at run time:
 * package.json, dist/src and dist/bench, the native addon and its limits.json, and the production
 * dependencies (the closure of package.json `dependencies`), plus build.json
 * stamping the commit (a bundle has no .git). The host needs Node.js 20 with
 * the controller's Node-API ABI; the version check after connecting says so
 * when it differs. Nothing is installed system-wide.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { BuildId } from './protocol.js';
import { shQuote, type HostDest, type SshControl } from './ssh.js';

/**
 * Cache sub-directory of the deployed build on the hosts. One directory, not
 * one per build: the agent runs whatever was deployed last and the version
 * check after `hello` refuses another build with both versions named.
 */
export function cacheSubdir(_b: BuildId): string {
  return 'bundle';
}

/** Production dependency closure of the package at `root` (names under node_modules). */
export function productionDeps(root: string): string[] {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const seen = new Set<string>();
  const queue = Object.keys(pkg.dependencies ?? {});
  for (let d = queue.pop(); d !== undefined; d = queue.pop()) {
    if (seen.has(d)) continue;
    const file = path.join(root, 'node_modules', d, 'package.json');
    if (!existsSync(file)) continue; // an optional dependency not installed here
    seen.add(d);
    const p = JSON.parse(readFileSync(file, 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    queue.push(...Object.keys(p.dependencies ?? {}), ...Object.keys(p.optionalDependencies ?? {}));
  }
  return [...seen].sort();
}

/** Paths (relative to `root`) of the bundle. */
export function bundlePaths(root: string): string[] {
  const paths = ['package.json', 'dist/src', 'dist/bench', 'native/build/Release/vxtap_native.node', 'native/limits.json', 'bin'];
  for (const d of productionDeps(root)) paths.push(`node_modules/${d}`);
  return paths.filter((p) => existsSync(path.join(root, p)));
}

/** The remote shell words for the cache directory of `b`. */
function remoteDir(b: BuildId): string {
  return `"\${XDG_CACHE_HOME:-$HOME/.cache}/vxtap/${cacheSubdir(b)}"`;
}

/**
 * Make sure host `h` has build `b` in its cache; copies it when missing or
 * different. Throws an Error naming the host and the fix (Node.js missing or
 * too old, copy failed).
 */
export function deployBuild(ssh: SshControl, h: HostDest, label: string, root: string, b: BuildId, log: (l: string) => void): 'present' | 'copied' {
  const who = `host ${label} (${h.text})`;
  const node = ssh.runSync(h, 'if command -v node >/dev/null 2>&1; then node -p process.versions.node; else echo none; fi', undefined, 30_000);
  if (node.code !== 0) throw new Error(`${who}: --deploy: ssh failed: ${node.stderr.trim()}`);
  const version = node.stdout.trim();
  if (version === 'none') throw new Error(`${who}: --deploy needs Node.js 20 on the host, and it has none; install it (Debian 12: apt-get install nodejs npm; or the NodeSource packages)`);
  if (Number(version.split('.')[0]) < 20) throw new Error(`${who}: --deploy needs Node.js 20 or newer; the host has ${version}`);
  const stamp = JSON.stringify({ ...b });
  const D = remoteDir(b);
  const have = ssh.runSync(h, `cat ${D}/build.json 2>/dev/null || true`, undefined, 30_000);
  if (have.stdout.trim() === stamp) {
    log(`  ${who}: this build is already in its cache`);
    return 'present';
  }
  const files = bundlePaths(root);
  const tar = spawnSync('tar', ['--use-compress-program=gzip -1', '-cf', '-', '-C', root, ...files], { maxBuffer: 1024 * 1024 * 1024 });
  if (tar.status !== 0) throw new Error(`--deploy: tar of the bundle failed: ${(tar.stderr as Buffer | null)?.toString().trim() ?? tar.error?.message ?? ''}`);
  log(`  ${who}: copying this build (${(tar.stdout.length / 1e6).toFixed(1)} MB) to ~/.cache/vxtap/${cacheSubdir(b)}`);
  const script = [`D=${D}`, 'rm -rf "$D.tmp" && mkdir -p "$D.tmp"', 'tar xzf - -C "$D.tmp"', `printf '%s' ${shQuote(stamp)} > "$D.tmp/build.json"`, 'rm -rf "$D" && mv "$D.tmp" "$D"'].join(' && ');
  const r = ssh.runSync(h, script, tar.stdout, 300_000);
  if (r.code !== 0) throw new Error(`${who}: --deploy: copying the build failed (${r.code}): ${r.stderr.trim().slice(0, 300)}`);
  return 'copied';
}
