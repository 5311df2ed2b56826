/**
 * Two SSH-reached "hosts" on this machine, for `vxtap bench --hosts` without
 * real hosts: two network namespaces, each running its own OpenSSH server
 * (Debian openssh-server) with a host key, an authorized key made for the
 * occasion and `PidFile none`, reached from the root namespace over a
 * management veth each, and joined to each other by a data veth (the
 * underlay). An ssh_config names them `<prefix>-a` / `<prefix>-b`. The
 * integration tests (test/helpers/sshd.ts) and the agreement tool
 * (agreement-run.ts) build them here.
 *
 *   root M.1/30 -- M.2/30 nsA              nsA D.1/24 -- D.2/24 nsB
 *   root M.5/30 -- M.6/30 nsB
 *
 * M and D are two /24s of 198.18.0.0/15 chosen by the caller, so two users
 * (a test and the tool) can exist side by side with different prefixes.
 * Every name derives from the prefix, so {@link removeSshNetnsPair} can clean
 * up after a killed process from the prefix alone. `destroy()` removes
 * everything (sshd and every process in the namespaces, the namespaces with
 * their veths, the key directory), also after a failure of the build itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { output, run } from '../../src/host/exec.js';

/** Why the SSH hosts cannot be built here, or null. */
export function sshNetnsSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/usr/sbin/sshd')) return 'needs /usr/sbin/sshd (apt-get install openssh-server)';
  if (!existsSync('/usr/bin/ssh')) return 'needs ssh (apt-get install openssh-client)';
  return null;
}

/** One SSH-reached host. */
export interface SshNetnsHost {
  ns: string;
  /** ssh_config alias. */
  alias: string;
  mgmtAddr: string;
  dataAddr: string;
  dataDev: string;
  sshd: ChildProcess;
}

/** The pair and its ssh configuration. */
export interface SshNetnsPair {
  a: SshNetnsHost;
  b: SshNetnsHost;
  /** ssh_config file naming both hosts (key, user root, no host key checks). */
  sshConfig: string;
  /**
   * With `hiddenRoot`: host B as a machine without vxtap: a second sshd in B's
   * namespace (port 2222) whose sessions run in a private mount namespace with
   * `hiddenRoot` (the checkout) covered by an empty tmpfs, and XDG_CACHE_HOME =
   * `cacheDir`. Null otherwise.
   */
  bBare: { alias: string; cacheDir: string } | null;
  dir: string;
  /** Kill every sshd session process (not the listener) of a host: drops its connections. */
  dropConnections(h: SshNetnsHost): Promise<number>;
  destroy(): Promise<void>;
}

/** What to build. */
export interface SshNetnsOptions {
  /** Names namespaces, root-side links and aliases; 2 to 5 lowercase letters or digits (links are `<prefix>ma`, 15 characters at most). */
  prefix: string;
  /** First three octets of the management /24 (root side .1 and .5, hosts .2 and .6), inside 198.18.0.0/15. */
  mgmtNet: string;
  /** First three octets of the data (underlay) /24 (A .1, B .2), inside 198.18.0.0/15. */
  dataNet: string;
  /** Also start host B's second sshd that hides this directory (tests of --deploy). */
  hiddenRoot?: string;
}

/** Check options; returns an Error naming the field. */
export function validateSshNetnsOptions(o: SshNetnsOptions): Error | null {
  if (!/^[a-z][a-z0-9]{1,4}$/.test(o.prefix)) return new TypeError(`prefix must be 2 to 5 lowercase letters or digits, starting with a letter (got "${o.prefix}")`);
  if (o.prefix.startsWith('vxb')) return new TypeError(`prefix must not start with "vxb" (vxtap bench --cleanup deletes vxb* namespaces; got "${o.prefix}")`);
  for (const f of ['mgmtNet', 'dataNet'] as const) {
    const m = /^198\.(18|19)\.(\d{1,3})$/.exec(o[f]);
    if (!m || Number(m[2]) > 255) return new TypeError(`${f} must be the first three octets of a /24 inside 198.18.0.0/15, e.g. 198.18.241 (got "${o[f]}")`);
  }
  if (o.mgmtNet === o.dataNet) return new TypeError(`mgmtNet and dataNet must differ (both "${o.mgmtNet}")`);
  return null;
}

