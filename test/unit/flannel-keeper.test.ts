/**
 * The lease keeper over the fake registry and a simulated clock: acquisition
 * (fresh, after a crash, next to hostile keys), renewal timing, outages longer
 * than the TTL, a lease taken over by another host, leave vs crash.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/control/flannel/clock-fake.js';
import { FakeLeaseRegistry } from '../../src/control/flannel/registry-fake.js';
import { EtcdHealth, FatalControlError } from '../../src/control/flannel/etcd-health.js';
import { LeaseKeeper, renewIntervalSeconds, type LeaseKeeperOptions } from '../../src/control/flannel/lease-keeper.js';
import { parseNetworkConfig } from '../../src/control/flannel/config.js';
import { encodeLeaseValue } from '../../src/control/flannel/lease.js';
import { formatCidr, parseCidr } from '../../src/control/flannel/cidr.js';

const CONFIG = { Network: '198.19.0.0/16', SubnetLen: 24, SubnetMax: '198.19.9.0', Backend: { Type: 'vxlan' } };
const range = parseNetworkConfig(JSON.stringify(CONFIG)).ipv4;
const value = (ip: string, mac: string) => encodeLeaseValue({ publicIP: ip, publicIPv6: null, backendType: 'vxlan', vxlan: { vni: 1, vtepMac: mac } });

function setup() {
  const clock = new FakeClock();
  const reg = new FakeLeaseRegistry(clock, CONFIG);
  const logs: string[] = [];
  const fatals: Error[] = [];
  const keeper = (o: Partial<LeaseKeeperOptions> = {}) =>
    new LeaseKeeper({
      registry: reg,
      clock,
      health: new EtcdHealth((m) => logs.push(m)),
      range,
      local: '198.18.0.1',
      value: value('198.18.0.1', '02:00:00:00:00:01'),
      ttlSeconds: 30,
      log: (m) => logs.push(m),
      onFatal: (e) => fatals.push(e),
      ...o,
    });
  return { clock, reg, logs, fatals, keeper };
}

describe('lease keeper', () => {
  it('takes a free subnet and renews at TTL - min(1 h, TTL/3), each time under a fresh etcd lease', async () => {
    const { clock, reg, keeper } = setup();
    const k = keeper();
    const held = await k.acquire();
    expect(reg.keys()).toEqual([held.key]);
    k.start();
    const first = held.leaseId;
    await clock.advance(19_900);
    expect(k.stats.renewals).toBe(0);
    await clock.advance(200);
    expect(k.stats.renewals).toBe(1);
    expect(k.held.leaseId).not.toBe(first);
    // Without renewals the 30 s lease would be gone by now; it is not.
    await clock.advance(100_000);
    expect(k.stats.renewals).toBe(6); // at 20, 40, .., 120 s
    expect(reg.keys()).toEqual([held.key]);
    await k.stop();
  });

  it('renews a 24 h lease one hour before expiry', async () => {
    const { clock, keeper } = setup();
    const k = keeper({ ttlSeconds: 86400 });
    await k.acquire();
    k.start();
    expect(renewIntervalSeconds(86400)).toBe(23 * 3600);
    await clock.advance(23 * 3600 * 1000 - 1000);
    expect(k.stats.renewals).toBe(0);
    await clock.advance(2000);
    expect(k.stats.renewals).toBe(1);
    await k.stop();
  });

  it('a crash keeps the lease: the restarted host adopts its subnet, announcing its current VtepMAC', async () => {
    const { reg, keeper, logs } = setup();
    const k1 = keeper();
    const h1 = await k1.acquire();
    k1.start();
    await k1.stop(); // crash: no release
    expect(reg.keys()).toEqual([h1.key]);
    const k2 = keeper({ value: value('198.18.0.1', '02:00:00:00:00:99') });
    const h2 = await k2.acquire();
    expect(h2.key).toBe(h1.key);
    expect(logs.some((l) => l.startsWith(`adopted existing lease ${h1.key}`))).toBe(true);
    expect(JSON.parse(reg.value(h1.key)!).BackendData.VtepMAC).toBe('02:00:00:00:00:99');
    await k2.stop();
  });

  it('an explicit leave deletes the lease; the next start takes the subnet from subnet.env again', async () => {
    const { reg, keeper, logs } = setup();
    const k1 = keeper();
    const h1 = await k1.acquire();
    expect(await k1.release()).toBe(true);
    expect(reg.keys()).toEqual([]);
    const k2 = keeper({ previous: h1.subnet, subnetFile: '/run/x.env' });
    expect((await k2.acquire()).key).toBe(h1.key);
    expect(logs.some((l) => l.startsWith(`took previous subnet ${formatCidr(h1.subnet)} again`))).toBe(true);
  });

  it('an etcd outage longer than the TTL: renewals back off, then the expired subnet is re-taken', async () => {
    const { clock, reg, keeper } = setup();
    const k = keeper({ ttlSeconds: 9 });
    const held = await k.acquire();
    k.start();
    reg.unreachable = true;
    await clock.advance(30_000);
    expect(k.stats.renewFailures).toBeGreaterThan(3);
    expect(k.stats.renewFailures).toBeLessThan(40); // backed off, not a busy loop
    expect(reg.keys()).toEqual([]); // expired meanwhile
    reg.unreachable = false;
    await clock.advance(6000);
    expect(k.stats.retakes).toBe(1);
    expect(reg.keys()).toEqual([held.key]);
    await k.stop();
  });

  it('a subnet taken over by another host is fatal', async () => {
    const { clock, reg, keeper, fatals } = setup();
    const k = keeper();
    const held = await k.acquire();
    k.start();
    reg.remove(held.key);
    reg.write(held.key, value('198.18.0.66', '02:00:00:00:00:66'), 60);
    await clock.advance(21_000);
    expect(fatals).toHaveLength(1);
    expect(fatals[0]).toBeInstanceOf(FatalControlError);
    expect(fatals[0].message).toMatch(/now held by 198\.18\.0\.66/);
    await k.stop();
  });

  it('our record deleted under us is re-taken at once', async () => {
    const { clock, reg, keeper } = setup();
    const k = keeper();
    const held = await k.acquire();
    k.start();
    reg.remove(held.key);
    k.onOwnDeleted();
    await clock.advance(10);
    expect(reg.keys()).toEqual([held.key]);
    expect(k.stats.retakes).toBe(1);
    await k.stop();
  });

  it('hostile keys do not make a joining host fail with "no free subnet"', async () => {
    const { reg, keeper } = setup();
    // The cluster: a 0.0.0.0-0 lease and friends; the range has 9 subnets, 4 held.
    reg.write('0.0.0.0-0', value('198.18.0.9', '02:00:00:00:00:09'));
    reg.write('198.19.0.0-16', value('198.18.0.9', '02:00:00:00:00:09'));
    reg.write('not-a-key', 'x');
    reg.write('198.19.5.0-24', '{broken');
    for (const i of [1, 2, 3]) reg.write(`198.19.${i}.0-24`, value(`198.18.0.${10 + i}`, `02:00:00:00:00:1${i}`), 60);
    const k = keeper({ reserved: [parseCidr('198.18.0.0/24')] });
    const held = await k.acquire();
    expect(['198.19.4.0-24', '198.19.6.0-24', '198.19.7.0-24', '198.19.8.0-24', '198.19.9.0-24']).toContain(held.key);
  });

  it('a full range is a clear fatal error counting what was ignored', async () => {
    const { reg, keeper } = setup();
    for (let i = 1; i <= 9; i++) reg.write(`198.19.${i}.0-24`, value(`198.18.0.${10 + i}`, `02:00:00:00:00:1${i}`), 60);
    reg.write('0.0.0.0-0', value('198.18.0.9', '02:00:00:00:00:09'));
    const err = await keeper()
      .acquire()
      .catch((e) => e);
    expect(err).toBeInstanceOf(FatalControlError);
    expect(err.message).toMatch(/no free subnet .* \(9 taken of 10 records; 1 records that are not allocatable subnets ignored\)/);
  });
});
