/**
 * `vxtap bench`: the overlay benchmark (bare underlay, kernel VXLAN, Open
 * vSwitch GRE/VXLAN and vxtap side by side). Writes
 * `<out>/<timestamp>-<hostname>/result.json` and `summary.md`; progress and the
 * terminal summary go to stderr, `--json` prints the result to stdout.
 * `--cleanup` removes what a killed run left behind.
 */
import type { CpuPriority } from '../../bench/placement.js';
import { Command, Option } from 'commander';
import os from 'node:os';
import path from 'node:path';
import { cleanupBench, formatCleanupReport } from '../../bench/cleanup.js';
import { DEFAULT_MODES, latencyToolsMissing, QUICK_MODES, repoRoot, runBench, validateOptions, type BenchOptions } from '../../bench/run.js';
import { renderTerminalSummary } from '../../bench/summary.js';
import { localBenchBusy, releaseLocalBenchLock, takeLocalBenchLock, underParentLock } from '../../bench/state.js';
import type { Pinning } from '../../bench/measure.js';
import type { LatencyTool } from '../../bench/sockperf.js';
import { impairmentQdisc, netemArgs, netemUnavailableReason } from '../../bench/topology.js';
import { registerCompare } from './bench-compare.js';
import { registerHistory } from './bench-history.js';
import { registerCi } from './bench-ci.js';
import { addPlanOptions, planFlagsOf } from './plan.js';
import { parsePlanFlags } from '../../bench/plan.js';
import { parseContention } from '../../bench/contention.js';
import type { UnderlayOffloads } from '../../bench/offloads.js';
import type { Endpoints } from '../../bench/pods.js';
import { defaultMeasures, measuresRemoteError, parseMeasureList, type Measure } from '../../bench/claim-measures.js';
import { cleanupHosts, RemotePair, REMOTE_DEFAULTS, validateRemoteOptions, type RemoteOptions } from '../../bench/remote/pair.js';

/** Default values of every bench flag (one place). */
export const BENCH_DEFAULTS = {
  modes: DEFAULT_MODES.join(','),
  quickModes: QUICK_MODES.join(','),
  mtu: 1500,
  out: 'results',
  pin: 'cross' as Pinning,
  cpuPriority: 'high' as CpuPriority,
  // sockperf: 8-30 us lower p50 than the own Node ping-pong on the same paths, 2.5x the samples, lower CVs (bench/README.md, Latency tool).
  latencyTool: 'sockperf',
  endpoints: 'host' as Endpoints,
  underlayOffloads: 'full' as UnderlayOffloads,
};