/** Names every object of a pair derives from its prefix (also what {@link removeSshNetnsPair} deletes). */
export function sshNetnsNames(prefix: string): { nsA: string; nsB: string; mA: string; mB: string; dA: string; dB: string } {
  return { nsA: `${prefix}a`, nsB: `${prefix}b`, mA: `${prefix}ma`, mB: `${prefix}mb`, dA: `${prefix}d0`, dB: `${prefix}d1` };
}

/**
 * Remove a pair by its prefix: every process in its namespaces (sshd, agents,
 * whatever a killed run left), the namespaces with their veths, the root-side
 * management links. Returns what it removed. Idempotent.
 */
export async function removeSshNetnsPair(prefix: string): Promise<string[]> {
  const names = sshNetnsNames(prefix);
  const removed: string[] = [];
  const present = (await output(['ip', 'netns', 'list'], { allowFail: true })).split('\n').map((l) => l.split(/\s+/)[0]);
  for (const ns of [names.nsA, names.nsB]) {
    if (!present.includes(ns)) continue;
    const pids = (await output(['ip', 'netns', 'pids', ns], { allowFail: true })).split(/\s+/).filter(Boolean);
    for (const p of pids) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await run(['ip', 'netns', 'del', ns], { allowFail: true });
    removed.push(`namespace ${ns}${pids.length ? ` (${pids.length} processes killed)` : ''}`);
  }
  for (const l of [names.mA, names.mB]) {
    if ((await run(['ip', 'link', 'del', l], { allowFail: true })).code === 0) removed.push(`link ${l}`);
  }
  // A killed check's view of the cgroup mount (startSshd), before its directory can go.
  for (const m of cgroupBinds(prefix)) {
    if ((await run(['umount', '-R', m], { allowFail: true })).code === 0) {
      removed.push(`mount ${m}`);
      rmSync(path.dirname(m), { recursive: true, force: true });
    }
  }
  return removed;
}

