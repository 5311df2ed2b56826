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
import { putNetworkConfig, type EtcdServer } from '../helpers/etcd.js';
import { Underlay, KernelFlannelHost, addContainers, pingOnce, pingUntil } from '../helpers/flannel-hosts.js';

const PREFIX = '/coreos.com/network';
// 15 s: longer than the 10 s lease TTL, which is what the outage must outlast; etcd-flannel keeps the 30 s of issue 5.
const OUTAGE_S = Number(process.env.VXE_ETCD_OUTAGE_SECONDS ?? 15);
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
      [
        'node',
        MAIN,
        'up',
        '--local',
        `198.18.0.${i}`,
        '--name',
        'vxetap0',
        '--etcd-endpoints',
        etcd.endpoint,
        '--etcd-prefix',
        PREFIX,
        '--subnet-file',
        h.subnetFile,
        '--lease-ttl',
        '10s',
        '--stats-socket',
        h.sock,
      ],
      { netns: ns },
    );
    h.child.stderr?.on('data', (d: Buffer) => h.log.push(d.toString()));
    h.child.stdout?.on('data', (d: Buffer) => h.log.push(d.toString()));
    hosts.set(i, h);
    const t0 = Date.now();
    // Not the subnet file: a restarted host finds its previous one already there.
    while (!h.log.join('').includes('up in etcd mode')) {
      if (h.child.exitCode !== null || Date.now() - t0 > 15_000) throw new Error(`vxtap h${i} did not come up: ${h.log.join('')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const env = await readFile(h.subnetFile, 'utf8');
    h.subnet = /FLANNEL_SUBNET=(\S+)/.exec(env)![1];
    return h;
  }

  let flannelContainer: { ns: string; addr: string } | undefined;

  /** Bytes a 1 s iperf3 TCP run moved from `client` to `server` (0 if it failed). */
  async function tcpBytes(client: { ns: string }, server: { ns: string; addr: string }): Promise<number> {
    const srv = scope.spawn(['iperf3', '-s', '-1', '-B', server.addr], { netns: server.ns });
    await new Promise((r) => setTimeout(r, 300));
    const r = await run(['iperf3', '-c', server.addr, '-t', '1', '-J', '--connect-timeout', '2000'], { netns: client.ns, allowFail: true, timeoutMs: 15_000 });
    await stop(srv);
    if (r.code !== 0) return 0;
    return JSON.parse(r.stdout).end.sum_received.bytes as number;
  }

  async function stats(h: VxtapHost): Promise<{ drops: Record<string, number>; peers: { address: string }[] }> {
    const r = await run(['node', MAIN, 'stats', '--stats-socket', h.sock]);
    return JSON.parse(r.stdout);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vxe-e2e-'));
    underlay = await Underlay.create(scope);
    etcd = await underlay.etcd();
    await putNetworkConfig(etcd, PREFIX, { Network: '198.19.0.0/16', SubnetLen: 24, SubnetMax: '198.19.199.0', Backend: { Type: 'vxlan' } });
    for (const i of [1, 2, 3, 4, 5, 6, 7, 8]) await underlay.host(i);
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
    if (failures.length) console.log(`${failures.length} of ${all.length * (all.length - 1)} failed: ${failures.join(', ')}`);
    expect(failures).toEqual([]);
    const s = await stats(started[0]);
    expect(s.peers.map((p) => p.address).sort()).toEqual(['198.18.0.2', '198.18.0.3', '198.18.0.4']);
    // `vxtap stats` shows the control plane too
    const control = (s as unknown as { control: { mode: string; etcd: string; subnet: string; remoteHosts: { publicIP: string }[] } }).control;
    expect(control).toMatchObject({ mode: 'etcd', etcd: 'ok', subnet: started[0].subnet!.replace(/\.1\/24$/, '.0/24') });
    expect(control.remoteHosts.map((r) => r.publicIP).sort()).toEqual(['198.18.0.2', '198.18.0.3', '198.18.0.4']);
  });

  it("a flanneld-style kernel host and the vxtap hosts reach each other's subnets, both ways", async () => {
    const fl = new KernelFlannelHost(etcd, {
      ns: 'vxeh5',
      local: '198.18.0.5',
      underDev: 'vxeu0',
      prefix: PREFIX,
      subnet: '198.19.200.0/24',
      ttlSeconds: 60,
      ethtool: process.env.VXE_FLANNEL_ETHTOOL?.split(' ').filter(Boolean),
      gsoMaxSize: Number(process.env.VXE_FLANNEL_GSO_MAX ?? 0),
    });
    scope.onCleanup(() => fl.down());
    await fl.up();
    fl.startSync(100);
    const [fc] = await addContainers(scope, 'vxeh5', 5, '198.19.200.1/24', 1);
    for (const i of [1, 2, 3, 4]) {
      const [c0] = containers.get(i)!;
      expect(await pingUntil(c0.ns, fc.addr, Date.now() + 3000), `h${i} container -> flannel container`).toBeDefined();
      expect(await pingOnce(fc.ns, c0.addr, 2), `flannel container -> h${i} container`).toBe(true);
    }
    // TCP from vxtap to the kernel host.
    const [c1] = containers.get(1)!;
    const toFlannel = await tcpBytes(c1, fc);
    console.log(`TCP 1 s vxtap -> flannel host: ${toFlannel} bytes`);
    expect(toFlannel, 'vxtap -> flannel host TCP bytes').toBeGreaterThan(1_000_000);
    flannelContainer = fc;
  });

  it('TCP from a flanneld-default kernel host (checksum and TSO offload on) into a vxtap host', async () => {
    // Kernel VXLAN over veth sends inner checksums unfinished and ~64 KiB GSO datagrams
    // (FIELD-NOTES, "Interop trap"); the receiving vxtap must cope, as flanneld's peers do.
    const [c1] = containers.get(1)!;
    const toVxtap = await tcpBytes(flannelContainer!, c1);
    const st = (await stats(hosts.get(1)!)) as unknown as { offload: boolean; drops: Record<string, number>; total: Record<string, number> };
    const nonzero = Object.fromEntries(Object.entries(st.total).filter(([k, v]) => v && !k.startsWith('ns_')));
    console.log(`TCP 1 s flannel host (offloads on) -> vxtap: ${toVxtap} bytes; h1 offload ${st.offload}, drops ${JSON.stringify(st.drops)}, counters ${JSON.stringify(nonzero)}`);
    expect(toVxtap, 'flannel host -> vxtap TCP bytes').toBeGreaterThan(1_000_000);
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
    // Leaving: `vxtap leave` releases the lease; the others drop its route.
    const left = await run(['node', MAIN, 'leave', '--stats-socket', h6.sock], { allowFail: true, timeoutMs: 40_000 });
    expect(left.code, `vxtap leave: ${left.stderr}`).toBe(0);
    await stop(h6.child, 10_000);
    const t = { netns: 'vxeh1' };
    const subnet = h6.subnet!.replace(/\.1\/24$/, '.0/24');
    const t1 = Date.now();
    // The bound is the lease TTL (10 s here); a released lease normally goes in tens of ms.
    while ((await routes.listRoutes('vxetap0', t)).some((r) => r.dst === subnet) && Date.now() - t1 < 12_000) await new Promise((r) => setTimeout(r, 50));
    const gone = Date.now() - t1;
    const released = h6.log.join('').includes('released lease');
    const diag = `h6 log:\n${h6.log.join('')}\nh1 log tail:\n${hosts.get(1)!.log.join('').slice(-2000)}`;
    expect(
      (await routes.listRoutes('vxetap0', t)).some((r) => r.dst === subnet),
      `h6's route still on h1 ${gone} ms after its exit; ${diag}`,
    ).toBe(false);
    console.log(`vxtap leave: route gone from h1 ${gone} ms after the leave (lease ${released ? 'released' : 'NOT released, expired'})`);
    if (gone > 3000) console.log(`vxtap leave was slow; ${diag}`);
  });

  it('a crashed vxtap host (SIGKILL) disappears from the others within the lease TTL', async () => {
    const h6 = await startVxtap(6);
    const subnet = h6.subnet!.replace(/\.1\/24$/, '.0/24');
    const t = { netns: 'vxeh1' };
    const has = async () => (await routes.listRoutes('vxetap0', t)).some((r) => r.dst === subnet);
    const t0 = Date.now();
    while (!(await has()) && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 20));
    expect(await has()).toBe(true);
    process.kill(h6.child.pid!, 'SIGKILL');
    const t1 = Date.now();
    while ((await has()) && Date.now() - t1 < 15_000) await new Promise((r) => setTimeout(r, 100));
    expect(await has()).toBe(false);
    console.log(`vxtap crash: h6's route gone from h1 ${Date.now() - t1} ms after SIGKILL (lease TTL 10 s)`);
    await stop(h6.child);
    await run(['ip', 'link', 'del', 'vxetap0'], { netns: 'vxeh6', allowFail: true });
  });

  it(`keeps forwarding through a ${OUTAGE_S} s etcd outage; afterwards renews and admits a new host`, { timeout: (OUTAGE_S + 60) * 1000 }, async () => {
    const [a] = containers.get(1)!;
    const [b] = containers.get(3)!;
    await etcd.stop();
    const t0 = Date.now();
    let pings = 0;
    let lost = 0;
    while (Date.now() - t0 < OUTAGE_S * 1000) {
      pings++;
      if (!(await pingOnce(a.ns, b.addr, 1))) lost++;
      await new Promise((r) => setTimeout(r, 500));
    }
    console.log(`vxtap, etcd down ${OUTAGE_S} s: ${pings - lost}/${pings} container pings h1->h3 answered`);
    expect(lost).toBe(0);
    await etcd.start();
    // etcd restarts its leases with a full TTL; had the hosts not renewed, their 10 s leases would
    // be gone 12 s later. They are all still there, and say so in their logs.
    await new Promise((r) => setTimeout(r, 12_000));
    const h1 = hosts.get(1)!;
    const listed = JSON.parse((await etcd.ctl(['get', '--prefix', `${PREFIX}/subnets/`, '-w', 'json'])).stdout).kvs ?? [];
    expect(listed.length).toBeGreaterThanOrEqual(4);
    for (const i of [1, 2, 3, 4]) expect(hosts.get(i)!.log.join(''), `h${i}`).not.toMatch(/fatal/);
    expect(h1.log.join('')).toMatch(/etcd reachable again/);
    console.log(`after the outage: ${String(listed.length)} leases alive 12 s after etcd returned (TTL 10 s): renewed`);
    const h7 = await startVxtap(7);
    const leased = Date.now();
    const gw = h7.subnet!.replace(/\.1\/24$/, '.0');
    const reply = await pingUntil(a.ns, gw, leased + 5000, 20);
    expect(reply).toBeDefined();
    console.log(`after the outage: new host h7 reachable from h1's container ${reply! - leased} ms after its lease`);
    expect(reply! - leased).toBeLessThan(2000);
    await stop(h7.child);
  });

  it('vxtap up refuses a bad network config from etcd with exit status 2, naming the field', async () => {
    await putNetworkConfig(etcd, '/vxe/bad', { Network: '198.19.0.0/16', Backend: { Type: 'host-gw' } });
    const r = await run(
      [
        'node',
        MAIN,
        'up',
        '--local',
        '198.18.0.6',
        '--name',
        'vxetap9',
        '--etcd-endpoints',
        etcd.endpoint,
        '--etcd-prefix',
        '/vxe/bad',
        '--subnet-file',
        join(dir, 'bad.env'),
        '--stats-socket',
        join(dir, 'bad.sock'),
      ],
      { netns: 'vxeh6', allowFail: true, timeoutMs: 20_000 },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Backend\.Type.*host-gw/);
    expect(existsSync(join(dir, 'bad.env'))).toBe(false);
    const links = await run(['ip', '-o', 'link', 'show', 'vxetap9'], { netns: 'vxeh6', allowFail: true });
    expect(links.code).not.toBe(0); // never touched the host
  });

  it('drops and counts packets from an underlay address that holds no lease', async () => {
    // h8 fakes a flannel host without writing a lease, and targets h1 directly.
    const h1 = hosts.get(1)!;
    const s1 = h1.subnet!.replace(/\.1\/24$/, '.0');
    const mac1 = (await routes.linkInfo('vxetap0', { netns: 'vxeh1' })).mac;
    const t = { netns: 'vxeh8' };
    await routes.createKernelVxlan({ netns: 'vxeh8', name: 'vxefl.1', vni: 1, port: 8472, local: '198.18.0.8', dev: 'vxeu0', mtu: 1450 });
    await routes.addressReplace('vxefl.1', '198.19.201.0/32', t);
    await routes.neighReplace('vxefl.1', s1, mac1, t);
    await routes.fdbReplace('vxefl.1', mac1, '198.18.0.1', t);
    await routes.routeReplaceOnlink(`${s1}/24`, s1, 'vxefl.1', t);
    const before = (await stats(h1)).drops;
    expect(await pingOnce('vxeh8', s1, 1)).toBe(false);
    const after = (await stats(h1)).drops;
    const key = Object.keys(after).find((k) => /unknown_peer/.test(k))!;
    expect(key).toBeDefined();
    expect(after[key]).toBeGreaterThan(before[key] ?? 0);
    console.log(`rogue sender: ${after[key] - (before[key] ?? 0)} packets dropped as ${key}`);
  });
});
