/**
 * The bench modes: how each overlay is set up on a fresh two-host topology and
 * torn down again. Every mode exposes the same face (`ActiveMode`): the
 * addresses to measure between, the inner device and MTU, and the pids of its
 * userspace dataplane processes (for per-process CPU).
 *
 * - bare: the underlay itself (the ceiling).
 * - kernel-vxlan: Linux VXLAN devices, VNI 42, dstport 4789 and srcport pinned.
 * - ovs-gre / ovs-vxlan: Open vSwitch with one ovsdb-server + ovs-vswitchd per
 *   host; the userspace (netdev) datapath unless the kernel module exists.
 * - vxtap: this project's dataplane (`vxtap up`) in each host, sub-variants as
 *   `vxtap:workers=2,mtu=1400`; `vxtap:slowdown=10` is the test-only injected
 *   slowdown (VXTAP_TEST_SLOWDOWN_PCT=10 in both processes' environment).
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { run } from '../src/host/exec.js';
import { checkUpFlags, upFlags } from '../src/cli/up.js';
import { TEST_SLOWDOWN_ENV, TEST_SLOWDOWN_MAX_PCT, testSlowdownFromEnv } from '../src/pipeline/slowdown.js';
import { ovsKernelModulePresent, ovsUnavailableReason, startOvs } from '../src/host/ovs.js';
import type { CpuTimes } from '../src/host/procstat.js';
import type { BenchHost, BenchProcess } from './host.js';
import type { RemoteHost } from './remote/client.js';
import type { RemotePair } from './remote/pair.js';
import { remoteOvsUnavailableReason, startRemoteOvs } from './remote/ovs.js';
import { BENCH_PREFIX, type RunState } from './state.js';
import { addUnderlayAddresses, addUnderlayBridges, UNDERLAY_BRIDGE, type Topology } from './topology.js';

/** Mode kinds the bench knows. */
export const MODE_KINDS = ['bare', 'kernel-vxlan', 'ovs-gre', 'ovs-vxlan', 'vxtap'] as const;
/** A mode kind. */
export type ModeKind = (typeof MODE_KINDS)[number];

/** A mode as named on the command line: kind plus sub-variant parameters. */
export interface ModeSpec {
  /** The full name, e.g. "vxtap:workers=2". */
  id: string;
  kind: ModeKind;
  params: Record<string, string>;
}

/** VXLAN network identifier used by every tunnel mode. */
export const BENCH_VNI = 42;
/** IANA VXLAN port, pinned in every mode (the Linux default would be 8472). */
export const VXLAN_PORT = 4789;
/** UDP source port range of the tunnel modes (vxtap's default; kernel VXLAN pinned to the same). */
export const VXLAN_SRCPORT_MIN = 49152;
export const VXLAN_SRCPORT_MAX = 49215;
/** Outer header bytes: IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD_V4 = 50;
/** Outer header bytes for OVS GRE with a key: IPv4 20 + GRE 4 + key 4 + inner Ethernet 14. */
export const GRE_KEY_OVERHEAD_V4 = 42;

/** Parse "kind[:k=v,k=v]"; throws an Error naming the problem. */
export function parseModeSpec(text: string): ModeSpec {
  const [kindText, paramText] = text.split(':', 2);
  if (!(MODE_KINDS as readonly string[]).includes(kindText)) {
    throw new Error(`--modes: unknown mode "${kindText}" (known: ${MODE_KINDS.join(', ')})`);
  }
  const kind = kindText as ModeKind;
  const params: Record<string, string> = {};
  if (paramText) {
    if (kind !== 'vxtap') throw new Error(`--modes: mode "${kind}" takes no parameters (got "${paramText}")`);
    for (const kv of paramText.split(',')) {
      const [k, v] = kv.split('=', 2) as [string, string?];
      if (!k || v === undefined || !/^[a-z][a-z-]*$/.test(k) || !/^[A-Za-z0-9._-]+$/.test(v)) {
        throw new Error(`--modes: bad parameter "${kv}" in "${text}" (expected key=value)`);
      }
      params[k] = v;
    }
  }
  if ('slowdown' in params) {
    const why = testSlowdownFromEnv({ [TEST_SLOWDOWN_ENV]: params.slowdown });
    if (why instanceof Error) throw new Error(`--modes ${text}: slowdown must be an integer percent 0..${TEST_SLOWDOWN_MAX_PCT} (test-only knob ${TEST_SLOWDOWN_ENV})`);
  }
  const spec: ModeSpec = { id: text, kind, params };
  if (kind === 'vxtap') checkVxtapParams(spec);
  return spec;
}

