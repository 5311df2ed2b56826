/**
 * Hostile leases (issue 8 item 4): one table row per rule of lease-policy.ts,
 * a property check that nothing accepted can ever overlap, intercept or loop,
 * and allocation that is not fooled by keys that are not allocatable subnets.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LogLimiter, screenLeases, REFUSAL_REASONS, type RefusalReason, type ScreenContext } from '../../src/control/flannel/lease-policy.js';
import { decodeRecord, type MalformedLease } from '../../src/control/flannel/registry.js';
import { parseNetworkConfig } from '../../src/control/flannel/config.js';
import { cidrContains, cidrOverlaps, parseAddress, parseCidr } from '../../src/control/flannel/cidr.js';
import { pickFreeSubnet, takenSubnets } from '../../src/control/flannel/allocate.js';
import type { Lease } from '../../src/control/flannel/lease.js';

const range = parseNetworkConfig(JSON.stringify({ Network: '198.19.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan' } })).ipv4;
const ctx: ScreenContext = {
  range,
  vni: 1,
  own: { key: '198.19.1.0-24', subnet: parseCidr('198.19.1.0/24'), publicIP: '198.18.0.1', vtepMac: '02:00:00:00:00:01' },
  underlay: [parseCidr('198.18.0.0/24')],
  etcdAddresses: ['198.18.0.250', '198.18.7.9'],
};

let rev = 10;
/** A record as etcd would hold it (create revision increasing with each call). */
function rec(key: string, value: unknown): Lease | MalformedLease {
  rev++;
  return decodeRecord(key, typeof value === 'string' ? value : JSON.stringify(value), { modRevision: String(rev), createRevision: String(rev), etcdLease: '0' });
}
const v = (publicIP: string, mac: string, vni: number | string = 1, extra: object = {}) => ({
  PublicIP: publicIP,
  PublicIPv6: null,
  BackendType: 'vxlan',
  BackendData: { VNI: vni, VtepMAC: mac },
  ...extra,
});
const good = (i: number) => rec(`198.19.${i}.0-24`, v(`198.18.0.${i}`, `02:00:00:00:00:${i.toString(16).padStart(2, '0')}`));

