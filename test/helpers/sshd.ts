/**
 * Two "real hosts" for `vxtap bench --hosts` tests: two network namespaces,
 * each running its own OpenSSH server (Debian openssh-server) with a host key,
 * an authorized key made for the test and `PidFile none`, reached from the
 * root namespace over a management veth each, and joined to each other by a
 * data veth (the underlay). An ssh_config names them `<prefix>-a` / `<prefix>-b`.
 *
 *   root 198.18.237.1/30 -- 198.18.237.2/30 nsA      nsA 198.18.238.1/24 -- 198.18.238.2/24 nsB
 *   root 198.18.237.5/30 -- 198.18.237.6/30 nsB
 *
 * `destroy()` removes everything (sshd and every process in the namespaces,
 * the namespaces with their veths, the key directory), also after a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { output, run } from '../../src/host/exec.js';

/** Why the SSH hosts cannot be built here, or null. */
export function sshdSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/usr/sbin/sshd')) return 'needs /usr/sbin/sshd (apt-get install openssh-server)';
  if (!existsSync('/usr/bin/ssh')) return 'needs ssh (apt-get install openssh-client)';
  return null;
}

/** One SSH-reached host. */
export interface SshTestHost {
  ns: string;
  /** ssh_config alias. */
  alias: string;
  mgmtAddr: string;
  dataAddr: string;
  dataDev: string;
  sshd: ChildProcess;
}

/** The pair and its ssh configuration. */
export interface SshTestPair {
  a: SshTestHost;
  b: SshTestHost;
  /** ssh_config file naming both hosts (key, user root, no host key checks). */
  sshConfig: string;
  /**
   * Host B as a machine without vxtap: a second sshd in B's namespace (port
   * 2222) whose sessions run in a private mount namespace with `hiddenRoot`
   * (the checkout) covered by an empty tmpfs, and XDG_CACHE_HOME = `cacheDir`.
   */
  bBare: { alias: string; cacheDir: string };
  dir: string;
  /** Kill every sshd session process (not the listener) of a host: drops its connections. */
  dropConnections(h: SshTestHost): Promise<number>;
  destroy(): Promise<void>;
}

async function waitPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd on ${host}:${port} not listening within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * sshd_config for a test server: key-only root login with the test's host key
 * and authorized_keys, no PAM, no pid file; XDG_CACHE_HOME points into the
 * test's directory so a --deploy never writes to this machine's ~/.cache.
 */
