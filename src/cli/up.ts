/**
 * `vxtap up`: run a VTEP in the foreground until SIGINT/SIGTERM.
 * Flags override the config file; every flag has an environment mirror
 * (VXTAP_<FLAG>, e.g. VXTAP_VNI=42).
 */
import { Command, Option } from 'commander';
import { ConfigError, DEFAULTS, mergeConfig, parsePortRange, plainHttpEndpoints, readConfigFile, readSecretFile, validateConfig, type VtepConfig } from '../config.js';
import { Vtep } from '../dataplane/vtep.js';
import { TEST_SLOWDOWN_ENV, testSlowdownFromEnv } from '../pipeline/slowdown.js';
import { SUPER_FRAMES_PER_READ } from '../dataplane/sizing.js';
// etcd mode's control plane (and its etcd client, ~0.5 s to load) is imported
// only when used: a restarted static-mode instance is forwarding sooner
import { addFlannelCliOptions, flannelOptionsFromCli } from '../control/flannel/cli-options.js';

function int(field: string) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v.trim())) throw new ConfigError(field, `'${v}' is not an integer`);
    return Number(v);
  };
}

function collect(v: string, prev: string[] = []): string[] {
  return [
    ...prev,
    ...v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

const CONFIG_HELP = `
Config file (--config FILE): a JSON object with any of these fields (flags win):
  name, vni, port, srcPortRange ("49152-49215") or srcPortMin/srcPortMax, local,
  peers (["198.18.0.2", {"address": "198.18.0.3", "flood": false}]), address, mtu,
  mac, workers, df ("set"|"unset"|"inherit"), learning, ageingSeconds,
  acceptUnknownPeers, fdb ([{"mac": "02:00:00:00:00:01", "peer": "198.18.0.2"}]),
  batchSize, statsSocket, metrics ("127.0.0.1:9476"), busyPollUs, cpuPlacement, offload, txQueueLen, uplinkBridge.

Example:
  vxtap up --local 198.18.0.1 --peer 198.18.0.2 --address 198.19.0.1/16 --vni 42

Statistics: 'vxtap stats --name NAME' (JSON), or HTTP on the control socket
(/run/vxtap/NAME.sock in the host's network namespace, /run/vxtap/netns-INODE/NAME.sock
in any other: /stats, /metrics in Prometheus format, /fdb). --metrics serves only /metrics.
The TAP MAC is derived from --name, --local and --vni, so a restart keeps it.
Test-only: VXTAP_TEST_SLOWDOWN_PCT=P (integer 0-90, default off) makes each worker
busy-wait P% of every batch's processing time (a known throughput cost, for
validating the bench); stats show it as testSlowdownPct.
Exit status: 0 after a clean shutdown, 2 for an invalid configuration, 1 on failure.`;

/** Build the VtepConfig from flags, env and the config file; throws ConfigError. */
export function configFromOptions(opts: Record<string, unknown>): VtepConfig {
  const file = typeof opts.config === 'string' ? readConfigFile(opts.config) : {};
  const flags: Partial<VtepConfig> = {
    name: opts.name as string | undefined,
    vni: opts.vni as number | undefined,
    port: opts.port as number | undefined,
    local: opts.local as string | undefined,
    address: opts.address as string | undefined,
    mtu: opts.mtu as number | undefined,
    mac: opts.mac as string | undefined,
    workers: opts.workers as number | undefined,
    df: opts.df as VtepConfig['df'] | undefined,
    ageingSeconds: opts.ageing as number | undefined,
    batchSize: opts.batch as number | undefined,
    statsSocket: opts.statsSocket as string | undefined,
    metrics: opts.metrics as string | undefined,
    busyPollUs: opts.busyPoll as number | undefined,
    cpuPlacement: opts.cpuPlacement as VtepConfig['cpuPlacement'] | undefined,
    txQueueLen: opts.txqueuelen as number | undefined,
    uplinkBridge: opts.uplinkBridge as string | undefined,
  };
  if (Array.isArray(opts.peer) && opts.peer.length) flags.peers = (opts.peer as string[]).map((address) => ({ address }));
  if (typeof opts.srcportRange === 'string') [flags.srcPortMin, flags.srcPortMax] = parsePortRange(opts.srcportRange);
  if (opts.learning === false) flags.learning = false;
  if (opts.acceptUnknownPeers === true) flags.acceptUnknownPeers = true;
  if (opts.offload === false) flags.offload = false;
  const cfg = mergeConfig(file, flags);
  const err = validateConfig(cfg);
  if (err) throw err;
  return cfg;
}

/** `vxtap up`'s options and help on `cmd`, without the action (register adds it; checkUpFlags parses with it). */
function upCommand(cmd: Command): Command {
  const up = cmd
    .description('Run a userspace VXLAN tunnel endpoint on a TAP device until SIGINT/SIGTERM.')
    .addOption(new Option('--config <file>', 'JSON config file (fields below)').env('VXTAP_CONFIG'))
    .addOption(new Option('--name <name>', `TAP device name (default ${DEFAULTS.name})`).env('VXTAP_NAME'))
    .addOption(new Option('--vni <n>', `VXLAN network identifier, 0-16777215 (default ${DEFAULTS.vni})`).argParser(int('vni')).env('VXTAP_VNI'))
    .addOption(new Option('--port <n>', `UDP destination/listen port (default ${DEFAULTS.port}; flannel and Linux default 8472)`).argParser(int('port')).env('VXTAP_PORT'))
    .addOption(
      new Option('--srcport-range <min-max>', `UDP source ports chosen by inner-flow hash (default ${DEFAULTS.srcPortMin}-${DEFAULTS.srcPortMax}; at most 1024 ports)`).env('VXTAP_SRCPORT_RANGE'),
    )
    .addOption(new Option('--local <addr>', 'local underlay IPv4/IPv6 address (required)').env('VXTAP_LOCAL'))
    .addOption(new Option('--peer <addr>', 'remote VTEP underlay address; repeat or comma-separate (flood list)').argParser(collect).env('VXTAP_PEER'))
    .addOption(new Option('--address <cidr>', 'overlay address to put on the TAP, e.g. 198.19.0.1/16').env('VXTAP_ADDRESS'))
    .addOption(new Option('--mtu <bytes>', 'TAP MTU (default: underlay MTU - 50 for IPv4, - 70 for IPv6)').argParser(int('mtu')).env('VXTAP_MTU'))
    .addOption(new Option('--mac <mac>', 'TAP MAC address (default: derived from name, local address and VNI; stable across restarts)').env('VXTAP_MAC'))
    .addOption(new Option('--workers <n>', `worker threads, one TAP queue each (default ${DEFAULTS.workers})`).argParser(int('workers')).env('VXTAP_WORKERS'))
    .addOption(new Option('--df <mode>', `outer don't-fragment bit: set, unset or inherit (default ${DEFAULTS.df})`).env('VXTAP_DF'))
    .addOption(new Option('--no-learning', 'do not learn inner MAC -> VTEP from received packets').env('VXTAP_NO_LEARNING'))
    .addOption(new Option('--accept-unknown-peers', 'accept and learn packets from underlay addresses that are not peers').env('VXTAP_ACCEPT_UNKNOWN_PEERS'))
    .addOption(new Option('--ageing <seconds>', `age out learned entries not seen for this long (default ${DEFAULTS.ageingSeconds})`).argParser(int('ageing')).env('VXTAP_AGEING'))
    .addOption(
      new Option('--batch <frames>', `frames per batch (default ${DEFAULTS.batchSize}; with offload at most ${SUPER_FRAMES_PER_READ} super-frames per TAP read)`)
        .argParser(int('batch'))
        .env('VXTAP_BATCH'),
    )
    .addOption(new Option('--busy-poll <us>', 'spin this many microseconds before blocking (lower latency, more CPU; default 0)').argParser(int('busy-poll')).env('VXTAP_BUSY_POLL'))
    .addOption(
      new Option(
        '--cpu-placement <where>',
        `any: workers run where the scheduler puts them; local: worker n pinned to CPU n, received datagrams handed to the worker of the CPU that received them, each flow on one worker (default ${DEFAULTS.cpuPlacement})`,
      ).env('VXTAP_CPU_PLACEMENT'),
    )
    .addOption(
      new Option('--txqueuelen <frames>', `TAP transmit queue length (default ${DEFAULTS.txQueueLen}; absorbs worker scheduling hiccups)`).argParser(int('txqueuelen')).env('VXTAP_TXQUEUELEN'),
    )
    .addOption(
      new Option(
        '--uplink-bridge <bridge>',
        'transmit whole TSO super-frames through a TAP port of this bridge (the one holding --local) with UDP-tunnel GSO (Linux 6.17+): the kernel segments, vxtap does not; IPv4 only',
      ).env('VXTAP_UPLINK_BRIDGE'),
    )
    .addOption(new Option('--no-offload', 'no TSO/GSO/GRO: one MTU-sized frame per TAP read and per datagram').env('VXTAP_NO_OFFLOAD'))
    .addOption(new Option('--stats-socket <path>', 'control socket (default /run/vxtap/NAME.sock, per network namespace)').env('VXTAP_STATS_SOCKET'))
    .addOption(new Option('--metrics <host:port>', 'also serve Prometheus /metrics (only) over TCP here').env('VXTAP_METRICS'))
    .addOption(new Option('--etcd-password-file <file>', 'read the etcd password from this file (not visible in ps)').env('VXTAP_ETCD_PASSWORD_FILE'))
    .addHelpText('after', CONFIG_HELP);
  // etcd (flannel) mode: --etcd-endpoints and friends (src/control/flannel/cli-options.ts).
  return addFlannelCliOptions(up);
}

/**
 * Read `vxtap up` flags as the command would and validate the configuration,
 * starting nothing and touching nothing on the host. Throws ConfigError for a bad
 * value, or Error for a flag the command does not take. The bench checks a vxtap
 * mode's parameters with it before it sets anything up.
 */
export function checkUpFlags(args: string[]): VtepConfig {
  const cmd = upCommand(new Command('up'))
    .exitOverride()
    .configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  try {
    cmd.parse(args, { from: 'user' });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new Error((err as Error).message.replace(/^error: /, ''), { cause: err });
  }
  return configFromOptions(cmd.opts());
}

/** The long flags `vxtap up` takes (`--workers`, `--no-offload`, ...). */
export function upFlags(): Set<string> {
  return new Set(upCommand(new Command('up')).options.flatMap((o) => (o.long ? [o.long] : [])));
}

/** Register `vxtap up`. */
export function register(program: Command): void {
  upCommand(program.command('up')).action(async (opts: Record<string, unknown>) => {
    let cfg: VtepConfig;
    try {
      cfg = configFromOptions(opts);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`vxtap up: invalid configuration: ${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    // test-only knob (src/pipeline/slowdown.ts): validated before anything touches the host
    const testSlowdownPct = testSlowdownFromEnv(process.env);
    if (testSlowdownPct instanceof Error) {
      process.stderr.write(`vxtap up: invalid configuration: ${testSlowdownPct.message}\n`);
      process.exit(2);
    }
    if (testSlowdownPct > 0) process.stderr.write(`vxtap up: warning: test-only slowdown active: ${TEST_SLOWDOWN_ENV}=${testSlowdownPct} (each batch costs ${testSlowdownPct}% more worker time)\n`);
    let etcdMode;
    try {
      if (typeof opts.etcdPasswordFile === 'string') {
        if (opts.etcdPassword !== undefined) throw new ConfigError('etcd-password-file', 'give --etcd-password or --etcd-password-file, not both');
        opts.etcdPassword = readSecretFile(opts.etcdPasswordFile, 'etcd-password-file', (m) => process.stderr.write(`vxtap up: warning: ${m}\n`));
      }
      etcdMode = flannelOptionsFromCli(opts, cfg.local);
    } catch (err) {
      process.stderr.write(`vxtap up: invalid configuration: ${(err as Error).message}\n`);
      process.exit(2);
    }
    if (etcdMode && (opts.etcdPassword !== undefined || opts.etcdUsername !== undefined)) {
      const plain = plainHttpEndpoints(etcdMode.endpoints);
      if (plain.length) process.stderr.write(`vxtap up: warning: etcd credentials go in clear text to ${plain.join(', ')} (use https:// endpoints)\n`);
    }
    if (etcdMode) await (await import('./up-flannel.js')).runFlannelUp(cfg, etcdMode);
    else await runUp(cfg);
  });
}

/** Start the VTEP and wait for a signal or a worker failure. */
export async function runUp(cfg: VtepConfig): Promise<void> {
  let vtep: Vtep;
  try {
    vtep = await Vtep.start(cfg);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`vxtap up: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    const e = err as Error & { code?: string };
    process.stderr.write(`vxtap up: ${e.message}\n`);
    process.exit(1);
  }
  process.stderr.write(
    `vxtap: ${vtep.tapName} up (vni ${cfg.vni}, port ${cfg.port}, mtu ${vtep.mtu}, mac ${vtep.tapMac}, ${cfg.workers} worker${cfg.workers > 1 ? 's' : ''}, peers ${cfg.peers.map((p) => p.address).join(',') || 'none'})\n`,
  );
  const code = await new Promise<number>((resolve) => {
    const onSignal = (sig: string) => {
      process.stderr.write(`vxtap: ${sig}, shutting down\n`);
      resolve(0);
    };
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    void vtep.failed.then(() => resolve(1));
  });
  await vtep.stop();
  process.exit(code);
}
