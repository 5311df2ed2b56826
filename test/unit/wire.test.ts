import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkVxlan, writeVxlanHeader, readVni, VXLAN_HLEN } from '../../src/wire/vxlan.js';
import { flowHash, hashToIndex, sourcePort } from '../../src/wire/flowhash.js';
import { formatMac, parseMac, isGroupMac, randomMac } from '../../src/wire/mac.js';
import { addrRecord, recordAddress, recordKey, recordPort, sameAddress, normalizeAddress } from '../../src/wire/addr.js';
import { onesSum, checksumField } from '../../src/wire/checksum.js';

function frameWith(vniHdr: number[], inner = 14): Uint8Array {
  const b = new Uint8Array(VXLAN_HLEN + inner);
  b.set(vniHdr, 0);
  return b;
}

describe('VXLAN header', () => {
  it('round-trips every VNI (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffff }), (vni) => {
        const b = new Uint8Array(VXLAN_HLEN + 14);
        writeVxlanHeader(b, 0, vni);
        expect(b[0]).toBe(0x08);
        expect(readVni(b, 0)).toBe(vni);
        expect(checkVxlan(b, 0, b.length, vni)).toBeNull();
        expect(checkVxlan(b, 0, b.length, (vni + 1) & 0xffffff)).toBe('wrong-vni');
      }),
    );
  });

  it.each([
    ['no I flag', [0x00, 0, 0, 0, 0, 0, 1, 0], 'bad-flags'],
    ['extra flag', [0x0c, 0, 0, 0, 0, 0, 1, 0], 'bad-flags'],
    ['reserved bits in word 1', [0x08, 0, 1, 0, 0, 0, 1, 0], 'bad-flags'],
    ['reserved low byte', [0x08, 0, 0, 0, 0, 0, 1, 5], 'bad-flags'],
    ['valid', [0x08, 0, 0, 0, 0, 0, 1, 0], null],
  ])('checks %s', (_n, hdr, want) => {
    expect(checkVxlan(frameWith(hdr), 0, VXLAN_HLEN + 14, 1)).toBe(want);
  });

  it('refuses datagrams shorter than VXLAN + Ethernet', () => {
    const b = frameWith([0x08, 0, 0, 0, 0, 0, 1, 0]);
    expect(checkVxlan(b, 0, VXLAN_HLEN + 13, 1)).toBe('short');
    expect(checkVxlan(b, 0, 0, 1)).toBe('short');
  });
});

describe('flow hash and source ports', () => {
  const tcpFrame = (sport: number, dport: number) => {
    const b = new Uint8Array(54);
    b.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00], 0);
    b[14] = 0x45;
    b[23] = 6;
    b.set([198, 19, 0, 1, 198, 19, 0, 2], 26);
    b[34] = sport >> 8;
    b[35] = sport & 0xff;
    b[36] = dport >> 8;
    b[37] = dport & 0xff;
    return b;
  };
  it('is deterministic per flow and spreads different flows', () => {
    const h1 = flowHash(tcpFrame(1000, 80), 0, 54);
    expect(flowHash(tcpFrame(1000, 80), 0, 54)).toBe(h1);
    const ports = new Set<number>();
    for (let p = 1000; p < 1064; p++) ports.add(sourcePort(flowHash(tcpFrame(p, 80), 0, 54), 49152, 49215));
    expect(ports.size).toBeGreaterThan(30);
  });
  it('keeps ports inside the range (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 1023 }), (h, min, w) => {
        const max = Math.min(65535, min + w);
        const p = sourcePort(h, min, max);
        expect(p).toBeGreaterThanOrEqual(min);
        expect(p).toBeLessThanOrEqual(max);
        expect(hashToIndex(h, max - min + 1)).toBe(p - min);
      }),
    );
  });
  it('hashes short and odd frames without reading past the end (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), (bytes) => {
        const h = flowHash(bytes, 0, bytes.length);
        expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
      }),
    );
  });
});

describe('MAC and address records', () => {
  it('parses and formats MACs', () => {
    const m = parseMac('02:AB:cd:00:11:ff');
    expect(formatMac(m)).toBe('02:ab:cd:00:11:ff');
    expect(() => parseMac('02:ab:cd:00:11')).toThrow(/invalid MAC/);
    expect(isGroupMac(parseMac('ff:ff:ff:ff:ff:ff'), 0)).toBe(true);
    expect(isGroupMac(randomMac(), 0)).toBe(false);
    expect(randomMac()[0] & 2).toBe(2);
  });
  it('builds 20-byte records for IPv4 and IPv6', () => {
    const r4 = addrRecord('198.18.0.2', 4789);
    expect(r4.length).toBe(20);
    expect(r4[0]).toBe(4);
    expect(recordPort(r4, 0)).toBe(4789);
    expect(recordAddress(r4, 0)).toBe('198.18.0.2');
    expect(recordKey(r4, 0)).toBe(((198 << 24) >>> 0) + (18 << 16) + 2);
    const r6 = addrRecord('2001:2::5', 8472);
    expect(r6[0]).toBe(6);
    expect(recordAddress(r6, 0)).toBe('2001:2::5');
    expect(recordKey(r6, 0)).toBeGreaterThan(0xffffffff);
    expect(sameAddress(r6, 0, addrRecord('2001:2:0::5', 1), 0)).toBe(true);
    expect(sameAddress(r4, 0, r6, 0)).toBe(false);
    expect(normalizeAddress('::ffff:198.18.0.9')).toBe('198.18.0.9');
    expect(() => addrRecord('198.18.0.300', 1)).toThrow(/invalid IP address/);
  });
});

describe('checksum reference', () => {
  it('matches RFC 1071 example', () => {
    // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 -> sum ddf2
    const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(onesSum(b, 0, 8)).toBe(0xddf2);
    expect(checksumField(0xddf2)).toBe(0x220d);
  });
});
