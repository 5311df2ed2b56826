/**
 * The lease watcher over the fake registry and a simulated clock: events,
 * a broken stream, a watch cancelled by compaction after an outage (issue 8
 * item 5: lease sync must not stop), periodic resync catching what a watch
 * silently missed, and stale events that must not undo newer state.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/control/flannel/clock-fake.js';
import { FakeLeaseRegistry } from '../../src/control/flannel/registry-fake.js';
import { EtcdHealth } from '../../src/control/flannel/etcd-health.js';
import { LeaseWatcher } from '../../src/control/flannel/lease-watcher.js';

const CONFIG = { Network: '198.19.0.0/16', Backend: { Type: 'vxlan' } };
const v = (i: number) => ({ PublicIP: `198.18.0.${i}`, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: `02:00:00:00:00:${String(i).padStart(2, '0')}` } });

function setup(resyncIntervalMs = 0) {
  const clock = new FakeClock();
  const reg = new FakeLeaseRegistry(clock, CONFIG);
  const logs: string[] = [];
  const health = new EtcdHealth((m) => logs.push(m));
  let changes = 0;
  const deleted: string[] = [];
  const w = new LeaseWatcher({ registry: reg, clock, health, log: (m) => logs.push(m), resyncIntervalMs, onChange: () => changes++, onDelete: (k) => deleted.push(k) });
  return { clock, reg, logs, health, w, deleted, changes: () => changes };
}
const keys = (w: LeaseWatcher) => [...w.records.keys()].sort();

describe('lease watcher', () => {
  it('lists, then follows puts and deletes', async () => {
    const { reg, w, deleted, changes } = setup();
    reg.write('198.19.2.0-24', v(2));
    await w.start();
    expect(keys(w)).toEqual(['198.19.2.0-24']);
    reg.write('198.19.3.0-24', v(3));
    reg.remove('198.19.2.0-24');
    expect(keys(w)).toEqual(['198.19.3.0-24']);
    expect(deleted).toEqual(['198.19.2.0-24']);
    expect(changes()).toBe(3);
    expect(w.stats).toMatchObject({ state: 'watching', resyncs: 1, restarts: 0 });
    await w.stop();
  });

  it('a broken stream: state disconnected, then events resume and a resync catches up', async () => {
    const { clock, reg, w, health } = setup();
    await w.start();
    reg.disconnectWatches();
    expect(w.stats.state).toBe('disconnected');
    expect(health.state).toBe('etcd-unreachable');
    reg.write('198.19.4.0-24', v(4));
    expect(keys(w)).toEqual([]);
    reg.reconnectWatches();
    await clock.advance(10);
    expect(keys(w)).toEqual(['198.19.4.0-24']);
    expect(w.stats).toMatchObject({ state: 'watching', resyncs: 2, restarts: 0 });
    expect(health.state).toBe('ok');
    await w.stop();
  });

  it('a watch cancelled by compaction after an outage: lists again and re-watches from the new revision', async () => {
    const { clock, reg, w, logs } = setup();
    reg.write('198.19.2.0-24', v(2));
    await w.start();
    reg.disconnectWatches();
    reg.unreachable = true;
    // During the outage: a host joins, one leaves, history is compacted.
    reg.write('198.19.5.0-24', v(5));
    reg.remove('198.19.2.0-24');
    reg.compact();
    reg.reconnectWatches(); // etcd cancels the watch: its revision is gone
    expect(logs.some((l) => /lease watch cancelled by etcd .*compacted/.test(l))).toBe(true);
    expect(w.stats.state).toBe('restarting');
    await clock.advance(3000); // still unreachable: relisting backs off
    expect(keys(w)).toEqual(['198.19.2.0-24']);
    reg.unreachable = false;
    await clock.advance(6000);
    expect(keys(w)).toEqual(['198.19.5.0-24']);
    expect(w.stats).toMatchObject({ state: 'watching', restarts: 1 });
    expect(reg.liveWatches).toBe(1);
    // And the new watch works.
    reg.write('198.19.6.0-24', v(6));
    expect(keys(w)).toEqual(['198.19.5.0-24', '198.19.6.0-24']);
    expect(w.stats.lastEventAtMs).toBe(clock.now());
    await w.stop();
    expect(reg.liveWatches).toBe(0);
  });

  it('periodic resync picks up a change the watch silently missed, and re-watches', async () => {
    const { clock, reg, w, logs } = setup(60_000);
    await w.start();
    reg.write('198.19.7.0-24', v(7), undefined, { lostEvent: true });
    expect(keys(w)).toEqual([]);
    await clock.advance(60_000);
    expect(keys(w)).toEqual(['198.19.7.0-24']);
    expect(w.stats).toMatchObject({ missedByWatch: 1, restarts: 1, state: 'watching' });
    expect(logs.some((l) => /periodic resync found 1 change/.test(l))).toBe(true);
    expect(reg.liveWatches).toBe(1);
    // Nothing missed: resync again, no restart.
    await clock.advance(60_000);
    expect(w.stats).toMatchObject({ resyncs: 4, restarts: 1 });
    expect(w.stats.lastResyncAtMs).toBe(clock.now());
    await w.stop();
    expect(clock.pending).toBe(0);
  });

  it('a resync older than an event never undoes it', async () => {
    const { reg, w } = setup();
    await w.start();
    reg.write('198.19.8.0-24', v(8));
    // A listing taken before the put (lower revision) arrives late.
    const stale = { leases: [], malformed: [], revision: String(reg.revision - 1n) };
    const orig = reg.listLeases.bind(reg);
    reg.listLeases = async () => stale;
    await w.resyncNow();
    reg.listLeases = orig;
    expect(keys(w)).toEqual(['198.19.8.0-24']);
    await w.stop();
  });

  it('start() gives up at the deadline when etcd never answers', async () => {
    const { clock, reg, w } = setup();
    reg.unreachable = true;
    const p = w.start(clock.now() + 5000).catch((e) => e);
    await clock.advance(10_000);
    expect(String(await p)).toMatch(/list leases: etcd unreachable/);
  });
});
