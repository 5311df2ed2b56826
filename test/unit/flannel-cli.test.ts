import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { FLANNEL_CLI_OPTIONS, addFlannelCliOptions, flannelOptionsFromCli, parseDurationSeconds } from '../../src/control/flannel/cli-options.js';
import { validateEtcdClientOptions } from '../../src/control/etcd-client.js';
import { MAX_LEASE_TTL_SECONDS, renewIntervalSeconds, validateFlannelOptions } from '../../src/control/flannel/control.js';
import { MAX_TIMER_MS, realClock } from '../../src/control/flannel/clock.js';

describe('etcd-mode command line', () => {
  it('parses durations with units, naming the flag on errors', () => {
    expect(parseDurationSeconds('24h')).toBe(86400);
    expect(parseDurationSeconds('10m')).toBe(600);
    expect(parseDurationSeconds('30s')).toBe(30);
    expect(parseDurationSeconds('45')).toBe(45);
    expect(() => parseDurationSeconds('1s')).toThrow(/--lease-ttl must be at least 3s/);
    expect(() => parseDurationSeconds('soon')).toThrow(/--lease-ttl must be a duration/);
  });

  it('adds every option with an environment mirror and turns values into control options', () => {
    const cmd = addFlannelCliOptions(new Command('up').exitOverride());
    cmd.parse(['--etcd-endpoints', 'https://198.18.0.250:2379, https://198.18.0.251:2379', '--etcd-cafile', 'ca.pem', '--etcd-certfile', 'c.pem', '--etcd-keyfile', 'k.pem', '--lease-ttl', '1h'], {
      from: 'user',
    });
    const o = flannelOptionsFromCli(cmd.opts(), '198.18.0.1')!;
    expect(o).toMatchObject({
      endpoints: ['https://198.18.0.250:2379', 'https://198.18.0.251:2379'],
      prefix: '/coreos.com/network',
      subnetFile: '/run/vxtap/subnet.env',
      leaseTtlSeconds: 3600,
      local: '198.18.0.1',
      tls: { caFile: 'ca.pem', certFile: 'c.pem', keyFile: 'k.pem' },
    });
    expect(validateEtcdClientOptions(o)).toBeUndefined();
    for (const spec of FLANNEL_CLI_OPTIONS) expect(spec.env).toMatch(/^VXTAP_ETCD_|^VXTAP_SUBNET_FILE$|^VXTAP_LEASE_TTL$/);
    expect(flannelOptionsFromCli({}, '198.18.0.1')).toBeUndefined();
    expect(() => flannelOptionsFromCli({ etcdEndpoints: 'http://x:1', etcdUsername: 'root' }, '198.18.0.1')).toThrow(/--etcd-password/);
  });

  it('validates etcd client and control options with messages naming the option', () => {
    expect(validateEtcdClientOptions({ endpoints: [] })?.message).toMatch(/--etcd-endpoints/);
    expect(validateEtcdClientOptions({ endpoints: ['198.18.0.250:2379'] })?.message).toMatch(/not a URL/);
    expect(validateEtcdClientOptions({ endpoints: ['https://198.18.0.250:2379'] })?.message).toMatch(/--etcd-cafile/);
    expect(validateEtcdClientOptions({ endpoints: ['http://198.18.0.250:2379'], tls: { caFile: 'ca' } })?.message).toMatch(/https/);
    expect(validateEtcdClientOptions({ endpoints: ['https://a:1'], tls: { caFile: 'ca', certFile: 'c' } })?.message).toMatch(/--etcd-keyfile/);
    expect(validateFlannelOptions({ endpoints: ['http://a:1'], local: 'eth0' })?.message).toMatch(/--local/);
    expect(validateFlannelOptions({ endpoints: ['http://a:1'], local: '198.18.0.1', leaseTtlSeconds: 1 })?.message).toMatch(/--lease-ttl/);
    expect(validateFlannelOptions({ endpoints: ['http://a:1'], local: '198.18.0.1', prefix: 'coreos' })?.message).toMatch(/--etcd-prefix/);
  });

  it('bounds --lease-ttl so the renewal timer cannot overflow (Node timers fire after 1 ms above 2^31-1 ms)', () => {
    expect(parseDurationSeconds('24d')).toBe(MAX_LEASE_TTL_SECONDS);
    expect(renewIntervalSeconds(MAX_LEASE_TTL_SECONDS) * 1000).toBeLessThanOrEqual(MAX_TIMER_MS);
    for (const bad of ['25d', '600h', '2151084', '99999999999999999999d']) {
      expect(() => parseDurationSeconds(bad)).toThrow(/--lease-ttl must be at most 24d/);
    }
    const base = { endpoints: ['http://a:1'], local: '198.18.0.1' };
    expect(validateFlannelOptions({ ...base, leaseTtlSeconds: MAX_LEASE_TTL_SECONDS })).toBeUndefined();
    expect(validateFlannelOptions({ ...base, leaseTtlSeconds: 30 * 86400 })?.message).toMatch(/--lease-ttl must be a whole number of seconds between 3 and 2073600/);
    const cmd = addFlannelCliOptions(new Command('up').exitOverride());
    cmd.parse(['--etcd-endpoints', 'http://198.18.0.250:2379', '--lease-ttl', '30d'], { from: 'user' });
    expect(() => flannelOptionsFromCli(cmd.opts(), '198.18.0.1')).toThrow(/--lease-ttl must be at most 24d/);
  });

  it('a long delay on the real clock is chained, never a 1 ms busy timer', async () => {
    let fired = 0;
    const h = realClock.setTimer(30 * 86400 * 1000, () => fired++);
    await new Promise((r) => setTimeout(r, 20));
    expect(fired).toBe(0);
    h.cancel();
  });

  it('renews like flannel: an hour before expiry for 24 h, at 2/3 of short test TTLs', () => {
    expect(renewIntervalSeconds(86400)).toBe(82800);
    expect(renewIntervalSeconds(9)).toBe(6);
  });
});
