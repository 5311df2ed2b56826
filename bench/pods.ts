/**
 * Pod endpoints (`vxtap bench --endpoints pod`): the load generators run in
 * pod network namespaces attached the way the CNI `bridge` plugin attaches
 * them, so the figures are what containers get (as Kubernetes network
 * benchmarks such as knb report them), not what the hosts get.
 *
 * On each host, after the mode is set up:
 * - a Linux bridge holding the host's pod subnet gateway (198.18.220.1/24 on
 *   host A, 198.18.221.1/24 on host B; benchmarking range only, outside the
 *   underlay 198.18.0.0/24 and the overlay 198.19.0.0/16), MTU = the mode's
 *   inner MTU (as flannel's subnet.env hands it to the CNI plugin);
 * - one pod: a namespace with a veth (`eth0` inside, the host end a bridge
 *   port), the pod address .2, its default route via the gateway;
 * - the host routes the other host's pod subnet via the other host's overlay
 *   address on the mode's inner device (kernel VXLAN device, vxtap's TAP, the
 *   OVS internal port), as flannel routes each remote subnet onto flannel.1.
 *   For `bare` the route goes via the peer's underlay address on the underlay
 *   device: a plain routed path, so the baseline is pod-to-pod too;
 * - forwarding on: the namespace pair's hosts get `ip_forward=1` (their own
 *   namespaces). On --hosts only the ingress devices get
 *   `net.ipv4.conf.DEV.forwarding=1` (the bridge and the inner device; for
 *   `bare` also the underlay device, which then needs the hosts on one L2
 *   segment, as flannel's host-gw does). Everything that outlives the run's own
 *   devices (the pod namespace, the route on the underlay device, the
 *   underlay device's forwarding setting) is registered with the host's agent
 *   as a restore command before it is made, so an interrupted run is undone too.
 *
 * The MTU sweep stays between the hosts (it measures the tunnel). The
 * MTU-mismatch claim runs pod to pod (`podsBehind` gives it the hosts, and
 * `setMtu` forces the pods to the underlay MTU).
 */
import { run } from '../src/host/exec.js';
import { deleteNetns } from '../src/host/netns.js';
import { NetnsHost, type BenchHost, type BenchProcess, type ExecOptions, type HostCounters } from './host.js';
import type { ActiveMode } from './modes.js';
import type { RemoteHost } from './remote/client.js';
import { BENCH_PREFIX, type RunState } from './state.js';
import type { Topology, TopologyHost } from './topology.js';
import type { RunResult } from '../src/host/exec.js';

/** Where the load generators run. */
export const ENDPOINTS = ['host', 'pod'] as const;
/** An endpoints choice. */
export type Endpoints = (typeof ENDPOINTS)[number];

/** Pod subnets (one /24 per host), gateways and pod addresses. */
export const POD_NET = {
  prefix: 24,
  a: { subnet: '198.18.220.0/24', gateway: '198.18.220.1', pod: '198.18.220.2' },
  b: { subnet: '198.18.221.0/24', gateway: '198.18.221.1', pod: '198.18.221.2' },
} as const;

/** The interface name inside each pod (as the CNI bridge plugin names it by default). */
export const POD_IFNAME = 'eth0';

/** Validate the option value; returns an Error naming the option, or null. */
export function validateEndpoints(v: unknown): Error | null {
  return (ENDPOINTS as readonly unknown[]).includes(v) ? null : new TypeError(`--endpoints must be host or pod (got "${String(v)}")`);
}

/** Names of one host's pod network: namespace, bridge, host end of the veth. */
export function podNames(tag: string, label: 'A' | 'B'): { ns: string; bridge: string; veth: string } {
  const l = label.toLowerCase();
  const n = { ns: `${BENCH_PREFIX}${tag}${l}p`, bridge: `${BENCH_PREFIX}${tag}c${l}`, veth: `${BENCH_PREFIX}${tag}h${l}` };
  if (n.bridge.length > 15) throw new Error(`pod tag "${tag}" makes interface names longer than 15 bytes`);
  return n;
}

/** A pod on a --hosts host: commands run inside its namespace through the host's agent. */
export class AgentPodHost implements TopologyHost {
  private readonly live = new Set<BenchProcess>();

  constructor(
    readonly label: string,
    readonly where: string,
    private readonly host: BenchHost,
  ) {}

