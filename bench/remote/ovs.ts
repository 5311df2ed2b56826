/**
 * Open vSwitch on a --hosts host: a private ovsdb-server + ovs-vswitchd pair
 * started through the host's agent, with database, sockets, pid files and
 * logs in the run's directory on the host (as `src/host/ovs.ts` does in a
 * namespace). Always the userspace (netdev) datapath: a private ovs-vswitchd
 * on the kernel datapath would share it with the host's own Open vSwitch.
 * The daemons' pids are named in the host's state file as soon as they are
 * known, so the agent's clean-up stops them.
 */
import path from 'node:path';
import type { RunResult } from '../../src/host/exec.js';
import { OVS_SCHEMA_PATHS } from '../../src/host/ovs.js';
import type { RemoteHost } from './client.js';

/** The device of ovs-vswitchd's userspace datapath (left behind when the daemon is killed). */
const OVS_NETDEV = 'ovs-netdev';

function ovsEnv(dir: string): Record<string, string> {
  return { OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_PKGDATADIR: '/usr/share/openvswitch', OVS_SYSCONFDIR: dir };
}

/** Why Open vSwitch cannot run on `host`, or null. */
export async function remoteOvsUnavailableReason(host: RemoteHost): Promise<string | null> {
  for (const bin of ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-appctl']) {
    const r = await host.exec(['sh', '-c', `command -v ${bin}`], { allowFail: true });
    if (r.code !== 0) return `host ${host.label} (${host.where}): ${bin} missing (apt-get install openvswitch-switch)`;
  }
  const schema = await host.exec(['sh', '-c', OVS_SCHEMA_PATHS.map((p) => `test -f ${p}`).join(' || ')], { allowFail: true });
  if (schema.code !== 0) return `host ${host.label} (${host.where}): vswitch.ovsschema not found`;
  // A userspace datapath owns the device ovs-netdev; a second ovs-vswitchd on netdev would take it over.
  const netdev = await host.exec(['ip', 'link', 'show', 'dev', OVS_NETDEV], { allowFail: true });
  if (netdev.code === 0) return `host ${host.label} (${host.where}) runs its own userspace Open vSwitch (${OVS_NETDEV} exists); the bench's private one would share that device`;
  return null;
}

/** A private OVS instance on a host. */
export class RemoteOvs {
  constructor(
    readonly host: RemoteHost,
    readonly dir: string,
    readonly pids: { ovsdb: number; vswitchd: number },
  ) {}

  vsctl(args: string[], allowFail = false): Promise<RunResult> {
    return this.host.exec(['ovs-vsctl', `--db=unix:${path.join(this.dir, 'db.sock')}`, '--timeout=10', ...args], { allowFail, env: ovsEnv(this.dir) });
  }

  appctl(args: string[], allowFail = false): Promise<RunResult> {
    return this.host.exec(['ovs-appctl', '-t', path.join(this.dir, 'ovs-vswitchd.ctl'), '--timeout=10', ...args], { allowFail, env: ovsEnv(this.dir) });
  }

  async datapathTypes(): Promise<string[]> {
    const r = await this.vsctl(['get', 'Open_vSwitch', '.', 'datapath_types'], true);
    return r.stdout
      .replace(/[[\]"\s]/g, '')
      .split(',')
      .filter(Boolean);
  }

  /**
   * Stop both daemons and remove the directory. `exit --cleanup` is answered
   * before ovs-vswitchd has removed its bridges: its netdev datapath makes their
   * TAP devices persistent, so a SIGKILL during that clean-up could leave a bridge
   * behind still holding the underlay address, which the teardown then put back on
   * the data interface too. Each daemon gets a few seconds to exit by itself
   * before it is killed.
   */
  async stop(): Promise<void> {
    await this.appctl(['exit', '--cleanup'], true).catch(() => undefined);
    await this.host.exec(['ovs-appctl', '-t', path.join(this.dir, 'ovsdb-server.ctl'), '--timeout=3', 'exit'], { allowFail: true, timeoutMs: 5000 }).catch(() => undefined);
    for (const pid of [this.pids.vswitchd, this.pids.ovsdb]) {
      const waitThenKill = `i=0; while kill -0 ${pid} 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -KILL ${pid} 2>/dev/null; true`;
      await this.host.exec(['sh', '-c', waitThenKill], { allowFail: true, timeoutMs: 10_000 }).catch(() => undefined);
    }
    await this.host.exec(['rm', '-rf', this.dir], { allowFail: true }).catch(() => undefined);
    await this.host.exec(['ip', 'link', 'del', OVS_NETDEV], { allowFail: true }).catch(() => undefined);
    await this.host.untrack({ dirs: [this.dir], links: [OVS_NETDEV] });
  }
}

/** Start ovsdb-server and ovs-vswitchd on `host` with everything under `dir` (created, tracked). */
export async function startRemoteOvs(host: RemoteHost, dir: string): Promise<RemoteOvs> {
  await host.track({ dirs: [dir] });
  const env = ovsEnv(dir);
  const schema = (await host.exec(['sh', '-c', `for p in ${OVS_SCHEMA_PATHS.join(' ')}; do if [ -f "$p" ]; then echo "$p"; break; fi; done`])).stdout.trim();
  if (!schema) throw new Error(`host ${host.label} (${host.where}): vswitch.ovsschema not found`);
  await host.exec(['mkdir', '-p', dir]);
  const db = path.join(dir, 'conf.db');
  await host.exec(['ovsdb-tool', 'create', db, schema], { env });
  const pidOf = async (name: string) => {
    const pid = Number((await host.exec(['cat', path.join(dir, `${name}.pid`)])).stdout.trim());
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`host ${host.label}: ${name}.pid: no pid`);
    await host.track({ pids: [pid] });
    return pid;
  };
  await host.exec(
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
    { env, timeoutMs: 20_000 },
  );
  const ovsdb = await pidOf('ovsdb-server');
  await host.exec(['ovs-vsctl', `--db=unix:${path.join(dir, 'db.sock')}`, '--no-wait', 'init'], { env });
  await host.track({ links: [OVS_NETDEV] }); // absent before (remoteOvsUnavailableReason), ours after
  await host.exec(
    [
      'ovs-vswitchd',
      `unix:${path.join(dir, 'db.sock')}`,
      `--unixctl=${path.join(dir, 'ovs-vswitchd.ctl')}`,
      `--pidfile=${path.join(dir, 'ovs-vswitchd.pid')}`,
      `--log-file=${path.join(dir, 'ovs-vswitchd.log')}`,
      '--detach',
      '--no-chdir',
    ],
    { env, timeoutMs: 30_000 },
  );
  const vswitchd = await pidOf('ovs-vswitchd');
  return new RemoteOvs(host, dir, { ovsdb, vswitchd });
}
