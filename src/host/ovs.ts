/**
 * Open vSwitch daemons per network namespace: one ovsdb-server and one
 * ovs-vswitchd with their own database, run directory, control sockets, pid
 * files and logs, so several "hosts" on one machine each run a private OVS.
 *
 * ovs-vswitchd must run inside the namespace: the userspace (netdev) datapath
 * opens its taps and AF_PACKET sockets and reads routes in its own namespace.
 * Both daemons are started with --detach (they return once ready) and found
 * again through their pid files.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { run, haveCommand, type RunResult } from './exec.js';

/** Where Debian installs the vswitch database schema. */
export const OVS_SCHEMA_PATHS = ['/usr/share/openvswitch/vswitch.ovsschema', '/usr/local/share/openvswitch/vswitch.ovsschema'];

/** Binaries the helper needs. */
export const OVS_BINARIES = ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-appctl'];

/** Why OVS cannot run here, or null when it can. */
export async function ovsUnavailableReason(): Promise<string | null> {
  for (const b of OVS_BINARIES) {
    if (!(await haveCommand(b))) return `${b} not found (install Debian package openvswitch-switch)`;
  }
  if (!OVS_SCHEMA_PATHS.some((p) => existsSync(p))) return `vswitch.ovsschema not found in ${OVS_SCHEMA_PATHS.join(', ')}`;
  return null;
}

/** `ovs-vswitchd --version` first line. */
export async function ovsVersion(): Promise<string | null> {
  const r = await run(['ovs-vswitchd', '--version'], { allowFail: true });
  return r.code === 0 ? r.stdout.split('\n')[0].trim() : null;
}

/** True when the kernel datapath module is available (so `system` datapath could be used). */
export function ovsKernelModulePresent(): boolean {
  return existsSync('/sys/module/openvswitch');
}

/** A running pair of OVS daemons in one namespace. */
export class OvsInstance {
  constructor(
    readonly netns: string,
    readonly dir: string,
    readonly pids: { ovsdb: number; vswitchd: number },
  ) {}

  /** Database socket. */
  get dbSocket(): string {
    return path.join(this.dir, 'db.sock');
  }

  /** ovs-vswitchd control socket. */
  get vswitchdCtl(): string {
    return path.join(this.dir, 'ovs-vswitchd.ctl');
  }

  /** Run ovs-vsctl against this instance's database (with a timeout so a dead daemon cannot hang the bench). */
  vsctl(args: string[], allowFail = false): Promise<RunResult> {
    return run(['ovs-vsctl', `--db=unix:${this.dbSocket}`, '--timeout=10', ...args], { netns: this.netns, allowFail, env: ovsEnv(this.dir) });
  }

  /** Run ovs-appctl against this instance's ovs-vswitchd. */
  appctl(args: string[], allowFail = false): Promise<RunResult> {
    return run(['ovs-appctl', '-t', this.vswitchdCtl, '--timeout=10', ...args], { netns: this.netns, allowFail, env: ovsEnv(this.dir) });
  }

  /** The datapath types this ovs-vswitchd supports (e.g. ["netdev", "system"]). */
  async datapathTypes(): Promise<string[]> {
    const r = await this.vsctl(['get', 'Open_vSwitch', '.', 'datapath_types'], true);
    return r.stdout
      .replace(/[[\]"\s]/g, '')
      .split(',')
      .filter(Boolean);
  }

  /** Stop both daemons (exit via their control sockets, then SIGKILL) and delete the directory. */
  async stop(): Promise<void> {
    await run(['ovs-appctl', '-t', this.vswitchdCtl, '--timeout=3', 'exit', '--cleanup'], { netns: this.netns, allowFail: true, timeoutMs: 5000 });
    await run(['ovs-appctl', '-t', path.join(this.dir, 'ovsdb-server.ctl'), '--timeout=3', 'exit'], { netns: this.netns, allowFail: true, timeoutMs: 5000 });
    for (const pid of [this.pids.vswitchd, this.pids.ovsdb]) await killAndWait(pid);
    await rm(this.dir, { recursive: true, force: true });
  }
}

function ovsEnv(dir: string): Record<string, string> {
  return { OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_PKGDATADIR: '/usr/share/openvswitch', OVS_SYSCONFDIR: dir };
}

async function readPid(file: string): Promise<number> {
  const text = await readFile(file, 'utf8');
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${file}: no pid`);
  return pid;
}

/** SIGKILL a pid if it is still alive and wait (bounded) until it is gone. */
export async function killAndWait(pid: number, waitMs = 3000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/**
 * Start ovsdb-server and ovs-vswitchd inside `netns`, with everything under
 * `dir` (created). `onPid` is told each daemon pid as soon as it is known, so a
 * caller can record it for crash cleanup.
 */
export async function startOvs(netns: string, dir: string, onPid?: (pid: number, what: string) => void): Promise<OvsInstance> {
  const schema = OVS_SCHEMA_PATHS.find((p) => existsSync(p));
  if (!schema) throw new Error('vswitch.ovsschema not found');
  await mkdir(dir, { recursive: true });
  const env = ovsEnv(dir);
  const db = path.join(dir, 'conf.db');
  await run(['ovsdb-tool', 'create', db, schema], { env });
  await run(
    [
      'ovsdb-server',
      db,
      `--remote=punix:${path.join(dir, 'db.sock')}`,
      `--unixctl=${path.join(dir, 'ovsdb-server.ctl')}`,
      `--pidfile=${path.join(dir, 'ovsdb-server.pid')}`,
      `--log-file=${path.join(dir, 'ovsdb-server.log')}`,
      '--detach',
      '--no-chdir',
    ],
    { netns, env, timeoutMs: 20_000 },
  );
  const ovsdb = await readPid(path.join(dir, 'ovsdb-server.pid'));
  onPid?.(ovsdb, 'ovsdb-server');
  await run(['ovs-vsctl', `--db=unix:${path.join(dir, 'db.sock')}`, '--no-wait', 'init'], { netns, env });
  await run(
    [
      'ovs-vswitchd',
      `unix:${path.join(dir, 'db.sock')}`,
      `--unixctl=${path.join(dir, 'ovs-vswitchd.ctl')}`,
      `--pidfile=${path.join(dir, 'ovs-vswitchd.pid')}`,
      `--log-file=${path.join(dir, 'ovs-vswitchd.log')}`,
      '--detach',
      '--no-chdir',
    ],
    { netns, env, timeoutMs: 30_000 },
  );
  const vswitchd = await readPid(path.join(dir, 'ovs-vswitchd.pid'));
  onPid?.(vswitchd, 'ovs-vswitchd');
  return new OvsInstance(netns, dir, { ovsdb, vswitchd });
}
