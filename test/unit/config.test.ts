import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { writeFileSync, mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { mergeConfig, validateConfig, readConfigFile, parsePortRange, ConfigError, DEFAULTS, statsSocketPath, currentNetns, readSecretFile, plainHttpEndpoints } from '../../src/config.js';

const ok = { local: '198.18.0.1', peers: [{ address: '198.18.0.2' }] };

describe('configuration validation', () => {
  it('accepts the defaults with a local address', () => {
    expect(validateConfig(mergeConfig(ok))).toBeNull();
    expect(mergeConfig(ok).port).toBe(4789);
  });

  it.each([
    [{ local: '' }, 'local'],
    [{ local: '198.18.0.300' }, 'local'],
    [{ local: '0.0.0.0' }, 'local'],
    [{ vni: 1 << 24 }, 'vni'],
    [{ vni: 1.5 }, 'vni'],
    [{ port: 0 }, 'port'],
    [{ port: 49160 }, 'port'],
    [{ srcPortMin: 5000, srcPortMax: 4000 }, 'srcPortMax'],
    [{ srcPortMin: 1000, srcPortMax: 3000 }, 'srcPortMax'],
    [{ peers: [{ address: 'nope' }] }, 'peers[0]'],
    [{ peers: [{ address: '2001:2::1' }] }, 'peers[0]'],
    [{ peers: [{ address: '198.18.0.1' }] }, 'peers[0]'],
    [{ peers: [{ address: '198.18.0.2' }, { address: '198.18.0.2' }] }, 'peers[1]'],
    [{ address: '198.19.0.1' }, 'address'],
    [{ mtu: 100 }, 'mtu'],
    [{ mac: '01:00:5e:00:00:01' }, 'mac'],
    [{ mac: 'zz' }, 'mac'],
    [{ workers: 0 }, 'workers'],
    [{ df: 'maybe' }, 'df'],
    [{ name: 'a-name-that-is-too-long' }, 'name'],
    [{ name: 'bad name' }, 'name'],
    [{ fdb: [{ mac: '02:00:00:00:00:01', peer: '198.18.0.9' }] }, 'fdb[0].peer'],
    [{ batchSize: 10_000 }, 'batchSize'],
    [{ metrics: 'nohost' }, 'metrics'],
    [{ txQueueLen: 0 }, 'txQueueLen'],
    [{ cpuPlacement: 'pinned' }, 'cpuPlacement'],
  ])('refuses %j naming %s', (patch, field) => {
    const err = validateConfig(mergeConfig(ok, patch as object));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.field).toBe(field);
    expect(err!.message.startsWith(`${field}: `)).toBe(true);
  });

  it('never accepts an out-of-range VNI or port (property)', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer(), (vni, port) => {
        const err = validateConfig(mergeConfig(ok, { vni, port }));
        const valid = vni >= 0 && vni <= 0xffffff && port >= 1 && port <= 65535 && (port < DEFAULTS.srcPortMin || port > DEFAULTS.srcPortMax);
        expect(err === null).toBe(valid);
      }),
    );
  });

  it('reads a config file, refuses unknown fields and bad JSON', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vxtap-cfg-'));
    try {
      const f = path.join(dir, 'c.json');
      writeFileSync(f, JSON.stringify({ local: '198.18.0.1', peers: ['198.18.0.2'], srcPortRange: '50000-50015', vni: 7 }));
      const cfg = mergeConfig(readConfigFile(f), { vni: 8 });
      expect(cfg).toMatchObject({ vni: 8, srcPortMin: 50000, srcPortMax: 50015, peers: [{ address: '198.18.0.2' }] });
      expect(validateConfig(cfg)).toBeNull();
      writeFileSync(f, JSON.stringify({ lcoal: 'x' }));
      expect(() => readConfigFile(f)).toThrow(/^lcoal: unknown field/);
      writeFileSync(f, '{');
      expect(() => readConfigFile(f)).toThrow(/not valid JSON/);
      expect(() => readConfigFile(path.join(dir, 'missing.json'))).toThrow(/cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses port ranges', () => {
    expect(parsePortRange('1-2')).toEqual([1, 2]);
    expect(() => parsePortRange('1:2')).toThrow(/not a range/);
  });
});

describe('control socket path, secrets, plain-http credentials', () => {
  it('keys the default socket by network namespace', () => {
    expect(statsSocketPath({ name: 'v0' }, { inode: 4026531840, isInit: true })).toBe('/run/vxtap/v0.sock');
    expect(statsSocketPath({ name: 'v0' }, { inode: 4026532999, isInit: false })).toBe('/run/vxtap/netns-4026532999/v0.sock');
    expect(statsSocketPath({ name: 'v0', statsSocket: '/tmp/s.sock' }, { inode: 1, isInit: false })).toBe('/tmp/s.sock');
    // two namespaces, one name: two paths
    expect(statsSocketPath({ name: 'v0' }, { inode: 1, isInit: false })).not.toBe(statsSocketPath({ name: 'v0' }, { inode: 2, isInit: false }));
    const here = currentNetns();
    expect(here?.inode).toBeGreaterThan(0);
  });

  it('reads a password file without its trailing newline, warns when others may read it, names the field', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'vxl-secret-'));
    try {
      const f = path.join(dir, 'pw');
      writeFileSync(f, 's3cret pass\n', { mode: 0o600 });
      const warnings: string[] = [];
      expect(readSecretFile(f, 'etcd-password-file', (m) => warnings.push(m))).toBe('s3cret pass');
      expect(warnings).toEqual([]);
      chmodSync(f, 0o644);
      expect(readSecretFile(f, 'etcd-password-file', (m) => warnings.push(m))).toBe('s3cret pass');
      expect(warnings[0]).toMatch(/etcd-password-file: .* readable by group or others/);
      writeFileSync(f, '\n');
      expect(() => readSecretFile(f, 'etcd-password-file')).toThrow(/etcd-password-file: .* is empty/);
      expect(() => readSecretFile(path.join(dir, 'missing'), 'etcd-password-file')).toThrow(ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds the endpoints that would carry credentials in clear text', () => {
    expect(plainHttpEndpoints(['http://198.18.0.250:2379', 'https://198.18.0.251:2379', ' HTTP://x:1'])).toEqual(['http://198.18.0.250:2379', ' HTTP://x:1']);
    expect(plainHttpEndpoints(['https://a:2379'])).toEqual([]);
  });
});
