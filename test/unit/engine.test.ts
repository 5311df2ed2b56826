import { describe, expect, it } from 'vitest';
import { Engine, newFrameBatch, newTxBatch, type PeerInfo, type WorkerEvent } from '../../src/dataplane/engine.js';
import { Fdb } from '../../src/dataplane/fdb.js';
import { C, COUNTERS } from '../../src/dataplane/stats.js';
import { addrRecord } from '../../src/wire/addr.js';
import { parseMac } from '../../src/wire/mac.js';
import { VXLAN_HLEN, writeVxlanHeader } from '../../src/wire/vxlan.js';

const OWN = '02:00:00:00:00:aa';
const A = '198.18.0.2';
const B = '198.18.0.3';

function setup(opts: { learning?: boolean; acceptUnknown?: boolean; txCap?: number } = {}) {
  const fdb = new Fdb(64);
  const counters = new Float64Array(COUNTERS.length);
  const events: WorkerEvent[] = [];
  const flushed: number[] = [];
  const engine = new Engine({
    vni: 42,
    fdb,
    counters,
    txFds: Int32Array.from([10, 11, 12, 13]),
    learning: opts.learning ?? true,
    acceptUnknownPeers: opts.acceptUnknown ?? false,
    ownMac: parseMac(OWN),
    maxUnfragmentedPayload: 1472,
    rxSlotLen: 2048,
    post: (ev) => events.push(ev),
    flush: (tx) => {
      flushed.push(tx.count);
      tx.count = 0;
    },
    now: () => 1000,
  });
  const peers: PeerInfo[] = [
    { index: 0, record: addrRecord(A, 4789), flood: true },
    { index: 1, record: addrRecord(B, 4789), flood: true },
  ];
  engine.setPeers(peers);
  return { engine, fdb, counters, events, flushed, tx: newTxBatch(opts.txCap ?? 16), out: newFrameBatch(16) };
}

function frame(dst: string, src: string, len = 60): Uint8Array {
  const f = new Uint8Array(len);
  f.set(parseMac(dst), 0);
  f.set(parseMac(src), 6);
  f[12] = 0x08;
  return f;
}

/** Lay frames into one slab with VXLAN headroom, as the worker does. */
function slab(frames: Uint8Array[], stride = 256) {
  const bufs = new Uint8Array(stride * frames.length);
  const offsets = new Uint32Array(frames.length);
  const sizes = new Uint32Array(frames.length);
  frames.forEach((f, i) => {
    offsets[i] = i * stride + VXLAN_HLEN;
    sizes[i] = f.length;
    bufs.set(f, offsets[i]);
  });
  return { bufs, offsets, sizes };
}