  exec(argv: string[], opts?: ExecOptions): Promise<RunResult> {
    return this.host.exec(['ip', 'netns', 'exec', this.where, ...argv], opts);
  }

  spawn(argv: string[], opts?: { env?: Record<string, string> }): BenchProcess {
    const p = this.host.spawn(['ip', 'netns', 'exec', this.where, ...argv], opts);
    this.live.add(p);
    void p.exited.then(() => this.live.delete(p));
    return p;
  }

  /** The host's counters (CPU is the host's; the pod has no /proc/stat of its own). */
  readCounters(): Promise<HostCounters> {
    return this.host.readCounters();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.live].map((p) => p.stop(1500).catch(() => undefined)));
  }
}

/** The pods of one mode-round. */
export interface Pods {
  /** The pods, as hosts the measurements run their load generators in. */
  a: TopologyHost;
  b: TopologyHost;
  addrA: string;
  addrB: string;
  mtu: number;
  /** What the result keeps (sample.pods). */
  info: PodInfo;
  /**
   * Set the MTU of the pods' eth0, the veth host ends and the bridges on both
   * hosts (the MTU-mismatch measurement forces pods to the underlay MTU); must
   * be undone by the caller (`setMtu(mtu)`).
   */
  setMtu(mtu: number): Promise<void>;
  /** Stop the pods' processes and remove the pod networks. Never throws. */
  teardown(): Promise<void>;
}

/** The pod network of a mode-round as recorded in the sample. */
export interface PodInfo {
  attach: string;
  mtu: number;
  hosts: { label: string; namespace: string; bridge: string; gateway: string; address: string; routeToPeer: string }[];
}

/**
 * Build one pod per host for `mode` on `topo` (names carry `tag`). On failure
 * everything made so far is removed before the error is thrown.
 */
