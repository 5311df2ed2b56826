/**
 * The default bench topology: two network namespaces (hosts A and B) joined by
 * a veth pair carrying the underlay (198.18.0.1/24 - 198.18.0.2/24), with an
 * optional netem qdisc (delay, loss, rate) on both underlay ends. Every mode
 * gets a fresh topology, so one mode's leftovers cannot change another's figures.
 */
import { run } from '../src/host/exec.js';
import { deleteNetns } from '../src/host/netns.js';
import { NetnsHost, type BenchHost } from './host.js';
import type { RemoteHost } from './remote/client.js';
import type { RemotePair } from './remote/pair.js';
import { BENCH_VNI, VXLAN_PORT } from './modes.js';
import type { RunState } from './state.js';
import { BENCH_PREFIX } from './state.js';

/** Underlay and overlay addresses (benchmarking range 198.18.0.0/15 only). */
export const ADDR = {
  underlayA: '198.18.0.1',
  underlayB: '198.18.0.2',
  underlayPrefix: 24,
  overlayA: '198.19.0.1',
  overlayB: '198.19.0.2',
  overlayPrefix: 16,
} as const;

/** netem settings for the underlay (each optional, as tc spells them: "2ms", "0.1%", "1gbit"). */
export interface NetemOptions {
  delay?: string;
  loss?: string;
  rate?: string;
}

/** Topology options. */
export interface TopologyOptions {
  /** Underlay MTU (bytes). */
  mtu: number;
  netem: NetemOptions;
  /** The root qdisc that realises `netem` on this kernel (see impairmentQdisc); default: netem. */
  qdisc?: string[] | null;
  /** --hosts: the connected hosts (no namespaces are made). */
  remote?: RemotePair;
}

/** A host of a topology: a BenchHost that can stop everything it started. */
export interface TopologyHost extends BenchHost {
  stopAll(): Promise<void>;
}

/** Addresses of a topology (ADDR for the namespace pair; the hosts' own underlay with --hosts). */
export interface TopologyAddresses {
  underlayA: string;
  underlayB: string;
  underlayPrefix: number;
  overlayA: string;
  overlayB: string;
  overlayPrefix: number;
}

/** Two hosts joined by an underlay: a veth pair between namespaces, or the real link between --hosts. */
export interface Topology {
  a: TopologyHost;
  b: TopologyHost;
  /** Underlay device name inside host A / host B. */
  devA: string;
  devB: string;
  mtu: number;
  /** The netem qdisc string applied on each end, or null. */
  netem: string | null;
  /** MAC addresses of the underlay ends. */
  macA: string;
  macB: string;
  addr: TopologyAddresses;
  vni: number;
  /** VXLAN UDP port. */
  port: number;
  /** Names of the devices modes create (named with the run's tag on real hosts). */
  names: { vxlan: string; tap: string; ovsPhy: string; ovsInt: string };
  /**
   * Set for --hosts: the hosts are agents on real machines. The underlay exists
   * already and is never changed (no address, route, MTU or neighbour of the
   * hosts is touched); modes create only their own, tracked devices.
   */
  remote: { a: RemoteHost; b: RemoteHost; sameMachine: boolean } | null;
}

/** The tc netem arguments for the options, or null when none is set. */
export function netemArgs(n: NetemOptions): string[] | null {
  const args: string[] = [];
  if (n.delay) args.push('delay', n.delay);
  if (n.loss) args.push('loss', n.loss);
  if (n.rate) args.push('rate', n.rate);
  return args.length ? args : null;
}

/** The kernel options whose absence makes netem (and a netem-free delay) impossible. */
export const NO_NETEM_REASON =
  'this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM) and no fq qdisc (CONFIG_NET_SCH_FQ) for EDT pacing, so a fixed delay cannot be added; loss would need netem or the gact action (CONFIG_NET_ACT_GACT), also absent';

/**
 * The root qdisc (tc arguments after `root`) that imposes the options on an
 * underlay end: netem when the kernel has it; without netem a rate limit alone
 * is still possible with tbf. Returns null when nothing is asked; throws an
 * Error with the exact reason when the request cannot be met here.
 */
