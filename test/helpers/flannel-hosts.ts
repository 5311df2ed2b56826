/**
 * Multi-host overlay topologies for the etcd tests, all in namespaces created
 * here (prefix `vxe`), on 198.18.0.0/24 (underlay) and 198.19.0.0/16 (overlay):
 *
 * - `Underlay`: a bridge in its own namespace; each host namespace gets a veth
 *   on it with 198.18.0.N/24.
 * - `kernelVtep()`: a `makeVtep` for startFlannelControl that creates a kernel
 *   VXLAN device the way flanneld does (vxlan id VNI dstport PORT nolearning,
 *   MTU underlay-50) and drives it through KernelVxlanControl: lets the control
 *   plane be tested with real forwarding before (and beside) the userspace VTEP.
 * - `KernelFlannelHost`: a flanneld emulation that shares no code with the
 *   control plane under test: it writes its own lease with etcdctl (hand-written
 *   JSON in flannel's format) and programs, for each lease it reads, the
 *   neighbour, FDB and route entries flanneld programs on flannel.1.
 * - `addContainers()`: a local bridge with FLANNEL_SUBNET's address and N
 *   "container" namespaces on it, addressed from the host's subnet.
 */
import { HostScope } from '../../src/host/netns.js';
import { run } from '../../src/host/exec.js';
import * as routes from '../../src/host/routes.js';
import { startEtcd, type EtcdServer } from './etcd.js';
import type { ControlledVtep, MakeVtep } from '../../src/control/flannel/index.js';

/** The test underlay: one bridge in namespace `${prefix}ul`; link names start with the scope's prefix. */
export class Underlay {
  private constructor(
    readonly scope: HostScope,
    readonly ns: string,
    readonly bridge: string,
  ) {}

  static async create(scope: HostScope): Promise<Underlay> {
    const ns = await scope.netns('ul');
    await scope.bridge(`${scope.prefix}br`, ns);
    return new Underlay(scope, ns, `${scope.prefix}br`);
  }

  /**
   * An etcd server on the underlay at 198.18.0.250 (namespace `${prefix}etcd`, veth
   * `${prefix}u0` bridged as `${prefix}he`), destroyed with the scope.
   */
  async etcd(): Promise<EtcdServer> {
    const p = this.scope.prefix;
    const etcdNs = await this.scope.netns('etcd');
    await this.scope.veth({ name: `${p}u0`, netns: etcdNs }, { name: `${p}he`, netns: this.ns });
    await this.scope.enslave(`${p}he`, this.bridge, this.ns);
    await this.scope.addr(etcdNs, `${p}u0`, '198.18.0.250/24');
    const etcd = await startEtcd({ netns: etcdNs, host: '198.18.0.250' });
    this.scope.onCleanup(() => etcd.destroy());
    return etcd;
  }

  /** The underlay device's name inside each host namespace (`vxeu0` for prefix `vxe`). */
  get dev(): string {
    return `${this.scope.prefix}u0`;
  }

  /**
   * Create host namespace `${prefix}h${index}` with veth `${prefix}u0` on the underlay
   * and address 198.18.0.${index}/24; IPv4 forwarding on (it routes for its containers).
   */
  async host(index: number, mtu = 1500): Promise<{ ns: string; local: string; dev: string }> {
    const ns = await this.scope.netns(`h${index}`);
    const outer = `${this.scope.prefix}h${index}`;
    await this.scope.veth({ name: this.dev, netns: ns }, { name: outer, netns: this.ns }, mtu);
    await this.scope.enslave(outer, this.bridge, this.ns);
    const local = `198.18.0.${index}`;
    await this.scope.addr(ns, this.dev, `${local}/24`);
    await run(['sysctl', '-qw', 'net.ipv4.ip_forward=1'], { netns: ns });
    return { ns, local, dev: this.dev };
  }
}

