/**
 * End to end with the userspace VTEP: `vxtap up --etcd-endpoints ...` on four
 * hosts (namespaces on one underlay bridge, etcd in its own namespace on the
 * underlay), two containers each on a local bridge in the host's subnet:
 * all-to-all pings; a flanneld-style kernel host and the vxtap hosts reach each
 * other's subnets both ways; a joining vxtap host is reachable within 2 s; an
 * underlay sender without a lease is dropped and counted.
 *
 * Needs the build (dist/) and the native addon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { HostScope } from '../../src/host/netns.js';
import { haveCommand, run, stop } from '../../src/host/exec.js';
import * as routes from '../../src/host/routes.js';
import { startEtcd, putNetworkConfig, type EtcdServer } from '../helpers/etcd.js';
import { Underlay, KernelFlannelHost, addContainers, pingOnce, pingUntil } from '../helpers/flannel-hosts.js';

const PREFIX = '/coreos.com/network';
const MAIN = join(process.cwd(), 'dist/src/cli/main.js');
const haveBuild = existsSync(MAIN) && existsSync(join(process.cwd(), 'native/build/Release/vxtap_native.node'));
const canRun = process.getuid?.() === 0 && haveBuild && (await haveCommand('etcd'));
if (!haveBuild) console.warn('etcd-vxtap: skipped: build dist/ and the native addon first (npm run setup)');

interface VxtapHost {
  i: number;
  ns: string;
  child: ChildProcess;
  log: string[];
  subnetFile: string;
  sock: string;
  subnet?: string;
}

describe.skipIf(!canRun)('vxtap up in etcd mode, four hosts and a flanneld-style host', () => {
  const scope = new HostScope('vxe');
  let etcd: EtcdServer;
  let underlay: Underlay;
  let dir: string;
  const hosts = new Map<number, VxtapHost>();
  const containers = new Map<number, { ns: string; addr: string }[]>();

  async function startVxtap(i: number): Promise<VxtapHost> {
    const ns = `vxeh${i}`;
    const h: VxtapHost = { i, ns, log: [], subnetFile: join(dir, `h${i}.env`), sock: join(dir, `h${i}.sock`), child: undefined as unknown as ChildProcess };
    h.child = scope.spawn(
      ['node', MAIN, 'up', '--local', `198.18.0.${i}`, '--name', 'vxetap0', '--etcd-endpoints', etcd.endpoint, '--etcd-prefix', PREFIX, '--subnet-file', h.subnetFile, '--lease-ttl', '10s', '--stats-socket', h.sock],
      { netns: ns },
    );
    h.child.stderr?.on('data', (d: Buffer) => h.log.push(d.toString()));
    h.child.stdout?.on('data', (d: Buffer) => h.log.push(d.toString()));
    hosts.set(i, h);
    const t0 = Date.now();
    while (!existsSync(h.subnetFile)) {
      if (h.child.exitCode !== null || Date.now() - t0 > 15_000) throw new Error(`vxtap h${i} did not come up: ${h.log.join('')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const env = await readFile(h.subnetFile, 'utf8');
    h.subnet = /FLANNEL_SUBNET=(\S+)/.exec(env)![1];
    return h;
  }

  async function stats(h: VxtapHost): Promise<{ drops: Record<string, number>; peers: { address: string }[] }> {
    const r = await run(['node', MAIN, 'stats', '--stats-socket', h.sock]);
    return JSON.parse(r.stdout);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vxe-e2e-'));
    underlay = await Underlay.create(scope);
    const etcdNs = await scope.netns('etcd');
    await scope.veth({ name: 'vxeu0', netns: etcdNs }, { name: 'vxehe', netns: underlay.ns });
    await scope.enslave('vxehe', underlay.bridge, underlay.ns);
    await scope.addr(etcdNs, 'vxeu0', '198.18.0.250/24');
    etcd = await startEtcd({ netns: etcdNs, host: '198.18.0.250' });
    scope.onCleanup(() => etcd.destroy());
    await putNetworkConfig(etcd, PREFIX, { Network: '198.19.0.0/16', SubnetLen: 24, SubnetMax: '198.19.199.0', Backend: { Type: 'vxlan' } });
    for (const i of [1, 2, 3, 4, 5, 6, 7]) await underlay.host(i);
  });

  afterAll(async () => {
    for (const h of hosts.values()) await stop(h.child).catch(() => undefined);
    await scope.cleanup();
    if (process.env.VXE_DEBUG) for (const h of hosts.values()) console.log(`--- h${h.i}\n${h.log.join('')}`);
    await rm(dir, { recursive: true, force: true });
  });

  it('four vxtap hosts with two containers each: every container pings every other', async () => {
    const started = await Promise.all([1, 2, 3, 4].map((i) => startVxtap(i)));
    expect(new Set(started.map((h) => h.subnet)).size).toBe(4);
    const env = await readFile(started[0].subnetFile, 'utf8');
    expect(env).toMatch(/^FLANNEL_NETWORK=198\.19\.0\.0\/16\nFLANNEL_SUBNET=198\.19\.\d+\.1\/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n$/);
    for (const h of started) containers.set(h.i, await addContainers(scope, h.ns, h.i, h.subnet!, 2));
    // Host state as flannel has it: network address /32 on the TAP; a route per remote subnet.
    const t = { netns: 'vxeh1' };
    const deadline = Date.now() + 3000;
    while ((await routes.listRoutes('vxetap0', t)).filter((r) => r.gateway).length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect((await routes.listRoutes('vxetap0', t)).filter((r) => r.gateway && r.flags?.includes('onlink'))).toHaveLength(3);
    const all = [...containers.values()].flat();
    const failures: string[] = [];
    for (const a of all) for (const b of all) if (a !== b && !(await pingOnce(a.ns, b.addr, 2))) failures.push(`${a.ns} -> ${b.addr}`);
    if (failures.length && process.env.VXE_HOLD) await new Promise((r) => setTimeout(r, Number(process.env.VXE_HOLD) * 1000));
    if (failures.length) console.log(`${failures.length} of ${all.length * (all.length - 1)} failed: ${failures.join(", ")}`);
    expect(failures).toEqual([]);
    const s = await stats(started[0]);
    expect(s.peers.map((p) => p.address).sort()).toEqual(['198.18.0.2', '198.18.0.3', '198.18.0.4']);
  });

  it('a flanneld-style kernel host and the vxtap hosts reach each other\'s subnets, both ways', async () => {
    const fl = new KernelFlannelHost(etcd, { ns: 'vxeh5', local: '198.18.0.5', underDev: 'vxeu0', prefix: PREFIX, subnet: '198.19.200.0/24', ttlSeconds: 60 });
    scope.onCleanup(() => fl.down());
    await fl.up();
    fl.startSync(100);
    const [fc] = await addContainers(scope, 'vxeh5', 5, '198.19.200.1/24', 1);
    for (const i of [1, 2, 3, 4]) {
      const [c0] = containers.get(i)!;
      expect(await pingUntil(c0.ns, fc.addr, Date.now() + 3000), `h${i} container -> flannel container`).toBeDefined();
      expect(await pingOnce(fc.ns, c0.addr, 2), `flannel container -> h${i} container`).toBe(true);
    }
    // TCP too (checksums across kernel VXLAN and the userspace VTEP).
    const [c1] = containers.get(1)!;
    const srv = scope.spawn(['iperf3', '-s', '-1', '-B', c1.addr], { netns: c1.ns });
    void srv;
    await new Promise((r) => setTimeout(r, 300));
    const r = await run(['iperf3', '-c', c1.addr, '-t', '1', '-J'], { netns: fc.ns, allowFail: true, timeoutMs: 15_000 });
    expect(r.code, r.stderr).toBe(0);
    console.log(`flannel host -> vxtap host TCP: ${(JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s (1 s)`);
  });

  it('a joining vxtap host is reachable from the others within 2 s', async () => {
    const t0 = Date.now();
    const h6 = await startVxtap(6);
    const leased = Date.now();
    const gw = h6.subnet!.replace(/\.1\/24$/, '.0');
    const [c0] = containers.get(1)!;
    const reply = await pingUntil(c0.ns, gw, leased + 5000, 20);
    expect(reply).toBeDefined();
    console.log(`vxtap join: process start -> lease ${leased - t0} ms; lease -> first reply from h1's container ${reply! - leased} ms`);
    expect(reply! - leased).toBeLessThan(2000);
    // Leaving: SIGTERM releases the lease; the others drop its route.
    await stop(h6.child);
    const t = { netns: 'vxeh1' };
    const subnet = h6.subnet!.replace(/\.1\/24$/, '.0/24');
    const t1 = Date.now();
    while ((await routes.listRoutes('vxetap0', t)).some((r) => r.dst === subnet) && Date.now() - t1 < 3000) await new Promise((r) => setTimeout(r, 50));
    expect((await routes.listRoutes('vxetap0', t)).some((r) => r.dst === subnet)).toBe(false);
    console.log(`vxtap leave: route gone from h1 ${Date.now() - t1} ms after SIGTERM`);
  });

  it('drops and counts packets from an underlay address that holds no lease', async () => {
    // h7 fakes a flannel host without writing a lease, and targets h1 directly.
    const h1 = hosts.get(1)!;
    const s1 = h1.subnet!.replace(/\.1\/24$/, '.0');
    const mac1 = (await routes.linkInfo('vxetap0', { netns: 'vxeh1' })).mac;
    const t = { netns: 'vxeh7' };
    await routes.createKernelVxlan({ netns: 'vxeh7', name: 'vxefl.1', vni: 1, port: 8472, local: '198.18.0.7', dev: 'vxeu0', mtu: 1450 });
    await routes.addressReplace('vxefl.1', '198.19.201.0/32', t);
    await routes.neighReplace('vxefl.1', s1, mac1, t);
    await routes.fdbReplace('vxefl.1', mac1, '198.18.0.1', t);
    await routes.routeReplaceOnlink(`${s1}/24`, s1, 'vxefl.1', t);
    const before = (await stats(h1)).drops;
    expect(await pingOnce('vxeh7', s1, 1)).toBe(false);
    const after = (await stats(h1)).drops;
    const key = Object.keys(after).find((k) => /unknown_peer/.test(k))!;
    expect(key).toBeDefined();
    expect(after[key]).toBeGreaterThan(before[key] ?? 0);
    console.log(`rogue sender: ${after[key] - (before[key] ?? 0)} packets dropped as ${key}`);
  });
});
