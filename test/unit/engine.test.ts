import { describe, expect, it } from 'vitest';
import { Accounting } from '../../src/dataplane/accounting.js';
import { newBatch } from '../../src/dataplane/batch.js';
import { Engine, type PeerInfo, type WorkerEvent } from '../../src/dataplane/engine.js';
import { Fdb, MAX_PEERS } from '../../src/dataplane/fdb.js';
import { C, COUNTERS, P, PEER_STRIDE } from '../../src/dataplane/stats.js';
import { VNET_HDR_LEN } from '../../src/native/index.js';
import { addrRecord } from '../../src/wire/addr.js';
import { parseMac } from '../../src/wire/mac.js';
import { VXLAN_HLEN, writeVxlanHeader } from '../../src/wire/vxlan.js';

const OWN = '02:00:00:00:00:aa';
const A = '198.18.0.2';
const B = '198.18.0.3';

function setup(opts: { learning?: boolean; acceptUnknown?: boolean; txCap?: number; fdb?: Fdb; tapMtu?: number } = {}) {
  const fdb = opts.fdb ?? new Fdb(64);
  const counters = new Float64Array(COUNTERS.length);
  const peerCounters = new Float64Array(MAX_PEERS * PEER_STRIDE);
  const events: WorkerEvent[] = [];
  const flushed: number[] = [];
  const engine = new Engine({
    vni: 42,
    fdb,
    counters,
    peerCounters,
    tapMtu: opts.tapMtu,
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
  const acct = new Accounting(counters, peerCounters);
  return { engine, acct, fdb, counters, peerCounters, events, flushed, tx: newBatch(opts.txCap ?? 16), out: newBatch(16) };
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
    expect(tx.socks[0]).toBe(tx.socks[1]);
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
    const { acct, tx, counters } = setup();
    tx.count = 3;
    tx.sizes.set([100, 100, 100]);
    tx.errs.set([0, 90, 0]);
    acct.sent(tx, 2); // third not taken (EAGAIN)
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
      vni: 1,
      fdb,
      counters,
      txFds: Int32Array.of(3),
      learning: false,
      acceptUnknownPeers: false,
      ownMac: parseMac(OWN),
      maxUnfragmentedPayload: 1472,
      rxSlotLen: 2048,
      tapSlotLen: 100,
      post: () => undefined,
      flush: () => undefined,
      now: () => 0,
    });
    engine.setPeers([{ index: 0, record: addrRecord(A, 4789), flood: true }]);
    const s = slab([frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:01', 60)]);
    s.sizes[0] = 101; // readBatch reports slotLen + 1 for a cut frame
    const tx = newBatch(4);
    engine.encap(s.bufs, s.offsets, s.sizes, 1, tx);
    expect(tx.count).toBe(0);
    expect(counters[C.drop_truncated]).toBe(1);
  });
});