export function impairmentQdisc(n: NetemOptions, netemWorks: boolean): string[] | null {
  const args = netemArgs(n);
  if (!args) return null;
  if (netemWorks) return ['netem', ...args];
  // (with netemArgs non-null and neither delay nor loss, the rate is what was asked)
  if (n.delay || n.loss || n.rate === undefined) throw new Error(`--delay/--loss: ${NO_NETEM_REASON}`);
  // tbf: burst of at least one 64 KiB GSO frame, queue bounded to 50 ms
  return ['tbf', 'rate', n.rate, 'burst', '256kb', 'latency', '50ms'];
}

/** Why a netem qdisc with `args` cannot be created (tried on a veth in a throwaway namespace), or null. */
export async function netemUnavailableReason(args: string[]): Promise<string | null> {
  const ns = `${BENCH_PREFIX}nq${process.pid % 100000}`;
  await run(['ip', 'netns', 'add', ns], { allowFail: true });
  try {
    const add = await run(['ip', 'link', 'add', 'vxbq0', 'type', 'veth', 'peer', 'name', 'vxbq1'], { netns: ns, allowFail: true });
    if (add.code !== 0) return `veth: ${add.stderr.trim()}`;
    const q = await run(['tc', 'qdisc', 'add', 'dev', 'vxbq0', 'root', 'netem', ...args], { netns: ns, allowFail: true });
    return q.code === 0 ? null : `tc qdisc add ... netem ${args.join(' ')}: ${(q.stderr || q.stdout).trim()}`;
  } finally {
    await run(['ip', 'netns', 'del', ns], { allowFail: true });
  }
}

async function macOf(host: BenchHost, dev: string): Promise<string> {
  const out = (await host.exec(['cat', `/sys/class/net/${dev}/address`])).stdout.trim();
  return out;
}

/**
 * Create the two namespaces and the veth pair for one mode run. Names are
 * `vxb<tag>a` / `vxb<tag>b` (namespaces) and `vxb<tag>u` / `vxb<tag>v` (veth ends),
 * recorded in `state` before they exist.
 */
export async function createTopology(tag: string, opts: TopologyOptions, state?: RunState): Promise<Topology> {
  if (opts.remote) return remoteTopology(tag, opts.remote);
  const nsA = `${BENCH_PREFIX}${tag}a`;
  const nsB = `${BENCH_PREFIX}${tag}b`;
  const devA = `${BENCH_PREFIX}${tag}u`;
  const devB = `${BENCH_PREFIX}${tag}v`;
  if (devA.length > 15) throw new Error(`topology tag "${tag}" makes interface names longer than 15 bytes`);
  for (const ns of [nsA, nsB]) {
    state?.addNamespace(ns);
    await run(['ip', 'netns', 'add', ns]);
    await run(['ip', 'link', 'set', 'lo', 'up'], { netns: ns });
  }
  // Created directly inside the namespaces: the pair never appears in the root namespace.
  await run(['ip', 'link', 'add', devA, 'netns', nsA, 'mtu', String(opts.mtu), 'type', 'veth', 'peer', 'name', devB, 'netns', nsB, 'mtu', String(opts.mtu)]);
  const a = new NetnsHost('A', nsA, state);
  const b = new NetnsHost('B', nsB, state);
  await a.exec(['ip', 'link', 'set', devA, 'up']);
  await b.exec(['ip', 'link', 'set', devB, 'up']);
  const netem = netemArgs(opts.netem);
  const qdisc = opts.qdisc ?? (netem ? ['netem', ...netem] : null);
  if (qdisc) {
    await a.exec(['tc', 'qdisc', 'replace', 'dev', devA, 'root', ...qdisc]);
    await b.exec(['tc', 'qdisc', 'replace', 'dev', devB, 'root', ...qdisc]);
  }
  return {
    a,
    b,
    devA,
    devB,
    mtu: opts.mtu,
    netem: qdisc ? qdisc.join(' ') : null,
    macA: await macOf(a, devA),
    macB: await macOf(b, devB),
    addr: ADDR,
    vni: BENCH_VNI,
    port: VXLAN_PORT,
    names: { vxlan: 'vxbvx0', tap: 'vxb-tap', ovsPhy: 'br-phy', ovsInt: 'br-int' },
    remote: null,
  };
}

