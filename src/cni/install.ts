/**
 * `vxtap cni install`: put an executable named `vxtap` in the runtime's plugin
 * directory (a CNI runtime runs `<CNI_PATH dir>/<type>`). It is a two-line
 * shell script that execs this build's Node binary on dist/src/cni/main.js, by
 * absolute paths, so the runtime's PATH does not matter. Written to a temporary
 * file and renamed: a runtime never runs a half-written plugin. Installing the
 * same content again changes nothing.
 */
import { chmodSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The usual plugin directory. */
export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin';

/** Quote a string for /bin/sh (single quotes). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The installed script's text. */
export function renderPluginScript(nodePath: string, mainJs: string): string {
  return ['#!/bin/sh', '# vxtap CNI plugin, written by `vxtap cni install`; runs this build of vxtap.', `exec ${shellQuote(nodePath)} ${shellQuote(mainJs)} "$@"`, ''].join('\n');
}

/** What install did. */
export interface InstallResult {
  path: string;
  node: string;
  main: string;
  changed: boolean;
}

/** Write DIR/vxtap; throws an Error with `.code` 'ENOTDIR'/'ENOENT' when DIR is not a directory. */
export function installPlugin(dir: string, nodePath: string, mainJs: string): InstallResult {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw Object.assign(new Error(`--dir ${dir} does not exist (create it, or install the runtime's CNI plugins first)`), { code: 'ENOENT' });
  }
  if (!st.isDirectory()) throw Object.assign(new Error(`--dir ${dir} is not a directory`), { code: 'ENOTDIR' });
  const path = join(dir, 'vxtap');
  const text = renderPluginScript(nodePath, mainJs);
  let current: string | undefined;
  try {
    current = readFileSync(path, 'utf8');
  } catch {
    /* not installed */
  }
  if (current === text && (statSync(path).mode & 0o777) === 0o755) return { path, node: nodePath, main: mainJs, changed: false };
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode: 0o755 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, path);
  return { path, node: nodePath, main: mainJs, changed: true };
}