function env(name: string): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** Register `bench` on the program. */
export function register(program: Command): void {
  const bench = program
    .command('bench')
    .enablePositionalOptions() // `bench compare ... --json`: the sub-command's own flags
    .description('Benchmark bare veth, kernel VXLAN, OVS GRE/VXLAN (userspace datapath) and vxtap between two namespaces; needs root.')
    .addOption(new Option('--quick', 'quick profile: 1 round, short trials, at most ~90 s for all modes (CI smoke)').env('VXTAP_BENCH_QUICK'))
    .addOption(new Option('--full', 'full profile: RFC 2544-length (60 s) trials, all frame sizes; takes hours').env('VXTAP_BENCH_FULL'))
    .addOption(
      new Option(
        '--modes <list>',
        `comma-separated modes: bare, kernel-vxlan, ovs-gre, ovs-vxlan, vxtap, vxtap:workers=N,offload=off,busy-poll=US,batch=N,mtu=N,uplink=on (default: "${BENCH_DEFAULTS.modes}"; with --quick: "${BENCH_DEFAULTS.quickModes}")`,
      ).env('VXTAP_BENCH_MODES'),
    )
    .addOption(new Option('--rounds <n>', 'rounds, modes interleaved per round (default: 3, quick: 1)').env('VXTAP_BENCH_ROUNDS'))
    .addOption(new Option('--mtu <bytes>', 'underlay MTU in bytes').default(String(BENCH_DEFAULTS.mtu)).env('VXTAP_BENCH_MTU'))
    .addOption(new Option('--delay <time>', 'netem delay on each underlay end, e.g. 2ms').env('VXTAP_BENCH_DELAY'))
    .addOption(new Option('--loss <percent>', 'netem loss on each underlay end, e.g. 0.1%').env('VXTAP_BENCH_LOSS'))
    .addOption(new Option('--rate <rate>', 'netem rate limit on each underlay end, e.g. 1gbit').env('VXTAP_BENCH_RATE'))
    .addOption(
      new Option('--endpoints <where>', 'where the load generators run: host (the hosts themselves) or pod (a pod namespace per host behind a bridge, as the CNI bridge plugin attaches pods)')
        .default(BENCH_DEFAULTS.endpoints)
        .env('VXTAP_BENCH_ENDPOINTS'),
    )
    .addOption(
      new Option('--contention <pct>', "also run every mode with a CPU hog (stress-ng) taking PCT% of each host's CPUs, interleaved with the plain runs (0 < PCT < 100; off by default)").env(
        'VXTAP_BENCH_CONTENTION',
      ),
    )
    .addOption(
      new Option(
        '--underlay-offloads <set>',
        'underlay device offloads: full, or no-tunnel-tso (tx-udp_tnl-segmentation and tx-udp_tnl-csum-segmentation off, USO on; with --hosts applied to the real underlay device and restored at the end)',
      )
        .default(BENCH_DEFAULTS.underlayOffloads)
        .env('VXTAP_BENCH_UNDERLAY_OFFLOADS'),
    )
    .addOption(
      new Option(
        '--cpu-priority <p>',
        'CPU weight of the run: high (the bench, its load generators and the dataplanes in a cgroup of their own with the highest CPU weight, so other work on the machine yields while it measures; needs root and a cgroup cpu controller, else recorded and run at normal) or normal (where it was started)',
      )
        .default(BENCH_DEFAULTS.cpuPriority)
        .env('VXTAP_BENCH_CPU_PRIORITY'),
    )
    .addOption(new Option('--pin <how>', 'CPU pinning of the latency client/server: cross (CPU 0 / CPU 1), same (both CPU 0), none').default(BENCH_DEFAULTS.pin).env('VXTAP_BENCH_PIN'))
    .addOption(
      new Option(
        '--latency-tool <tool>',
        'request/response latency tool: rr (the own Node TCP ping-pong, 1-byte messages), sockperf (sockperf ping-pong --tcp, 14-byte messages; needs the sockperf package on both hosts), or both side by side as rr,sockperf (each mode-round measures with each, order rotated per round; the first fills the latency metrics, the others latencyOthers); same histogram either way, the tool is recorded in every latency sample',
      )
        .default(BENCH_DEFAULTS.latencyTool)
        .env('VXTAP_BENCH_LATENCY_TOOL'),
    )
    .addOption(
      new Option(
        '--measure <list>',
        'what to measure per mode: standard (TCP, UDP, latency, MTU sweep), or some of its parts alone (tcp, udp, latency, mtu: e.g. tcp,latency, what bench ci gates on), mtu-mismatch (TCP transfers with the endpoints forced to the underlay MTU, PMTUD on/off; not with --hosts), redis (redis-benchmark GET/SET through the overlay, idle, loaded, netem RTT sweep where netem exists), or all; the claim measurements run in round 1 (default: standard; --full: all)',
      ).env('VXTAP_BENCH_MEASURE'),
    )
    .addOption(new Option('--out <dir>', 'results directory (a <timestamp>-<hostname> folder is created inside)').default(BENCH_DEFAULTS.out).env('VXTAP_BENCH_OUT'))
    .addOption(new Option('--json', 'print result.json to stdout when done (human output stays on stderr)').env('VXTAP_BENCH_JSON'))
    .addOption(new Option('--no-progress', 'no progress lines on stderr').env('VXTAP_BENCH_NO_PROGRESS'))
    .addOption(new Option('--cleanup', 'remove leftovers of killed runs (vxb* namespaces, links, OVS daemons, processes) and exit').env('VXTAP_BENCH_CLEANUP'))
    .addOption(new Option('--force', 'with --cleanup: also clean runs whose bench process is still alive').env('VXTAP_BENCH_FORCE'))
    .addOption(
      new Option('--hosts <A,B>', 'bench across two real hosts: SSH destinations (user@host, host:port, an ssh_config alias, or "local" for this machine); A sends, B receives').env(
        'VXTAP_BENCH_HOSTS',
      ),
    )
    .addOption(new Option('--ssh-config <file>', 'with --hosts: ssh -F FILE').env('VXTAP_BENCH_SSH_CONFIG'))
    .addOption(
      new Option('--ssh-option <opt>', 'with --hosts: ssh -o OPT (repeatable; env VXTAP_BENCH_SSH_OPTIONS, one per line)').argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]),
    )
    .addOption(
      new Option('--underlay <A,B>', "with --hosts: the addresses the hosts use to reach each other (default: each host's source address towards the other, from its routing table)").env(
        'VXTAP_BENCH_UNDERLAY',
      ),
    )
    .addOption(new Option('--overlay <cidr>', 'with --hosts: overlay network (A gets .1, B .2)').default(REMOTE_DEFAULTS.overlay).env('VXTAP_BENCH_OVERLAY'))
    .addOption(new Option('--vni <n>', 'with --hosts: VXLAN network identifier').default(String(REMOTE_DEFAULTS.vni)).env('VXTAP_BENCH_VNI'))
    .addOption(new Option('--port <n>', 'with --hosts: VXLAN UDP port').default(String(REMOTE_DEFAULTS.port)).env('VXTAP_BENCH_PORT'))
    .addOption(
      new Option('--data-dev <A,B>', 'with --hosts: interfaces holding the underlay addresses that the OVS modes may take over (address moved onto a bridge and back); never the SSH interface').env(
        'VXTAP_BENCH_DATA_DEV',
      ),
    )
    .addOption(new Option('--deploy', "with --hosts: copy this build to each host's ~/.cache/vxtap first (the host needs Node.js 20)").env('VXTAP_BENCH_DEPLOY'))
    .addOption(
      new Option('--lease <seconds>', 'with --hosts: an agent that hears nothing from this controller for this long cleans its host')
        .default(String(REMOTE_DEFAULTS.leaseMs / 1000))
        .env('VXTAP_BENCH_LEASE'),
    )
    .addHelpText(
      'after',
      `
Profiles: default = 3 rounds within ~10 minutes on a 2-core machine; --quick; --full.
Every flag has an environment mirror (VXTAP_BENCH_MODES, VXTAP_BENCH_ROUNDS, ...).
Traffic stays inside two namespaces (underlay 198.18.0.0/24, overlay 198.19.0.0/16).
One local run at a time: a second beside a running one (or a bench ci) exits 1,
naming it, and creates nothing.
Result schema: bench/result.schema.json. Exit status: 0 complete, 1 incomplete or
another bench running, 2 bad options.`,
    )
    .action(async (o: Record<string, string | boolean | string[] | undefined>) => {
      let remoteOpts: RemoteOptions | null = null;
      if (o.hosts !== undefined) {
        const sshOptions = [...((o.sshOption as string[] | undefined) ?? []), ...(env('VXTAP_BENCH_SSH_OPTIONS')?.split('\n') ?? [])];
        remoteOpts = {
          hosts: String(o.hosts)
            .split(',')
            .map((h) => h.trim()) as [string, string],
          ssh: { configFile: o.sshConfig as string | undefined, options: sshOptions },
          underlay:
            o.underlay !== undefined
              ? (String(o.underlay)
                  .split(',')
                  .map((x) => x.trim()) as [string, string])
              : undefined,
          overlay: String(o.overlay),
          vni: Number(o.vni),
          port: Number(o.port),
          leaseMs: Number(o.lease) * 1000,
          cpuPriority: String(o.cpuPriority) as CpuPriority,
          deploy: !!o.deploy,
          dataDev:
            o.dataDev !== undefined
              ? (String(o.dataDev)
                  .split(',')
                  .map((x) => x.trim()) as [string, string])
              : undefined,
        };
        const rerr = validateRemoteOptions(remoteOpts) ?? (!(remoteOpts.leaseMs >= 5000 && remoteOpts.leaseMs <= 3_600_000) ? new TypeError('--lease must be 5..3600 seconds') : null);
        if (rerr) {
          process.stderr.write(`vxtap bench: ${rerr.message}\n`);
          process.exit(2);
        }
      }
      if (o.cleanup && remoteOpts) {
        await cleanupHosts(remoteOpts, repoRoot(), !!o.force, (l) => process.stderr.write(`${l}\n`));
        return;
      }
      if (o.cleanup) {
        const report = await cleanupBench({ force: !!o.force });
        process.stderr.write(formatCleanupReport(report));
        if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      let measure: Measure[] | undefined;
      try {
        measure = o.measure !== undefined ? parseMeasureList(String(o.measure)) : undefined;
        const merr = measure && remoteOpts ? measuresRemoteError(measure) : null;
        if (merr) throw merr;
      } catch (merr) {
        process.stderr.write(`vxtap bench: ${(merr as Error).message}\n`);
        process.exit(2);
      }
      if (o.quick && o.full) {
        process.stderr.write('vxtap bench: --quick and --full exclude each other\n');
        process.exit(2);
      }
      const rounds = o.rounds !== undefined ? Number(o.rounds) : undefined;
      const opts: BenchOptions = {
        profile: o.quick ? 'quick' : o.full ? 'full' : 'default',
        rounds,
        modes: String(o.modes ?? (o.quick ? BENCH_DEFAULTS.quickModes : BENCH_DEFAULTS.modes))
          .split(',')
          .reduce<string[]>((acc, part) => {
            // "vxtap:workers=2,mtu=1400" has commas inside its parameters: glue k=v parts back on.
            if (/^[a-z-]+=/.test(part) && acc.length && acc[acc.length - 1].includes(':')) acc[acc.length - 1] += `,${part}`;
            else if (part.trim()) acc.push(part.trim());
            return acc;
          }, []),
        mtu: Number(o.mtu),
        netem: { delay: (o.delay as string | undefined) ?? env('VXTAP_BENCH_DELAY'), loss: o.loss as string | undefined, rate: o.rate as string | undefined },
        outDir: path.resolve(String(o.out === BENCH_DEFAULTS.out ? path.join(repoRoot(), 'results') : o.out)),
        pin: String(o.pin) as Pinning,
        cpuPriority: String(o.cpuPriority) as CpuPriority,
        latencyTools: String(o.latencyTool)
          .split(',')
          .map((t) => t.trim()) as LatencyTool[],
        progress: o.progress !== false,
        argv: process.argv.slice(2),
        endpoints: String(o.endpoints) as Endpoints,
        underlayOffloads: String(o.underlayOffloads) as UnderlayOffloads,
        measure: measure ?? defaultMeasures(o.quick ? 'quick' : o.full ? 'full' : 'default'),
      };
      if (o.contention !== undefined) {
        const pct = parseContention(String(o.contention));
        if (pct instanceof Error) {
          process.stderr.write(`vxtap bench: ${pct.message}\n`);
          process.exit(2);
        }
        opts.contention = pct;
      }
      const err = validateOptions(opts);
      if (err) {
        process.stderr.write(`vxtap bench: ${err.message}\n`);
        process.exit(2);
      }
      opts.plan = planFlagsOf(o, 'bench');
      if (opts.plan) {
        try {
          parsePlanFlags(opts.plan);
        } catch (planErr) {
          process.stderr.write(`vxtap bench: ${(planErr as Error).message.replace(/--(pps|hosts|cores|headroom)\b/, '--target-$1')}\n`);
          process.exit(2);
        }
      }
      // --hosts between two other machines: the controller (a laptop, a CI runner) needs no root;
      // its run state then lives in a per-user temporary directory.
      const controllerOnly = remoteOpts !== null && !remoteOpts.hosts.includes('local');
      if (controllerOnly && process.getuid?.() !== 0 && !env('VXTAP_BENCH_STATE_DIR')) process.env.VXTAP_BENCH_STATE_DIR = path.join(os.tmpdir(), `vxtap-bench-${String(process.getuid?.())}`);
      if (process.getuid?.() !== 0 && !controllerOnly) {
        process.stderr.write('vxtap bench: needs root (network namespaces, veth, OVS); run with sudo. See: vxtap doctor\n');
        process.exit(2);
      }
      // One local run per machine at a time: a second beside it takes its CPU and both
      // figures are wrong (the disturbance check flags them, but the run is lost).
      // With --hosts, each agent holds its host's lock instead.
      if (!remoteOpts) {
        const holder = takeLocalBenchLock();
        if (holder) {
          process.stderr.write(`vxtap bench: ${localBenchBusy(holder)}\nnothing was created\n`);
          process.exit(1);
        }
        process.once('exit', releaseLocalBenchLock); // also on a second Ctrl-C's process.exit
        if (underParentLock()) {
          // A round of bench ci, under its lock: if bench ci is killed, this round's figures go
          // nowhere and it would run on outside any lock. Stop it as Ctrl-C does (teardown, and
          // what it measured kept) once it has been handed to another parent.
          const parent = process.ppid;
          const watch = setInterval(() => {
            if (process.ppid === parent) return;
            clearInterval(watch);
            process.stderr.write(`vxtap bench: bench ci (pid ${String(parent)}) is gone; stopping this round\n`);
            process.kill(process.pid, 'SIGINT');
          }, 500);
          watch.unref();
        }
      }
      const netem = netemArgs(opts.netem);
      if (netem) {
        const why = await netemUnavailableReason(netem);
        try {
          opts.qdisc = impairmentQdisc(opts.netem, why === null);
        } catch (err) {
          process.stderr.write(
            `vxtap bench: ${(err as Error).message} (netem probe: ${why ?? 'no reason given'})\n  fix: a kernel with CONFIG_NET_SCH_NETEM (modprobe sch_netem); --rate alone works with tbf\n`,
          );
          process.exit(2);
        }
        if (why) process.stderr.write(`vxtap bench: no netem here (${why}); --rate uses tbf instead\n`);
      }
      if (remoteOpts) {
        const runId = `vxb-${process.pid}-${Date.now().toString(36)}`;
        process.stderr.write(`vxtap bench: connecting to ${remoteOpts.hosts.join(' and ')} (run ${runId})\n`);
        try {
          remoteOpts.greRequired = opts.modes.some((m) => m.startsWith('ovs-gre'));
          opts.remote = await RemotePair.connect(remoteOpts, repoRoot(), runId, (l) => process.stderr.write(`${l}\n`));
          opts.mtu = opts.remote.underlay.mtu; // the hosts' underlay as it is (the MTU sweep sizes follow it)
        } catch (err) {
          process.stderr.write(`vxtap bench: ${(err as Error).message}\nnothing was created on the hosts\n`);
          process.exit(1);
        }
      }
      const missingTools = await latencyToolsMissing(opts);
      if (missingTools.length) {
        process.stderr.write(`${missingTools.map((m) => `vxtap bench: ${m}`).join('\n')}\nnothing was created${opts.remote ? ' on the hosts' : ''}\n`);
        await opts.remote?.close();
        process.exit(1);
      }
      let ran: Awaited<ReturnType<typeof runBench>>;
      // A hang-up never kills a bench outright: while it runs, runBench's handler tears the
      // current mode down (bench/run.ts); before and after, there is nothing to lose but
      // output to a terminal that is gone (main.ts drops it). Without a listener Node
      // would die of a second SIGHUP in the last clean-up steps.
      process.on('SIGHUP', () => undefined);
      try {
        ran = await runBench(opts);
      } finally {
        await opts.remote?.close();
        if (!opts.remote) releaseLocalBenchLock();
      }
      const { result, dir } = ran;
      process.stderr.write(renderTerminalSummary(result, dir));
      if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exitCode = result.status === 'complete' ? 0 : 1;
    });
  addPlanOptions(bench, 'VXTAP_BENCH', 'bench');
  registerCompare(bench);
  registerHistory(bench);
  registerCi(bench);
}