/**
 * The `vxtap up` flags a vxtap mode's parameters stand for: `k=off` is `--no-k`
 * (`offload=off` -> `--no-offload`); `k=on` is `--k` for a flag that is off by
 * default (`accept-unknown-peers=on`) and nothing for one that is on by default
 * (`offload=on`: `vxtap up` has `--no-offload`); any other value `--k value`. mtu,
 * uplink and slowdown are the mode's own (it sets the MTU, builds the bridge, sets
 * the environment).
 */
export function vxtapParamFlags(spec: ModeSpec): string[] {
  const flags: string[] = [];
  const known = upFlags();
  for (const [k, v] of Object.entries(spec.params)) {
    if (k === 'mtu' || k === 'uplink' || k === 'slowdown') continue;
    if (v === 'off') flags.push(`--no-${k}`);
    else if (v === 'on') {
      if (!known.has(`--no-${k}`)) flags.push(`--${k}`);
    } else flags.push(`--${k}`, v);
  }
  return flags;
}

/** Where a vxtap mode's `vxtap up` runs: the topology's side of its arguments. */
export interface VxtapUpPlace {
  name: string;
  vni: number;
  port: number;
  local: string;
  peer: string;
  /** Overlay address in CIDR form. */
  address: string;
  mtu: number;
  sock: string;
  uplinkBridge?: string;
}

/** The arguments after `vxtap up` for a vxtap mode at `at` (the run and the parse-time check both use them). */
export function vxtapUpArgs(spec: ModeSpec, at: VxtapUpPlace): string[] {
  const args = [
    '--name',
    at.name,
    '--vni',
    String(at.vni),
    '--port',
    String(at.port),
    '--local',
    at.local,
    '--peer',
    at.peer,
    '--address',
    at.address,
    '--mtu',
    String(at.mtu),
    '--stats-socket',
    at.sock,
  ];
  if (at.uplinkBridge !== undefined) args.push('--uplink-bridge', at.uplinkBridge);
  args.push(...vxtapParamFlags(spec));
  return args;
}

/**
 * Check a vxtap mode's parameters when --modes is read, as `vxtap up` itself would
 * read them, so a bad value is a usage error (exit 2) before the bench sets
 * anything up, not a failed mode after the topology is built.
 */