describe('engine: hostile peers', () => {
  /** `n` datagrams from `from`, each with a random unicast source MAC. */
  function randomSources(n: number, from: string) {
    const stride = 128;
    const bufs = new Uint8Array(stride * n);
    const offsets = new Uint32Array(n);
    const sizes = new Uint32Array(n);
    const addrs = new Uint8Array(20 * n);
    const rec = addrRecord(from, 4789);
    for (let i = 0; i < n; i++) {
      const o = (offsets[i] = i * stride);
      writeVxlanHeader(bufs, o, 42);
      bufs.set(parseMac('02:00:00:00:00:aa'), o + 8);
      for (let b = 0; b < 6; b++) bufs[o + 14 + b] = Math.floor(Math.random() * 256);
      bufs[o + 14] &= 0xfe; // unicast
      bufs[o + 20] = 0x08;
      sizes[i] = 8 + 60;
      addrs.set(rec, i * 20);
    }
    return { bufs, offsets, sizes, addrs };
  }

  it('reports random source MACs within the learn budget, and none once the peer has its share', () => {
    const fdb = new Fdb({ staticCapacity: 4, learnedCapacity: 64, learnedPerPeer: 16 });
    const { engine, events, counters } = setup({ fdb });
    const out = newBatch(256);
    for (let round = 0; round < 40; round++) {
      const d = randomSources(256, A);
      out.count = 0;
      engine.decap(d.bufs, d.offsets, d.sizes, 256, d.addrs, out);
    }
    // 10240 new MACs in one second: at most the per-worker budget (500) became messages
    expect(events.length).toBeLessThanOrEqual(500);
    expect(counters[C.learn_suppressed]).toBeGreaterThanOrEqual(10240 - 500);
    // the main thread applies them: the peer reaches its share, the workers see the flag
    for (const ev of events) if (ev.type === 'learn') fdb.learn(ev.hi, ev.lo, ev.peer);
    expect(fdb.learned(0)).toBe(16);
    expect(fdb.learnFull(0)).toBe(true);
    const before = events.length;
    const d = randomSources(256, A);
    out.count = 0;
    engine.decap(d.bufs, d.offsets, d.sizes, 256, d.addrs, out);
    expect(events.length).toBe(before);
    expect(out.count).toBe(256); // still delivered: refusing to learn is not dropping
  });

  it('counts packets, bytes and drops per peer in both directions', () => {
    const { engine, acct, peerCounters: pc, tx, out } = setup();
    const s = slab([frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:01'), frame('ff:ff:ff:ff:ff:ff', '02:00:00:00:00:01')]);
    engine.encap(s.bufs, s.offsets, s.sizes, 2, tx);
    expect(tx.count).toBe(4); // two flood copies each
    tx.errs.set([0, 0, 0, 11]);
    acct.sent(tx, 3); // the fourth (to B) not taken
    expect(pc[0 * PEER_STRIDE + P.tx_packets]).toBe(2);
    expect(pc[0 * PEER_STRIDE + P.tx_bytes]).toBe(2 * (60 + VXLAN_HLEN));
    expect(pc[1 * PEER_STRIDE + P.tx_packets]).toBe(1);
    expect(pc[1 * PEER_STRIDE + P.tx_drops]).toBe(1);
    const d = randomSources(3, B);
    d.bufs[d.offsets[2] + 6] = 7; // wrong VNI
    engine.decap(d.bufs, d.offsets, d.sizes, 3, d.addrs, out);
    expect(out.count).toBe(2);
    expect(Array.from(out.peers.subarray(0, 2))).toEqual([1, 1]);
    out.errs.set([0, 5]);
    acct.written(out, 2);
    expect(pc[1 * PEER_STRIDE + P.rx_packets]).toBe(3);
    expect(pc[1 * PEER_STRIDE + P.rx_bytes]).toBe(3 * 68);
    expect(pc[1 * PEER_STRIDE + P.rx_drops]).toBe(2); // the wrong VNI and the refused TAP write
    expect(pc[0 * PEER_STRIDE + P.rx_packets]).toBe(0);
  });

  it('drops unknown sources once the peer table is closed', () => {
    const { engine, out, events, fdb, counters } = setup({ acceptUnknown: true });
    const d = randomSources(2, '198.18.0.77');
    engine.decap(d.bufs, d.offsets, d.sizes, 2, d.addrs, out);
    expect(out.count).toBe(2);
    fdb.setUnknownPeersClosed(true);
    out.count = 0;
    const e = randomSources(2, '198.18.0.78');
    engine.decap(e.bufs, e.offsets, e.sizes, 2, e.addrs, out);
    expect(out.count).toBe(0);
    expect(counters[C.drop_unknown_peer]).toBe(2);
    expect(events.filter((x) => x.type === 'unknown-peer').length).toBe(1);
  });

  it('hands an oversize frame over as GSO only when its checksum is settled', () => {
    const { engine } = setup({ tapMtu: 1450 });
    // a 4000-byte IPv4/TCP frame behind a 10-byte virtio header
    const len = 4000;
    const out = new Uint8Array(VNET_HDR_LEN + len);
    const e = VNET_HDR_LEN;
    out.set(parseMac('02:00:00:00:00:aa'), e);
    out.set(parseMac('02:00:00:00:00:0c'), e + 6);
    out[e + 12] = 0x08;
    out[e + 14] = 0x45;
    out[e + 16] = (len - 14) >> 8;
    out[e + 17] = (len - 14) & 0xff;
    out[e + 23] = 6;
    out[e + 14 + 20 + 12] = 0x50;
    out[e + 14 + 20 + 13] = 0x10;
    out[e + 14 + 20 + 16] = 0xab; // some checksum
    const run = (flags: number) => {
      const buf = out.slice();
      buf[0] = flags;
      const frames = newBatch(1);
      frames.offsets[0] = 0;
      frames.sizes[0] = buf.length;
      engine.afterRxOffload(buf, frames, 1, Uint32Array.of(0), Int32Array.of(0), 1, new Uint32Array(3));
      return buf;
    };
    const unverified = run(0); // rxOffload leaves flags 0 on a frame it could not verify
    expect(Array.from(unverified.subarray(0, VNET_HDR_LEN))).toEqual(Array(VNET_HDR_LEN).fill(0));
    expect(unverified[e + 14 + 20 + 16]).toBe(0xab); // the checksum stays, for the kernel to check
    const partial = run(1); // NEEDS_CSUM: the sender left it partial
    expect(partial[0]).toBe(1);
    expect(partial[1]).toBe(1); // VIRTIO_NET_HDR_GSO_TCPV4
  });
});

describe('engine: uplink accounting', () => {
  it('counts uplink frames per peer as the wire packets the kernel makes of them', () => {
    const { acct, counters, peerCounters: pc } = setup();
    // two tunnel frames (24-byte virtio header: hdr_len 100, gso_size 1000), the second refused
    const bufs = new Uint8Array(2 * 8192);
    const offsets = Uint32Array.of(0, 8192);
    const sizes = Uint32Array.of(24 + 100 + 4500, 24 + 100 + 900);
    for (const o of offsets) {
      bufs[o + 2] = 100;
      bufs[o + 4] = 1000 & 0xff;
      bufs[o + 5] = 1000 >> 8;
    }
    const run = newBatch(2, bufs);
    run.offsets.set(offsets);
    run.sizes.set(sizes);
    run.peers.set([1, 0]);
    run.errs.set([0, 5]);
    run.count = 2;
    acct.uplinkWritten(run, 2);
    expect(pc[1 * PEER_STRIDE + P.tx_packets]).toBe(5); // 4500 bytes in 1000-byte segments
    expect(pc[1 * PEER_STRIDE + P.tx_bytes]).toBe(4600);
    expect(pc[0 * PEER_STRIDE + P.tx_drops]).toBe(1);
    expect(counters[C.tx_uplink_frames]).toBe(1);
    expect(counters[C.drop_uplink_write]).toBe(1);
  });
});
