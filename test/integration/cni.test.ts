/**
 * The `vxtap` CNI plugin as a runtime calls it: `vxtap cni install` into a temp
 * directory, then the installed executable with a clean CNI environment
 * (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS=/var/run/netns/X, CNI_IFNAME,
 * CNI_PATH=<temp dir>:/usr/lib/cni) and the network configuration on stdin, run
 * in each host's namespace, delegating to Debian's real `bridge` and
 * `host-local`. Hosts: three `vxtap up` in etcd mode sharing one real etcd, and
 * a flanneld-style kernel VXLAN host (subnet.env written by hand, as flanneld
 * would). Pods reach each other (ping, checksummed TCP), CHECK passes, DEL
 * removes the veth, the IPAM allocation, the masquerade rules and the stored
 * state (the bridge stays, as with the bridge plugin alone), and bad
 * configuration gets the spec's error object with a nonzero exit.
 *
 * Everything is prefixed `vxcn` (namespaces vxcn*, bridge vxcncni0, TAP vxcntap0)
 * and removed in afterAll, also on failure; host-local and the plugin keep
 * their state in a temp directory, never /var/lib/cni.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { HostScope, listNetns } from '../../src/host/netns.js';
import { run, stop } from '../../src/host/exec.js';
import { putNetworkConfig, type EtcdServer } from '../helpers/etcd.js';
import { Underlay, KernelFlannelHost, pingOnce, pingUntil } from '../helpers/flannel-hosts.js';
import { skipReason, named } from '../helpers/requires.js';
import { CLI, REPO, ensureBuilt, runVxtap } from '../helpers/cli.js';

const PREFIX = '/coreos.com/network';
const TCP = join(REPO, 'test/helpers/tcp-transfer.mjs');
const BRIDGE = 'vxcncni0';
const NET = 'vxcn';

const skip =
  skipReason({ root: true, tun: true, build: true, commands: ['etcd', 'etcdctl', 'iptables'] }) ??
  (existsSync('/usr/lib/cni/bridge') && existsSync('/usr/lib/cni/host-local') ? null : 'needs /usr/lib/cni/bridge and host-local (Debian containernetworking-plugins)');

interface Pod {
  /** Host index (1-3 vxtap, 4 kernel VXLAN). */
  h: number;
  ns: string;
  id: string;
  addr: string;
  result: { cniVersion: string; ips: { address: string; gateway?: string; version?: string }[]; interfaces: { name: string; sandbox?: string }[]; routes?: { dst: string }[] };
  /** Configuration keys this pod was added with (the runtime sends the same on CHECK and DEL). */
  extra: Record<string, unknown>;
}

interface CniRun {
  code: number;
  stdout: string;
  stderr: string;
}