describe('engine: encapsulation', () => {
  it('floods broadcast to every flood peer and writes the header in place', () => {
    const { engine, tx, counters } = setup();
    const s = slab([frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:01')]);
    engine.encap(s.bufs, s.offsets, s.sizes, 1, tx);
    expect(tx.count).toBe(2);
    expect(tx.offsets[0]).toBe(s.offsets[0] - VXLAN_HLEN);
    expect(tx.offsets[1]).toBe(tx.offsets[0]); // replication without a copy
    expect(tx.sizes[0]).toBe(60 + VXLAN_HLEN);
    expect(Array.from(s.bufs.subarray(0, 8))).toEqual([0x08, 0, 0, 0, 0, 0, 42, 0]);
    expect(tx.addrs[4 + 3]).toBe(2);
    expect(tx.addrs[20 + 4 + 3]).toBe(3);
    expect(counters[C.tx_flood_packets]).toBe(2);
  });

  it('unicasts a known MAC to its peer only, and keeps one source socket per flow', () => {
    const { engine, tx, fdb } = setup();
    const dst = parseMac('02:00:00:00:00:0b');
    fdb.set((dst[0] << 8) | dst[1], (dst[2] << 24) | (dst[3] << 16) | (dst[4] << 8) | dst[5], 1, true);
    const s = slab([frame('02:00:00:00:00:0b', '02:00:00:00:00:01'), frame('02:00:00:00:00:0b', '02:00:00:00:00:01')]);
    engine.encap(s.bufs, s.offsets, s.sizes, 2, tx);
    expect(tx.count).toBe(2);
    expect(tx.addrs[4 + 3]).toBe(3);
    expect(tx.fds[0]).toBe(tx.fds[1]);
  });

  it('flushes a full tx batch mid-way and counts frames with nowhere to go', () => {
    const { engine, tx, flushed } = setup({ txCap: 3 });
    const frames = [1, 2, 3].map(() => frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:01'));
    const s = slab(frames);
    engine.encap(s.bufs, s.offsets, s.sizes, 3, tx);
    expect(flushed).toEqual([3]);
    expect(tx.count).toBe(3);
    const lonely = setup();
    lonely.engine.setPeers([]);
    lonely.engine.encap(s.bufs, s.offsets, s.sizes, 1, lonely.tx);
    expect(lonely.counters[C.drop_no_peer]).toBe(1);
  });

  it('accounts send results by errno', () => {
    const { engine, tx, counters } = setup();
    tx.count = 3;
    tx.sizes.set([100, 100, 100]);
    tx.errs.set([0, 90, 0]);
    engine.accountTx(tx, 2); // third not taken (EAGAIN)
    expect(counters[C.tx_packets]).toBe(1);
    expect(counters[C.drop_oversize]).toBe(1);
    expect(counters[C.drop_tx_error]).toBe(1);
    expect(tx.count).toBe(0);
  });
});

describe('engine: decapsulation', () => {
  function datagrams(list: { hdr?: number[]; vni?: number; inner?: Uint8Array; from: string; len?: number }[]) {
    const stride = 256;
    const bufs = new Uint8Array(stride * list.length);
    const offsets = new Uint32Array(list.length);
    const sizes = new Uint32Array(list.length);
    const addrs = new Uint8Array(20 * list.length);
    list.forEach((d, i) => {
      offsets[i] = i * stride;
      if (d.hdr) bufs.set(d.hdr, offsets[i]);
      else writeVxlanHeader(bufs, offsets[i], d.vni ?? 42);
      const inner = d.inner ?? frame('02:00:00:00:00:aa', '02:00:00:00:00:0c');
      bufs.set(inner, offsets[i] + 8);
      sizes[i] = d.len ?? 8 + inner.length;
      addrs.set(addrRecord(d.from, 40000), i * 20);
    });
    return { bufs, offsets, sizes, addrs };
  }

  it('delivers valid frames in place and drops bad ones by reason', () => {
    const { engine, out, counters, events } = setup();
    const d = datagrams([
      { from: A },
      { from: A, vni: 7 },
      { from: A, hdr: [0x0c, 0, 0, 0, 0, 0, 42, 0] },
      { from: A, len: 12 },
      { from: '198.18.0.99' },
      { from: B, inner: frame('02:00:00:00:00:01', OWN) },
      { from: A, len: 4000 },
    ]);
    engine.decap(d.bufs, d.offsets, d.sizes, 7, d.addrs, out);
    expect(out.count).toBe(1);
    expect(out.offsets[0]).toBe(8);
    expect(out.sizes[0]).toBe(60);
    expect(counters[C.drop_wrong_vni]).toBe(1);
    expect(counters[C.drop_bad_flags]).toBe(1);
    expect(counters[C.drop_short]).toBe(1);
    expect(counters[C.drop_unknown_peer]).toBe(1);
    expect(counters[C.drop_loop]).toBe(1);
    expect(counters[C.drop_truncated]).toBe(1);
    expect(events).toEqual([{ type: 'learn', hi: 0x0200, lo: 0x0c, peer: 0 }]);
  });

  it('rate-limits learn events and touches known entries', () => {
    const { engine, out, events, fdb } = setup();
    const d = datagrams([{ from: A }, { from: A }]);
    engine.decap(d.bufs, d.offsets, d.sizes, 2, d.addrs, out);
    expect(events.length).toBe(1);
    fdb.set(0x0200, 0x0c, 0, false, 1);
    out.count = 0;
    engine.decap(d.bufs, d.offsets, d.sizes, 1, d.addrs, out);
    expect(fdb.entries()[0].ageSeconds).toBe(Math.max(0, Math.floor(performance.timeOrigin / 1000 + performance.now() / 1000) - 1000));
    expect(events.length).toBe(1);
  });

  it('accepts unknown peers when asked, reporting them once', () => {
    const { engine, out, events } = setup({ acceptUnknown: true });
    const d = datagrams([{ from: '198.18.0.77' }, { from: '198.18.0.77' }]);
    engine.decap(d.bufs, d.offsets, d.sizes, 2, d.addrs, out);
    expect(out.count).toBe(2);
    expect(events.filter((e) => e.type === 'unknown-peer').length).toBe(1);
  });

  it('never throws on random garbage (property-like sweep)', () => {
    const { engine, out } = setup();
    for (let n = 0; n < 2000; n++) {
      const len = Math.floor(Math.random() * 200);
      const bufs = new Uint8Array(256);
      for (let i = 0; i < len; i++) bufs[i] = Math.floor(Math.random() * 256);
      if (n % 2) writeVxlanHeader(bufs, 0, 42);
      const addrs = addrRecord(n % 3 ? A : '198.18.0.50', 1);
      out.count = 0;
      engine.decap(bufs, Uint32Array.of(0), Uint32Array.of(len), 1, addrs, out);
      expect(out.count).toBeLessThanOrEqual(1);
    }
  });
});

describe('engine: truncated TAP reads', () => {
  it('drops and counts a frame reported larger than its slot', () => {
    const fdb = new Fdb(16);
    const counters = new Float64Array(COUNTERS.length);
    const engine = new Engine({
      vni: 1, fdb, counters, txFds: Int32Array.of(3), learning: false, acceptUnknownPeers: false,
      ownMac: parseMac(OWN), maxUnfragmentedPayload: 1472, rxSlotLen: 2048, tapSlotLen: 100,
      post: () => undefined, flush: () => undefined, now: () => 0,
    });
    engine.setPeers([{ index: 0, record: addrRecord(A, 4789), flood: true }]);
    const s = slab([frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:01', 60)]);
    s.sizes[0] = 101; // readBatch reports slotLen + 1 for a cut frame
    const tx = newTxBatch(4);
    engine.encap(s.bufs, s.offsets, s.sizes, 1, tx);
    expect(tx.count).toBe(0);
    expect(counters[C.drop_truncated]).toBe(1);
  });
});
