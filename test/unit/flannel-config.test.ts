import { describe, expect, it } from 'vitest';
import { NetworkConfigError, parseNetworkConfig, validateNetworkConfig } from '../../src/control/flannel/config.js';
import { formatAddress, formatCidr } from '../../src/control/flannel/cidr.js';

const base = { Network: '198.19.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan' } };

function err(obj: unknown): NetworkConfigError {
  const r = validateNetworkConfig(obj);
  if (!(r instanceof NetworkConfigError)) throw new Error(`expected an error for ${JSON.stringify(obj)}`);
  return r;
}

describe('flannel network config', () => {
  it('applies flannel defaults: VNI 1, port 8472, SubnetMin skips the first subnet, SubnetMax is the last', () => {
    const c = parseNetworkConfig(JSON.stringify(base));
    expect(c.backend).toMatchObject({ type: 'vxlan', vni: 1, port: 8472, portExplicit: false });
    expect(formatCidr(c.ipv4.network)).toBe('198.19.0.0/16');
    expect(c.ipv4.subnetLen).toBe(24);
    expect(formatAddress(4, c.ipv4.subnetMin)).toBe('198.19.1.0');
    expect(formatAddress(4, c.ipv4.subnetMax)).toBe('198.19.255.0');
    expect(c.enableIPv6).toBe(false);
  });

  it('defaults SubnetLen like flanneld: /24 for networks up to /22, else Network+2', () => {
    expect(parseNetworkConfig('{"Network":"198.19.0.0/22","Backend":{"Type":"vxlan"}}').ipv4.subnetLen).toBe(24);
    expect(parseNetworkConfig('{"Network":"198.19.0.0/26","Backend":{"Type":"vxlan"}}').ipv4.subnetLen).toBe(28);
  });

  it('takes VNI, Port, SubnetMin/Max and IPv6 fields', () => {
    const c = parseNetworkConfig(
      JSON.stringify({
        ...base,
        SubnetMin: '198.19.10.0',
        SubnetMax: '198.19.20.0',
        EnableIPv6: true,
        IPv6Network: '2001:2::/48',
        IPv6SubnetLen: 64,
        Backend: { Type: 'vxlan', VNI: 42, Port: 4789, Learning: false },
      }),
    );
    expect(c.backend).toMatchObject({ vni: 42, port: 4789, portExplicit: true });
    expect(formatAddress(4, c.ipv4.subnetMin)).toBe('198.19.10.0');
    expect(formatAddress(4, c.ipv4.subnetMax)).toBe('198.19.20.0');
    expect(formatCidr(c.ipv6!.network)).toBe('2001:2::/48');
    expect(formatAddress(6, c.ipv6!.subnetMin)).toBe('2001:2:0:1::');
    expect(formatAddress(6, c.ipv6!.subnetMax)).toBe('2001:2:0:ffff::');
  });

  it('treats Port 0 as unset (the kernel default 8472)', () => {
    expect(parseNetworkConfig(JSON.stringify({ ...base, Backend: { Type: 'vxlan', Port: 0 } })).backend.port).toBe(8472);
  });

  const bad: [string, unknown, RegExp][] = [
    ['Backend.Type', { ...base, Backend: { Type: 'host-gw' } }, /"host-gw" is a flannel backend that vxtap does not implement/],
    ['Backend.Type', { ...base, Backend: { Type: 'bogus' } }, /"bogus" is unknown; only "vxlan"/],
    ['Backend.Type', { ...base, Backend: {} }, /must be a string/],
    ['Backend', { Network: '198.19.0.0/16' }, /udp/],
    ['Backend.VNI', { ...base, Backend: { Type: 'vxlan', VNI: 16777216 } }, /between 0 and 16777215/],
    ['Backend.VNI', { ...base, Backend: { Type: 'vxlan', VNI: '1' } }, /integer/],
    ['Backend.Port', { ...base, Backend: { Type: 'vxlan', Port: 70000 } }, /between 1 and 65535/],
    ['Backend.GBP', { ...base, Backend: { Type: 'vxlan', GBP: true } }, /not supported/],
    ['Backend.DirectRouting', { ...base, Backend: { Type: 'vxlan', DirectRouting: true } }, /not supported/],
    ['Network', { Backend: { Type: 'vxlan' } }, /required/],
    ['Network', { ...base, Network: '198.19.0.1/16' }, /host bits set/],
    ['Network', { ...base, Network: 'nonsense' }, /CIDR/],
    ['Network', { ...base, Network: '2001:2::/48' }, /IPv4/],
    ['Network', { Network: '198.19.0.0/29', Backend: { Type: 'vxlan' } }, /too small/],
    ['SubnetLen', { ...base, SubnetLen: 31 }, /at most 30/],
    ['SubnetLen', { ...base, SubnetLen: 17 }, /at least four subnets/],
    ['SubnetLen', { ...base, SubnetLen: 24.5 }, /integer/],
    ['SubnetMin', { ...base, SubnetMin: '198.20.0.0' }, /not in the range/],
    ['SubnetMin', { ...base, SubnetMin: '198.19.1.128' }, /boundary/],
    ['SubnetMax', { ...base, SubnetMax: 'x' }, /not an IP address/],
    ['SubnetMin', { ...base, SubnetMin: '198.19.9.0', SubnetMax: '198.19.8.0' }, /above SubnetMax/],
    ['EnableIPv4', { ...base, EnableIPv4: false, EnableIPv6: true, IPv6Network: '2001:2::/48' }, /IPv6-only/],
    ['EnableIPv6', { ...base, EnableIPv6: 'yes' }, /true or false/],
    ['IPv6Network', { ...base, EnableIPv6: true }, /required/],
    ['IPv6SubnetLen', { ...base, EnableIPv6: true, IPv6Network: '2001:2::/48', IPv6SubnetLen: 127 }, /at most 126/],
    ['IPv6SubnetMin', { ...base, EnableIPv6: true, IPv6Network: '2001:2::/48', IPv6SubnetMin: '2001:3::' }, /not in the range/],
    ['Networks', { ...base, Networks: ['198.19.0.0/16'] }, /not supported/],
  ];
  it.each(bad)('refuses a bad %s', (field, obj, msg) => {
    const e = err(obj);
    expect(e.field).toBe(field);
    expect(e.message).toContain(field);
    expect(e.message).toMatch(msg);
  });

  it('refuses text that is not JSON, naming the problem', () => {
    expect(() => parseNetworkConfig('{Network:')).toThrow(/not valid JSON/);
    expect(() => parseNetworkConfig('[]')).toThrow(/JSON object/);
  });
});
