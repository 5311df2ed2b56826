import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeLeaseValue, encodeLeaseValue, firstUsableOf, gatewayOf, parseSubnetKey, subnetKey, type LeaseAttrs } from '../../src/control/flannel/lease.js';
import { formatCidr, parseCidr } from '../../src/control/flannel/cidr.js';
import { parseNetworkConfig } from '../../src/control/flannel/config.js';
import { parseSubnetEnv, renderSubnetEnv } from '../../src/control/flannel/subnet-env.js';

describe('lease key codec', () => {
  it('formats and parses flannel keys, including dual-stack ones', () => {
    const sn = parseCidr('198.19.5.0/24');
    expect(subnetKey(sn)).toBe('198.19.5.0-24');
    const six = parseCidr('2001:2:0:5::/64');
    expect(subnetKey(sn, six)).toBe('198.19.5.0-24&2001:2:0:5::-64');
    const back = parseSubnetKey('/coreos.com/network/subnets/198.19.5.0-24&2001:2:0:5::-64')!;
    expect(formatCidr(back.subnet)).toBe('198.19.5.0/24');
    expect(formatCidr(back.ipv6Subnet!)).toBe('2001:2:0:5::/64');
    expect(back.key).toBe('198.19.5.0-24&2001:2:0:5::-64');
  });

  it('rejects keys that are not leases', () => {
    for (const k of ['198.19.5.1-24', '198.19.5.0-33', 'x-24', '198.19.5.0', '198.19.5.0-24&zz-64', '198.19.5.0-24&a&b']) {
      expect(parseSubnetKey(`/p/subnets/${k}`)).toBeUndefined();
    }
  });

  it('round-trips random subnets', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 32 }), (v, len) => {
        const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
        const base = BigInt((v & mask) >>> 0);
        const sn = { family: 4 as const, base, len };
        const p = parseSubnetKey(subnetKey(sn))!;
        expect(p.subnet).toEqual(sn);
      }),
    );
  });

  it("gives flannel's gateway (network address) and FLANNEL_SUBNET (first usable)", () => {
    const sn = parseCidr('198.19.74.0/24');
    expect(gatewayOf(sn)).toBe('198.19.74.0');
    expect(firstUsableOf(sn)).toBe('198.19.74.1/24');
  });
});

describe('lease value codec', () => {
  it('decodes the value flanneld writes', () => {
    const v = '{"PublicIP":"198.18.0.5","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"AA:BB:cc:dd:ee:01"}}';
    expect(decodeLeaseValue(v)).toEqual({ publicIP: '198.18.0.5', publicIPv6: null, backendType: 'vxlan', vxlan: { vni: 1, vtepMac: 'aa:bb:cc:dd:ee:01' } });
  });

  it("encodes exactly flannel's field names", () => {
    const attrs: LeaseAttrs = { publicIP: '198.18.0.5', publicIPv6: null, backendType: 'vxlan', vxlan: { vni: 1, vtepMac: 'aa:bb:cc:dd:ee:01' } };
    expect(JSON.parse(encodeLeaseValue(attrs))).toEqual({ PublicIP: '198.18.0.5', PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:01' } });
  });

  it('round-trips random attributes', () => {
    const mac = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }).map((b) => b.map((x) => x.toString(16).padStart(2, '0')).join(':'));
    const ip4 = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }).map((b) => b.join('.'));
    fc.assert(
      fc.property(ip4, mac, fc.integer({ min: 0, max: 0xffffff }), fc.option(fc.constant('2001:2::5'), { nil: null }), (publicIP, vtepMac, vni, publicIPv6) => {
        const attrs: LeaseAttrs = { publicIP, publicIPv6, backendType: 'vxlan', vxlan: { vni, vtepMac } };
        expect(decodeLeaseValue(encodeLeaseValue(attrs))).toEqual(attrs);
      }),
    );
  });

  it('keeps non-vxlan leases but without VXLAN data', () => {
    expect(decodeLeaseValue('{"PublicIP":"198.18.0.9","BackendType":"host-gw"}')).toEqual({ publicIP: '198.18.0.9', publicIPv6: null, backendType: 'host-gw' });
  });

  const bad: [string, RegExp][] = [
    ['not json', /not JSON/],
    ['[]', /JSON object/],
    ['{"BackendType":"vxlan"}', /PublicIP/],
    ['{"PublicIP":"198.18.0"}', /PublicIP/],
    ['{"PublicIP":"2001:2::1"}', /PublicIP/],
    ['{"PublicIP":"198.18.0.5","PublicIPv6":"198.18.0.5"}', /PublicIPv6/],
    ['{"PublicIP":"198.18.0.5","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"zz"}}', /BackendData.VtepMAC/],
    ['{"PublicIP":"198.18.0.5","BackendType":"vxlan","BackendData":{"VNI":-1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}', /BackendData.VNI/],
  ];
  it.each(bad)('refuses %s', (text, msg) => {
    expect(() => decodeLeaseValue(text)).toThrow(msg);
  });
});

describe('subnet.env', () => {
  it("matches flannel's format", () => {
    const c = parseNetworkConfig('{"Network":"198.19.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}');
    const text = renderSubnetEnv(c, parseCidr('198.19.74.0/24'), 1450, false);
    expect(text).toBe('FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.74.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
    expect(parseSubnetEnv(text).FLANNEL_SUBNET).toBe('198.19.74.1/24');
  });
});