export async function createPods(topo: Topology, mode: ActiveMode, tag: string, state?: RunState): Promise<Pods> {
  const sides = [
    { label: 'A' as const, host: topo.a, rh: topo.remote?.a, hostNs: topo.a.where, mine: POD_NET.a, peer: POD_NET.b, via: mode.addrB, dev: mode.innerDevA },
    { label: 'B' as const, host: topo.b, rh: topo.remote?.b, hostNs: topo.b.where, mine: POD_NET.b, peer: POD_NET.a, via: mode.addrA, dev: mode.innerDevB },
  ];
  const mtu = mode.innerMtu;
  const pods: TopologyHost[] = [];
  const links: { host: TopologyHost; pod: TopologyHost; bridge: string; veth: string }[] = [];
  const undo: (() => Promise<void>)[] = [];
  const info: PodInfo = { attach: "bridge + veth per pod (CNI bridge plugin), default route via the bridge gateway, peer pod subnet routed via the peer's overlay address", mtu, hosts: [] };
  const teardown = async () => {
    await Promise.all(pods.map((p) => p.stopAll().catch(() => undefined)));
    for (const u of undo.splice(0).reverse()) await u().catch(() => undefined);
  };
  try {
    for (const s of sides) {
      const n = podNames(tag, s.label);
      const route = ['ip', 'route', 'replace', s.peer.subnet, 'via', s.via, 'dev', s.dev];
      if (s.rh) {
        const rh: RemoteHost = s.rh;
        // Recorded with the agent before they exist: removed by the agent even if this run dies.
        const restore = [
          ['ip', 'netns', 'del', n.ns],
          ['ip', 'route', 'del', s.peer.subnet, 'via', s.via, 'dev', s.dev],
        ];
        await rh.track({ links: [n.bridge], restore });
        undo.push(async () => {
          for (const argv of restore) await rh.exec(argv, { allowFail: true });
          await rh.exec(['ip', 'link', 'del', n.bridge], { allowFail: true });
          await rh.untrack({ links: [n.bridge], restore });
        });
        await rh.exec(['ip', 'netns', 'add', n.ns]);
        await rh.exec(['ip', 'link', 'add', n.veth, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', POD_IFNAME, 'netns', n.ns, 'mtu', String(mtu)]);
      } else {
        state?.addNamespace(n.ns);
        undo.push(async () => {
          await deleteNetns(n.ns);
          state?.removeNamespace(n.ns);
        });
        await run(['ip', 'netns', 'add', n.ns]);
        // Made from the root namespace straight into both namespaces (never visible in the root).
        await run(['ip', 'link', 'add', n.veth, 'netns', s.hostNs, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', POD_IFNAME, 'netns', n.ns, 'mtu', String(mtu)]);
      }
      const pod: TopologyHost = s.rh ? new AgentPodHost(s.label, n.ns, s.host) : new NetnsHost(s.label, n.ns, state);
      pods.push(pod);
      const h = s.host;
      links.push({ host: h, pod, bridge: n.bridge, veth: n.veth });
      await h.exec(['ip', 'link', 'add', n.bridge, 'mtu', String(mtu), 'type', 'bridge']);
      await h.exec(['ip', 'addr', 'add', `${s.mine.gateway}/${POD_NET.prefix}`, 'dev', n.bridge]);
      await h.exec(['ip', 'link', 'set', n.veth, 'master', n.bridge]);
      await h.exec(['ip', 'link', 'set', n.bridge, 'up']);
      await h.exec(['ip', 'link', 'set', n.veth, 'up']);
      await pod.exec(['ip', 'link', 'set', 'lo', 'up']);
      await pod.exec(['ip', 'addr', 'add', `${s.mine.pod}/${POD_NET.prefix}`, 'dev', POD_IFNAME]);
      await pod.exec(['ip', 'link', 'set', POD_IFNAME, 'up']);
      await pod.exec(['ip', 'route', 'add', 'default', 'via', s.mine.gateway]);
      if (s.rh) {
        const rh: RemoteHost = s.rh;
        // Forwarding only on the ingress devices; the underlay device (bare) is put back as it was.
        const created = new Set([n.bridge, topo.names.vxlan, topo.names.tap, topo.names.ovsInt]);
        for (const dev of [n.bridge, s.dev]) {
          const key = `net/ipv4/conf/${dev}/forwarding`;
          if (!created.has(dev)) {
            const was = (await rh.exec(['cat', `/proc/sys/${key}`], { allowFail: true })).stdout.trim();
            if (was !== '1') {
              const back = [['sysctl', '-qw', `${key}=${was || '0'}`]];
              await rh.track({ restore: back });
              undo.push(async () => {
                await rh.exec(back[0], { allowFail: true });
                await rh.untrack({ restore: back });
              });
            }
          }
          await rh.exec(['sysctl', '-qw', `${key}=1`]);
        }
      } else {
        await h.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      }
      await h.exec(route);
      info.hosts.push({ label: s.label, namespace: n.ns, bridge: n.bridge, gateway: `${s.mine.gateway}/${POD_NET.prefix}`, address: s.mine.pod, routeToPeer: route.slice(3).join(' ') });
    }
  } catch (err) {
    await teardown();
    throw err;
  }
  const setMtu = async (to: number) => {
    for (const l of links) {
      // Host side first (veth end, then the bridge, which keeps an MTU set explicitly), then the pod's eth0.
      await l.host.exec(['ip', 'link', 'set', l.veth, 'mtu', String(to)]);
      await l.host.exec(['ip', 'link', 'set', l.bridge, 'mtu', String(to)]);
      await l.pod.exec(['ip', 'link', 'set', POD_IFNAME, 'mtu', String(to)]);
    }
  };
  return { a: pods[0], b: pods[1], addrA: POD_NET.a.pod, addrB: POD_NET.b.pod, mtu, info, setMtu, teardown };
}

/** The topology the measurements see with pod endpoints, with the way back to the hosts behind the pods. */
export interface PodTopology extends Topology {
  podOf: { hosts: Topology; pods: Pods };
}

/** The hosts and pods behind a pod view's topology, or null for host endpoints. */
export function podsBehind(topo: Topology): { hosts: Topology; pods: Pods } | null {
  return 'podOf' in topo ? (topo as PodTopology).podOf : null;
}

/**
 * The topology and mode as the measurements see them with pod endpoints:
 * hosts A and B are the pods, the addresses the pods'. CPU and dataplane
 * accounting stay the mode's (machine-wide, both hosts).
 */
export function podView(topo: Topology, mode: ActiveMode, pods: Pods): { topo: PodTopology; mode: ActiveMode } {
  return { topo: { ...topo, a: pods.a, b: pods.b, podOf: { hosts: topo, pods } }, mode: { ...mode, addrA: pods.addrA, addrB: pods.addrB } };
}