function checkVxtapParams(spec: ModeSpec): void {
  const uplink = spec.params.uplink as string | undefined;
  const mtu = spec.params.mtu as string | undefined;
  if (uplink !== undefined && uplink !== 'on' && uplink !== 'off') throw new Error(`--modes ${spec.id}: uplink must be on or off`);
  if (mtu !== undefined && !(/^\d+$/.test(mtu) && Number(mtu) >= 576 && Number(mtu) <= 65535)) throw new Error(`--modes ${spec.id}: mtu must be an integer 576..65535`);
  // the run's own argument list (vxtapUpArgs), with placeholders where the topology goes:
  // the same flags override the same VXTAP_* environment in the check as in the run
  const args = vxtapUpArgs(spec, {
    name: 'vxbcheck0',
    vni: BENCH_VNI,
    port: VXLAN_PORT,
    local: '198.18.0.1',
    peer: '198.18.0.2',
    address: '198.19.0.1/16',
    mtu: mtu !== undefined ? Number(mtu) : 1450,
    sock: '/run/vxtap-bench/check.sock', // never created: the check starts nothing
    ...(uplink === 'on' ? { uplinkBridge: 'vxbr0' } : {}),
  });
  try {
    checkUpFlags(args);
  } catch (err) {
    throw new Error(`--modes ${spec.id}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Environment of a vxtap mode's `vxtap up` processes (both hosts): `slowdown=P`
 * (test-only, to validate the decision rule against a real regression) sets
 * VXTAP_TEST_SLOWDOWN_PCT=P; every other parameter is a flag. Without the
 * parameter, a VXTAP_TEST_SLOWDOWN_PCT in the bench's own environment (`bench ci
 * --inject-slowdown` sets it for the head side) is passed on explicitly, so
 * --hosts agents, which spawn with their own environment, get it too.
 */
export function vxtapModeEnv(spec: ModeSpec, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if ('slowdown' in spec.params) return { [TEST_SLOWDOWN_ENV]: spec.params.slowdown };
  const inherited = env[TEST_SLOWDOWN_ENV];
  return inherited !== undefined && inherited.trim() !== '' ? { [TEST_SLOWDOWN_ENV]: inherited.trim() } : {};
}

/** What a mode setup needs. */
export interface ModeContext {
  topo: Topology;
  /** Repository root (for dist/src/cli/main.js). */
  repoRoot: string;
  /** Run state, for recording pids and directories. */
  state?: RunState;
  /** Directory for this mode's files (OVS databases). */
  workDir: string;
  /** Readiness timeout for daemons, ms. */
  readyTimeoutMs: number;
}

/** A mode that is set up and ready to measure. */
export interface ActiveMode {
  spec: ModeSpec;
  /** Address of host A / B as the measured traffic sees it. */
  addrA: string;
  addrB: string;
  /** The inner device on host A / host B carrying `addrA` / `addrB`. */
  innerDevA: string;
  innerDevB: string;
  /** MTU of the inner devices. */
  innerMtu: number;
  /** Header bytes the mode adds per packet on the underlay. */
  overheadBytes: number;
  /** Userspace dataplane processes (both hosts) whose CPU is charged to the mode. */
  dataplanePids(): number[];
  /** The dataplane processes on one host (--hosts: pids are per host). */
  dataplanePidsOn?(label: 'A' | 'B'): number[];
  /**
   * --hosts: CPU of both hosts read by their agents (each with its own clock),
   * summed (counted once when both are one machine). measure.ts uses it instead
   * of reading this machine's /proc.
   */
  sampleCpu?(): Promise<{ atMs: number; stat: CpuTimes; ticks: number; rssBytes: number }>;
  /** Facts to keep in the result (datapath type, commands, versions). */
  info: Record<string, unknown>;
  /** The dataplane's own counters on both hosts (vxtap stats), or null for kernel dataplanes. */
  counters?(): Promise<Record<string, unknown> | null>;
  /** Change the inner MTU on both hosts (MTU sweep); must be undone by the caller. */
  setInnerMtu(mtu: number): Promise<void>;
  /** Undo the mode's setup (the topology is destroyed separately). Never throws. */
  teardown(): Promise<void>;
}

/** A mode implementation. */
export interface ModeDriver {
  kind: ModeKind;
  /** Null when the mode can run here, or the exact reason it cannot. */
  unavailable(spec: ModeSpec, repoRoot: string): Promise<string | null>;
  setup(spec: ModeSpec, ctx: ModeContext): Promise<ActiveMode>;
}

async function setMtu(host: BenchHost, dev: string, mtu: number): Promise<void> {
  await host.exec(['ip', 'link', 'set', dev, 'mtu', String(mtu)]);
}

const bare: ModeDriver = {
  kind: 'bare',
  unavailable() {
    return Promise.resolve(null);
  },
  async setup(spec, { topo }) {
    // On real hosts the underlay is already addressed; it is measured as it is.
    if (!topo.remote) await addUnderlayAddresses(topo);
    return {
      spec,
      addrA: topo.addr.underlayA,
      addrB: topo.addr.underlayB,
      innerDevA: topo.devA,
      innerDevB: topo.devB,
      innerMtu: topo.mtu,
      overheadBytes: 0,
      dataplanePids: () => [],
      info: { dataplane: topo.remote ? `none (${topo.devA} -> ${topo.devB})` : 'none (veth)' },
      async setInnerMtu(mtu) {
        if (topo.remote) throw new Error('never changes the MTU of a host interface');
        await setMtu(topo.a, topo.devA, mtu);
        await setMtu(topo.b, topo.devB, mtu);
      },
      async teardown() {},
    };
  },
};

/** Why kernel VXLAN cannot be created here (tries one in a throwaway namespace), or null. */
export async function kernelVxlanUnavailableReason(nsName: string): Promise<string | null> {
  await run(['ip', 'netns', 'add', nsName], { allowFail: true });
  try {
    const r = await run(['ip', 'link', 'add', 'vxbprobe', 'type', 'vxlan', 'id', '1', 'dstport', String(VXLAN_PORT), 'local', '198.18.0.1', 'nolearning'], { netns: nsName, allowFail: true });
    return r.code === 0 ? null : `kernel VXLAN: ip link add type vxlan failed: ${r.stderr.trim()}`;
  } finally {
    await run(['ip', 'netns', 'del', nsName], { allowFail: true });
  }
}

const kernelVxlan: ModeDriver = {
  kind: 'kernel-vxlan',
  async unavailable() {
    return kernelVxlanUnavailableReason(`vxbprobe${process.pid % 10000}`);
  },
  async setup(spec, { topo }) {
    if (!topo.remote) await addUnderlayAddresses(topo);
    const innerMtu = topo.mtu - VXLAN_OVERHEAD_V4;
    const dev = topo.names.vxlan;
    const A = topo.addr;
    const ends: [BenchHost, string, string, string, string][] = [
      [topo.a, topo.devA, A.underlayA, A.underlayB, A.overlayA],
      [topo.b, topo.devB, A.underlayB, A.underlayA, A.overlayB],
    ];
    const argv = (underDev: string, local: string, remote: string) => [
      'ip',
      'link',
      'add',
      dev,
      'type',
      'vxlan',
      'id',
      String(topo.vni),
      'dstport',
      String(topo.port),
      // Source ports pinned to vxtap's default flow-hash range (49152-49215) so runs compare.
      'srcport',
      String(VXLAN_SRCPORT_MIN),
      String(VXLAN_SRCPORT_MAX + 1),
      'local',
      local,
      'remote',
      remote,
      'dev',
      underDev,
      'nolearning',
    ];
    const teardown = async () => {
      await topo.a.exec(['ip', 'link', 'del', dev], { allowFail: true });
      await topo.b.exec(['ip', 'link', 'del', dev], { allowFail: true });
      await topo.remote?.a.untrack({ links: [dev] });
      await topo.remote?.b.untrack({ links: [dev] });
    };
    try {
      for (const [host, underDev, local, remote, overlay] of ends) {
        await (host as Partial<RemoteHost>).track?.({ links: [dev] }); // --hosts: in the host's state file first
        await host.exec(argv(underDev, local, remote));
        await host.exec(['ip', 'link', 'set', dev, 'mtu', String(innerMtu)]);
        await host.exec(['ip', 'addr', 'add', `${overlay}/${A.overlayPrefix}`, 'dev', dev]);
        await host.exec(['ip', 'link', 'set', dev, 'up']);
      }
    } catch (err) {
      await teardown();
      throw err;
    }
    return {
      spec,
      addrA: A.overlayA,
      addrB: A.overlayB,
      innerDevA: dev,
      innerDevB: dev,
      innerMtu,
      overheadBytes: VXLAN_OVERHEAD_V4,
      dataplanePids: () => [],
      info: { dataplane: 'linux vxlan', command: argv(topo.devA, A.underlayA, A.underlayB).join(' ') },
      async setInnerMtu(mtu) {
        await setMtu(topo.a, dev, mtu);
        await setMtu(topo.b, dev, mtu);
      },
      teardown,
    };
  },
};

/** What the OVS modes need of an instance: local (src/host/ovs.ts) or on a --hosts host (remote/ovs.ts). */
interface OvsLike {
  readonly pids: { ovsdb: number; vswitchd: number };
  vsctl(args: string[], allowFail?: boolean): Promise<unknown>;
  appctl(args: string[], allowFail?: boolean): Promise<{ stdout: string }>;
  datapathTypes(): Promise<string[]>;
  stop(): Promise<void>;
}

function ovsDriver(kind: 'ovs-gre' | 'ovs-vxlan'): ModeDriver {
  const tunnelType = kind === 'ovs-gre' ? 'gre' : 'vxlan';
  const overhead = kind === 'ovs-gre' ? GRE_KEY_OVERHEAD_V4 : VXLAN_OVERHEAD_V4;
  return {
    kind,
    async unavailable() {
      return ovsUnavailableReason();
    },
    async setup(spec, ctx) {
      const { topo } = ctx;
      const remote = topo.remote;
      const A = topo.addr;
      const phy = topo.names.ovsPhy;
      const int = topo.names.ovsInt;
      const innerMtu = topo.mtu - overhead;
      // --hosts: always the userspace datapath (the kernel one would be shared with the host's own OVS).
      const datapath = !remote && ovsKernelModulePresent() ? 'system' : 'netdev';
      const instances: OvsLike[] = [];
      const ends = [
        { host: topo.a, rh: remote?.a, dev: topo.devA, local: A.underlayA, peer: A.underlayB, overlay: A.overlayA, tag: 'a' },
        { host: topo.b, rh: remote?.b, dev: topo.devB, local: A.underlayB, peer: A.underlayA, overlay: A.overlayB, tag: 'b' },
      ];
      // --hosts --data-dev: the underlay address moves from the data interface onto the bridge and back.
      const restoreOf = (e: (typeof ends)[number]) => [
        ['ip', 'addr', 'add', `${e.local}/${A.underlayPrefix}`, 'dev', e.dev],
        ['ip', 'link', 'set', e.dev, 'arp', 'on'],
      ];
      const moved: (typeof ends)[number][] = [];
      const teardown = async () => {
        for (const o of instances.splice(0)) {
          await o.stop().catch(() => undefined);
        }
        for (const e of moved.splice(0)) {
          // A bridge that outlived its daemon still holds the address: gone first, or the address would sit on two devices.
          for (const link of [phy, int]) await e.host.exec(['ip', 'link', 'del', link], { allowFail: true });
          for (const argv of restoreOf(e)) await e.host.exec(argv, { allowFail: true });
          await e.rh?.untrack({ restore: restoreOf(e), links: [phy, int] });
        }
      };
      try {
        for (const e of ends) {
          let o: OvsLike;
          if (e.rh) {
            o = await startRemoteOvs(e.rh, path.join(e.rh.workDir, `ovs-${phy.slice(BENCH_PREFIX.length)}-${e.tag}`));
            await e.rh.track({ links: [phy, int] });
          } else {
            const dir = path.join(ctx.workDir, `ovs-${e.tag}`);
            ctx.state?.addDir(dir);
            o = await startOvs(e.host.where, dir, (pid, what) => ctx.state?.addProcess(pid, [what, dir]));
          }
          instances.push(o);
          await o.vsctl(['add-br', phy, '--', 'set', 'bridge', phy, `datapath_type=${datapath}`]);
          await o.vsctl(['add-port', phy, e.dev]);
          if (e.rh) {
            // recorded before the change, so the agent puts the address back even if this run dies
            await e.rh.track({ restore: restoreOf(e) });
            moved.push(e);
            await e.host.exec(['ip', 'addr', 'del', `${e.local}/${A.underlayPrefix}`, 'dev', e.dev]);
          }
          // ARP off on the port: the kernel would otherwise answer for the bridge address with the port's MAC.
          await e.host.exec(['ip', 'link', 'set', e.dev, 'arp', 'off']);
          await e.host.exec(['ip', 'addr', 'add', `${e.local}/${A.underlayPrefix}`, 'dev', phy]);
          await e.host.exec(['ip', 'link', 'set', phy, 'up']);
          await o.vsctl(['add-br', int, '--', 'set', 'bridge', int, `datapath_type=${datapath}`]);
          await o.vsctl(['set', 'interface', int, `mtu_request=${innerMtu}`]);
          const tunOpts = [`options:remote_ip=${e.peer}`, `options:key=${topo.vni}`];
          if (tunnelType === 'vxlan') tunOpts.push(`options:dst_port=${topo.port}`);
          await o.vsctl(['add-port', int, 'tun0', '--', 'set', 'interface', 'tun0', `type=${tunnelType}`, ...tunOpts]);
          await e.host.exec(['ip', 'addr', 'add', `${e.overlay}/${A.overlayPrefix}`, 'dev', int]);
          await e.host.exec(['ip', 'link', 'set', int, 'up']);
        }
        // Seed the tunnel neighbour caches with the peers' bridge MACs and the kernel's neighbours too.
        const macs = await Promise.all(ends.map((e) => e.host.exec(['cat', `/sys/class/net/${phy}/address`]).then((r) => r.stdout.trim())));
        for (let i = 0; i < 2; i++) {
          const peerMac = macs[1 - i];
          await instances[i].appctl(['tnl/neigh/set', phy, ends[i].peer, peerMac]);
          await ends[i].host.exec(['ip', 'neigh', 'replace', ends[i].peer, 'lladdr', peerMac, 'dev', phy, 'nud', 'permanent']);
        }
        const dpTypes = await instances[0].datapathTypes();
        const backer = await instances[0].appctl(['dpif/show'], true);
        return {
          spec,
          addrA: A.overlayA,
          addrB: A.overlayB,
          innerDevA: int,
          innerDevB: int,
          innerMtu,
          overheadBytes: overhead,
          dataplanePids: () => instances.map((o) => o.pids.vswitchd),
          dataplanePidsOn: (label) => [instances[label === 'A' ? 0 : 1]?.pids.vswitchd ?? -1].filter((p) => p > 0),
          info: {
            dataplane: `openvswitch ${tunnelType}`,
            datapathType: datapath,
            supportedDatapathTypes: dpTypes,
            kernelModule: remote ? null : ovsKernelModulePresent(),
            dpifShow: backer.stdout.trim().split('\n').slice(0, 12),
          },
          async setInnerMtu(mtu) {
            for (const o of instances) await o.vsctl(['set', 'interface', int, `mtu_request=${mtu}`]);
            // mtu_request is applied asynchronously: wait until the kernel side shows it.
            for (const e of ends) {
              const deadline = Date.now() + 3000;
              while (Date.now() < deadline) {
                const cur = (await e.host.exec(['cat', `/sys/class/net/${int}/mtu`], { allowFail: true })).stdout.trim();
                if (Number(cur) === mtu) break;
                await new Promise((r) => setTimeout(r, 50));
              }
            }
          },
          teardown,
        };
      } catch (err) {
        await teardown();
        throw err;
      }
    },
  };
}

/** Path of the vxtap CLI entry point in a built checkout. */
export function vxtapMain(repoRoot: string): string {
  return path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
}

/** Why `vxtap up` cannot run from this checkout, or null. */
export async function vxtapUnavailableReason(repoRoot: string): Promise<string | null> {
  const main = vxtapMain(repoRoot);
  if (!existsSync(main)) return `${main} missing (run: npx tsc -p .)`;
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun missing (modprobe tun, or run the container with --device /dev/net/tun)';
  const help = await run([process.execPath, main, 'up', '--help'], { allowFail: true, timeoutMs: 15_000 });
  const text = help.stdout + help.stderr;
  if (/not yet implemented/.test(text)) return 'vxtap up is not implemented yet in this checkout (src/cli/up.ts is a placeholder)';
  for (const flag of ['--peer', '--local', '--address', '--vni']) {
    if (!text.includes(flag)) return `vxtap up --help does not offer ${flag} (dataplane CLI contract not met)`;
  }
  const addon = path.join(repoRoot, 'native', 'build', 'Release');
  if (!existsSync(addon) || !readdirSafe(addon).some((f) => f.endsWith('.node'))) {
    return `native addon not built (${addon}/*.node missing; run: npx node-gyp rebuild --directory native)`;
  }
  return null;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Configuration part of `vxtap stats` (counters dropped), or null. */
async function statsOf(host: BenchHost, main: string, dev: string, sock: string): Promise<unknown> {
  const r = await host.exec([process.execPath, main, 'stats', '--name', dev, '--stats-socket', sock], { allowFail: true, timeoutMs: 5000 });
  try {
    const s = JSON.parse(r.stdout) as Record<string, unknown>;
    const { name, vni, port, local, mtu, workers, offload, testSlowdownPct } = s;
    return { name, vni, port, local, mtu, workers, offload, ...(testSlowdownPct !== undefined ? { testSlowdownPct } : {}) };
  } catch {
    return null;
  }
}

const vxtap: ModeDriver = {
  kind: 'vxtap',
  unavailable(_spec, repoRoot) {
    return vxtapUnavailableReason(repoRoot);
  },
  async setup(spec, ctx) {
    const { topo } = ctx;
    const uplink = spec.params.uplink === 'on';
    // the uplink variant needs the underlay address on a bridge (as on a KVM host with br0)
    // --hosts: the underlay address already sits on a bridge of each host (checked by remoteUnavailableReason).
    if (uplink && !topo.remote) await addUnderlayBridges(topo);
    else if (!topo.remote) await addUnderlayAddresses(topo);
    const mtu = spec.params.mtu ? Number(spec.params.mtu) : topo.mtu - VXLAN_OVERHEAD_V4;
    const main = vxtapMain(ctx.repoRoot);
    const dev = topo.names.tap;
    const A = topo.addr;
    const procs: BenchProcess[] = [];
    // The stats socket path is in the shared filesystem: one per host, or the second instance collides.
    // --hosts: in each host's own run directory (the agent removes it).
    let sockA: string;
    let sockB: string;
    if (topo.remote) {
      const tag = dev.slice(BENCH_PREFIX.length);
      sockA = path.join(topo.remote.a.workDir, `vxtap-${tag}-a.sock`);
      sockB = path.join(topo.remote.b.workDir, `vxtap-${tag}-b.sock`);
      await topo.remote.a.track({ links: [dev] });
      await topo.remote.b.track({ links: [dev] });
    } else {
      mkdirSync(ctx.workDir, { recursive: true });
      ctx.state?.addDir(ctx.workDir);
      sockA = path.join(ctx.workDir, 'vxtap-a.sock');
      sockB = path.join(ctx.workDir, 'vxtap-b.sock');
    }
    const ends: [BenchHost, string, string, string, string][] = [
      [topo.a, A.underlayA, A.underlayB, A.overlayA, sockA],
      [topo.b, A.underlayB, A.underlayA, A.overlayB, sockB],
    ];
    const argvFor = (local: string, peer: string, overlay: string, sock: string) => [
      process.execPath,
      main,
      'up',
      ...vxtapUpArgs(spec, {
        name: dev,
        vni: topo.vni,
        port: topo.port,
        local,
        peer,
        address: `${overlay}/${A.overlayPrefix}`,
        mtu,
        sock,
        ...(uplink ? { uplinkBridge: topo.remote ? (local === A.underlayA ? topo.devA : topo.devB) : UNDERLAY_BRIDGE } : {}),
      }),
    ];
    const teardown = async () => {
      for (const p of procs.splice(0)) await p.stop(3000).catch(() => undefined);
      await topo.remote?.a.untrack({ links: [dev] });
      await topo.remote?.b.untrack({ links: [dev] });
    };
    try {
      const env = vxtapModeEnv(spec);
      for (const [host, local, peer, overlay, sock] of ends) procs.push(host.spawn(argvFor(local, peer, overlay, sock), { env }));
      const deadline = Date.now() + ctx.readyTimeoutMs;
      for (let i = 0; i < ends.length; i++) {
        const [host] = ends[i];
        for (;;) {
          if (procs[i].done()) throw new Error(`vxtap up exited before ready on host ${host.label}: ${procs[i].stderr().trim().slice(-500)}`);
          const r = await host.exec([process.execPath, main, 'stats', '--name', dev, '--stats-socket', ends[i][4]], { allowFail: true, timeoutMs: 5000 });
          let ready = false;
          if (r.code === 0) {
            try {
              JSON.parse(r.stdout);
              // Stats answer before the address may be on: require both.
              const addr = await host.exec(['ip', '-o', 'addr', 'show', 'dev', dev], { allowFail: true });
              const link = await host.exec(['ip', '-o', 'link', 'show', 'dev', dev], { allowFail: true });
              ready = addr.stdout.includes(`${ends[i][3]}/`) && /[<,]UP[,>]/.test(link.stdout);
            } catch {
              /* not yet */
            }
          }
          if (ready) break;
          if (Date.now() > deadline) throw new Error(`vxtap up not ready on host ${host.label} within ${ctx.readyTimeoutMs} ms: ${procs[i].stderr().trim().slice(-500)}`);
          await new Promise((r) => setTimeout(r, 150));
        }
      }
      return {
        spec,
        addrA: A.overlayA,
        addrB: A.overlayB,
        innerDevA: dev,
        innerDevB: dev,
        innerMtu: mtu,
        overheadBytes: VXLAN_OVERHEAD_V4,
        dataplanePids: () => procs.map((p) => p.pid).filter((p) => p > 0),
        dataplanePidsOn: (label) => [procs[label === 'A' ? 0 : 1]?.pid ?? -1].filter((p) => p > 0),
        info: {
          dataplane: 'vxtap',
          command: argvFor(A.underlayA, A.underlayB, A.overlayA, sockA).slice(1).join(' '),
          params: spec.params,
          ...(Object.keys(env).length ? { env } : {}),
          stats: await statsOf(topo.a, main, dev, sockA),
        },
        async counters() {
          const out: Record<string, unknown> = {};
          for (const [host, , , , sock] of ends) {
            const r = await host.exec([process.execPath, main, 'stats', '--name', dev, '--stats-socket', sock], { allowFail: true, timeoutMs: 5000 });
            try {
              const st = JSON.parse(r.stdout) as Record<string, unknown>;
              out[host.label] = { total: st.total ?? null, workers: st.workers ?? null, perWorker: st.perWorker ?? st.workerStats ?? null };
            } catch {
              out[host.label] = null;
            }
          }
          return out;
        },
        async setInnerMtu(m) {
          await setMtu(topo.a, dev, m);
          await setMtu(topo.b, dev, m);
        },
        teardown,
      };
    } catch (err) {
      await teardown();
      throw err;
    }
  },
};

/** Field-wise sum of two /proc/stat lines (two hosts' CPU as one). */
function addCpu(a: CpuTimes, b: CpuTimes): CpuTimes {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof CpuTimes)[]) out[k] = a[k] + b[k];
  return out;
}

/**
 * --hosts: the mode's CPU is read by each host's agent (machine CPU summed over
 * the two hosts, as the namespace pair's single machine includes both; counted
 * once when both hosts are one machine).
 */
function withHostSampling(driver: ModeDriver): ModeDriver {
  return {
    ...driver,
    async setup(spec, ctx) {
      const mode = await driver.setup(spec, ctx);
      const remote = ctx.topo.remote;
      if (!remote) return mode;
      mode.sampleCpu = async () => {
        const pidsOn = (l: 'A' | 'B') => mode.dataplanePidsOn?.(l) ?? [];
        const [a, b] = await Promise.all([remote.a.sample(pidsOn('A')), remote.b.sample(pidsOn('B'))]);
        return { atMs: a.atMs, stat: remote.sameMachine ? a.cpu : addCpu(a.cpu, b.cpu), ticks: a.ticks + b.ticks, rssBytes: Math.max(a.rssBytes, b.rssBytes) };
      };
      return mode;
    },
  };
}

/** The driver of a mode kind. */
export const DRIVERS: Record<ModeKind, ModeDriver> = {
  bare: withHostSampling(bare),
  'kernel-vxlan': withHostSampling(kernelVxlan),
  'ovs-gre': withHostSampling(ovsDriver('ovs-gre')),
  'ovs-vxlan': withHostSampling(ovsDriver('ovs-vxlan')),
  vxtap: withHostSampling(vxtap),
};

/**
 * Why `spec` cannot run across the --hosts pair, or null. Probes run on the
 * hosts through their agents and create only tracked, run-named devices.
 */
export async function remoteUnavailableReason(spec: ModeSpec, pair: RemotePair): Promise<string | null> {
  const hosts = [pair.a, pair.b];
  switch (spec.kind) {
    case 'bare':
      return null;
    case 'kernel-vxlan': {
      for (const h of hosts) {
        const name = `${BENCH_PREFIX}${(process.pid % 1296).toString(36)}kp`;
        await h.track({ links: [name] });
        const r = await h.exec(['ip', 'link', 'add', name, 'type', 'vxlan', 'id', '1', 'dstport', String(pair.opts.port), 'nolearning'], { allowFail: true });
        await h.exec(['ip', 'link', 'del', name], { allowFail: true });
        await h.untrack({ links: [name] });
        if (r.code !== 0) return `host ${h.label} (${h.where}): kernel VXLAN: ip link add type vxlan failed: ${r.stderr.trim()}`;
      }
      return null;
    }
    case 'ovs-gre':
    case 'ovs-vxlan': {
      if (!pair.opts.dataDev)
        return "the OVS recipe moves the underlay address onto a bridge, which would disturb the host's interface (maybe the one carrying the SSH session): name separate data interfaces with --data-dev DEV_A,DEV_B";
      for (const h of hosts) {
        const why = await remoteOvsUnavailableReason(h);
        if (why) return why;
      }
      return null;
    }
    case 'vxtap': {
      if (spec.params.uplink === 'on') {
        // As on a KVM host with br0: vxtap adds its TAP port to that bridge (and its steering rule), nothing else.
        for (const [h, dev] of [
          [pair.a, pair.underlay.devA],
          [pair.b, pair.underlay.devB],
        ] as const) {
          const r = await h.exec(['test', '-d', `/sys/class/net/${dev}/bridge`], { allowFail: true });
          if (r.code !== 0) return `host ${h.label} (${h.where}): the underlay address is on ${dev}, not on a bridge; vxtap:uplink=on needs it on a bridge (as br0 on a KVM host)`;
        }
      }
      for (const h of hosts) {
        if (!h.hello.build.addon) return `host ${h.label} (${h.where}): the native addon is not built in ${h.hello.repoRoot}`;
        const r = await h.exec(['test', '-c', '/dev/net/tun'], { allowFail: true });
        if (r.code !== 0) return `host ${h.label} (${h.where}): /dev/net/tun missing (modprobe tun)`;
      }
      return null;
    }
    default:
      return `unknown mode kind ${spec.kind as string}`;
  }
}