/**
 * The topology of a --hosts run: the hosts as they are. Device names carry
 * `tag` (unique per run and mode-round) so they never clash with the host's own.
 */
export async function remoteTopology(tag: string, pair: RemotePair): Promise<Topology> {
  const u = pair.underlay;
  // OVS bridges too: a real host may run its own Open vSwitch with a br-int.
  const names = { vxlan: `${BENCH_PREFIX}${tag}x`, tap: `${BENCH_PREFIX}${tag}t`, ovsPhy: `${BENCH_PREFIX}${tag}p`, ovsInt: `${BENCH_PREFIX}${tag}i` };
  if (names.vxlan.length > 15) throw new Error(`topology tag "${tag}" makes interface names longer than 15 bytes`);
  return {
    a: pair.a,
    b: pair.b,
    devA: u.devA,
    devB: u.devB,
    mtu: u.mtu,
    netem: null,
    macA: await macOf(pair.a, u.devA),
    macB: await macOf(pair.b, u.devB),
    addr: { underlayA: u.a, underlayB: u.b, underlayPrefix: u.prefix, overlayA: pair.overlay.a, overlayB: pair.overlay.b, overlayPrefix: pair.overlay.prefix },
    vni: pair.opts.vni,
    port: pair.opts.port,
    names,
    remote: { a: pair.a, b: pair.b, sameMachine: pair.sameMachine },
  };
}

/** Put the underlay addresses on the veth ends (bare, kernel VXLAN and vxtap modes). */
export async function addUnderlayAddresses(t: Topology): Promise<void> {
  await t.a.exec(['ip', 'addr', 'add', `${ADDR.underlayA}/${ADDR.underlayPrefix}`, 'dev', t.devA]);
  await t.b.exec(['ip', 'addr', 'add', `${ADDR.underlayB}/${ADDR.underlayPrefix}`, 'dev', t.devB]);
  // Static neighbours: no ARP wait in the first trial, no neighbour flush mid-run.
  await t.a.exec(['ip', 'neigh', 'replace', ADDR.underlayB, 'lladdr', t.macB, 'dev', t.devA, 'nud', 'permanent']);
  await t.b.exec(['ip', 'neigh', 'replace', ADDR.underlayA, 'lladdr', t.macA, 'dev', t.devB, 'nud', 'permanent']);
}

/** Name of the bridge addUnderlayBridges creates in each host. */
export const UNDERLAY_BRIDGE = 'vxb-br';

/**
 * The underlay as on a KVM host with a bridge: in each host a bridge takes the veth
 * end as its port and holds the underlay address (vxtap:uplink=on needs this).
 */
export async function addUnderlayBridges(t: Topology): Promise<void> {
  for (const [host, dev, addr, peer, peerMac] of [
    [t.a, t.devA, ADDR.underlayA, ADDR.underlayB, t.macB],
    [t.b, t.devB, ADDR.underlayB, ADDR.underlayA, t.macA],
  ] as const) {
    await host.exec(['ip', 'link', 'add', UNDERLAY_BRIDGE, 'mtu', String(t.mtu), 'type', 'bridge']);
    await host.exec(['ip', 'link', 'set', dev, 'master', UNDERLAY_BRIDGE]);
    await host.exec(['ip', 'link', 'set', UNDERLAY_BRIDGE, 'up']);
    await host.exec(['ip', 'addr', 'add', `${addr}/${ADDR.underlayPrefix}`, 'dev', UNDERLAY_BRIDGE]);
    await host.exec(['ip', 'neigh', 'replace', peer, 'lladdr', peerMac, 'dev', UNDERLAY_BRIDGE, 'nud', 'permanent']);
  }
}

/** Stop the hosts' processes and delete both namespaces (and with them the veth pair). Never throws. */
export async function destroyTopology(t: Topology, state?: RunState): Promise<void> {
  await t.a.stopAll().catch(() => undefined);
  await t.b.stopAll().catch(() => undefined);
  if (t.remote) return; // the modes removed their devices; the hosts themselves stay as they were
  for (const ns of [t.a.where, t.b.where]) {
    await deleteNetns(ns).catch(() => undefined);
    state?.removeNamespace(ns);
  }
}