function sshdConfig(dir: string, o: { port: number; listen: string; cacheDir: string; extra: string[] }): string {
  return [
    `Port ${o.port}`,
    `ListenAddress ${o.listen}`,
    `HostKey ${path.join(dir, 'hostkey')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PidFile none',
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    `SetEnv XDG_CACHE_HOME=${o.cacheDir}`,
    ...o.extra,
    '',
  ].join('\n');
}

/** Write `config` to DIR/NAME.conf and start sshd in the foreground inside `ns`, logging to DIR/NAME.log. */
function startSshd(dir: string, ns: string, name: string, config: string): ChildProcess {
  const conf = path.join(dir, `${name}.conf`);
  writeFileSync(conf, config);
  return spawn('ip', ['netns', 'exec', ns, '/usr/sbin/sshd', '-D', '-f', conf, '-E', path.join(dir, `${name}.log`)], { stdio: 'ignore' });
}

/** Build the pair; `prefix` (<= 5 characters) names namespaces and root-side links. */
export async function createSshPair(prefix: string, hiddenRoot: string): Promise<SshTestPair> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-ssh-`));
  const hosts: SshTestHost[] = [];
  const names = { nsA: `${prefix}a`, nsB: `${prefix}b`, mA: `${prefix}ma`, mB: `${prefix}mb` };
  const destroy = async () => {
    for (const h of hosts) h.sshd.kill('SIGKILL');
    for (const ns of [names.nsA, names.nsB]) {
      const pids = (await output(['ip', 'netns', 'pids', ns], { allowFail: true })).split(/\s+/).filter(Boolean);
      for (const p of pids) {
        try {
          process.kill(Number(p), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await run(['ip', 'netns', 'del', ns], { allowFail: true });
    }
    await run(['ip', 'link', 'del', names.mA], { allowFail: true });
    await run(['ip', 'link', 'del', names.mB], { allowFail: true });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'hostkey')]);
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'id')]);
    await run(['cp', path.join(dir, 'id.pub'), path.join(dir, 'authorized_keys')]);
    mkdirSync('/run/sshd', { recursive: true });
    const spec = [
      { ns: names.nsA, m: names.mA, rootAddr: '198.18.237.1', mgmtAddr: '198.18.237.2', dataAddr: '198.18.238.1', dataDev: `${prefix}d0`, alias: `${prefix}-a` },
      { ns: names.nsB, m: names.mB, rootAddr: '198.18.237.5', mgmtAddr: '198.18.237.6', dataAddr: '198.18.238.2', dataDev: `${prefix}d1`, alias: `${prefix}-b` },
    ];
    for (const s of spec) {
      await run(['ip', 'netns', 'add', s.ns]);
      await run(['ip', 'link', 'set', 'lo', 'up'], { netns: s.ns });
      await run(['ip', 'link', 'add', s.m, 'type', 'veth', 'peer', 'name', 'mgmt0', 'netns', s.ns]);
      await run(['ip', 'addr', 'add', `${s.rootAddr}/30`, 'dev', s.m]);
      await run(['ip', 'link', 'set', s.m, 'up']);
      await run(['ip', 'addr', 'add', `${s.mgmtAddr}/30`, 'dev', 'mgmt0'], { netns: s.ns });
      await run(['ip', 'link', 'set', 'mgmt0', 'up'], { netns: s.ns });
    }
    await run(['ip', 'link', 'add', spec[0].dataDev, 'netns', spec[0].ns, 'type', 'veth', 'peer', 'name', spec[1].dataDev, 'netns', spec[1].ns]);
    for (const s of spec) {
      await run(['ip', 'addr', 'add', `${s.dataAddr}/24`, 'dev', s.dataDev], { netns: s.ns });
      await run(['ip', 'link', 'set', s.dataDev, 'up'], { netns: s.ns });
      const sshd = startSshd(
        dir,
        s.ns,
        `sshd-${s.ns}`,
        sshdConfig(dir, { port: 22, listen: s.mgmtAddr, cacheDir: path.join(dir, `cache-${s.ns}`), extra: ['MaxSessions 32', 'MaxStartups 32', 'PrintMotd no'] }),
      );
      hosts.push({ ns: s.ns, alias: s.alias, mgmtAddr: s.mgmtAddr, dataAddr: s.dataAddr, dataDev: s.dataDev, sshd });
    }
    // B without vxtap: the checkout hidden from its sessions.
    const cacheDir = path.join(dir, 'cache-b-bare');
    const wrapper = path.join(dir, 'bare-session.sh');
    writeFileSync(wrapper, `#!/bin/sh\nexec unshare -m /bin/sh -c 'mount -t tmpfs tmpfs "$0" && exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"' ${hiddenRoot}\n`, { mode: 0o755 });
    const bareSshd = startSshd(dir, spec[1].ns, 'sshd-bare', sshdConfig(dir, { port: 2222, listen: spec[1].mgmtAddr, cacheDir, extra: [`ForceCommand ${wrapper}`] }));
    hosts.push({ ns: spec[1].ns, alias: `${prefix}-b-bare`, mgmtAddr: spec[1].mgmtAddr, dataAddr: spec[1].dataAddr, dataDev: spec[1].dataDev, sshd: bareSshd });
    await Promise.all(hosts.map((h) => waitPort(h.mgmtAddr, h.alias.endsWith('-bare') ? 2222 : 22, 10_000)));
    const sshConfig = path.join(dir, 'ssh_config');
    writeFileSync(
      sshConfig,
      hosts
        .map((h) =>
          [
            `Host ${h.alias}`,
            `  HostName ${h.mgmtAddr}`,
            ...(h.alias.endsWith('-bare') ? ['  Port 2222'] : []),
            '  User root',
            `  IdentityFile ${path.join(dir, 'id')}`,
            '  IdentitiesOnly yes',
            '  StrictHostKeyChecking no',
            '  UserKnownHostsFile /dev/null',
            '  LogLevel ERROR',
            '',
          ].join('\n'),
        )
        .join('\n'),
    );
    const dropConnections = async (h: SshTestHost) => {
      // Session processes are the namespace's sshd processes other than the listener.
      const pids = (await output(['ip', 'netns', 'pids', h.ns])).split(/\s+/).filter(Boolean).map(Number);
      let n = 0;
      const listeners = new Set(hosts.map((x) => x.sshd.pid));
      for (const p of pids) {
        const cl = (await output(['cat', `/proc/${p}/cmdline`], { allowFail: true })).replace(/\0/g, ' ');
        if (!listeners.has(p) && /^sshd: /.test(cl.trim())) {
          try {
            process.kill(p, 'SIGKILL');
            n++;
          } catch {
            /* gone */
          }
        }
      }
      return n;
    };
    return { a: hosts[0], b: hosts[1], bBare: { alias: hosts[2].alias, cacheDir }, sshConfig, dir, dropConnections, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}
