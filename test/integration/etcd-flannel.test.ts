/**
 * The flannel control plane on a real etcd, driving kernel VXLAN devices in
 * namespaces (the userspace VTEP has its own end-to-end test): concurrent lease
 * acquisition, watch latency, departure and TTL expiry, restart, an etcd outage,
 * interop with a flanneld-style host, config refusal.
 *
 * VXE_ETCD_OUTAGE_SECONDS sets the outage length (default 30, as issue 5 asks).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostScope } from '../../src/host/netns.js';
import { haveCommand } from '../../src/host/exec.js';
import * as routes from '../../src/host/routes.js';
import { startFlannelControl, NetworkConfigError, MissingConfigError, type FlannelControl, type FlannelControlOptions } from '../../src/control/flannel/index.js';
import { startEtcd, putNetworkConfig, type EtcdServer } from '../helpers/etcd.js';
import { Underlay, KernelFlannelHost, addContainers, kernelVtep, pingOnce, pingUntil } from '../helpers/flannel-hosts.js';

const PREFIX = '/coreos.com/network';
const TTL = 10;
const OUTAGE_S = Number(process.env.VXE_ETCD_OUTAGE_SECONDS ?? 30);
const canRun = process.getuid?.() === 0 && (await haveCommand('etcd')) && (await haveCommand('etcdctl'));

describe.skipIf(!canRun)('flannel control plane on etcd (kernel VXLAN hosts)', () => {
  const scope = new HostScope('vxe');
  let etcd: EtcdServer;
  let underlay: Underlay;
  let dir: string;
  const controls = new Map<number, FlannelControl>();
  const logs: string[] = [];

  function opts(i: number, extra: Partial<FlannelControlOptions> = {}): FlannelControlOptions {
    return {
      endpoints: [etcd.endpoint],
      prefix: PREFIX,
      local: `198.18.0.${i}`,
      subnetFile: join(dir, `h${i}.env`),
      leaseTtlSeconds: TTL,
      netns: `vxeh${i}`,
      log: (m) => logs.push(`h${i}: ${m}`),
      ...extra,
    };
  }
  async function startHost(i: number, extra: Partial<FlannelControlOptions> = {}): Promise<FlannelControl> {
    const c = await startFlannelControl(opts(i, extra), kernelVtep(`vxeh${i}`));
    controls.set(i, c);
    return c;
  }
  async function stopHost(i: number, release = true): Promise<void> {
    await controls.get(i)?.stop({ release });
    controls.delete(i);
  }
  const waitFor = async (what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number) => {
    const t0 = Date.now();
    while (!(await cond())) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    return Date.now() - t0;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vxe-flannel-'));
    etcd = await startEtcd();
    scope.onCleanup(() => etcd.destroy());
    // 198.19.200.0/24 and up stay free for the flanneld-style host and the race test.
    await putNetworkConfig(etcd, PREFIX, { Network: '198.19.0.0/16', SubnetLen: 24, SubnetMax: '198.19.199.0', Backend: { Type: 'vxlan' } });
    underlay = await Underlay.create(scope);
    for (let i = 1; i <= 13; i++) await underlay.host(i);
  });

  afterAll(async () => {
    for (const i of [...controls.keys()]) await stopHost(i).catch(() => undefined);
    await scope.cleanup();
    await rm(dir, { recursive: true, force: true });
    if (process.env.VXE_DEBUG) console.log(logs.join('\n'));
  });

  it('ten hosts racing for the same subnets (a 10-subnet range, all picking alike) still end up with ten different ones', async () => {
    const prefix = '/vxe/race';
    await putNetworkConfig(etcd, prefix, { Network: '198.19.0.0/16', SubnetLen: 28, SubnetMin: '198.19.250.0', SubnetMax: '198.19.250.144', Backend: { Type: 'vxlan', VNI: 2 } });
    const racers = await Promise.all(
      Array.from({ length: 10 }, (_, k) => startFlannelControl({ ...opts(k + 1), prefix, subnetFile: join(dir, `race${k + 1}.env`), random: () => 0 }, kernelVtep(`vxeh${k + 1}`, 'vxeu0', 'vxek.2'))),
    );
    try {
      const subnets = racers.map((c) => c.subnet).sort();
      expect(new Set(subnets).size).toBe(10);
      const conflicts = racers.reduce((a, c) => a + c.stats().acquireConflicts, 0);
      console.log(`ten racers on a ten-subnet range: ${conflicts} lost compare-and-swap races, all subnets distinct`);
      expect(conflicts).toBeGreaterThan(0);
      const full = await startFlannelControl({ ...opts(11), prefix, subnetFile: join(dir, 'race11.env') }, kernelVtep('vxeh11', 'vxeu0', 'vxek.2')).catch((e) => e);
      expect(full).toBeInstanceOf(Error);
      expect(String(full.message)).toMatch(/no free subnet/);
    } finally {
      await Promise.all(racers.map((c) => c.stop()));
    }
    expect(JSON.parse((await etcd.ctl(['get', '--prefix', `${prefix}/subnets/`, '-w', 'json'])).stdout).kvs ?? []).toHaveLength(0);
  });

  it('ten hosts started at once get ten different subnets, in flannel format, and reach each other', async () => {
    const started = await Promise.all(Array.from({ length: 10 }, (_, k) => startHost(k + 1)));
    const subnets = started.map((c) => c.subnet);
    expect(new Set(subnets).size).toBe(10);
    for (const s of subnets) expect(s).toMatch(/^198\.19\.\d+\.0\/24$/);
    expect(subnets).not.toContain('198.19.0.0/24'); // SubnetMin skips the first
    const listing = await etcd.ctl(['get', '--prefix', `${PREFIX}/subnets/`, '-w', 'json']);
    const kvs = JSON.parse(listing.stdout).kvs as { key: string; value: string; lease: number }[];
    expect(kvs).toHaveLength(10);
    for (const kv of kvs) {
      const key = Buffer.from(kv.key, 'base64').toString();
      expect(key).toMatch(/^\/coreos\.com\/network\/subnets\/198\.19\.\d+\.0-24$/);
      const v = JSON.parse(Buffer.from(kv.value, 'base64').toString());
      expect(Object.keys(v).sort()).toEqual(['BackendData', 'BackendType', 'PublicIP', 'PublicIPv6']);
      expect(v).toMatchObject({ BackendType: 'vxlan', PublicIPv6: null, BackendData: { VNI: 1 } });
      expect(v.BackendData.VtepMAC).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(kv.lease).toBeGreaterThan(0);
    }
    const stats = started.map((c) => c.stats());
    console.log(`ten concurrent acquirers: ${stats.reduce((a, s) => a + s.acquireConflicts, 0)} lost compare-and-swap races in total`);

    // subnet.env as flannel writes it.
    const env = await readFile(join(dir, 'h1.env'), 'utf8');
    const s1 = started[0].subnet.split('/')[0].split('.');
    expect(env).toBe(`FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=${s1.slice(0, 3).join('.')}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n`);

    // Host state on h1 as flanneld would have it.
    for (const c of started) await c.settled();
    const t = { netns: 'vxeh1' };
    const rts = await routes.listRoutes('vxek.1', t);
    expect(rts.filter((r) => r.gateway)).toHaveLength(9);
    for (const r of rts.filter((x) => x.gateway)) {
      expect(r.gateway).toBe(r.dst.split('/')[0]);
      expect(r.flags).toContain('onlink');
    }
    const neigh = await routes.listNeighbours('vxek.1', t);
    expect(neigh.filter((n) => n.state?.includes('PERMANENT'))).toHaveLength(9);
    expect((await routes.listVxlanFdb('vxek.1', t)).length).toBe(9);

    // All to all, overlay address to overlay address.
    for (const a of started) {
      for (const b of started) {
        if (a === b) continue;
        const from = `vxeh${[...controls].find(([, c]) => c === a)![0]}`;
        expect(await pingOnce(from, b.gateway), `${a.subnet} -> ${b.gateway}`).toBe(true);
      }
    }
  });

  it('a joining host is reachable from the others within 2 s; a leaving one disappears', async () => {
    const appliedAt = new Map<number, number>();
    // the hosts were started without onApplied; poll their remotes instead
    for (const i of controls.keys()) appliedAt.set(i, 0);
    const t0 = Date.now();
    const c11 = await startHost(11);
    const leaseAt = Date.now();
    const seen = await waitFor(
      'h1 to program h11',
      () =>
        controls
          .get(1)!
          .remotes()
          .some((r) => r.key === c11.key),
      2000,
    );
    const pingAt = await pingUntil('vxeh1', c11.gateway, leaseAt + 5000);
    expect(pingAt).toBeDefined();
    const joinToReachable = pingAt! - leaseAt;
    console.log(`join: start ${leaseAt - t0} ms, lease -> h1 programmed ${seen} ms, lease -> first ping reply ${joinToReachable} ms`);
    expect(joinToReachable).toBeLessThan(2000);
    // The others program h11 on their own watch events; start-up is fast enough now that a
    // ping right after h1 saw it can beat them, so wait for each (same 2 s bound).
    // remotes() lists a peer once its lease is seen, a moment before its route, neighbour and
    // FDB entry are in the kernel, so ping until the same 2 s bound rather than once.
    for (const i of [2, 5, 10]) {
      const at = Date.now();
      await waitFor(
        `h${i} to program h11`,
        () =>
          controls
            .get(i)!
            .remotes()
            .some((r) => r.key === c11.key),
        2000,
      );
      expect(await pingUntil(`vxeh${i}`, c11.gateway, at + 2000), `h${i} -> h11`).toBeDefined();
    }

    const key = c11.key;
    const t1 = Date.now();
    await stopHost(11, true);
    const gone = await waitFor(
      'h1 to drop h11',
      () =>
        !controls
          .get(1)!
          .remotes()
          .some((r) => r.key === key),
      2000,
    );
    console.log(`clean leave: removed from h1 ${Date.now() - t1} ms after stop (${gone} ms after release)`);
    const rts = await routes.listRoutes('vxek.1', { netns: 'vxeh1' });
    expect(rts.some((r) => r.dst === c11.subnet)).toBe(false);
  });

  it('a crashed host drops out within the TTL; restarted before that, it keeps its subnet', async () => {
    // 8 s: a stop (routes of ten peers removed) and a start must fit inside the TTL on a loaded 2-core machine.
    const c12 = await startHost(12, { leaseTtlSeconds: 8 });
    await waitFor(
      'h1 to see h12',
      () =>
        controls
          .get(1)!
          .remotes()
          .some((r) => r.key === c12.key),
      2000,
    );
    // Crash then restart quickly: the lease is still there and holds our PublicIP: adopted.
    await stopHost(12, false);
    const again = await startHost(12, { leaseTtlSeconds: 8 });
    expect(again.key).toBe(c12.key);
    expect(logs.some((l) => l.startsWith('h12: adopted existing lease'))).toBe(true);
    // Clean stop, restart: the subnet from subnet.env is taken again.
    await stopHost(12, true);
    const third = await startHost(12, { leaseTtlSeconds: 8 });
    expect(third.key).toBe(c12.key);
    expect(logs.some((l) => l.startsWith('h12: took previous subnet'))).toBe(true);
    // Crash for good: gone from the others once the 8 s TTL runs out.
    const t0 = Date.now();
    await stopHost(12, false);
    await waitFor(
      'h1 to drop expired h12',
      () =>
        !controls
          .get(1)!
          .remotes()
          .some((r) => r.key === c12.key),
      8000 + 4000,
    );
    const took = Date.now() - t0;
    console.log(`crash: h12 removed from h1 ${took} ms after it stopped renewing (TTL 8 s)`);
    expect(took).toBeGreaterThan(2000); // at least TTL/3 (the last renewal came at most 2/3 TTL before the stop)
  });

  it('interoperates with a flanneld-style kernel host (its own lease and entries), both ways', async () => {
    const fl = new KernelFlannelHost(etcd, { ns: 'vxeh13', local: '198.18.0.13', underDev: 'vxeu0', prefix: PREFIX, subnet: '198.19.200.0/24', ttlSeconds: 60 });
    scope.onCleanup(() => fl.down());
    await fl.up();
    fl.startSync(100);
    const c1 = controls.get(1)!;
    await waitFor('h1 to program the flannel host', () => c1.remotes().some((r) => r.key === '198.19.200.0-24'), 2000);
    const [fc] = await addContainers(scope, 'vxeh13', 13, '198.19.200.1/24', 1);
    const s1 = c1.subnet.split('/')[0].split('.').slice(0, 3).join('.');
    const [hc] = await addContainers(scope, 'vxeh1', 1, `${s1}.1/24`, 1);
    expect(await pingUntil(fc.ns, hc.addr, Date.now() + 3000)).toBeDefined();
    expect(await pingOnce(hc.ns, fc.addr)).toBe(true);
    await fl.down();
    await waitFor('h1 to drop the flannel host', () => !c1.remotes().some((r) => r.key === '198.19.200.0-24'), 2000);
  });

  it(`keeps forwarding through a ${OUTAGE_S} s etcd outage; afterwards renews and admits a new host`, { timeout: (OUTAGE_S + 60) * 1000 }, async () => {
    const c1 = controls.get(1)!;
    const c2 = controls.get(2)!;
    const renewalsBefore = c1.stats().renewals;
    await etcd.stop();
    const t0 = Date.now();
    let pings = 0;
    let lost = 0;
    while (Date.now() - t0 < OUTAGE_S * 1000) {
      pings++;
      if (!(await pingOnce('vxeh1', c2.gateway, 1))) lost++;
      await new Promise((r) => setTimeout(r, 500));
    }
    const during = c1.stats();
    console.log(`outage ${OUTAGE_S} s: ${pings - lost}/${pings} pings h1->h2 answered; h1 etcd state ${during.etcd}, renew failures ${during.renewFailures}, peers kept ${c1.remotes().length}`);
    expect(lost).toBe(0);
    expect(c1.remotes().length).toBeGreaterThanOrEqual(9);
    if (OUTAGE_S > renewIntervalOf(TTL)) expect(during.etcd).toBe('etcd-unreachable');

    await etcd.start();
    const back = Date.now();
    await waitFor('h1 to renew after etcd returns', () => c1.stats().renewals > renewalsBefore && c1.stats().etcd === 'ok', 15_000);
    console.log(`etcd back: h1 renewed ${Date.now() - back} ms later (renewals ${c1.stats().renewals}, re-takes ${c1.stats().retakes})`);
    for (const [, c] of controls) await waitFor('every host to renew', () => c.stats().etcd === 'ok', 15_000);
    const ttlLeft = await etcd.ctl(['get', `${PREFIX}/subnets/${c1.key}`, '-w', 'json']);
    expect(JSON.parse(ttlLeft.stdout).kvs).toHaveLength(1);

    await stopHost(11); // a failed earlier test may have left it running
    const c11 = await startHost(11);
    const at = Date.now();
    const reply = await pingUntil('vxeh1', c11.gateway, at + 5000);
    expect(reply).toBeDefined();
    console.log(`after outage: new host h11 reachable from h1 ${reply! - at} ms after its lease`);
    expect(reply! - at).toBeLessThan(2000);
    await stopHost(11);
  });

  it('re-takes its subnet when its lease vanishes (expired during a partition, or revoked by hand)', async () => {
    const c3 = controls.get(3)!;
    const before = c3.stats().retakes;
    const fields = await etcd.ctl(['get', `${PREFIX}/subnets/${c3.key}`, '-w', 'fields']);
    const id = BigInt(/"Lease" : (\d+)/.exec(fields.stdout)![1]).toString(16);
    await etcd.ctl(['lease', 'revoke', id]);
    const took = await waitFor('h3 to re-take its lease', () => c3.stats().retakes > before, 5000);
    const back = await etcd.ctl(['get', `${PREFIX}/subnets/${c3.key}`, '--print-value-only']);
    expect(JSON.parse(back.stdout).PublicIP).toBe('198.18.0.3');
    await waitFor(
      'h1 to program h3 again',
      () =>
        controls
          .get(1)!
          .remotes()
          .some((r) => r.key === c3.key),
      2000,
    );
    expect(await pingUntil('vxeh1', c3.gateway, Date.now() + 2000)).toBeDefined();
    console.log(`lease revoked under h3: re-taken ${took} ms later, same subnet ${c3.subnet}`);
  });

  it('refuses a bad network config before touching the host', async () => {
    await putNetworkConfig(etcd, '/vxe/bad', { Network: '198.19.0.0/16', Backend: { Type: 'udp' } });
    let made = false;
    const err = await startFlannelControl({ ...opts(13), prefix: '/vxe/bad' }, async () => {
      made = true;
      throw new Error('not reached');
    }).catch((e) => e);
    expect(err).toBeInstanceOf(NetworkConfigError);
    expect(err.field).toBe('Backend.Type');
    expect(err.message).toMatch(/"udp".*only "vxlan"/);
    expect(made).toBe(false);
    const missing = await startFlannelControl({ ...opts(13), prefix: '/vxe/none' }, async () => {
      throw new Error('not reached');
    }).catch((e) => e);
    expect(missing).toBeInstanceOf(MissingConfigError);
  });
});

function renewIntervalOf(ttl: number): number {
  return ttl - Math.min(3600, ttl / 3);
}