describe('lease screen: one row per rule', () => {
  // [what, key, value, expected reason]; each row is screened together with two good leases.
  const rows: [string, string, unknown, RefusalReason][] = [
    ['not a subnet key', 'hello', v('198.18.0.20', '02:00:00:00:00:20'), 'bad_key'],
    ['value not JSON', '198.19.20.0-24', '{nope', 'malformed'],
    ['PublicIP not an address', '198.19.21.0-24', v('198.18.0', '02:00:00:00:00:21'), 'bad_public_ip'],
    ['VtepMAC not a MAC', '198.19.22.0-24', v('198.18.0.22', 'zz:00:00:00:00:22'), 'bad_vtep_mac'],
    ['VNI not 24-bit', '198.19.23.0-24', v('198.18.0.23', '02:00:00:00:00:23', 1 << 24), 'bad_vni'],
    ['VNI a string', '198.19.24.0-24', v('198.18.0.24', '02:00:00:00:00:24', '1'), 'bad_vni'],
    ['host-gw lease', '198.19.25.0-24', { PublicIP: '198.18.0.25', BackendType: 'host-gw' }, 'not_vxlan'],
    ['vxlan without BackendData', '198.19.26.0-24', { PublicIP: '198.18.0.26', BackendType: 'vxlan' }, 'bad_vtep_mac'],
    ['another VNI', '198.19.27.0-24', v('198.18.0.27', '02:00:00:00:00:27', 7), 'vni_mismatch'],
    ['our own PublicIP (stale lease of ours)', '198.19.28.0-24', v('198.18.0.1', '02:00:00:00:00:28'), 'own_public_ip'],
    ['PublicIP 0.0.0.0', '198.19.29.0-24', v('0.0.0.0', '02:00:00:00:00:29'), 'bad_public_ip'],
    ['PublicIP multicast', '198.19.30.0-24', v('239.1.1.1', '02:00:00:00:00:30'), 'bad_public_ip'],
    ['PublicIP loopback', '198.19.31.0-24', v('127.0.0.1', '02:00:00:00:00:31'), 'bad_public_ip'],
    ['PublicIP broadcast', '198.19.32.0-24', v('255.255.255.255', '02:00:00:00:00:32'), 'bad_public_ip'],
    ['PublicIP inside the overlay (loop)', '198.19.33.0-24', v('198.19.2.5', '02:00:00:00:00:33'), 'bad_public_ip'],
    ['VtepMAC multicast', '198.19.34.0-24', v('198.18.0.34', '01:00:5e:00:00:34'), 'bad_vtep_mac'],
    ['VtepMAC broadcast', '198.19.35.0-24', v('198.18.0.35', 'ff:ff:ff:ff:ff:ff'), 'bad_vtep_mac'],
    ['VtepMAC zero', '198.19.36.0-24', v('198.18.0.36', '00:00:00:00:00:00'), 'bad_vtep_mac'],
    ['VtepMAC ours', '198.19.37.0-24', v('198.18.0.37', '02:00:00:00:00:01'), 'bad_vtep_mac'],
    ['0.0.0.0-0 (default route)', '0.0.0.0-0', v('198.18.0.38', '02:00:00:00:00:38'), 'covers_etcd'],
    ['etcd address as a /32', '198.18.7.9-32', v('198.18.0.39', '02:00:00:00:00:39'), 'covers_etcd'],
    ["a peer's PublicIP as a /32", '198.18.0.2-32', v('198.18.0.40', '02:00:00:00:00:40'), 'covers_peer'],
    ['its own PublicIP as its subnet (loop)', '198.18.5.0-24', v('198.18.5.1', '02:00:00:00:00:41'), 'covers_peer'],
    ['the underlay prefix', '198.18.0.0-24', v('198.18.1.42', '02:00:00:00:00:42'), 'covers_etcd'],
    ['half the underlay', '198.18.0.0-25', v('198.18.1.43', '02:00:00:00:00:43'), 'covers_peer'],
    ['a piece of the underlay nobody uses', '198.18.0.128-30', v('198.18.1.44', '02:00:00:00:00:44'), 'covers_underlay'],
    ['outside the network', '10.1.2.0-24', v('198.18.0.45', '02:00:00:00:00:45'), 'outside_network'],
    ['the whole network', '198.19.0.0-16', v('198.18.0.46', '02:00:00:00:00:46'), 'outside_network'],
    ['wrong length inside the network', '198.19.40.0-25', v('198.18.0.47', '02:00:00:00:00:47'), 'outside_network'],
    ['our subnet under another key', '198.19.1.0-24&2001:2::-64', v('198.18.0.49', '02:00:00:00:00:49'), 'overlaps_own'],
    ['a newer duplicate of a host subnet', '198.19.2.0-24&2001:2::-64', v('198.18.0.50', '02:00:00:00:00:50'), 'overlaps_lease'],
    ["a newer lease with a host's VtepMAC", '198.19.51.0-24', v('198.18.0.51', '02:00:00:00:00:02'), 'duplicate_vtep_mac'],
  ];

  it('covers every reason', () => {
    const covered = new Set(rows.map((r) => r[3]));
    expect(REFUSAL_REASONS.filter((r) => !covered.has(r))).toEqual([]);
  });

  for (const [what, key, value, reason] of rows) {
    it(`${what}: refused as ${reason}, the good leases still programmed`, () => {
      const own = rec('198.19.1.0-24', v('198.18.0.1', '02:00:00:00:00:01'));
      const g2 = good(2);
      const g3 = good(3);
      const bad = rec(key, value);
      const { accepted, refused } = screenLeases([bad, own, g2, g3], ctx);
      expect(refused.map((r) => [r.key, r.reason])).toEqual([[bad.key, reason]]);
      expect(refused[0].detail.length).toBeGreaterThan(5);
      expect(accepted.map((l) => l.key).sort()).toEqual(['198.19.2.0-24', '198.19.3.0-24']);
    });
  }

  it('a lease inside Network but outside SubnetMin..SubnetMax (the bounds were narrowed, or a flanneld with other bounds) is programmed', () => {
    const narrow: ScreenContext = {
      ...ctx,
      range: parseNetworkConfig(JSON.stringify({ Network: '198.19.0.0/16', SubnetLen: 24, SubnetMin: '198.19.1.0', SubnetMax: '198.19.9.0', Backend: { Type: 'vxlan' } })).ipv4,
    };
    const { accepted, refused } = screenLeases([rec('198.19.200.0-24', v('198.18.0.200', '02:00:00:00:00:c8')), rec('198.19.0.0-24', v('198.18.0.201', '02:00:00:00:00:c9'))], narrow);
    expect(refused).toEqual([]);
    expect(accepted.map((l) => l.key).sort()).toEqual(['198.19.0.0-24', '198.19.200.0-24']);
  });

  it('first come, first served: the older of two overlapping leases wins whichever order they are listed in', () => {
    const older = good(2);
    const newer = rec('198.19.2.0-24&2001:2::-64', v('198.18.0.60', '02:00:00:00:00:60'));
    for (const order of [
      [older, newer],
      [newer, older],
    ]) {
      const { accepted, refused } = screenLeases(order, ctx);
      expect(accepted.map((l) => l.key)).toEqual([older.key]);
      expect(refused.map((r) => r.reason)).toEqual(['overlaps_lease']);
    }
  });
});

