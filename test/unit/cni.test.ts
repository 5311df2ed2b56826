/**
 * The vxtap CNI plugin's pure parts (CNI environment, network configuration,
 * subnet.env, the delegate configuration, the installed script), its command
 * flow against fake delegate plugins (small shell scripts in a temp CNI_PATH,
 * no root), and contrib/docker-vxtap-env.sh's output.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDelegateConf, DEFAULT_SUBNET_FILE, parseNetConf, parseSubnetEnvText, stateFileName, type NetConf, type SubnetEnv } from '../../src/cni/config.js';
import { CniError, compareVersions, parseCniEnv, SUPPORTED_VERSIONS } from '../../src/cni/spec.js';
import { runPlugin } from '../../src/cni/plugin.js';
import { installPlugin, renderPluginScript, shellQuote } from '../../src/cni/install.js';
import { DEFAULT_SUBNET_FILE as FLANNEL_DEFAULT_SUBNET_FILE, parseSubnetEnv, renderSubnetEnv } from '../../src/control/flannel/subnet-env.js';
import { formatAddress, formatCidr, parseCidr } from '../../src/control/flannel/cidr.js';
import { formatIp, formatPrefix, parseEnvLines, parseIp, parsePrefix } from '../../src/cni/addr.js';
import type { NetworkConfig } from '../../src/control/flannel/config.js';

const REPO = join(import.meta.dirname, '../..');
const ENV_TEXT = 'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n';

function must<T>(v: T | CniError): T {
  if (v instanceof CniError) throw new Error(`unexpected CniError ${v.code}: ${v.message}`);
  return v;
}

function err(v: unknown): CniError {
  expect(v).toBeInstanceOf(CniError);
  return v as CniError;
}

describe('CNI environment', () => {
  const full = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc-1.x_y', CNI_NETNS: '/var/run/netns/p', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin:/usr/lib/cni' };

  it('reads ADD, DEL, CHECK and VERSION', () => {
    expect(must(parseCniEnv(full))).toEqual({ command: 'ADD', containerId: 'abc-1.x_y', netns: '/var/run/netns/p', ifname: 'eth0', path: ['/opt/cni/bin', '/usr/lib/cni'] });
    expect(must(parseCniEnv({ CNI_COMMAND: 'VERSION' })).command).toBe('VERSION');
    // DEL may come without a namespace (it is gone already).
    expect(must(parseCniEnv({ ...full, CNI_COMMAND: 'DEL', CNI_NETNS: undefined })).netns).toBe('');
  });

  it.each([
    [{ ...full, CNI_COMMAND: undefined }, /CNI_COMMAND is not set/],
    [{ ...full, CNI_COMMAND: 'GC' }, /CNI_COMMAND: unknown command "GC"/],
    [{ ...full, CNI_NETNS: undefined }, /CNI_NETNS is not set/],
    [{ ...full, CNI_COMMAND: 'CHECK', CNI_NETNS: '' }, /CNI_NETNS is not set/],
    [{ ...full, CNI_IFNAME: undefined, CNI_PATH: undefined }, /CNI_IFNAME, CNI_PATH are not set/],
    [{ ...full, CNI_CONTAINERID: '../../etc/x' }, /CNI_CONTAINERID "\.\.\/\.\.\/etc\/x" is invalid/],
    [{ ...full, CNI_CONTAINERID: 'a@b' }, /CNI_CONTAINERID/],
    [{ ...full, CNI_IFNAME: 'a/b' }, /CNI_IFNAME/],
    [{ ...full, CNI_IFNAME: 'averyveryverylongname' }, /CNI_IFNAME/],
    [{ ...full, CNI_PATH: ':::' }, /CNI_PATH holds no directory/],
  ])('refuses %j with code 4 naming the variable', (env, msg) => {
    const e = err(parseCniEnv(env));
    expect(e.code).toBe(4);
    expect(e.message).toMatch(msg);
  });

  it('state file names are unambiguous for any valid container ID and interface name', () => {
    const id = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,20}$/);
    const ifname = fc.stringMatching(/^[A-Za-z0-9@._-]{1,15}$/).filter((s) => s !== '.' && s !== '..');
    fc.assert(
      fc.property(id, ifname, id, ifname, (a, x, b, y) => {
        if (a === b && x === y) return;
        expect(stateFileName(a, x)).not.toBe(stateFileName(b, y));
        expect(stateFileName(a, x)).not.toContain('/');
      }),
    );
  });
});

describe('versions', () => {
  it('compares dotted versions', () => {
    expect(compareVersions('0.4.0', '0.3.1')).toBe(1);
    expect(compareVersions('0.3.1', '0.4.0')).toBe(-1);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
    expect([...SUPPORTED_VERSIONS].sort(compareVersions)).toEqual([...SUPPORTED_VERSIONS]);
  });
});

describe('network configuration', () => {
  const base = { cniVersion: '1.0.0', name: 'vxtap', type: 'vxtap' };

  it('accepts a minimal and a full configuration', () => {
    expect(must(parseNetConf(JSON.stringify(base)))).toEqual(base);
    const full = {
      ...base,
      subnetFile: '/run/x.env',
      dataDir: '/var/lib/x',
      delegate: { bridge: 'cni0', hairpinMode: true, ipMasq: false },
      ipam: { dataDir: '/tmp/i', routes: [{ dst: '0.0.0.0/0' }] },
      runtimeConfig: {},
      prevResult: { ips: [] },
    };
    expect(must(parseNetConf(JSON.stringify(full)))).toEqual(full);
  });

  it.each([
    ['{', 6, /not valid JSON/],
    ['[1]', 6, /not a JSON object/],
    [JSON.stringify({ ...base, cniVersion: undefined }), 1, /cniVersion is missing/],
    [JSON.stringify({ ...base, cniVersion: '0.2.0' }), 1, /cniVersion "0\.2\.0" is not supported/],
    [JSON.stringify({ ...base, name: '../x' }), 7, /name "\.\.\/x"/],
    [JSON.stringify({ ...base, type: 7 }), 7, /type is missing/],
    [JSON.stringify({ ...base, subnetFile: 'rel/path' }), 7, /subnetFile must be an absolute path/],
    [JSON.stringify({ ...base, dataDir: 3 }), 7, /dataDir must be an absolute path/],
    [JSON.stringify({ ...base, delegate: [] }), 7, /delegate must be a JSON object/],
    [JSON.stringify({ ...base, delegate: { type: 'vxtap' } }), 7, /delegate\.type "vxtap" would call this plugin again/],
    [JSON.stringify({ ...base, delegate: { type: '../../bin/sh' } }), 7, /delegate\.type must be a plugin name/],
    [JSON.stringify({ ...base, delegate: { ipam: {} } }), 7, /delegate\.ipam is not used/],
    [JSON.stringify({ ...base, delegate: { mtu: 'big' } }), 7, /delegate\.mtu/],
    [JSON.stringify({ ...base, delegate: { ipMasq: 'yes' } }), 7, /delegate\.ipMasq/],
    [JSON.stringify({ ...base, ipam: { subnet: '10.0.0.0/8' } }), 7, /ipam\.subnet is not used/],
    [JSON.stringify({ ...base, ipam: { ranges: [] } }), 7, /ipam\.ranges is not used/],
    [JSON.stringify({ ...base, ipam: { routes: [{ dst: 'x' }] } }), 7, /ipam\.routes\[0\]\.dst/],
    [JSON.stringify({ ...base, ipam: { dataDir: 'rel' } }), 7, /ipam\.dataDir/],
  ])('refuses %s with code %i naming the field', (text, code, msg) => {
    const e = err(parseNetConf(text));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(msg);
  });
});

describe("addr.ts against the control plane's cidr.ts (ipaddr.js), the slow reference", () => {
  const v4 = fc.bigInt({ min: 0n, max: (1n << 32n) - 1n });
  // IPv6 values with runs of zero groups, so that '::' compression is exercised.
  const v6 = fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }).map((g) => g.reduce((v, x) => (v << 16n) | BigInt(x), 0n));
  const addrs = fc.oneof(
    v4.map((value) => ({ family: 4 as const, value })),
    v6.map((value) => ({ family: 6 as const, value })),
  );

  it('formats and parses every address as the reference does (property)', () => {
    fc.assert(
      fc.property(addrs, ({ family, value }) => {
        const text = formatIp(family, value);
        expect(text).toBe(formatAddress(family, value));
        expect(parseIp(text)).toEqual({ family, value });
      }),
      { numRuns: 500 },
    );
  });

  it('parses prefixes as the reference does, strict and not (property)', () => {
    fc.assert(
      fc.property(addrs, fc.integer({ min: 0, max: 128 }), fc.boolean(), ({ family, value }, l, strict) => {
        const len = l % ((family === 4 ? 32 : 128) + 1);
        const text = `${formatIp(family, value)}/${len}`;
        let ref: ReturnType<typeof parseCidr> | Error;
        try {
          ref = parseCidr(text, strict);
        } catch (e) {
          ref = e as Error;
        }
        if (ref instanceof Error) expect(() => parsePrefix(text, strict)).toThrow(/host bits/);
        else {
          expect(parsePrefix(text, strict)).toEqual(ref);
          expect(formatPrefix(ref)).toBe(formatCidr(ref));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('reads the uncompressed, upper-case and IPv4-tail spellings; refuses what is not an address', () => {
    expect(parseIp('FD00:0:0:0:0:0:0:1')).toEqual({ family: 6, value: (0xfd00n << 112n) | 1n });
    expect(parseIp('::ffff:198.19.5.1')).toEqual(parseIp('::ffff:c613:501'));
    for (const bad of ['', '1.2.3', '1.2.3.256', '01.2.3.4', '1.2.3.4.5', '::1::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'fe80::1%eth0', '12345::', 'g::', ':1:2:3:4:5:6:7']) {
      expect(parseIp(bad), bad).toBeUndefined();
    }
    expect(() => parsePrefix('198.19.5.1', false)).toThrow(/missing \/len/);
    expect(() => parsePrefix('198.19.5.1/33', false)).toThrow(/bad prefix length/);
  });

  it("reads KEY=VALUE lines as the control plane's parseSubnetEnv (property)", () => {
    const line = fc.oneof(fc.constantFrom('FLANNEL_MTU=1450', '  FLANNEL_IPMASQ=true  ', '# comment', 'lower=x', 'FLANNEL_SUBNET=198.19.5.1/24\r', 'A_1=', 'X=a=b'), fc.string({ maxLength: 12 }));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 8 }), (lines) => {
        const text = lines.join('\n');
        expect(parseEnvLines(text)).toEqual(parseSubnetEnv(text));
      }),
    );
  });
});

describe('subnet.env', () => {
  it('reads what vxtap writes, for any subnet of any network (property)', () => {
    const arb = fc.record({
      a: fc.integer({ min: 1, max: 223 }),
      b: fc.integer({ min: 0, max: 255 }),
      netLen: fc.integer({ min: 8, max: 24 }),
      extra: fc.integer({ min: 0, max: 6 }),
      pick: fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }),
      mtu: fc.integer({ min: 576, max: 65535 }),
      ipMasq: fc.boolean(),
    });
    fc.assert(
      fc.property(arb, ({ a, b, netLen, extra, pick, mtu, ipMasq }) => {
        const network = parseCidr(`${a}.${b}.0.0/${netLen}`, false);
        const subLen = Math.min(30, netLen + extra);
        const span = 1n << BigInt(subLen - netLen);
        const subnet = { family: 4 as const, base: network.base + ((pick % span) << BigInt(32 - subLen)), len: subLen };
        const text = renderSubnetEnv({ ipv4: { network } } as unknown as NetworkConfig, subnet, mtu, ipMasq);
        const env = must(parseSubnetEnvText(text, '/run/vxtap/subnet.env'));
        expect(formatCidr(env.network!)).toBe(formatCidr(network));
        expect(formatCidr(env.subnet!)).toBe(formatCidr(subnet)); // the network address: what host-local wants
        expect(parseCidr(`${String(env.gateway)}/32`).base).toBe(subnet.base + 1n); // the first usable address
        expect(env.mtu).toBe(mtu);
        expect(env.ipMasq).toBe(ipMasq);
      }),
    );
  });

  it('takes the first usable address as gateway when FLANNEL_SUBNET gives the network address; reads the IPv6 pair', () => {
    const env = must(
      parseSubnetEnvText(
        'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.0/24\nFLANNEL_IPV6_NETWORK=fd00:1::/56\nFLANNEL_IPV6_SUBNET=fd00:1:0:5::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=TRUE\n',
        'f',
      ),
    );
    expect(env.gateway).toBe('10.1.17.1');
    expect(formatCidr(env.ipv6Subnet!)).toBe('fd00:1:0:5::/64');
    expect(env.ipv6Gateway).toBe('fd00:1:0:5::1');
    expect(env.ipMasq).toBe(true);
  });

  it.each([
    ['FLANNEL_SUBNET=198.19.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false', /^FLANNEL_NETWORK in f: missing \(FLANNEL_SUBNET is set\)/],
    ['FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false', /^FLANNEL_SUBNET in f: missing/],
    ['FLANNEL_MTU=1450\nFLANNEL_IPMASQ=false', /^FLANNEL_NETWORK in f: missing \(neither/],
    [ENV_TEXT.replace('FLANNEL_MTU=1450\n', ''), /^FLANNEL_MTU in f: missing/],
    [ENV_TEXT.replace('FLANNEL_MTU=1450', 'FLANNEL_MTU=15x'), /^FLANNEL_MTU in f: "15x" must be an integer/],
    [ENV_TEXT.replace('FLANNEL_MTU=1450', 'FLANNEL_MTU=100'), /^FLANNEL_MTU in f/],
    [ENV_TEXT.replace('FLANNEL_IPMASQ=false\n', ''), /^FLANNEL_IPMASQ in f: missing/],
    [ENV_TEXT.replace('FLANNEL_IPMASQ=false', 'FLANNEL_IPMASQ=maybe'), /^FLANNEL_IPMASQ in f: "maybe" must be true or false/],
    [ENV_TEXT.replace('198.19.0.0/16', '198.19.0.1/16'), /^FLANNEL_NETWORK in f: .*host bits/],
    [ENV_TEXT.replace('198.19.5.1/24', '198.20.5.1/24'), /^FLANNEL_SUBNET in f: 198\.20\.5\.1\/24 is not inside FLANNEL_NETWORK/],
    [ENV_TEXT.replace('198.19.5.1/24', '198.19.5.1/12'), /^FLANNEL_SUBNET in f: prefix length \/12/],
    [ENV_TEXT.replace('198.19.5.1/24', '198.19.5.1'), /^FLANNEL_SUBNET in f: not a CIDR/],
    [ENV_TEXT.replace('198.19.5.1/24', 'fd00::1/64'), /^FLANNEL_SUBNET in f: fd00::1\/64 is not an IPv4 subnet/],
  ])('refuses %j naming the field (code 7)', (text, msg) => {
    const e = err(parseSubnetEnvText(text, 'f'));
    expect(e.code).toBe(7);
    expect(e.message).toMatch(msg);
  });
});

describe('delegate configuration', () => {
  const env = must(parseSubnetEnvText(ENV_TEXT, 'f'));
  const n: NetConf = { cniVersion: '0.4.0', name: 'pods', type: 'vxtap' };

  it('is bridge + host-local with the subnet as network address, the MTU, the network route via the gateway, masquerading as flannel decides', () => {
    expect(buildDelegateConf(n, env)).toEqual({
      cniVersion: '0.4.0',
      name: 'pods',
      type: 'bridge',
      mtu: 1450,
      ipMasq: true, // FLANNEL_IPMASQ=false: nobody masquerades yet, so the bridge does
      isGateway: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: '198.19.5.0/24', gateway: '198.19.5.1' }]], routes: [{ dst: '198.19.0.0/16', gw: '198.19.5.1' }] },
    });
    expect(buildDelegateConf(n, { ...env, ipMasq: true }).ipMasq).toBe(false);
  });

  it('keeps every delegate key, adds defaults only where missing, and always sets name, cniVersion and the ranges (property)', () => {
    const key = fc.constantFrom('type', 'bridge', 'mtu', 'ipMasq', 'isGateway', 'isDefaultGateway', 'hairpinMode', 'promiscMode', 'vlan', 'name', 'cniVersion');
    const value = fc.oneof(fc.boolean(), fc.integer({ min: 1, max: 9000 }), fc.constantFrom('cni0', 'ipvlan', 'bridge', 'other'));
    fc.assert(
      fc.property(fc.dictionary(key, value), fc.boolean(), (delegate, masq) => {
        const d = buildDelegateConf({ ...n, delegate }, { ...env, ipMasq: masq });
        expect(d.name).toBe('pods');
        expect(d.cniVersion).toBe('0.4.0');
        for (const [k, v] of Object.entries(delegate)) if (k !== 'name' && k !== 'cniVersion') expect(d[k]).toEqual(v);
        if (!('type' in delegate)) expect(d.type).toBe('bridge');
        if (!('mtu' in delegate)) expect(d.mtu).toBe(1450);
        if (!('ipMasq' in delegate)) expect(d.ipMasq).toBe(!masq);
        if (!('isGateway' in delegate) && d.type === 'bridge') expect(d.isGateway).toBe(true);
        if (d.type !== 'bridge' && !('isGateway' in delegate)) expect('isGateway' in d).toBe(false);
        expect((d.ipam as { ranges: unknown }).ranges).toEqual([[{ subnet: '198.19.5.0/24', gateway: '198.19.5.1' }]]);
      }),
    );
  });

  it('merges the top-level ipam (dataDir, type, routes first) and runtimeConfig; adds the IPv6 range and route', () => {
    const env6: SubnetEnv = must(parseSubnetEnvText(ENV_TEXT + 'FLANNEL_IPV6_NETWORK=fd00:1::/48\nFLANNEL_IPV6_SUBNET=fd00:1:0:7::1/64\n', 'f'));
    const d = buildDelegateConf({ ...n, ipam: { dataDir: '/tmp/x', routes: [{ dst: '0.0.0.0/0' }] }, runtimeConfig: { portMappings: [] } }, env6);
    expect(d.runtimeConfig).toEqual({ portMappings: [] });
    expect(d.ipam).toEqual({
      type: 'host-local',
      dataDir: '/tmp/x',
      ranges: [[{ subnet: '198.19.5.0/24', gateway: '198.19.5.1' }], [{ subnet: 'fd00:1:0:7::/64', gateway: 'fd00:1:0:7::1' }]],
      routes: [{ dst: '0.0.0.0/0' }, { dst: '198.19.0.0/16', gw: '198.19.5.1' }, { dst: 'fd00:1::/48', gw: 'fd00:1:0:7::1' }],
    });
  });

  it('defaults to the subnet.env vxtap writes', () => {
    expect(DEFAULT_SUBNET_FILE).toBe(FLANNEL_DEFAULT_SUBNET_FILE);
  });
});

describe("the README's Kubernetes configuration", () => {
  it("is a valid conflist whose vxtap entry the plugin accepts, turning the bridge's masquerading off", () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const m = /`\/etc\/cni\/net\.d\/10-vxtap\.conflist`:\n\n```json\n([\s\S]*?)\n```/.exec(readme);
    expect(m, 'the conflist block in README.md').not.toBeNull();
    const list = JSON.parse(m![1]) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
    expect(list.plugins[0].type).toBe('vxtap');
    // A runtime hands each plugin its entry with the list's name and cniVersion.
    const n = must(parseNetConf(JSON.stringify({ ...list.plugins[0], name: list.name, cniVersion: list.cniVersion })));
    const d = buildDelegateConf(n, must(parseSubnetEnvText(ENV_TEXT, 'f')));
    expect(d).toMatchObject({ type: 'bridge', name: 'vxtap', ipMasq: false, isGateway: true, isDefaultGateway: true, hairpinMode: true, mtu: 1450 });
  });
});

describe('plugin commands against fake delegates (temp CNI_PATH, no root)', () => {
  let dir: string;
  let path: string;
  let log: string;
  const stdinOf = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ cniVersion: '1.0.0', name: 'pods', type: 'vxtap', subnetFile: join(dir, 'subnet.env'), dataDir: join(dir, 'state'), ...extra });
  const env = (command: string, id = 'c1') => ({ CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: path });
  const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vxcn-unit-'));
    path = `${join(dir, 'empty')}:${join(dir, 'bin')}`;
    log = join(dir, 'calls.log');
    execFileSync('mkdir', ['-p', join(dir, 'bin'), join(dir, 'empty')]);
    // `bridge` logs its command and stdin; ADD prints a result; a netns ending in "fail" fails.
    const fake = `#!/bin/sh\nin=$(cat)\necho "$CNI_COMMAND $in" >> ${shellQuote(log)}\ncase "$CNI_NETNS" in *fail) echo '{"cniVersion":"1.0.0","code":11,"msg":"no such netns","details":"d"}'; exit 1;; esac\n[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion":"1.0.0","ips":[{"address":"198.19.5.2/24"}]}'\nexit 0\n`;
    writeFileSync(join(dir, 'bin', 'bridge'), fake);
    chmodSync(join(dir, 'bin', 'bridge'), 0o755);
    writeFileSync(join(dir, 'bin', 'garbage'), '#!/bin/sh\ncat >/dev/null\necho not json\n');
    chmodSync(join(dir, 'bin', 'garbage'), 0o755);
    writeFileSync(join(dir, 'subnet.env'), ENV_TEXT);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ADD passes the delegate result through and stores its configuration; CHECK and DEL use it after subnet.env is gone', () => {
    const add = runPlugin(env('ADD'), stdinOf());
    expect(add.exitCode).toBe(0);
    expect(JSON.parse(add.stdout)).toEqual({ cniVersion: '1.0.0', ips: [{ address: '198.19.5.2/24' }] });
    const stored = JSON.parse(readFileSync(join(dir, 'state', 'c1@eth0.json'), 'utf8'));
    expect(stored.ipam.ranges[0][0].subnet).toBe('198.19.5.0/24');
    expect((statSync(join(dir, 'state', 'c1@eth0.json')).mode & 0o777).toString(8)).toBe('600');
    rmSync(join(dir, 'subnet.env'));
    try {
      const prevResult = JSON.parse(add.stdout);
      const check = runPlugin(env('CHECK'), stdinOf({ prevResult }));
      expect(check).toEqual({ stdout: '', exitCode: 0 });
      const del = runPlugin(env('DEL'), stdinOf({ prevResult }));
      expect(del).toEqual({ stdout: '', exitCode: 0 });
      const sent = calls().map((l) => [l.split(' ')[0], JSON.parse(l.slice(l.indexOf(' ') + 1))]);
      expect(sent.map(([c]) => c)).toEqual(['ADD', 'CHECK', 'DEL']);
      expect(sent[1][1]).toEqual({ ...stored, prevResult }); // the stored configuration, with the runtime's prevResult
      expect(sent[2][1]).toEqual({ ...stored, prevResult });
      expect(readdirSync(join(dir, 'state'))).toEqual([]);
      // DEL again, with neither state nor subnet.env: nothing to do, success, no delegate call.
      expect(runPlugin(env('DEL'), stdinOf())).toEqual({ stdout: '', exitCode: 0 });
      expect(calls()).toHaveLength(3);
      // CHECK of an unknown container: code 3.
      expect(JSON.parse(runPlugin(env('CHECK'), stdinOf()).stdout)).toMatchObject({ cniVersion: '1.0.0', code: 3 });
    } finally {
      writeFileSync(join(dir, 'subnet.env'), ENV_TEXT);
    }
  });

  it('a failed delegate ADD is passed through (code, msg, details) and undone: DEL called, no state kept', () => {
    rmSync(log, { force: true });
    const r = runPlugin({ ...env('ADD', 'c2'), CNI_NETNS: '/var/run/netns/fail' }, stdinOf());
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '1.0.0', code: 11, msg: 'bridge ADD: no such netns', details: 'd' });
    expect(calls().map((l) => l.split(' ')[0])).toEqual(['ADD', 'DEL']);
    expect(existsSync(join(dir, 'state', 'c2@eth0.json'))).toBe(false);
  });

  it('a repeated ADD that fails leaves the existing attachment and its state alone (no DEL)', () => {
    expect(runPlugin(env('ADD', 'c8'), stdinOf()).exitCode).toBe(0);
    const before = readFileSync(join(dir, 'state', 'c8@eth0.json'), 'utf8');
    rmSync(log, { force: true });
    const again = runPlugin({ ...env('ADD', 'c8'), CNI_NETNS: '/var/run/netns/fail' }, stdinOf({ delegate: { bridge: 'other' } }));
    expect(again.exitCode).toBe(1);
    expect(calls().map((l) => l.split(' ')[0])).toEqual(['ADD']);
    expect(readFileSync(join(dir, 'state', 'c8@eth0.json'), 'utf8')).toBe(before);
    expect(runPlugin(env('DEL', 'c8'), stdinOf()).exitCode).toBe(0);
  });

  it('a damaged state file does not block DEL: subnet.env is used and the file removed', () => {
    rmSync(log, { force: true });
    execFileSync('mkdir', ['-p', join(dir, 'state')]);
    writeFileSync(join(dir, 'state', 'c9@eth0.json'), '{"type": "bri');
    expect(runPlugin(env('DEL', 'c9'), stdinOf())).toEqual({ stdout: '', exitCode: 0 });
    expect(calls().map((l) => l.split(' ')[0])).toEqual(['DEL']);
    expect(existsSync(join(dir, 'state', 'c9@eth0.json'))).toBe(false);
    // CHECK still says the state is damaged.
    writeFileSync(join(dir, 'state', 'c9@eth0.json'), '{');
    expect(JSON.parse(runPlugin(env('CHECK', 'c9'), stdinOf()).stdout)).toMatchObject({ code: 6 });
    rmSync(join(dir, 'state', 'c9@eth0.json'));
  });

  it('DEL without state rebuilds the configuration from subnet.env (bridge and host-local DEL are idempotent)', () => {
    rmSync(log, { force: true });
    expect(runPlugin(env('DEL', 'c3'), stdinOf())).toEqual({ stdout: '', exitCode: 0 });
    expect(calls().map((l) => l.split(' ')[0])).toEqual(['DEL']);
  });

  it('refuses a delegate that is not in CNI_PATH, or prints garbage, with a CNI error', () => {
    const missing = JSON.parse(runPlugin(env('ADD', 'c4'), stdinOf({ delegate: { type: 'macvlan' } })).stdout);
    expect(missing).toMatchObject({ code: 5, msg: expect.stringMatching(/failed to find plugin "macvlan" in CNI_PATH/) });
    const garbage = JSON.parse(runPlugin(env('ADD', 'c5'), stdinOf({ delegate: { type: 'garbage' } })).stdout);
    expect(garbage).toMatchObject({ code: 6, msg: expect.stringMatching(/garbage ADD printed a result that is not JSON/) });
    expect(readdirSync(join(dir, 'state'))).toEqual([]);
  });

  it("answers VERSION, and reports errors in the configuration's own cniVersion", () => {
    expect(JSON.parse(runPlugin({ CNI_COMMAND: 'VERSION' }, '').stdout)).toEqual({ cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
    writeFileSync(join(dir, 'bad.env'), ENV_TEXT.replace('FLANNEL_MTU=1450\n', ''));
    const r = runPlugin(env('ADD', 'c6'), stdinOf({ cniVersion: '0.3.1', subnetFile: join(dir, 'bad.env') }));
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '0.3.1', code: 7, msg: `FLANNEL_MTU in ${join(dir, 'bad.env')}: missing` });
    // A missing subnet.env: "try again later" (11) from 1.0.0, an I/O failure (5) before.
    expect(JSON.parse(runPlugin(env('ADD', 'c7'), stdinOf({ subnetFile: join(dir, 'none.env') })).stdout).code).toBe(11);
    expect(JSON.parse(runPlugin(env('ADD', 'c7'), stdinOf({ cniVersion: '0.4.0', subnetFile: join(dir, 'none.env') })).stdout).code).toBe(5);
  });
});

describe('vxtap cni install', () => {
  it('quotes any path for /bin/sh (property, through a real sh)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0')),
        (s) => {
          expect(execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote(s)}`], { encoding: 'utf8' })).toBe(s);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('writes an executable script once, and refuses a directory that does not exist', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vxcn-install-'));
    try {
      const main = join(dir, "it's main.js");
      writeFileSync(main, 'console.log(JSON.stringify(process.argv.slice(2)))\n');
      const r = installPlugin(dir, process.execPath, main);
      expect(r.changed).toBe(true);
      expect(readFileSync(r.path, 'utf8')).toBe(renderPluginScript(process.execPath, main));
      expect(statSync(r.path).mode & 0o777).toBe(0o755);
      expect(execFileSync(r.path, ['a b', 'c'], { encoding: 'utf8' })).toBe('["a b","c"]\n');
      expect(installPlugin(dir, process.execPath, main).changed).toBe(false);
      expect(readdirSync(dir).sort()).toEqual(["it's main.js", 'vxtap']);
      expect(() => installPlugin(join(dir, 'nope'), process.execPath, main)).toThrow(/--dir .*nope does not exist/);
      expect(() => installPlugin(main, process.execPath, main)).toThrow(/is not a directory/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('contrib/docker-vxtap-env.sh', () => {
  const script = join(REPO, 'contrib/docker-vxtap-env.sh');
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vxcn-docker-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const sh = (args: string[]) => spawnSync('/bin/sh', [script, ...args], { encoding: 'utf8' });
  const envFile = (text: string) => {
    const f = join(dir, `s${Math.random().toString(36).slice(2)}.env`);
    writeFileSync(f, text);
    return f;
  };

  it('prints daemon.json with bip, mtu and ip-masq from what vxtap writes', () => {
    const r = sh(['--subnet-file', envFile(ENV_TEXT)]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ bip: '198.19.5.1/24', mtu: 1450, 'ip-masq': true });
    const flannel = sh(['--subnet-file', envFile(ENV_TEXT.replace('IPMASQ=false', 'IPMASQ=true'))]);
    expect(JSON.parse(flannel.stdout)['ip-masq']).toBe(false);
  });

  it('writes DOCKER_OPTS for a systemd EnvironmentFile with --out, atomically', () => {
    const out = join(dir, 'docker_opts.env');
    const r = sh(['--subnet-file', envFile(ENV_TEXT), '--format', 'docker-opts', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(readFileSync(out, 'utf8')).toBe('DOCKER_OPTS="--bip=198.19.5.1/24 --mtu=1450 --ip-masq=true"\n');
    expect(readdirSync(dir).filter((f) => f.includes('.tmp.'))).toEqual([]);
  });

  it.each([
    [ENV_TEXT.replace('FLANNEL_MTU=1450\n', ''), /FLANNEL_MTU in .*: missing/],
    [ENV_TEXT.replace('1450', '14x0'), /FLANNEL_MTU in .*: '14x0' is not a number/],
    [ENV_TEXT.replace('198.19.5.1/24', '198.19.5.1'), /FLANNEL_SUBNET in .*not an IPv4 address\/length/],
    [ENV_TEXT.replace('FLANNEL_IPMASQ=false', 'FLANNEL_IPMASQ=yes'), /FLANNEL_IPMASQ in .*'yes' is not true or false/],
  ])('refuses an invalid subnet.env naming the field (exit 1): %j', (text, msg) => {
    const r = sh(['--subnet-file', envFile(text)]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(msg);
  });

  it('exit 1 for a missing file, 2 for usage errors', () => {
    expect(sh(['--subnet-file', join(dir, 'none')]).status).toBe(1);
    expect(sh(['--format', 'yaml']).status).toBe(2);
    expect(sh(['--wait', 'soon']).status).toBe(2);
    expect(sh(['--bogus']).status).toBe(2);
  });
});
