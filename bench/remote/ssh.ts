/**
 * SSH transport of `vxtap bench --hosts`: the system OpenSSH client (so keys,
 * agents, jump hosts and ~/.ssh/config work as they do for `ssh`), one
 * multiplexed master connection per host (ControlMaster, ControlPath in a
 * private temporary directory of this run), `BatchMode=yes` so a missing key
 * fails instead of prompting. `local` means this machine: the agent is then a
 * child process, no SSH.
 */
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** How to reach hosts. */
export interface SshOptions {
  /** `ssh -F FILE`. */
  configFile?: string;
  /** Each becomes `-o OPT`. */
  options: string[];
}

/** A bench host as given on the command line. */
export interface HostDest {
  /** As given ("user@host", "host:port", an alias, or "local"). */
  text: string;
  local: boolean;
  /** The ssh destination (without a port) and the port, if one was given as host:port. */
  dest: string;
  port: number | null;
}

/** Parse one --hosts entry; throws a TypeError naming the field. */
export function parseHostDest(text: string): HostDest {
  const t = text.trim();
  if (!t) throw new TypeError('--hosts: an empty host');
  if (t === 'local') return { text: t, local: true, dest: 'local', port: null };
  if (/\s|^-/.test(t)) throw new TypeError(`--hosts: "${t}" is not an ssh destination (no spaces, no leading '-')`);
  const m = /^(.*[^:]):(\d{1,5})$/.exec(t);
  if (m && !m[1].includes(':')) {
    const port = Number(m[2]);
    if (port < 1 || port > 65535) throw new TypeError(`--hosts: port of "${t}" must be 1..65535`);
    return { text: t, local: false, dest: m[1], port };
  }
  return { text: t, local: false, dest: t, port: null };
}

/** Quote a word for a POSIX shell. */
export function shQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The remote command that starts the agent: as root, or through `sudo -n`
 * (never a password prompt); vxtap from the --deploy cache, else the
 * controller's checkout path when the host has it (a shared filesystem or the
 * same machine), else `vxtap` on PATH; with --deploy the cache comes first.
 */
export function agentCommand(controllerNode: string, controllerAgentJs: string, cacheSubdir: string, preferDeployed: boolean): string {
  const q = shQuote;
  const deployed = 'if [ -f "$D/dist/src/cli/agent.js" ]; then exec $S node "$D/dist/src/cli/agent.js" --stdio; fi';
  const checkout = `if [ -f ${q(controllerAgentJs)} ]; then if [ -x ${q(controllerNode)} ]; then N=${q(controllerNode)}; else N=node; fi; exec $S "$N" ${q(controllerAgentJs)} --stdio; fi`;
  return [
    'if [ "$(id -u)" = 0 ]; then S=; else S="sudo -n"; fi',
    `D="\${XDG_CACHE_HOME:-$HOME/.cache}/vxtap/${cacheSubdir}"`,
    ...(preferDeployed ? [deployed, checkout] : [checkout, deployed]),
    'if command -v vxtap >/dev/null 2>&1; then exec $S vxtap agent --stdio; fi',
    'echo "vxtap is not installed on this host (vxtap bench --deploy copies this build)" >&2; exit 127',
  ].join('\n');
}

/** One multiplexed SSH connection set (a private ControlPath directory). */
export class SshControl {
  readonly dir: string;
  private readonly masters = new Set<HostDest>();

  constructor(readonly opts: SshOptions) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'vxtap-ssh-'));
    chmodSync(this.dir, 0o700);
  }

  /** ssh arguments before the destination. */
  baseArgs(h: HostDest): string[] {
    const args: string[] = [];
    if (this.opts.configFile) args.push('-F', this.opts.configFile);
    for (const o of this.opts.options) args.push('-o', o);
    args.push('-o', 'BatchMode=yes', '-o', 'ControlMaster=auto', '-o', `ControlPath=${path.join(this.dir, '%C')}`, '-o', 'ControlPersist=30');
    // Dead-peer detection on the SSH transport itself (the agent has its own lease).
    args.push('-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3');
    if (h.port !== null) args.push('-p', String(h.port));
    return args;
  }

  /** Start `command` on host `h` through the (shared) master connection; stdio piped. */
  start(h: HostDest, command: string): ChildProcessByStdio<Writable, Readable, Readable> {
    this.masters.add(h);
    return spawn('ssh', [...this.baseArgs(h), '-T', h.dest, command], { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /** Run `command` on `h` to completion (through the master); for short checks and file copies. */
  runSync(h: HostDest, command: string, input?: Buffer, timeoutMs = 60_000): { code: number; stdout: string; stderr: string } {
    this.masters.add(h);
    const r = spawnSync('ssh', [...this.baseArgs(h), '-T', h.dest, command], { input, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    // stdout and stderr are null when ssh could not be started (r.error says why)
    const out = r.stdout as Buffer | null;
    const err = r.stderr as Buffer | null;
    return { code: r.status ?? 124, stdout: out?.toString() ?? '', stderr: err?.toString() ?? r.error?.message ?? '' };
  }

  /** Close every master connection and remove the ControlPath directory. */
  close(): void {
    for (const h of this.masters) {
      spawnSync('ssh', [...this.baseArgs(h), '-O', 'exit', h.dest], { stdio: 'ignore', timeout: 5000 });
    }
    this.masters.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