/** Mount points of the cgroup views of pairs of `prefix` (os.tmpdir()/PREFIX-ssh-XXXXXX/cgroup), from mountinfo. */
function cgroupBinds(prefix: string): string[] {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const re = new RegExp(`^${os.tmpdir().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/${prefix}-ssh-[^/]+/cgroup$`);
  return [
    ...new Set(
      info
        .split('\n')
        .map((l) => l.split(' ')[4] ?? '')
        .filter((m) => re.test(m)),
    ),
  ];
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
 * sshd_config for a server: key-only root login with the pair's host key and
 * authorized_keys, no PAM, no pid file; XDG_CACHE_HOME points into the pair's
 * directory so a --deploy never writes to this machine's ~/.cache.
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

/**
 * Write `config` to DIR/NAME.conf and start sshd in the foreground inside `ns`,
 * logging to DIR/NAME.log, in a process group of its own: a Ctrl-C in the
 * terminal must not stop the servers before the clean-up has used them.
 */
function startSshd(dir: string, ns: string, name: string, config: string): ChildProcess {
  const conf = path.join(dir, `${name}.conf`);
  writeFileSync(conf, config);
  // `ip netns exec` mounts a fresh sysfs (the namespace's /sys/class/net) without the cgroup
  // hierarchies, where a real host's sshd has them; the agents' --cpu-priority group needs them.
  // DIR/cgroup is the machine's cgroup mount (createSshNetnsPair); without it sshd starts all the same.
  const cg = path.join(dir, 'cgroup');
  const script = 'if [ -d "$1/cpu" ] || [ -f "$1/cgroup.controllers" ]; then mount --rbind "$1" /sys/fs/cgroup || true; fi; shift; exec "$@"';
  const sshd = ['/usr/sbin/sshd', '-D', '-f', conf, '-E', path.join(dir, `${name}.log`)];
  return spawn('ip', ['netns', 'exec', ns, '/bin/sh', '-c', script, 'sh', cg, ...sshd], { stdio: 'ignore', detached: true });
}

/** Build the pair (throws a TypeError for bad options before touching the host). */
export async function createSshNetnsPair(o: SshNetnsOptions): Promise<SshNetnsPair> {
  const bad = validateSshNetnsOptions(o);
  if (bad) throw bad;
  const { prefix } = o;
  const names = sshNetnsNames(prefix);
  // Refuse before creating anything: the clean-up after a failed build removes by name, and must never meet another user's pair.
  const present = (await output(['ip', 'netns', 'list'], { allowFail: true })).split('\n').map((l) => l.split(/\s+/)[0]);
  const taken = [names.nsA, names.nsB].filter((n) => present.includes(n));
  if (taken.length)
    throw new Error(
      `namespace ${taken.join(', ')} exists: another user of prefix "${prefix}" is running, or a killed one left it (node scripts/hosts-agreement.mjs --cleanup --prefix ${prefix} removes it)`,
    );
  const dir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-ssh-`));
  const hosts: SshNetnsHost[] = [];
  const cg = path.join(dir, 'cgroup');
  const destroy = async () => {
    for (const h of hosts) h.sshd.kill('SIGKILL');
    await removeSshNetnsPair(prefix); // also unmounts DIR/cgroup
    // Never a recursive remove across a mount that is still there: it would walk into the cgroup tree.
    if (cgroupBinds(prefix).includes(cg)) process.stderr.write(`ssh-netns: ${cg} is still mounted; left ${dir} (umount -R ${cg})\n`);
    else rmSync(dir, { recursive: true, force: true });
  };
  try {
    mkdirSync(cg);
    await run(['mount', '--rbind', '/sys/fs/cgroup', cg], { allowFail: true });
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'hostkey')]);
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'id')]);
    await run(['cp', path.join(dir, 'id.pub'), path.join(dir, 'authorized_keys')]);
    mkdirSync('/run/sshd', { recursive: true });
    const spec = [
      { ns: names.nsA, m: names.mA, rootAddr: `${o.mgmtNet}.1`, mgmtAddr: `${o.mgmtNet}.2`, dataAddr: `${o.dataNet}.1`, dataDev: names.dA, alias: `${prefix}-a` },
      { ns: names.nsB, m: names.mB, rootAddr: `${o.mgmtNet}.5`, mgmtAddr: `${o.mgmtNet}.6`, dataAddr: `${o.dataNet}.2`, dataDev: names.dB, alias: `${prefix}-b` },
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
    let bBare: SshNetnsPair['bBare'] = null;
    if (o.hiddenRoot !== undefined) {
      // B without vxtap: the checkout hidden from its sessions.
      const cacheDir = path.join(dir, 'cache-b-bare');
      const wrapper = path.join(dir, 'bare-session.sh');
      writeFileSync(wrapper, `#!/bin/sh\nexec unshare -m /bin/sh -c 'mount -t tmpfs tmpfs "$0" && exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"' ${o.hiddenRoot}\n`, { mode: 0o755 });
      const bareSshd = startSshd(dir, spec[1].ns, 'sshd-bare', sshdConfig(dir, { port: 2222, listen: spec[1].mgmtAddr, cacheDir, extra: [`ForceCommand ${wrapper}`] }));
      hosts.push({ ns: spec[1].ns, alias: `${prefix}-b-bare`, mgmtAddr: spec[1].mgmtAddr, dataAddr: spec[1].dataAddr, dataDev: spec[1].dataDev, sshd: bareSshd });
      bBare = { alias: `${prefix}-b-bare`, cacheDir };
    }
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
    const dropConnections = async (h: SshNetnsHost) => {
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
    return { a: hosts[0], b: hosts[1], bBare, sshConfig, dir, dropConnections, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}
