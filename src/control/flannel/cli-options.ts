/**
 * The command-line surface of etcd mode, as data: `vxtap up` adds these options
 * (each with a VXTAP_* environment mirror) and turns the parsed values into
 * FlannelControlOptions with `flannelOptionsFromCli()`.
 */
import { Option, type Command } from 'commander';
import { FLANNEL_DEFAULTS, MAX_LEASE_TTL_SECONDS } from './config.js';
import { DEFAULT_SUBNET_FILE } from './subnet-env.js';
// type only: control.js loads the etcd client (~0.5 s), which `vxtap up` without etcd never needs
import type { FlannelControlOptions } from './control.js';

/** One option: commander flags, environment mirror, help text, default. */
export interface CliOptionSpec {
  flags: string;
  env: string;
  description: string;
  default?: string;
}

/** Options of etcd (flannel) mode. `--local` and `--name` belong to `vxtap up` itself. */
export const FLANNEL_CLI_OPTIONS: readonly CliOptionSpec[] = [
  { flags: '--etcd-endpoints <urls>', env: 'VXTAP_ETCD_ENDPOINTS', description: 'comma-separated etcd URLs (http:// or https://); enables etcd (flannel) mode' },
  { flags: '--etcd-prefix <path>', env: 'VXTAP_ETCD_PREFIX', description: 'etcd key prefix of the flannel network', default: FLANNEL_DEFAULTS.prefix },
  { flags: '--subnet-file <path>', env: 'VXTAP_SUBNET_FILE', description: 'where to write subnet.env (FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ)', default: DEFAULT_SUBNET_FILE },
  { flags: '--lease-ttl <duration>', env: 'VXTAP_LEASE_TTL', description: 'subnet lease lifetime, 3s to 24d (e.g. 24h, 30s; plain number = seconds)', default: '24h' },
  { flags: '--etcd-cafile <path>', env: 'VXTAP_ETCD_CAFILE', description: 'PEM CA bundle to verify etcd (https endpoints)' },
  { flags: '--etcd-certfile <path>', env: 'VXTAP_ETCD_CERTFILE', description: 'PEM client certificate for etcd' },
  { flags: '--etcd-keyfile <path>', env: 'VXTAP_ETCD_KEYFILE', description: 'PEM client key for etcd' },
  { flags: '--etcd-username <name>', env: 'VXTAP_ETCD_USERNAME', description: 'etcd user (with --etcd-password)' },
  { flags: '--etcd-password <password>', env: 'VXTAP_ETCD_PASSWORD', description: 'etcd password (prefer the environment variable)' },
];

const ETCD_HELP = `
etcd (flannel) mode (--etcd-endpoints): the network config is read from PREFIX/config in
flannel's format ({"Network": "198.19.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan"}});
VNI and port come from there (flannel defaults: VNI 1, port 8472). This host leases a subnet,
publishes PublicIP (--local) and its VtepMAC, and routes every other lease's subnet through the
overlay; packets from underlay addresses without a lease are dropped. --peer is not allowed.
  vxtap up --local 198.18.0.1 --etcd-endpoints http://198.18.0.250:2379 --lease-ttl 24h`;

/** Add the etcd-mode options (and a help paragraph) to a commander command. */
export function addFlannelCliOptions(cmd: Command): Command {
  for (const o of FLANNEL_CLI_OPTIONS) {
    const opt = new Option(o.flags, o.description).env(o.env);
    if (o.default !== undefined) opt.default(o.default);
    cmd.addOption(opt);
  }
  cmd.addHelpText('after', ETCD_HELP);
  return cmd;
}

/**
 * Parse '24h', '90m', '30s', '45' (seconds) into whole seconds, between 3 s and
 * `maxSeconds` (default: the longest lease TTL whose renewal timer a Node timer
 * can hold, 24 days); throws naming the flag.
 */
export function parseDurationSeconds(text: string, flag = '--lease-ttl', maxSeconds = MAX_LEASE_TTL_SECONDS, maxReason = 'longer renewal timers overflow'): number {
  const m = /^(\d+)(s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new TypeError(`${flag} must be a duration like 24h, 10m or 30s, got ${JSON.stringify(text)}`);
  const n = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[((m[2] as string | undefined) ?? 's') as 's' | 'm' | 'h' | 'd'];
  if (n < 3) throw new TypeError(`${flag} must be at least 3s, got ${JSON.stringify(text)}`);
  if (!Number.isSafeInteger(n) || n > maxSeconds) throw new TypeError(`${flag} must be at most ${maxSeconds / 86400}d (${maxSeconds}s: ${maxReason}), got ${JSON.stringify(text)}`);
  return n;
}

/** Values as commander delivers them (camelCase of the flags). */
export interface FlannelCliValues {
  etcdEndpoints?: string;
  etcdPrefix?: string;
  subnetFile?: string;
  leaseTtl?: string;
  etcdCafile?: string;
  etcdCertfile?: string;
  etcdKeyfile?: string;
  etcdUsername?: string;
  etcdPassword?: string;
}

/**
 * Turn parsed CLI values into control options; undefined when etcd mode is off
 * (no --etcd-endpoints). Throws TypeError naming the flag on bad values.
 */
export function flannelOptionsFromCli(v: FlannelCliValues, local: string): FlannelControlOptions | undefined {
  if (!v.etcdEndpoints) return undefined;
  const endpoints = v.etcdEndpoints
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const o: FlannelControlOptions = {
    endpoints,
    local,
    prefix: v.etcdPrefix ?? FLANNEL_DEFAULTS.prefix,
    subnetFile: v.subnetFile ?? DEFAULT_SUBNET_FILE,
    leaseTtlSeconds: parseDurationSeconds(v.leaseTtl ?? '24h'),
  };
  if (v.etcdCafile || v.etcdCertfile || v.etcdKeyfile) o.tls = { caFile: v.etcdCafile, certFile: v.etcdCertfile, keyFile: v.etcdKeyfile };
  if (v.etcdUsername || v.etcdPassword) {
    if (!v.etcdUsername || v.etcdPassword === undefined) throw new TypeError('--etcd-username and --etcd-password must be given together');
    o.auth = { username: v.etcdUsername, password: v.etcdPassword };
  }
  return o;
}