/** Random records: mostly plausible, some hostile, from a small space so collisions happen. */
const recordArb = fc
  .record({
    a: fc.constantFrom(198, 10, 0),
    b: fc.constantFrom(18, 19, 0),
    c: fc.integer({ min: 0, max: 8 }),
    d: fc.constantFrom(0, 0, 0, 128, 250, 2),
    len: fc.constantFrom(24, 24, 24, 25, 16, 32, 0),
    pub: fc.constantFrom('198.18.0.1', '198.18.0.2', '198.18.0.3', '198.18.0.4', '198.18.0.250', '198.19.3.1', '0.0.0.0', '224.0.0.1'),
    mac: fc.constantFrom('02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:04', '01:00:00:00:00:05'),
    vni: fc.constantFrom(1, 1, 1, 2),
  })
  .map(({ a, b, c, d, len, pub, mac, vni }) => {
    const m = len === 0 ? 0n : ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - len)) - 1n);
    const addr = (BigInt(a) << 24n) | (BigInt(b) << 16n) | (BigInt(c) << 8n) | BigInt(d);
    const base = addr & m;
    const text = [24n, 16n, 8n, 0n].map((s) => String((base >> s) & 255n)).join('.');
    return rec(`${text}-${len}`, v(pub, mac, vni));
  });

describe('lease screen: properties', () => {
  it('accepted leases are allocatable, disjoint, never ours, and cover no etcd, tunnel endpoint or underlay address', () => {
    fc.assert(
      fc.property(fc.array(recordArb, { maxLength: 25 }), (records) => {
        const { accepted, refused } = screenLeases(records, ctx);
        const all = records.filter((r) => r.key !== ctx.own.key);
        expect(accepted.length + refused.length).toBe(all.length);
        // The tunnel endpoints actually used (a refused record's PublicIP is never sent to).
        const pubs = accepted.map((l) => parseAddress(l.attrs.publicIP).value);
        const guarded = [...ctx.etcdAddresses.map((a) => parseAddress(a).value), ...pubs];
        const macs = new Set<string>();
        for (const l of accepted) {
          expect(l.subnet.len === range.subnetLen && cidrOverlaps(l.subnet, range.network)).toBe(true);
          expect(cidrOverlaps(l.subnet, ctx.own.subnet!)).toBe(false);
          for (const u of ctx.underlay) expect(cidrOverlaps(l.subnet, u)).toBe(false);
          for (const g of guarded) expect(cidrContains(l.subnet, 4, g)).toBe(false);
          for (const o of accepted) if (o !== l) expect(cidrOverlaps(o.subnet, l.subnet)).toBe(false);
          expect(l.attrs.publicIP).not.toBe(ctx.own.publicIP);
          expect(macs.has(l.attrs.vxlan.vtepMac)).toBe(false);
          macs.add(l.attrs.vxlan.vtepMac);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('allocation next to hostile keys', () => {
  it('a 0.0.0.0-0 lease, a /16 over the network and garbage keys do not fill the range', () => {
    const small = parseNetworkConfig(JSON.stringify({ Network: '198.19.0.0/16', SubnetLen: 24, SubnetMin: '198.19.1.0', SubnetMax: '198.19.6.0', Backend: { Type: 'vxlan' } })).ipv4;
    const records = [
      rec('0.0.0.0-0', v('198.18.0.9', '02:00:00:00:00:09')),
      rec('198.19.0.0-16', v('198.18.0.9', '02:00:00:00:00:09')),
      rec('garbage', 'x'),
      rec('198.19.1.0-24', v('198.18.0.2', '02:00:00:00:00:02')),
      rec('198.19.2.0-24', 'not json'), // its key exists: a create there would fail
      rec('198.19.3.0-25', v('198.18.0.3', '02:00:00:00:00:03')),
    ];
    const taken = takenSubnets(records, small, [parseCidr('198.18.0.0/24')]);
    expect(taken.map((c) => c.base)).toEqual([parseCidr('198.19.1.0/24').base, parseCidr('198.19.2.0/24').base]);
    const picks = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const p = pickFreeSubnet(small, taken, () => i / 50)!;
      picks.add(`${p.base}`);
    }
    expect(picks.size).toBe(4); // 198.19.3.0 .. 198.19.6.0
  });

  it('reserved prefixes (underlay, etcd addresses) are never handed out', () => {
    // A network config that overlaps the underlay: the host must not lease the subnet holding it.
    const over = parseNetworkConfig(JSON.stringify({ Network: '198.18.0.0/22', SubnetLen: 24, SubnetMin: '198.18.0.0', Backend: { Type: 'vxlan' } })).ipv4;
    const taken = takenSubnets([], over, [parseCidr('198.18.0.0/24'), parseCidr('198.18.2.9/32')]);
    for (let i = 0; i < 20; i++) {
      const p = pickFreeSubnet(over, taken, () => i / 20)!;
      expect([parseCidr('198.18.1.0/24').base, parseCidr('198.18.3.0/24').base]).toContain(p.base);
    }
  });
});

describe('log limiter', () => {
  it('writes at most `burst` lines per window and summarises the rest', () => {
    let t = 0;
    const lines: string[] = [];
    const l = new LogLimiter(
      (m) => lines.push(m),
      () => t,
      3,
      1000,
    );
    for (let i = 0; i < 100; i++) l.write(`line ${i}`);
    expect(lines).toEqual(['line 0', 'line 1', 'line 2']);
    t = 1000;
    l.write('later');
    expect(lines.slice(3)).toEqual(['(97 similar lines suppressed in the last 1 s)', 'later']);
  });
});
