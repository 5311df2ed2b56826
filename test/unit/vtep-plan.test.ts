/**
 * The VTEP plan (pure): what `Vtep.start` creates for a configuration and the
 * host facts, every refusal naming its field, and the derived MAC.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mergeConfig, ConfigError, type VtepConfig } from '../../src/config.js';
import { derivedMac, planVtep, steeringTableName, type HostFacts } from '../../src/dataplane/plan.js';
import { steeringTable } from '../../src/host/iproute.js';
import { steeringCommands, workerRestartDelay } from '../../src/dataplane/vtep.js';
import { UndoList } from '../../src/dataplane/undo.js';
import { formatMac } from '../../src/wire/mac.js';

const cfg = (over: Partial<VtepConfig> = {}): VtepConfig => mergeConfig({ local: '198.18.0.1', peers: [{ address: '198.18.0.2' }], address: '198.19.0.1/16' }, over);
const facts = (over: Partial<HostFacts> = {}): HostFacts => ({ underlay: { dev: 'eth0', mtu: 1500 }, nft: true, netns: { inode: 4026532000, isInit: false }, ...over });
const BR_MAC = Uint8Array.of(2, 0, 0, 0, 0, 9);

function refusal(c: VtepConfig, f: HostFacts): ConfigError {
  try {
    planVtep(c, f);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('planned without refusal');
}

describe('planVtep', () => {
  it('plans the default VTEP: MTU from the underlay, offload, queues and sockets per worker', () => {
    const p = planVtep(cfg({ workers: 2 }), facts());
    expect(p.mtu).toBe(1450);
    expect(p.offload).toBe(true);
    expect(p.tap).toMatchObject({ name: 'vxtap0', queues: 2, multiQueue: true, vnetHdr: true, txQueueLen: 10000, address: '198.19.0.1/16' });
    expect(p.tap.offloadFlags).not.toBe(0);
    expect(p.workers).toBe(2);
    expect(p.sockets.rx).toMatchObject({ address: '198.18.0.1', port: 4789, gro: true, field: 'port' });
    expect(p.sockets.tx.map((s) => s.port)).toEqual(Array.from({ length: 64 }, (_, i) => 49152 + i));
    expect(p.sockets.tx.every((s) => s.pmtu === 'dont' && s.field === 'srcPortMin')).toBe(true);
    expect(p.sockets.txNoDf).toEqual([]);
    expect(p.uplink).toBeUndefined();
    expect(p.staleSteering).toBe('vxtap_vxtap0');
    expect(p.notes).toEqual([]);
    expect(p.worker).toMatchObject({ vni: 1, offload: true, mtu: 1450, maxUnfragmentedPayload: 1472, uplinkRx: false });
    expect(p.worker.uplink).toBeUndefined();
  });

  it('pins worker n to CPU n mod CPUs only with cpuPlacement local', () => {
    expect(planVtep(cfg({ workers: 2 }), facts({ cpus: 2 })).pinCpus).toBeUndefined();
    expect(planVtep(cfg({ workers: 2, cpuPlacement: 'local' }), facts({ cpus: 2 })).pinCpus).toEqual([0, 1]);
    expect(planVtep(cfg({ workers: 3, cpuPlacement: 'local' }), facts({ cpus: 2 })).pinCpus).toEqual([0, 1, 0]);
    expect(planVtep(cfg({ workers: 1, cpuPlacement: 'local' }), facts()).pinCpus).toEqual([0]);
  });

  it('keys the default control socket by network namespace; an explicit one wins', () => {
    expect(planVtep(cfg(), facts()).sock).toBe('/run/vxtap/netns-4026532000/vxtap0.sock');
    expect(planVtep(cfg(), facts({ netns: { inode: 4026531840, isInit: true } })).sock).toBe('/run/vxtap/vxtap0.sock');
    expect(planVtep(cfg({ statsSocket: '/tmp/x.sock' }), facts()).sock).toBe('/tmp/x.sock');
  });

  it('takes IPv6 overhead, DF inherit sockets, no offload when the MTU does not fit', () => {
    const v6 = planVtep(cfg({ local: '2001:2::1', peers: [{ address: '2001:2::2' }], address: undefined }), facts());
    expect(v6.mtu).toBe(1430);
    expect(v6.worker.maxUnfragmentedPayload).toBe(1452);
    const inherit = planVtep(cfg({ df: 'inherit', srcPortMin: 50000, srcPortMax: 50001 }), facts());
    expect(inherit.sockets.tx.map((s) => s.pmtu)).toEqual(['do', 'do']);
    expect(inherit.sockets.txNoDf.map((s) => [s.port, s.pmtu])).toEqual([
      [50000, 'dont'],
      [50001, 'dont'],
    ]);
    const big = planVtep(cfg({ mtu: 1480 }), facts());
    expect(big.offload).toBe(false);
    expect(big.tap.vnetHdr).toBe(false);
    expect(big.tap.offloadFlags).toBe(0);
    expect(big.notes[0]).toMatch(/offload off/);
  });

  it('refuses what the host makes impossible, naming the field', () => {
    expect(refusal(cfg(), facts({ underlay: undefined })).field).toBe('local');
    expect(refusal(cfg(), facts({ underlay: { dev: 'eth0', mtu: 100 } })).field).toBe('mtu');
    const up = cfg({ uplinkBridge: 'br0' });
    expect(refusal(up, facts({ underlay: { dev: 'br0', mtu: 1500 } })).message).toMatch(/no interface 'br0'/);
    expect(refusal(up, facts({ underlay: { dev: 'br0', mtu: 1500 }, uplinkKind: 'veth' })).message).toMatch(/veth device, not a Linux bridge/);
    expect(refusal(up, facts({ uplinkKind: 'bridge', uplinkMac: BR_MAC })).message).toMatch(/is on eth0, not on bridge br0/);
    expect(refusal(up, facts({ underlay: { dev: 'br0', mtu: 1500 }, uplinkKind: 'bridge' })).field).toBe('uplinkBridge');
  });

  it('plans the uplink with owned steering when nft exists, without it otherwise', () => {
    const f = facts({ underlay: { dev: 'br0', mtu: 1500 }, uplinkKind: 'bridge', uplinkMac: BR_MAC });
    const p = planVtep(cfg({ uplinkBridge: 'br0', workers: 2 }), f);
    expect(p.uplink).toEqual({ bridge: 'br0', port: 'vxtap0u', queues: 2, gsoMaxSize: 65000, mtu: 1500, steer: { table: 'vxtap_vxtap0', local: '198.18.0.1', port: 4789 } });
    expect(p.worker.uplinkRx).toBe(true);
    expect(p.worker.uplink).toMatchObject({ srcMac: BR_MAC, srcIp: Uint8Array.of(198, 18, 0, 1), srcPortMin: 49152, maxOuterIp: 1500, dfMode: 0 });
    const noNft = planVtep(cfg({ uplinkBridge: 'br0' }), { ...f, nft: false });
    expect(noNft.uplink?.steer).toBeUndefined();
    expect(noNft.staleSteering).toBeUndefined();
    expect(noNft.worker.uplinkRx).toBe(false);
    expect(noNft.notes.join()).toMatch(/no nft command/);
    // a 15-character name leaves room for the uplink port's suffix
    expect(planVtep(cfg({ uplinkBridge: 'br0', name: 'abcdefghijklmno' }), f).uplink?.port).toBe('abcdefghijklmnu');
  });

  it('keeps the uplink off (and says so) without offload', () => {
    const f = facts({ underlay: { dev: 'br0', mtu: 1500 }, uplinkKind: 'bridge', uplinkMac: BR_MAC });
    const p = planVtep(cfg({ uplinkBridge: 'br0', mtu: 1480 }), f);
    expect(p.uplink).toBeUndefined();
    expect(p.notes.join('\n')).toMatch(/uplink off/);
  });

  it('names the steering table as the host helper does, and steers only big unfragmented VXLAN for us', () => {
    for (const n of ['vxtap0', 'a.b-c', 'x%d']) expect(steeringTableName(n)).toBe(steeringTable(n));
    const cmds = steeringCommands('vxtap_v', 'br0', '198.18.0.1', 4789, 'vu');
    expect(cmds[0]).toMatch(/^add chain netdev vxtap_v rx \{ type filter hook ingress device "br0" priority -100; \}$/);
    expect(cmds[1]).toMatch(/ip daddr 198\.18\.0\.1 udp dport 4789 ip frag-off & 0x3fff == 0 meta length > \d+ fwd to "vu"$/);
  });
});

describe('derivedMac', () => {
  it('is the MAC of the plan unless --mac is given', () => {
    expect(formatMac(planVtep(cfg(), facts()).mac)).toBe(formatMac(derivedMac('vxtap0', '198.18.0.1', 1)));
    expect(planVtep(cfg(), facts()).macFrom).toBe('derived');
    const p = planVtep(cfg({ mac: '02:aa:bb:cc:dd:ee' }), facts());
    expect(formatMac(p.mac)).toBe('02:aa:bb:cc:dd:ee');
    expect(p.macFrom).toBe('config');
  });

  it('is stable, locally administered unicast, and differs when name, address or VNI differ', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9]{1,15}$/), fc.ipV4(), fc.integer({ min: 0, max: 0xffffff }), (name, local, vni) => {
        const m = derivedMac(name, local, vni);
        expect(formatMac(derivedMac(name, local, vni))).toBe(formatMac(m));
        expect(m[0] & 0x01).toBe(0); // unicast
        expect(m[0] & 0x02).toBe(2); // locally administered
        expect(formatMac(derivedMac(`${name}x`, local, vni))).not.toBe(formatMac(m));
        expect(formatMac(derivedMac(name, local, vni ^ 1))).not.toBe(formatMac(m));
      }),
      { numRuns: 200 },
    );
    // the same address written two ways is one address
    expect(formatMac(derivedMac('v', '2001:2::1', 1))).toBe(formatMac(derivedMac('v', '2001:0002:0:0::1', 1)));
  });
});

describe('UndoList', () => {
  it('undoes newest first, once, and keeps going past a failing step', async () => {
    const done: string[] = [];
    const u = new UndoList();
    u.push('a', () => void done.push('a'));
    u.push('b', () => {
      throw new Error('boom');
    });
    u.push('c', async () => void done.push('c'));
    expect(u.pending).toEqual(['a', 'b', 'c']);
    expect(await u.run()).toEqual(['b: boom']);
    expect(done).toEqual(['c', 'a']);
    expect(await u.run()).toEqual([]);
    expect(done).toEqual(['c', 'a']);
  });
});

describe('workerRestartDelay', () => {
  it('restarts at once, then backs off 100 ms, 200 ms, ... to 10 s while failures come fast, and forgets after a stable run', () => {
    let row = 0;
    const delays: number[] = [];
    for (let i = 0; i < 12; i++) {
      const d = workerRestartDelay(50, row);
      row = d.failuresInRow;
      delays.push(d.delayMs);
    }
    expect(delays).toEqual([0, 100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000, 10_000]);
    expect(workerRestartDelay(10_000, row)).toEqual({ delayMs: 0, failuresInRow: 1 });
  });
});
