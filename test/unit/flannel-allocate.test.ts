import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { inRange, nthSubnet, pickFreeSubnet, subnetCount } from '../../src/control/flannel/allocate.js';
import { type Cidr, cidrOverlaps, prefixSize } from '../../src/control/flannel/cidr.js';
import type { FamilyRange } from '../../src/control/flannel/config.js';
import { validateNetworkConfig } from '../../src/control/flannel/config.js';

/** A random valid IPv4 range inside 198.18.0.0/15, built through the real validator. */
const rangeArb = fc.record({ netLen: fc.integer({ min: 15, max: 26 }), extra: fc.integer({ min: 2, max: 6 }), lo: fc.nat(), hi: fc.nat() }).map(({ netLen, extra, lo, hi }) => {
  const subnetLen = Math.min(30, netLen + extra);
  const count = 1 << (subnetLen - netLen);
  const a = lo % count;
  const b = hi % count;
  const [mn, mx] = a <= b ? [a, b] : [b, a];
  const netBase = 0xc6120000; // 198.18.0.0
  const size = 2 ** (32 - subnetLen);
  const ip = (v: number) => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
  const r = validateNetworkConfig({
    Network: `${ip(netBase)}/${netLen}`,
    SubnetLen: subnetLen,
    SubnetMin: ip(netBase + mn * size),
    SubnetMax: ip(netBase + mx * size),
    Backend: { Type: 'vxlan' },
  });
  if (r instanceof Error) throw r;
  return r.ipv4;
});

/** Slow reference: every subnet of the range that overlaps nothing taken. */
function freeReference(range: FamilyRange, taken: Cidr[]): Cidr[] {
  const out: Cidr[] = [];
  for (let i = 0n; i < subnetCount(range); i++) {
    const c = nthSubnet(range, i);
    if (!taken.some((t) => cidrOverlaps(t, c))) out.push(c);
  }
  return out;
}

describe('subnet allocation', () => {
  it('picks an aligned subnet within SubnetMin..SubnetMax that overlaps no taken subnet, or nothing when full', () => {
    fc.assert(
      fc.property(rangeArb, fc.array(fc.nat(), { maxLength: 40 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (range, takenIdx, rnd) => {
        const n = Number(subnetCount(range));
        const taken = takenIdx.map((i) => nthSubnet(range, BigInt(i % n)));
        const pick = pickFreeSubnet(range, taken, () => rnd);
        const free = freeReference(range, taken);
        if (free.length === 0) {
          expect(pick).toBeUndefined();
          return;
        }
        expect(pick).toBeDefined();
        expect(inRange(range, pick!)).toBe(true);
        expect(pick!.base >= range.subnetMin && pick!.base <= range.subnetMax).toBe(true);
        expect(pick!.base % prefixSize(4, range.subnetLen)).toBe(0n);
        expect(taken.some((t) => cidrOverlaps(t, pick!))).toBe(false);
        expect(free.some((f) => f.base === pick!.base)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('allocating until full hands out every subnet exactly once, never overlapping', () => {
    fc.assert(
      fc.property(
        rangeArb.filter((r) => subnetCount(r) <= 256n),
        fc.integer(),
        (range, seed) => {
          let s = seed >>> 0;
          const random = () => {
            s = (Math.imul(s, 1103515245) + 12345) >>> 0;
            return s / 2 ** 32;
          };
          const taken: Cidr[] = [];
          for (;;) {
            const p = pickFreeSubnet(range, taken, random);
            if (!p) break;
            expect(taken.some((t) => cidrOverlaps(t, p))).toBe(false);
            taken.push(p);
          }
          expect(BigInt(taken.length)).toBe(subnetCount(range));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('treats taken subnets of other lengths (a foreign /23) as blocking what they overlap', () => {
    const r = validateNetworkConfig({ Network: '198.19.0.0/16', SubnetMin: '198.19.4.0', SubnetMax: '198.19.7.0', Backend: { Type: 'vxlan' } });
    if (r instanceof Error) throw r;
    const range = r.ipv4;
    const foreign: Cidr = { family: 4, base: 0xc6130400n, len: 23 }; // 198.19.4.0/23
    const picks = new Set<bigint>();
    for (let i = 0; i < 50; i++) picks.add(pickFreeSubnet(range, [foreign])!.base);
    expect([...picks].sort()).toEqual([0xc6130600n, 0xc6130700n]);
  });

  it('handles huge IPv6 ranges by sampling', () => {
    const r = validateNetworkConfig({ Network: '198.19.0.0/16', EnableIPv6: true, IPv6Network: '2001:2::/48', IPv6SubnetLen: 96, Backend: { Type: 'vxlan' } });
    if (r instanceof Error) throw r;
    const p = pickFreeSubnet(r.ipv6!, []);
    expect(p && inRange(r.ipv6!, p)).toBe(true);
  });
});