describe.skipIf(skip !== null)(named('vxtap CNI plugin: pods on vxtap hosts and a flanneld-style host', skip), () => {
  const scope = new HostScope('vxcn');
  let etcd: EtcdServer;
  let dir: string;
  let bin: string;
  const tag = process.pid.toString(36);
  const vxtaps: { child: ChildProcess; log: string[] }[] = [];
  const subnets = new Map<number, string>();
  const pods = new Map<string, Pod>();
  const t0 = Date.now();
  const timings: string[] = [];

  const hostNs = (h: number) => `vxcnh${h}`;
  const subnetFile = (h: number) => join(dir, `h${h}`, 'subnet.env');
  const stateDir = (h: number) => join(dir, `h${h}`, 'state');
  const ipamDir = (h: number) => join(dir, `h${h}`, 'ipam');

  /** The network configuration a node would have in /etc/cni/net.d, made test-local. */
  function conf(h: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
    const { delegate, ...rest } = extra as { delegate?: Record<string, unknown> };
    return {
      cniVersion: '1.0.0',
      name: NET,
      type: 'vxtap',
      subnetFile: subnetFile(h),
      dataDir: stateDir(h),
      delegate: { bridge: BRIDGE, ...delegate },
      ipam: { dataDir: ipamDir(h) },
      ...rest,
    };
  }

  /** Run the installed plugin in host `h`'s namespace with only the CNI variables given (as a runtime does). */
  async function cni(h: number, vars: Record<string, string | undefined>, stdin: string): Promise<CniRun> {
    const env = Object.entries(vars)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${String(v)}`);
    const t = Date.now();
    const r = await run(['env', '-i', `PATH=${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`, ...env, join(bin, 'vxtap')], {
      netns: hostNs(h),
      input: stdin,
      allowFail: true,
      timeoutMs: 30_000,
    });
    timings.push(`${String(vars.CNI_COMMAND)} ${Date.now() - t}`);
    return r;
  }

  function podVars(command: string, h: number, ns: string, id: string): Record<string, string> {
    return { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: `/var/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: `${bin}:/usr/lib/cni` };
  }

  /** ADD a pod on host `h` (its namespace created here); returns it with the plugin's result. */
  async function addPod(h: number, name: string, extra: Record<string, unknown> = {}): Promise<Pod> {
    const ns = await scope.netns(`p${name}`);
    const id = `vxcn-${tag}-${name}`;
    const r = await cni(h, podVars('ADD', h, ns, id), JSON.stringify(conf(h, extra)));
    expect(r.code, `ADD ${name}: ${r.stdout} ${r.stderr}`).toBe(0);
    const result = JSON.parse(r.stdout) as Pod['result'];
    const pod: Pod = { h, ns, id, addr: result.ips[0].address.split('/')[0], result, extra };
    pods.set(name, pod);
    return pod;
  }

  async function delPod(p: Pod): Promise<CniRun> {
    return cni(p.h, podVars('DEL', p.h, p.ns, p.id), JSON.stringify({ ...conf(p.h, p.extra), prevResult: p.result }));
  }

  async function checkPod(p: Pod): Promise<CniRun> {
    return cni(p.h, podVars('CHECK', p.h, p.ns, p.id), JSON.stringify({ ...conf(p.h, p.extra), prevResult: p.result }));
  }

  /** A checksummed TCP transfer of `bytes` from pod `a` to pod `b`. */
  async function transfer(a: Pod, b: Pod, bytes = 4 << 20): Promise<void> {
    const port = 5301;
    const t1 = Date.now();
    const srv = scope.spawn(['node', TCP, 'server', b.addr, String(port)], { netns: b.ns });
    let out = '';
    let err = '';
    srv.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    srv.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!err.includes('listening') && srv.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const tc = Date.now();
    const c = await run(['node', TCP, 'client', b.addr, String(port), String(bytes)], { netns: a.ns, allowFail: true, timeoutMs: 30_000 });
    timings.push(`tcp-client ${Date.now() - tc} (server up ${tc - t1})`);
    const waitMs = Date.now() + 5000; // the server exits by itself once the client closed
    while (srv.exitCode === null && srv.signalCode === null && Date.now() < waitMs) await new Promise((r) => setTimeout(r, 20));
    await stop(srv);
    expect(c.code, `TCP ${a.addr} -> ${b.addr}: ${c.stderr}`).toBe(0);
    const sent = JSON.parse(c.stdout);
    const got = JSON.parse(out || '{}');
    expect(got, `TCP ${a.addr} -> ${b.addr}: server ${out} ${err}`).toEqual(sent);
    expect(sent.bytes).toBe(bytes);
  }

  async function startVxtap(h: number, etcdEndpoint: string): Promise<void> {
    const log: string[] = [];
    const child = scope.spawn(
      [
        'node',
        CLI,
        'up',
        '--local',
        `198.18.0.${h}`,
        '--name',
        'vxcntap0',
        '--etcd-endpoints',
        etcdEndpoint,
        '--etcd-prefix',
        PREFIX,
        '--subnet-file',
        subnetFile(h),
        '--lease-ttl',
        '10s',
        '--stats-socket',
        join(dir, `h${h}`, 'vxtap.sock'),
      ],
      { netns: hostNs(h) },
    );
    vxtaps.push({ child, log });
    child.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
    child.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
    const t = Date.now();
    while (!log.join('').includes('up in etcd mode')) {
      if (child.exitCode !== null || Date.now() - t > 20_000) throw new Error(`vxtap h${h} did not come up: ${log.join('')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    subnets.set(h, /FLANNEL_SUBNET=(\S+)/.exec(await readFile(subnetFile(h), 'utf8'))![1]);
  }

  beforeAll(async () => {
    await ensureBuilt();
    const built = Date.now() - t0;
    dir = await mkdtemp(join(tmpdir(), 'vxcn-'));
    bin = join(dir, 'bin');
    await mkdir(bin);
    for (const h of [1, 2, 3, 4]) await mkdir(join(dir, `h${h}`));
    const phases: string[] = [`build check ${built} ms`];
    let t = Date.now();
    const phase = (what: string) => {
      phases.push(`${what} ${Date.now() - t} ms`);
      t = Date.now();
    };
    const underlay = await Underlay.create(scope);
    etcd = await underlay.etcd();
    await putNetworkConfig(etcd, PREFIX, { Network: '198.19.0.0/16', SubnetLen: 24, SubnetMax: '198.19.199.0', Backend: { Type: 'vxlan' } });
    phase('etcd');
    for (const h of [1, 2, 3, 4]) await underlay.host(h);
    phase('4 host namespaces');
    await Promise.all([1, 2, 3].map((h) => startVxtap(h, etcd.endpoint)));
    phase('3 vxtap up');
    // The flanneld-style host: kernel VXLAN, its lease written with etcdctl, and the
    // subnet.env flanneld would write (FLANNEL_IPMASQ=true: flanneld --ip-masq).
    const fl = new KernelFlannelHost(etcd, { ns: hostNs(4), local: '198.18.0.4', underDev: underlay.dev, prefix: PREFIX, subnet: '198.19.200.0/24', ttlSeconds: 60 });
    scope.onCleanup(() => fl.down());
    await fl.up();
    fl.startSync(100);
    await writeFile(subnetFile(4), 'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.200.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n');
    subnets.set(4, '198.19.200.1/24');
    phase('kernel host');
    console.log(`cni: set-up ${Date.now() - t0} ms (${phases.join(', ')}; load average ${loadavg()[0].toFixed(1)})`);
  });

  afterAll(async () => {
    // Pods a failed test left attached: DEL them as a runtime would, then remove the rest.
    for (const p of pods.values()) await delPod(p).catch(() => undefined);
    for (const v of vxtaps) await stop(v.child).catch(() => undefined);
    await scope.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
    const left = (await listNetns()).filter((n) => n.startsWith('vxcn'));
    console.log(`cni: timings ${timings.join(', ')}`);
    console.log(`cni: file wall time ${Date.now() - t0} ms (load average ${loadavg()[0].toFixed(1)})`);
    expect(left, 'namespaces left behind').toEqual([]);
  });

  it('vxtap cni install writes an executable, idempotently, and refuses a missing directory', async () => {
    const first = await runVxtap(['cni', 'install', '--dir', bin]);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ path: join(bin, 'vxtap'), node: process.execPath, changed: true });
    const again = await runVxtap(['cni', 'install', '--dir', bin]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).changed).toBe(false);
    const missing = await runVxtap(['cni', 'install', '--dir', join(dir, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--dir .*nope does not exist/);
    const v = await cni(1, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toEqual({ cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
  });

  it('two vxtap hosts: pods get the subnet, MTU and network route; they ping and move TCP; CHECK passes', async () => {
    const a = await addPod(1, '1a');
    const b = await addPod(2, '2a');
    for (const [p, h] of [
      [a, 1],
      [b, 2],
    ] as const) {
      const sub = subnets.get(h)!; // 198.19.X.1/24
      const gw = sub.split('/')[0];
      expect(p.result.cniVersion).toBe('1.0.0');
      expect(p.result.ips[0].address.startsWith(gw.replace(/\.1$/, '.'))).toBe(true);
      expect(p.result.ips[0].gateway).toBe(gw);
      expect(p.result.interfaces.some((i) => i.name === 'eth0' && i.sandbox === `/var/run/netns/${p.ns}`)).toBe(true);
      const link = (await run(['ip', '-o', 'link', 'show', 'eth0'], { netns: p.ns })).stdout;
      expect(link).toMatch(/mtu 1450 /);
      const routes = (await run(['ip', 'route', 'show'], { netns: p.ns })).stdout;
      expect(routes).toContain(`198.19.0.0/16 via ${gw} dev eth0`);
      // FLANNEL_IPMASQ=false (vxtap never masquerades): the bridge does, as flannel's plugin decides.
      expect((await run(['iptables', '-t', 'nat', '-S'], { netns: hostNs(h) })).stdout).toContain(p.id);
    }
    expect(await pingUntil(a.ns, b.addr, Date.now() + 5000), `${a.addr} -> ${b.addr}`).toBeDefined();
    expect(await pingOnce(b.ns, a.addr, 2), `${b.addr} -> ${a.addr}`).toBe(true);
    await transfer(a, b);
    for (const c of await Promise.all([a, b].map((p) => checkPod(p)))) {
      expect(c.code, `CHECK: ${c.stdout}`).toBe(0);
      expect(c.stdout).toBe('');
    }
  });

  it('three vxtap hosts: a third host and a second pod per host; every pod reaches every other', async () => {
    // delegate overrides: no masquerading on h3 (the pod's own address crosses the overlay).
    const c = await addPod(3, '3a', { delegate: { ipMasq: false, hairpinMode: true } });
    // An older runtime: cniVersion 0.4.0 in, the 0.4.0 result format out (ips carry "version").
    const a2 = await addPod(1, '1b', { cniVersion: '0.4.0' });
    expect(a2.result.cniVersion).toBe('0.4.0');
    expect(a2.result.ips[0].version).toBe('4');
    expect((await run(['iptables', '-t', 'nat', '-S'], { netns: hostNs(3) })).stdout).not.toContain(c.id);
    const all = ['1a', '1b', '2a', '3a'].map((n) => pods.get(n)!);
    expect(await pingUntil(all[0].ns, c.addr, Date.now() + 5000)).toBeDefined();
    const failures: string[] = [];
    for (const x of all) for (const y of all) if (x !== y && !(await pingOnce(x.ns, y.addr, 2))) failures.push(`${x.addr} -> ${y.addr}`);
    expect(failures).toEqual([]);
    await transfer(c, a2);
    for (const checked of await Promise.all([c, a2].map((p) => checkPod(p)))) expect(checked.code, checked.stdout).toBe(0);
  });

  it("a flanneld-style kernel VXLAN host: its pod and the vxtap hosts' pods reach each other", async () => {
    const k = await addPod(4, '4a');
    expect(k.result.ips[0].address).toMatch(/^198\.19\.200\.\d+\/24$/);
    // FLANNEL_IPMASQ=true: flanneld masquerades, so the bridge does not.
    expect((await run(['iptables', '-t', 'nat', '-S'], { netns: hostNs(4) })).stdout).not.toContain(k.id);
    for (const n of ['1a', '2a', '3a']) {
      const p = pods.get(n)!;
      const tp = Date.now();
      expect(await pingUntil(p.ns, k.addr, Date.now() + 5000), `${p.addr} -> ${k.addr}`).toBeDefined();
      const tq = Date.now();
      expect(await pingOnce(k.ns, p.addr, 2), `${k.addr} -> ${p.addr}`).toBe(true);
      timings.push(`ping ${n}->4a ${tq - tp}, 4a->${n} ${Date.now() - tq}`);
    }
    await transfer(pods.get('1a')!, k);
    await transfer(k, pods.get('3a')!);
    const checked = await checkPod(k);
    expect(checked.code, checked.stdout).toBe(0);
  });

  it('DEL removes the veth, the IPAM allocation, the masquerade rules and the state; twice is fine; works after subnet.env is gone', async () => {
    // h4's subnet.env vanishes first: DEL must still work from the stored configuration.
    await rename(subnetFile(4), `${subnetFile(4)}.away`);
    // Pods are independent: their DEL sequences run side by side (host-local locks its store).
    await Promise.all(
      [...pods].map(async ([name, p]) => {
        const r = await delPod(p);
        expect(r.code, `DEL ${name}: ${r.stdout} ${r.stderr}`).toBe(0);
        expect(r.stdout).toBe('');
        expect((await run(['ip', '-o', 'link', 'show', 'eth0'], { netns: p.ns, allowFail: true })).code, `eth0 left in ${p.ns}`).not.toBe(0);
        const hostVeth = p.result.interfaces.find((i) => !i.sandbox && i.name !== BRIDGE)!.name;
        expect((await run(['ip', '-o', 'link', 'show', hostVeth], { netns: hostNs(p.h), allowFail: true })).code, `host veth ${hostVeth} left on h${p.h}`).not.toBe(0);
        expect(existsSync(join(ipamDir(p.h), NET, p.addr)), `IPAM allocation ${p.addr}`).toBe(false);
        expect(
          readdirSync(stateDir(p.h)).filter((f) => f.startsWith(p.id)),
          'stored state',
        ).toEqual([]);
        expect((await run(['iptables', '-t', 'nat', '-S'], { netns: hostNs(p.h) })).stdout).not.toContain(p.id);
        pods.delete(name);
        if (name !== '1a' && name !== '4a') return; // the rest once per kind of host: each call costs a Node start-up
        const again = await delPod(p);
        expect(again.code, `second DEL ${name}: ${again.stdout}`).toBe(0);
        const check = await checkPod(p);
        expect(check.code).not.toBe(0);
        expect(JSON.parse(check.stdout)).toMatchObject({ cniVersion: '1.0.0', code: 3 });
      }),
    );
    for (const h of [1, 2, 3, 4]) {
      expect((await run(['ip', '-o', 'link', 'show', 'master', BRIDGE], { netns: hostNs(h) })).stdout.trim(), `ports left on h${h}'s bridge`).toBe('');
      expect(readdirSync(stateDir(h)), `state left on h${h}`).toEqual([]);
    }
    // The bridge itself stays, as with the bridge plugin alone (it never deletes it).
    expect((await run(['ip', '-o', 'link', 'show', BRIDGE], { netns: hostNs(1) })).code).toBe(0);
  });

  it("bad configuration gets the spec's error object and a nonzero exit, never a crash, and creates nothing", async () => {
    const ns = await scope.netns('pbad');
    const ok = (h: number) => podVars('ADD', h, ns, `vxcn-${tag}-bad`);
    await writeFile(join(dir, 'nomtu.env'), 'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.9.1/24\nFLANNEL_IPMASQ=false\n');
    await writeFile(join(dir, 'badsub.env'), 'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.20.9.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
    const cases: { what: string; vars: Record<string, string | undefined>; stdin: string; code: number; msg: RegExp }[] = [
      { what: 'bad JSON', vars: ok(1), stdin: '{"cniVersion": "1.0.0", ', code: 6, msg: /not valid JSON/ },
      { what: 'missing FLANNEL_MTU', vars: ok(1), stdin: JSON.stringify(conf(1, { subnetFile: join(dir, 'nomtu.env') })), code: 7, msg: /FLANNEL_MTU/ },
      { what: 'FLANNEL_SUBNET outside the network', vars: ok(1), stdin: JSON.stringify(conf(1, { subnetFile: join(dir, 'badsub.env') })), code: 7, msg: /FLANNEL_SUBNET.*not inside/ },
      { what: 'missing subnet.env', vars: ok(1), stdin: JSON.stringify(conf(1, { subnetFile: join(dir, 'none.env') })), code: 11, msg: /subnetFile .*none\.env/ },
      { what: 'unknown CNI_COMMAND', vars: { ...ok(1), CNI_COMMAND: 'FROB' }, stdin: JSON.stringify(conf(1)), code: 4, msg: /CNI_COMMAND.*FROB/ },
      { what: 'missing CNI_NETNS', vars: { ...ok(1), CNI_NETNS: undefined }, stdin: JSON.stringify(conf(1)), code: 4, msg: /CNI_NETNS/ },
      { what: 'unsupported cniVersion', vars: ok(1), stdin: JSON.stringify(conf(1, { cniVersion: '0.2.0' })), code: 1, msg: /cniVersion "0\.2\.0"/ },
      { what: 'delegate.type vxtap', vars: ok(1), stdin: JSON.stringify(conf(1, { delegate: { type: 'vxtap' } })), code: 7, msg: /delegate\.type/ },
      { what: 'CHECK at 0.3.1', vars: { ...ok(1), CNI_COMMAND: 'CHECK' }, stdin: JSON.stringify(conf(1, { cniVersion: '0.3.1' })), code: 1, msg: /does not allow CHECK/ },
    ];
    const runs = await Promise.all(cases.map((c) => cni(1, c.vars, c.stdin)));
    for (const [i, c] of cases.entries()) {
      const r = runs[i];
      expect(r.code, c.what).not.toBe(0);
      const e = JSON.parse(r.stdout);
      expect(e, c.what).toMatchObject({ code: c.code });
      expect(typeof e.cniVersion, c.what).toBe('string');
      expect(e.msg, c.what).toMatch(c.msg);
      expect(r.stderr, c.what).not.toMatch(/\n\s+at /); // no stack trace
    }
    // A delegate failure (the namespace does not exist) is passed through and undone: no state, no address kept.
    const gone = await cni(1, { ...ok(1), CNI_NETNS: '/var/run/netns/vxcn-does-not-exist' }, JSON.stringify(conf(1)));
    expect(gone.code).not.toBe(0);
    expect(JSON.parse(gone.stdout).msg).toMatch(/^bridge ADD: /);
    expect(readdirSync(stateDir(1)).filter((f) => f.includes('-bad@'))).toEqual([]);
    const allocated = existsSync(join(ipamDir(1), NET)) ? readdirSync(join(ipamDir(1), NET)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
    expect(allocated, 'IPAM allocations left').toEqual([]);
    // DEL of a container the plugin never saw is success (spec: missing resources are not an error).
    const never = await cni(1, { ...ok(1), CNI_COMMAND: 'DEL' }, JSON.stringify(conf(1, { subnetFile: join(dir, 'none.env') })));
    expect(never.code, never.stdout).toBe(0);
  });
});
