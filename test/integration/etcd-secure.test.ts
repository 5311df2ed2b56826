/**
 * etcd over TLS with client certificates, and with user/password authentication
 * (the flannel recipe warns against an open etcd port): the control plane takes
 * a lease with the right credentials and is refused without them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostScope } from '../../src/host/netns.js';
import { haveCommand } from '../../src/host/exec.js';
import { startFlannelControl, type FlannelControlOptions } from '../../src/control/flannel/index.js';
import { startEtcd, putNetworkConfig, type EtcdServer } from '../helpers/etcd.js';
import { Underlay, kernelVtep } from '../helpers/flannel-hosts.js';

const PREFIX = '/coreos.com/network';
const CONFIG = { Network: '198.19.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan' } };
const canRun = process.getuid?.() === 0 && (await haveCommand('etcd')) && (await haveCommand('etcdctl')) && (await haveCommand('openssl'));

describe.skipIf(!canRun)('flannel control plane on a secured etcd', () => {
  const scope = new HostScope('vxe');
  let dir: string;
  const base = (etcd: EtcdServer, extra: Partial<FlannelControlOptions> = {}): FlannelControlOptions => ({
    endpoints: [etcd.endpoint],
    prefix: PREFIX,
    local: '198.18.0.1',
    netns: 'vxeh1',
    subnetFile: join(dir, 'h1.env'),
    leaseTtlSeconds: 10,
    startupTimeoutMs: 2500,
    callTimeoutMs: 1000,
    log: () => undefined,
    ...extra,
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vxe-secure-'));
    const ul = await Underlay.create(scope);
    await ul.host(1);
  });
  afterAll(async () => {
    await scope.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('TLS with client certificates: works with the certificate, refused without', async () => {
    const etcd = await startEtcd({ tls: true });
    try {
      expect(etcd.endpoint).toMatch(/^https:/);
      await putNetworkConfig(etcd, PREFIX, CONFIG);
      const c = await startFlannelControl(base(etcd, { tls: etcd.tls }), kernelVtep('vxeh1'));
      expect(c.subnet).toMatch(/^198\.19\.\d+\.0\/24$/);
      const kv = await etcd.ctl(['get', `${PREFIX}/subnets/${c.key}`, '--print-value-only']);
      expect(JSON.parse(kv.stdout).PublicIP).toBe('198.18.0.1');
      await c.stop();
      const noCert = await startFlannelControl(base(etcd, { tls: { caFile: etcd.tls!.caFile } }), kernelVtep('vxeh1')).catch((e) => e);
      expect(noCert).toBeInstanceOf(Error);
      expect(String(noCert.message)).toMatch(/etcd unreachable/);
    } finally {
      await etcd.destroy();
    }
  });

  it('user/password: works with the password, refused with a wrong one', async () => {
    const etcd = await startEtcd();
    try {
      await putNetworkConfig(etcd, PREFIX, CONFIG);
      await etcd.enableAuth('vxe-secret');
      const c = await startFlannelControl(base(etcd, { auth: { username: 'root', password: 'vxe-secret' } }), kernelVtep('vxeh1'));
      expect(c.subnet).toMatch(/^198\.19\.\d+\.0\/24$/);
      await c.renewNow();
      expect(c.stats().renewals).toBe(1);
      await c.stop();
      const t0 = Date.now();
      const wrong = await startFlannelControl(base(etcd, { auth: { username: 'root', password: 'nope' } }), kernelVtep('vxeh1')).catch((e) => e);
      expect(wrong).toBeInstanceOf(Error);
      expect(String(wrong.message)).toMatch(/refused our credentials/);
      expect(Date.now() - t0).toBeLessThan(2000); // not retried
      const anon = await startFlannelControl(base(etcd), kernelVtep('vxeh1')).catch((e) => e);
      expect(anon).toBeInstanceOf(Error);
      expect(String(anon.message)).toMatch(/refused our credentials/);
      console.log(`refusals: wrong password -> ${String(wrong.message)}; no credentials -> ${String(anon.message)}`);
    } finally {
      await etcd.destroy();
    }
  });
});