/** A makeVtep that builds a kernel VXLAN device like flanneld's flannel.VNI, in `ns`. */
export function kernelVtep(ns: string, underDev = 'vxeu0', name = 'vxek.1'): MakeVtep {
  return async (net) => {
    await routes.createKernelVxlan({ netns: ns, name, vni: net.vni, port: net.port, local: net.local, dev: underDev, mtu: net.mtu });
    const ctl = await routes.KernelVxlanControl.open(name, { netns: ns });
    const vtep: ControlledVtep & { flush(): Promise<void> } = Object.assign(ctl, {
      async stop() {
        await ctl.flush();
        await run(['ip', 'link', 'del', name], { netns: ns, allowFail: true });
      },
    });
    return vtep;
  };
}

/** A local bridge with `gatewayCidr` (FLANNEL_SUBNET) and `count` container namespaces; returns their addresses. */
export async function addContainers(scope: HostScope, hostNs: string, hostIndex: number, subnetFirstUsable: string, count: number): Promise<{ ns: string; addr: string }[]> {
  await scope.bridge('vxecbr', hostNs);
  await scope.addr(hostNs, 'vxecbr', subnetFirstUsable);
  const [first, len] = subnetFirstUsable.split('/');
  const o = first.split('.').map(Number);
  const out: { ns: string; addr: string }[] = [];
  for (let c = 0; c < count; c++) {
    const ns = await scope.netns(`h${hostIndex}c${c}`);
    // Created directly in the namespaces: 'eth0' would clash in the root namespace.
    await run(['ip', 'link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `vxec${c}`, 'netns', hostNs]);
    await run(['ip', 'link', 'set', 'eth0', 'up'], { netns: ns });
    await run(['ip', 'link', 'set', `vxec${c}`, 'up'], { netns: hostNs });
    await scope.enslave(`vxec${c}`, 'vxecbr', hostNs);
    const addr = `${o[0]}.${o[1]}.${o[2]}.${o[3] + 1 + c}`;
    await scope.addr(ns, 'eth0', `${addr}/${len}`);
    await run(['ip', 'route', 'add', 'default', 'via', first], { netns: ns });
    out.push({ ns, addr });
  }
  return out;
}

/** Ping once from `ns` to `dst`; true on a reply. */
export async function pingOnce(ns: string, dst: string, timeoutS = 1): Promise<boolean> {
  const r = await run(['ping', '-n', '-q', '-c', '1', '-W', String(timeoutS), dst], { netns: ns, allowFail: true, timeoutMs: (timeoutS + 2) * 1000 });
  return r.code === 0;
}

/** Ping until a reply or `deadlineMs` passes (bounded); resolves to the time of the first reply or undefined. */
export async function pingUntil(ns: string, dst: string, deadlineMs: number, intervalMs = 50): Promise<number | undefined> {
  while (Date.now() < deadlineMs) {
    if (await pingOnce(ns, dst, 0.2)) return Date.now();
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return undefined;
}

/**
 * flanneld emulation on a kernel VXLAN device `vxefl.VNI`: a lease written with
 * etcdctl, and per-lease entries synchronised from etcdctl listings (every
 * `pollMs` when started with `startSync`).
 */
export class KernelFlannelHost {
  readonly dev: string;
  mac = '';
  private leaseId = '';
  private programmed = new Map<string, { gw: string; mac: string; ip: string }>();
  private timer?: NodeJS.Timeout;
  private syncing?: Promise<void>;

  constructor(
    readonly etcd: EtcdServer,
    readonly o: {
      ns: string;
      local: string;
      underDev: string;
      prefix: string;
      subnet: string;
      vni?: number;
      port?: number;
      mtu?: number;
      ttlSeconds?: number;
      txChecksumOff?: boolean;
      ethtool?: string[];
      gsoMaxSize?: number;
    },
  ) {
    this.dev = `vxefl.${o.vni ?? 1}`;
  }

  get key(): string {
    return this.o.subnet.replace('/', '-');
  }

  /** The subnet's network address (on the device, /32) and first usable address. */
  get gateway(): string {
    return this.o.subnet.split('/')[0];
  }

  /** Create the device as flanneld does, then write the lease. */
  async up(): Promise<void> {
    const { ns } = this.o;
    await routes.createKernelVxlan({ netns: ns, name: this.dev, vni: this.o.vni ?? 1, port: this.o.port ?? 8472, local: this.o.local, dev: this.o.underDev, mtu: this.o.mtu ?? 1450 });
    // flanneld leaves checksum offload on; a receiver must then complete inner checksums
    // (FIELD-NOTES, "Interop trap"). `txChecksumOff` finishes them here instead.
    if (this.o.txChecksumOff) await run(['ethtool', '-K', this.dev, 'tx', 'off'], { netns: ns });
    if (this.o.ethtool?.length) await run(['ethtool', '-K', this.dev, ...this.o.ethtool], { netns: ns });
    if (this.o.gsoMaxSize) await run(['ip', 'link', 'set', this.dev, 'gso_max_size', String(this.o.gsoMaxSize)], { netns: ns });
    this.mac = (await routes.linkInfo(this.dev, { netns: ns })).mac;
    await routes.addressReplace(this.dev, `${this.gateway}/32`, { netns: ns });
    const grant = await this.etcd.ctl(['lease', 'grant', String(this.o.ttlSeconds ?? 60)]);
    this.leaseId = /lease ([0-9a-f]+) granted/.exec(grant.stdout)![1];
    const value = `{"PublicIP":"${this.o.local}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":${this.o.vni ?? 1},"VtepMAC":"${this.mac}"}}`;
    await this.etcd.ctl(['put', `--lease=${this.leaseId}`, `${this.o.prefix}/subnets/${this.key}`, value]);
  }

  /** Read all leases and program flanneld's entries for each remote one; remove departed ones. */
  async sync(): Promise<void> {
    const t = { netns: this.o.ns };
    const r = await this.etcd.ctl(['get', '--prefix', `${this.o.prefix}/subnets/`, '-w', 'json'], { allowFail: true });
    if (r.code !== 0) return; // etcd away: keep what we have (flanneld does too)
    const kvs = (JSON.parse(r.stdout).kvs ?? []) as { key: string; value: string }[];
    const want = new Map<string, { gw: string; mac: string; ip: string }>();
    for (const kv of kvs) {
      const key = Buffer.from(kv.key, 'base64').toString().split('/').pop()!;
      if (key === this.key) continue;
      const v = JSON.parse(Buffer.from(kv.value, 'base64').toString());
      if (v.BackendType !== 'vxlan' || !v.BackendData?.VtepMAC) continue;
      want.set(key, { gw: key.split('-')[0], mac: v.BackendData.VtepMAC, ip: v.PublicIP });
    }
    for (const [key, e] of this.programmed) {
      const w = want.get(key);
      if (w && w.mac === e.mac && w.ip === e.ip) continue;
      await routes.routeDel(key.replace('-', '/'), this.dev, t);
      await routes.neighDel(this.dev, e.gw, t);
      await routes.fdbDel(this.dev, e.mac, e.ip, t);
      this.programmed.delete(key);
    }
    for (const [key, w] of want) {
      if (this.programmed.has(key)) continue;
      // flannel's order: neighbour, FDB, route.
      await routes.neighReplace(this.dev, w.gw, w.mac, t);
      await routes.fdbReplace(this.dev, w.mac, w.ip, t);
      await routes.routeReplaceOnlink(key.replace('-', '/'), w.gw, this.dev, t);
      this.programmed.set(key, w);
    }
  }

  /** Sync every `pollMs` until down(). */
  startSync(pollMs = 200): void {
    const tick = () => {
      this.syncing = this.sync().catch(() => undefined);
      void this.syncing.then(() => {
        if (this.timer) this.timer = setTimeout(tick, pollMs);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  /** Stop syncing, revoke the lease, delete the device. */
  async down(): Promise<void> {
    const t = this.timer;
    this.timer = undefined;
    clearTimeout(t);
    await this.syncing;
    if (this.leaseId) await this.etcd.ctl(['lease', 'revoke', this.leaseId], { allowFail: true });
    await run(['ip', 'link', 'del', this.dev], { netns: this.o.ns, allowFail: true });
  }
}
