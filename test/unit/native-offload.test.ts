/**
 * Byte-level tests of the offload kernels (txOffload / rxOffload in
 * src/native/index.ts): TSO/USO super-frames are built in JS, segmented natively,
 * checked field by field against the JS reference checksum, and re-coalesced.
 * Pure bytes: no TAP, no root.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { native, RX_OFFLOAD, RX_TUNNEL, TX_OFFLOAD, TX_TUNNEL, VNET_HDR_LEN } from '../../src/native/index.js';
import { onesSum, pseudoSumV4, pseudoSumV6 } from '../../src/wire/checksum.js';

const addon = native();

const VNI = 0x123456;
const VXLAN = Uint8Array.from([0x08, 0, 0, 0, VNI >> 16, (VNI >> 8) & 0xff, VNI & 0xff, 0]);
const F_NEEDS_CSUM = 1;
const GSO_NONE = 0;
const GSO_TCPV4 = 1;
const GSO_UDP = 3;
const GSO_TCPV6 = 4;
const GSO_UDP_L4 = 5;
const FIN = 0x01;
const SYN = 0x02;
const PSH = 0x08;
const ACK = 0x10;
const CWR = 0x80;
const MAX_MSG = 65507;

// --- frame builders -----------------------------------------------------------

interface L4Spec {
  v6?: boolean;
  vlan?: number;
  /** TCP timestamps option (12 bytes: NOP NOP TS). */
  tsopt?: boolean;
  udp?: boolean;
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  win?: number;
  id?: number;
  /** Last byte of the source address (to make other flows). */
  srcHost?: number;
  payload: Uint8Array;
  /** 'full' = a correct checksum, 'partial' = the folded pseudo-header sum only. */
  csum?: 'full' | 'partial';
}

interface Built {
  frame: Uint8Array;
  l3: number;
  l4: number;
  hdrs: number;
}

/** An Ethernet + IPv4/IPv6 + TCP/UDP frame. */
function l4Frame(s: L4Spec): Built {
  const l2 = s.vlan !== undefined ? 18 : 14;
  const ipLen = s.v6 ? 40 : 20;
  const l4hdr = s.udp ? 8 : s.tsopt ? 32 : 20;
  const l3 = l2;
  const l4 = l3 + ipLen;
  const hdrs = l4 + l4hdr;
  const f = new Uint8Array(hdrs + s.payload.length);
  const dv = new DataView(f.buffer);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
  if (s.vlan !== undefined) {
    dv.setUint16(12, 0x8100);
    dv.setUint16(14, s.vlan);
  }
  dv.setUint16(l2 - 2, s.v6 ? 0x86dd : 0x0800);
  const proto = s.udp ? 17 : 6;
  const l4len = l4hdr + s.payload.length;
  if (s.v6) {
    dv.setUint32(l3, 0x60000000);
    dv.setUint16(l3 + 4, l4len);
    f[l3 + 6] = proto;
    f[l3 + 7] = 64;
    f.set([0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, s.srcHost ?? 1], l3 + 8);
    f.set([0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], l3 + 24);
  } else {
    f[l3] = 0x45;
    dv.setUint16(l3 + 2, ipLen + l4len);
    dv.setUint16(l3 + 4, s.id ?? 0x1234);
    dv.setUint16(l3 + 6, 0x4000);
    f[l3 + 8] = 64;
    f[l3 + 9] = proto;
    f.set([198, 19, 0, s.srcHost ?? 1, 198, 19, 0, 2], l3 + 12);
    dv.setUint16(l3 + 10, ~onesSum(f, l3, 20) & 0xffff);
  }
  dv.setUint16(l4, s.sport ?? 40000);
  dv.setUint16(l4 + 2, s.dport ?? 5201);
  if (s.udp) {
    dv.setUint16(l4 + 4, l4len);
  } else {
    dv.setUint32(l4 + 4, s.seq ?? 1000);
    dv.setUint32(l4 + 8, s.ack ?? 777);
    f[l4 + 12] = (l4hdr / 4) << 4;
    f[l4 + 13] = s.flags ?? ACK;
    dv.setUint16(l4 + 14, s.win ?? 512);
    if (s.tsopt) f.set([1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78], l4 + 20);
  }
  f.set(s.payload, hdrs);
  const field = l4 + (s.udp ? 6 : 16);
  const pseudo = s.v6 ? pseudoSumV6(f, l3, proto, l4len) : pseudoSumV4(f, l3, proto, l4len);
  if (s.csum === 'partial') {
    dv.setUint16(field, pseudo);
  } else {
    let c = ~onesSum(f, l4, l4len, pseudo) & 0xffff;
    if (s.udp && c === 0) c = 0xffff;
    dv.setUint16(field, c);
  }
  return { frame: f, l3, l4, hdrs };
}

interface VnetSpec {
  flags?: number;
  gsoType?: number;
  hdrLen?: number;
  gsoSize?: number;
  csumStart?: number;
  csumOffset?: number;
}

function vnet(h: VnetSpec): Uint8Array {
  const b = new Uint8Array(VNET_HDR_LEN);
  const dv = new DataView(b.buffer);
  b[0] = h.flags ?? 0;
  b[1] = h.gsoType ?? 0;
  dv.setUint16(2, h.hdrLen ?? 0, true);
  dv.setUint16(4, h.gsoSize ?? 0, true);
  dv.setUint16(6, h.csumStart ?? 0, true);
  dv.setUint16(8, h.csumOffset ?? 0, true);
  return b;
}

function readVnet(b: Uint8Array): Required<VnetSpec> {
  const dv = new DataView(b.buffer, b.byteOffset, VNET_HDR_LEN);
  return {
    flags: b[0],
    gsoType: b[1],
    hdrLen: dv.getUint16(2, true),
    gsoSize: dv.getUint16(4, true),
    csumStart: dv.getUint16(6, true),
    csumOffset: dv.getUint16(8, true),
  };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A TSO/USO super-frame as a vnet_hdr TAP read returns it. */
function superFrame(s: L4Spec & { mss: number }): { tap: Uint8Array; built: Built } {
  const built = l4Frame({ ...s, csum: 'partial' });
  const gsoType = s.udp ? GSO_UDP_L4 : s.v6 ? GSO_TCPV6 : GSO_TCPV4;
  const h = vnet({
    flags: F_NEEDS_CSUM,
    gsoType,
    hdrLen: built.hdrs,
    gsoSize: s.mss,
    csumStart: built.l4,
    csumOffset: s.udp ? 6 : 16,
  });
  return { tap: concat(h, built.frame), built };
}

function randomBytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

// --- kernel drivers -----------------------------------------------------------

interface TxMsg {
  buf: number;
  bytes: Uint8Array;
  gso: number;
  frame: number;
}

interface TxRun {
  n: number;
  msgs: TxMsg[];
  used: number;
  dropped: number;
  segments: number;
  offsets: number[];
}

/** Lay `frames` out in one slab (16 bytes apart) and run txOffload. */
function runTx(frames: Uint8Array[], opts: { maxMsg?: number; outLen?: number; msgCap?: number; outOffset?: number } = {}): TxRun {
  const offsets = new Uint32Array(frames.length);
  const sizes = new Uint32Array(frames.length);
  let total = 0;
  frames.forEach((f, i) => {
    offsets[i] = total;
    sizes[i] = f.length;
    total += f.length + 16;
  });
  const bufs = new Uint8Array(total + 1);
  frames.forEach((f, i) => bufs.set(f, offsets[i]));
  const outOffset = opts.outOffset ?? 0;
  const out = new Uint8Array(opts.outLen ?? outOffset + 4 * 1024 * 1024);
  const cap = opts.msgCap ?? 2048;
  const msgBuf = new Uint8Array(cap);
  const msgOffsets = new Uint32Array(cap);
  const msgSizes = new Uint32Array(cap);
  const msgGso = new Uint16Array(cap);
  const msgFrame = new Uint32Array(cap);
  const result = new Uint32Array(TX_OFFLOAD.LENGTH);
  const h = addon.txOffloadBind({ bufs, offsets, sizes, vxlan: VXLAN, maxMsgBytes: opts.maxMsg ?? MAX_MSG, out, outOffset, msgBuf, msgOffsets, msgSizes, msgGso, msgFrame, result });
  const n = addon.txOffload(h, frames.length);
  const msgs: TxMsg[] = [];
  for (let k = 0; k < n; k++) {
    const src = msgBuf[k] === 0 ? bufs : out;
    msgs.push({
      buf: msgBuf[k],
      bytes: src.slice(msgOffsets[k], msgOffsets[k] + msgSizes[k]),
      gso: msgGso[k],
      frame: msgFrame[k],
    });
  }
  return { n, msgs, used: result[TX_OFFLOAD.OUT_BYTES], dropped: result[TX_OFFLOAD.DROPPED], segments: result[TX_OFFLOAD.SEGMENTS], offsets: Array.from(msgOffsets.subarray(0, n)) };
}

/** Split a message into its UDP GSO segments (each a VXLAN datagram). */
function segmentsOf(m: TxMsg): Uint8Array[] {
  if (m.gso === 0) return [m.bytes];
  const segs: Uint8Array[] = [];
  for (let o = 0; o < m.bytes.length; o += m.gso) segs.push(m.bytes.subarray(o, Math.min(o + m.gso, m.bytes.length)));
  return segs;
}

interface Parsed {
  l3: number;
  l4: number;
  hdrs: number;
  v6: boolean;
  ipLen: number;
  id: number;
  seq: number;
  flags: number;
  payload: Uint8Array;
  ipCsumOk: boolean;
  l4CsumOk: boolean;
  udpLen: number;
  /** The L4 checksum field equals the pseudo-header sum (partial). */
  l4Partial: boolean;
}

/** Parse an inner Ethernet frame (no VXLAN header) with the JS reference checksum. */
function parseFrame(f: Uint8Array, udp = false): Parsed {
  const dv = new DataView(f.buffer, f.byteOffset, f.length);
  let l3 = 14;
  if (dv.getUint16(12) === 0x8100) l3 = 18;
  const v6 = dv.getUint16(l3 - 2) === 0x86dd;
  const l4 = l3 + (v6 ? 40 : (f[l3] & 15) * 4);
  const ipLen = v6 ? 40 + dv.getUint16(l3 + 4) : dv.getUint16(l3 + 2);
  const end = l3 + ipLen;
  const l4hdr = udp ? 8 : (f[l4 + 12] >> 4) * 4;
  const l4len = end - l4;
  const proto = udp ? 17 : 6;
  const pseudo = v6 ? pseudoSumV6(f, l3, proto, l4len) : pseudoSumV4(f, l3, proto, l4len);
  return {
    l3,
    l4,
    hdrs: l4 + l4hdr,
    v6,
    ipLen,
    id: v6 ? 0 : dv.getUint16(l3 + 4),
    seq: udp ? 0 : dv.getUint32(l4 + 4),
    flags: udp ? 0 : f[l4 + 13],
    payload: f.subarray(l4 + l4hdr, end),
    ipCsumOk: v6 || onesSum(f, l3, l4 - l3) === 0xffff,
    l4CsumOk: onesSum(f, l4, l4len, pseudo) === 0xffff,
    udpLen: udp ? dv.getUint16(l4 + 4) : 0,
    l4Partial: dv.getUint16(l4 + (udp ? 6 : 16)) === pseudo,
  };
}

interface RxRun {
  n: number;
  frames: Uint8Array[];
  learn: number[];
  drops: number[];
  used: number;
  segsIn: number;
  supers: number;
  noRoom: number;
}

/** Run rxOffload over datagrams (each with its UDP_GRO segment size). */
function runRx(dgrams: { bytes: Uint8Array; gso?: number; ok?: boolean }[], opts: { outLen?: number; frameCap?: number; vni?: number; outOffset?: number } = {}): RxRun {
  const count = dgrams.length;
  const offsets = new Uint32Array(count);
  const sizes = new Uint32Array(count);
  const gso = new Uint16Array(count);
  const ok = new Uint8Array(count);
  let total = 0;
  dgrams.forEach((d, i) => {
    offsets[i] = total;
    sizes[i] = d.bytes.length;
    gso[i] = d.gso ?? 0;
    ok[i] = d.ok === false ? 0 : 1;
    total += d.bytes.length + 3;
  });
  const bufs = new Uint8Array(total + 1);
  dgrams.forEach((d, i) => bufs.set(d.bytes, offsets[i]));
  const outOffset = opts.outOffset ?? 0;
  const out = new Uint8Array(opts.outLen ?? outOffset + 2 * total + 4096);
  const cap = opts.frameCap ?? 4096;
  const frameOffsets = new Uint32Array(cap);
  const frameSizes = new Uint32Array(cap);
  const learnSrc = new Uint32Array(cap);
  const result = new Uint32Array(RX_OFFLOAD.LENGTH);
  const h = addon.rxOffloadBind({ bufs, offsets, sizes, gso, ok, vni: opts.vni ?? VNI, out, outOffset, frameOffsets, frameSizes, learnSrc, result });
  const n = addon.rxOffload(h, count);
  const drops = [result[RX_OFFLOAD.DROP_SHORT], result[RX_OFFLOAD.DROP_BAD_FLAGS], result[RX_OFFLOAD.DROP_WRONG_VNI]];
  const frames: Uint8Array[] = [];
  for (let k = 0; k < n; k++) frames.push(out.slice(frameOffsets[k], frameOffsets[k] + frameSizes[k]));
  return {
    n,
    frames,
    learn: Array.from(learnSrc.subarray(0, n)),
    drops: Array.from(drops),
    used: result[RX_OFFLOAD.OUT_BYTES],
    segsIn: result[RX_OFFLOAD.SEGMENTS_IN],
    supers: result[RX_OFFLOAD.SUPER_FRAMES],
    noRoom: result[RX_OFFLOAD.NO_ROOM],
  };
}

/** Check every segment of a tx run against the super-frame it came from. */
function checkSegments(run: TxRun, built: Built, mss: number, opts: { udp?: boolean } = {}): Uint8Array[] {
  const orig = parseFrame(built.frame, opts.udp);
  const segs = run.msgs.flatMap(segmentsOf);
  const payloadLen = orig.payload.length;
  const nseg = Math.max(1, Math.ceil(payloadLen / mss));
  expect(segs.length).toBe(nseg);
  expect(run.segments).toBe(nseg);
  const got: Uint8Array[] = [];
  segs.forEach((s, k) => {
    expect(Array.from(s.subarray(0, 8))).toEqual(Array.from(VXLAN));
    const inner = s.subarray(8);
    const p = parseFrame(inner, opts.udp);
    const chunk = Math.min(mss, payloadLen - k * mss);
    expect(inner.length).toBe(orig.hdrs + chunk);
    expect(p.hdrs).toBe(orig.hdrs);
    // Headers in front of IP are copied unchanged.
    expect(Array.from(inner.subarray(0, p.l3))).toEqual(Array.from(built.frame.subarray(0, p.l3)));
    expect(p.ipLen).toBe(inner.length - p.l3);
    if (!p.v6) expect(p.id).toBe((orig.id + k) & 0xffff);
    expect(p.ipCsumOk).toBe(true);
    expect(p.l4CsumOk).toBe(true);
    expect(Array.from(p.payload)).toEqual(Array.from(orig.payload.subarray(k * mss, k * mss + chunk)));
    if (opts.udp) {
      expect(p.udpLen).toBe(8 + chunk);
    } else {
      expect(p.seq).toBe((orig.seq + k * mss) >>> 0);
      let want = orig.flags;
      if (k < nseg - 1) want &= ~(FIN | PSH);
      if (k > 0) want &= ~CWR;
      expect(p.flags).toBe(want);
      // Options copied as they were.
      expect(Array.from(inner.subarray(p.l4 + 20, p.hdrs))).toEqual(Array.from(built.frame.subarray(orig.l4 + 20, orig.hdrs)));
    }
    got.push(inner);
  });
  // Messages: <= 64 segments, <= maxMsg bytes, equal segment sizes except the last.
  for (const m of run.msgs) {
    const ss = segmentsOf(m);
    expect(ss.length).toBeLessThanOrEqual(64);
    expect(m.bytes.length).toBeLessThanOrEqual(MAX_MSG);
    if (ss.length === 1) expect(m.gso).toBe(0);
    else expect(m.gso).toBe(8 + orig.hdrs + mss);
  }
  return got;
}

// --- txOffload ------------------------------------------------------------------

describe('txOffload: TSO/USO segmentation', () => {
  it.each([
    ['IPv4', { v6: false }],
    ['IPv4 + timestamps', { v6: false, tsopt: true }],
    ['IPv6', { v6: true }],
    ['IPv6 + timestamps', { v6: true, tsopt: true }],
    ['IPv4 + 802.1Q', { v6: false, vlan: 42 }],
    ['IPv6 + 802.1Q + timestamps', { v6: true, vlan: 7, tsopt: true }],
  ])('segments a %s super-frame with PSH|FIN', (_name, spec) => {
    const mss = 1448;
    const payload = randomBytes(10 * mss + 333, 7);
    const { tap, built } = superFrame({ ...spec, payload, mss, flags: ACK | PSH | FIN, seq: 0xfffff000, id: 0xfffe });
    const run = runTx([tap]);
    expect(run.dropped).toBe(0);
    expect(run.n).toBe(1);
    expect(run.msgs[0].buf).toBe(1);
    expect(run.msgs[0].frame).toBe(0);
    checkSegments(run, built, mss);
    expect(run.used).toBe(run.msgs[0].bytes.length);
  });

  it('keeps CWR on the first segment only', () => {
    const { tap, built } = superFrame({ payload: randomBytes(3000), mss: 1000, flags: ACK | CWR | PSH });
    const run = runTx([tap]);
    const segs = checkSegments(run, built, 1000);
    expect(segs.map((s) => parseFrame(s).flags)).toEqual([ACK | CWR, ACK, ACK | PSH]);
  });

  it('splits a 64 KiB super-frame into two UDP GSO messages', () => {
    const mss = 1448;
    const payload = randomBytes(65535 - 14 - 20 - 32, 3);
    const { tap, built } = superFrame({ payload, mss, tsopt: true });
    const run = runTx([tap]);
    expect(run.n).toBe(2);
    checkSegments(run, built, mss);
    const segFull = 8 + 66 + mss;
    const per = Math.floor(MAX_MSG / segFull);
    expect(segmentsOf(run.msgs[0]).length).toBe(per);
    expect(run.msgs[0].bytes.length).toBe(per * segFull);
    // Messages are back to back in `out`.
    expect(run.used).toBe(run.msgs[0].bytes.length + run.msgs[1].bytes.length);
  });

  it('caps a message at 64 segments and at maxMsgBytes', () => {
    const { tap, built } = superFrame({ payload: randomBytes(100 * 100), mss: 100 });
    const run = runTx([tap]);
    expect(run.msgs.map((m) => segmentsOf(m).length)).toEqual([64, 36]);
    checkSegments(run, built, 100);
    const segFull = 8 + 54 + 100;
    const small = runTx([tap], { maxMsg: 3 * segFull + 10 });
    expect(small.msgs.map((m) => segmentsOf(m).length)).toEqual(Array(33).fill(3).concat([1]));
    expect(small.msgs.every((m) => m.bytes.length <= 3 * segFull + 10)).toBe(true);
  });

  it('segments USO (UDP_L4) super-frames with per-segment UDP length and checksum', () => {
    for (const v6 of [false, true]) {
      const { tap, built } = superFrame({ v6, udp: true, payload: randomBytes(5000, 9), mss: 1400 });
      const run = runTx([tap]);
      expect(run.dropped).toBe(0);
      checkSegments(run, built, 1400, { udp: true });
    }
  });

  it('emits a super-frame no bigger than one MSS as one segment with gso 0', () => {
    const { tap, built } = superFrame({ payload: randomBytes(500), mss: 1448, flags: ACK | PSH });
    const run = runTx([tap]);
    expect(run.n).toBe(1);
    expect(run.msgs[0].gso).toBe(0);
    checkSegments(run, built, 1448);
  });

  it('finishes a NEEDS_CSUM plain frame in place and wraps it without a copy', () => {
    const tcp = l4Frame({ payload: randomBytes(100), csum: 'partial', flags: ACK | PSH });
    const udp = l4Frame({ v6: true, udp: true, payload: randomBytes(77), csum: 'partial' });
    const plain = l4Frame({ payload: randomBytes(10) });
    const frames = [
      concat(vnet({ flags: F_NEEDS_CSUM, csumStart: tcp.l4, csumOffset: 16 }), tcp.frame),
      concat(vnet({ flags: F_NEEDS_CSUM, csumStart: udp.l4, csumOffset: 6 }), udp.frame),
      concat(vnet({}), plain.frame),
    ];
    const run = runTx(frames);
    expect(run.n).toBe(3);
    expect(run.dropped).toBe(0);
    expect(run.used).toBe(0);
    run.msgs.forEach((m, i) => {
      expect(m.buf).toBe(0);
      expect(m.gso).toBe(0);
      expect(m.frame).toBe(i);
      expect(Array.from(m.bytes.subarray(0, 8))).toEqual(Array.from(VXLAN));
      expect(m.bytes.length).toBe(frames[i].length - 2);
    });
    expect(parseFrame(run.msgs[0].bytes.subarray(8)).l4CsumOk).toBe(true);
    expect(parseFrame(run.msgs[1].bytes.subarray(8), true).l4CsumOk).toBe(true);
    expect(Array.from(run.msgs[2].bytes.subarray(8))).toEqual(Array.from(plain.frame));
  });

  it('drops malformed frames and unsupported gso types, and goes on', () => {
    const good = superFrame({ payload: randomBytes(3000), mss: 1000 });
    const bad: Uint8Array[] = [];
    // UFO (gso_type UDP) is not supported.
    const ufo = good.tap.slice();
    ufo[1] = GSO_UDP;
    bad.push(ufo);
    // gso_size 0.
    const zero = good.tap.slice();
    zero[4] = zero[5] = 0;
    bad.push(zero);
    // TCPV6 on an IPv4 frame.
    const mism = good.tap.slice();
    mism[1] = GSO_TCPV6;
    bad.push(mism);
    // TCP data offset beyond the packet.
    const doff = good.tap.slice();
    doff[VNET_HDR_LEN + 34 + 12] = 0xf0;
    const shortDoff = doff.slice(0, VNET_HDR_LEN + 34 + 40);
    new DataView(shortDoff.buffer).setUint16(VNET_HDR_LEN + 16, 60);
    bad.push(shortDoff);
    // IP total length beyond the frame.
    const tot = good.tap.slice(0, 200);
    bad.push(tot);
    // Truncated in the middle of the Ethernet header; an empty frame.
    bad.push(good.tap.slice(0, 15), new Uint8Array(0));
    // NEEDS_CSUM with csum_start beyond the frame.
    const plain = l4Frame({ payload: randomBytes(10) });
    bad.push(concat(vnet({ flags: F_NEEDS_CSUM, csumStart: 5000, csumOffset: 16 }), plain.frame));
    // A fragment.
    const frag = good.tap.slice();
    frag[VNET_HDR_LEN + 14 + 6] = 0x20;
    bad.push(frag);
    const run = runTx([...bad, good.tap]);
    expect(run.dropped).toBe(bad.length);
    expect(run.msgs.every((m) => m.frame === bad.length)).toBe(true);
    checkSegments(run, good.built, 1000);
  });

  it('drops a frame that does not fit in out or the message arrays', () => {
    const { tap } = superFrame({ payload: randomBytes(30000), mss: 1000 });
    const small = superFrame({ payload: randomBytes(100), mss: 1000 });
    const run = runTx([tap, small.tap], { outLen: 5000 });
    expect(run.dropped).toBe(1);
    expect(run.n).toBe(1);
    expect(run.msgs[0].frame).toBe(1);
    const run2 = runTx([tap, small.tap], { msgCap: 0 });
    expect(run2.dropped).toBe(2);
    expect(run2.n).toBe(0);
    // A segment larger than maxMsgBytes cannot be sent.
    const run3 = runTx([tap], { maxMsg: 1000 });
    expect(run3.dropped).toBe(1);
  });

  it('writes from outOffset on', () => {
    const { tap, built } = superFrame({ payload: randomBytes(4000), mss: 1448 });
    const run = runTx([tap], { outOffset: 1234 });
    checkSegments(run, built, 1448);
    expect(run.offsets[0]).toBe(1234);
    expect(run.used).toBe(3 * (8 + 54) + 4000);
  });
});

// --- rxOffload ------------------------------------------------------------------

/** VXLAN-wrap inner frames as single datagrams. */
function wrap(...frames: Uint8Array[]): { bytes: Uint8Array }[] {
  return frames.map((f) => ({ bytes: concat(VXLAN, f) }));
}

/** The segments of a flow: `n` segments of `mss` (last `last` bytes), consecutive seqs and ids. */
function flowSegments(n: number, mss: number, spec: Partial<L4Spec> = {}, last = mss): { frames: Uint8Array[]; payload: Uint8Array } {
  const payload = randomBytes((n - 1) * mss + last, 11);
  const frames: Uint8Array[] = [];
  let seq = spec.seq ?? 5000;
  for (let k = 0; k < n; k++) {
    const len = k === n - 1 ? last : mss;
    const flags = k === n - 1 ? (spec.flags ?? ACK) : ACK;
    frames.push(l4Frame({ ...spec, seq, flags, id: ((spec.id ?? 100) + k) & 0xffff, payload: payload.subarray(k * mss, k * mss + len) }).frame);
    seq = (seq + len) >>> 0;
  }
  return { frames, payload };
}

function expectPlain(frame: Uint8Array, inner: Uint8Array): void {
  expect(readVnet(frame)).toEqual(readVnet(vnet({})));
  expect(Array.from(frame.subarray(VNET_HDR_LEN))).toEqual(Array.from(inner));
}

/** Check a rebuilt super-frame: vnet_hdr, rewritten lengths, seeded checksum, payload. */
function expectSuper(frame: Uint8Array, payload: Uint8Array, mss: number, opts: { v6?: boolean; flags?: number } = {}): void {
  const h = readVnet(frame);
  const e = frame.subarray(VNET_HDR_LEN);
  const p = parseFrame(e);
  expect(h).toEqual({
    flags: F_NEEDS_CSUM,
    gsoType: opts.v6 ? GSO_TCPV6 : GSO_TCPV4,
    hdrLen: p.hdrs,
    gsoSize: mss,
    csumStart: p.l4,
    csumOffset: 16,
  });
  expect(e.length).toBe(p.hdrs + payload.length);
  expect(p.ipLen).toBe(e.length - p.l3);
  expect(p.ipCsumOk).toBe(true);
  expect(p.l4Partial).toBe(true);
  if (opts.flags !== undefined) expect(p.flags).toBe(opts.flags);
  expect(Buffer.from(p.payload).equals(Buffer.from(payload))).toBe(true);
}

describe('rxOffload: VXLAN checks and TCP re-coalescing', () => {
  it.each([
    ['IPv4', {}],
    ['IPv4 + timestamps', { tsopt: true }],
    ['IPv6', { v6: true }],
    ['IPv6 + timestamps + 802.1Q', { v6: true, tsopt: true, vlan: 9 }],
  ])('coalesces consecutive %s segments into one super-frame', (_n, spec: Partial<L4Spec>) => {
    const { frames, payload } = flowSegments(5, 1448, { ...spec, flags: ACK | PSH }, 700);
    const r = runRx(wrap(...frames));
    expect(r.n).toBe(1);
    expect(r.supers).toBe(1);
    expect(r.segsIn).toBe(5);
    expect(r.learn).toEqual([0]);
    expect(r.used).toBe(r.frames[0].length);
    expectSuper(r.frames[0], payload, 1448, { v6: spec.v6, flags: ACK | PSH });
  });

  it('splits UDP_GRO datagrams by gso and coalesces across datagrams', () => {
    const { frames, payload } = flowSegments(6, 1000);
    const d = frames.map((f) => concat(VXLAN, f));
    const r = runRx([
      { bytes: concat(d[0], d[1], d[2]), gso: d[0].length },
      { bytes: concat(d[3], d[4], d[5]), gso: d[0].length },
    ]);
    expect(r.n).toBe(1);
    expect(r.segsIn).toBe(6);
    expectSuper(r.frames[0], payload, 1000);
  });

  it('coalesces segments whose checksums are partial (kernel VXLAN with tx offload)', () => {
    const { frames, payload } = flowSegments(3, 1000);
    const partial = frames.map((f) => {
      const p = parseFrame(f);
      const g = f.slice();
      const dv = new DataView(g.buffer);
      dv.setUint16(p.l4 + 16, pseudoSumV4(g, p.l3, 6, g.length - p.l4));
      return g;
    });
    const r = runRx(wrap(...partial));
    expect(r.n).toBe(1);
    expectSuper(r.frames[0], payload, 1000);
  });

  it('accepts all-equal IPv4 ids but not a jump', () => {
    const { frames } = flowSegments(3, 500);
    const fixed = frames.map((f) => {
      const g = f.slice();
      const dv = new DataView(g.buffer);
      dv.setUint16(18, 9);
      dv.setUint16(24, 0);
      dv.setUint16(24, ~onesSum(g, 14, 20) & 0xffff);
      return g;
    });
    expect(runRx(wrap(...fixed)).supers).toBe(1);
    const jump = fixed.slice();
    const g = jump[2].slice();
    const dv = new DataView(g.buffer);
    dv.setUint16(18, 77);
    dv.setUint16(24, 0);
    dv.setUint16(24, ~onesSum(g, 14, 20) & 0xffff);
    jump[2] = g;
    const r = runRx(wrap(...jump));
    expect(r.n).toBe(2);
    expect(r.supers).toBe(1);
    expectPlain(r.frames[1], g);
  });

  it('passes interleaved flows through uncoalesced', () => {
    const a = flowSegments(2, 800, { srcHost: 1 }).frames;
    const b = flowSegments(2, 800, { srcHost: 3 }).frames;
    const inner = [a[0], b[0], a[1], b[1]];
    const r = runRx(wrap(...inner));
    expect(r.n).toBe(4);
    expect(r.supers).toBe(0);
    r.frames.forEach((f, i) => expectPlain(f, inner[i]));
    expect(r.learn).toEqual([0, 1, 2, 3]);
  });

  it('does not bridge a gap in seq, a changed ack/window/option, or a larger segment', () => {
    const { frames } = flowSegments(4, 800);
    const gap = [frames[0], frames[2]];
    runRx(wrap(...gap)).frames.forEach((f, i) => expectPlain(f, gap[i]));
    const base = { seq: 5000 + 800 };
    for (const change of [{ ack: 1 }, { win: 1 }, { tsopt: true }, { sport: 1 }]) {
      const other = l4Frame({ ...base, ...change, id: 101, payload: randomBytes(800) }).frame;
      const r = runRx(wrap(frames[0], other));
      expect(r.n).toBe(2);
      expectPlain(r.frames[0], frames[0]);
      expectPlain(r.frames[1], other);
    }
    const bigger = l4Frame({ ...base, id: 101, payload: randomBytes(801) }).frame;
    expect(runRx(wrap(frames[0], bigger)).n).toBe(2);
  });

  it('does not coalesce segments whose TCP reserved bits (AccECN AE) differ, as Linux GRO does not', () => {
    // found by native/fuzz (coalesce); partial checksums do not cover the header, so both stay verified
    const { frames } = flowSegments(2, 800, { csum: 'partial' });
    const l4 = 14 + 20;
    const other = frames[1].slice();
    other[l4 + 12] |= 0x01;
    const r = runRx(wrap(frames[0], other));
    expect(r.n).toBe(2);
    expect(r.supers).toBe(0);
    expect(runRx(wrap(frames[0], frames[1])).supers).toBe(1);
  });

  it('ends a super-frame after a short, PSH or FIN segment', () => {
    const { frames } = flowSegments(4, 800, {}, 300);
    // 800, 800, 800, 300 then one more 800 segment continuing the seq.
    const next = l4Frame({ seq: 5000 + 2700, id: 104, payload: randomBytes(800) }).frame;
    const r = runRx(wrap(...frames, next));
    expect(r.n).toBe(2);
    expect(r.supers).toBe(1);
    expectPlain(r.frames[1], next);
    const fin = flowSegments(3, 800, { flags: ACK | FIN }).frames;
    const after = l4Frame({ seq: 5000 + 2400, id: 103, payload: randomBytes(800) }).frame;
    const r2 = runRx(wrap(...fin, after));
    expect(r2.n).toBe(2);
    expectSuper(r2.frames[0], concat(...fin.map((f) => parseFrame(f).payload)), 800, { flags: ACK | FIN });
  });

  it('passes a bad checksum, a SYN, a pure ACK and non-TCP through with a zero vnet_hdr', () => {
    const { frames } = flowSegments(3, 800);
    const bad = frames.slice();
    bad[1] = frames[1].slice();
    bad[1][bad[1].length - 1] ^= 0x55;
    const r = runRx(wrap(...bad));
    expect(r.n).toBe(3);
    expect(r.supers).toBe(0);
    r.frames.forEach((f, i) => expectPlain(f, bad[i]));
    const syn = l4Frame({ flags: SYN, payload: new Uint8Array(0) }).frame;
    const synData = l4Frame({ flags: SYN | ACK, payload: randomBytes(100) }).frame;
    const pureAck = l4Frame({ payload: new Uint8Array(0) }).frame;
    const udp = l4Frame({ udp: true, payload: randomBytes(50) }).frame;
    const arp = new Uint8Array(42);
    arp[12] = 0x08;
    arp[13] = 0x06;
    const inner = [syn, synData, pureAck, udp, arp];
    const r2 = runRx(wrap(...inner));
    expect(r2.n).toBe(5);
    r2.frames.forEach((f, i) => expectPlain(f, inner[i]));
  });

  it('marks a partial-checksum frame that is not coalesced NEEDS_CSUM', () => {
    const tcp = l4Frame({ flags: SYN, payload: new Uint8Array(0), csum: 'partial' });
    const udp = l4Frame({ v6: true, udp: true, payload: randomBytes(30), csum: 'partial' });
    const one = l4Frame({ payload: randomBytes(99), csum: 'partial' });
    const r = runRx(wrap(tcp.frame, udp.frame, one.frame));
    expect(r.n).toBe(3);
    expect(readVnet(r.frames[0])).toEqual({ ...readVnet(vnet({})), flags: F_NEEDS_CSUM, csumStart: tcp.l4, csumOffset: 16 });
    expect(readVnet(r.frames[1])).toEqual({ ...readVnet(vnet({})), flags: F_NEEDS_CSUM, csumStart: udp.l4, csumOffset: 6 });
    expect(readVnet(r.frames[2])).toEqual({ ...readVnet(vnet({})), flags: F_NEEDS_CSUM, csumStart: one.l4, csumOffset: 16 });
    expect(Array.from(r.frames[2].subarray(VNET_HDR_LEN))).toEqual(Array.from(one.frame));
  });

  it('counts short, bad-flag and wrong-VNI datagrams and skips ok = 0', () => {
    const f = l4Frame({ payload: randomBytes(20) }).frame;
    const good = concat(VXLAN, f);
    const badFlags = good.slice();
    badFlags[0] = 0x0c;
    const reserved = good.slice();
    reserved[7] = 1;
    const vni = good.slice();
    vni[6] ^= 1;
    const r = runRx([{ bytes: good.subarray(0, 21) }, { bytes: new Uint8Array(0) }, { bytes: badFlags }, { bytes: reserved }, { bytes: vni }, { bytes: good, ok: false }, { bytes: good }]);
    expect(r.drops).toEqual([2, 2, 1]);
    expect(r.n).toBe(1);
    expect(r.learn).toEqual([6]);
    expect(r.segsIn).toBe(1);
    // A GRO datagram whose last segment is short.
    const r2 = runRx([{ bytes: concat(good, good.subarray(0, 10)), gso: good.length }]);
    expect(r2.drops).toEqual([1, 0, 0]);
    expect(r2.n).toBe(1);
  });

  it('stops writing when out or the frame arrays are full, and counts it', () => {
    const { frames } = flowSegments(2, 800);
    const other = l4Frame({ udp: true, payload: randomBytes(10) }).frame;
    const r = runRx(wrap(...frames, other), { frameCap: 1 });
    expect(r.n).toBe(1);
    expect(r.noRoom).toBe(1);
    // 864 bytes for the first segment, 62 for the UDP frame: the second segment does not fit.
    const r2 = runRx(wrap(...frames, other), { outLen: 930 });
    expect(r2.n).toBe(2);
    expect(r2.noRoom).toBe(1);
    expectPlain(r2.frames[0], frames[0]);
    expectPlain(r2.frames[1], other);
  });
});

// --- round trips and properties ---------------------------------------------------

describe('txOffload -> rxOffload round trip', () => {
  /** Segment a super-frame, then re-coalesce its segments (as GRO datagrams or singly). */
  function roundTrip(spec: L4Spec & { mss: number }, gro: boolean): { orig: Built; rx: RxRun; tx: TxRun } {
    const { tap, built } = superFrame(spec);
    const tx = runTx([tap]);
    expect(tx.dropped).toBe(0);
    const dgrams = gro ? tx.msgs.map((m) => ({ bytes: m.bytes, gso: m.gso })) : tx.msgs.flatMap(segmentsOf).map((s) => ({ bytes: s.slice() }));
    return { orig: built, rx: runRx(dgrams), tx };
  }

  function expectRebuilt(orig: Built, rx: RxRun, mss: number, v6: boolean): void {
    const payloadLen = orig.frame.length - orig.hdrs;
    expect(rx.drops).toEqual([0, 0, 0]);
    expect(rx.n).toBe(1);
    if (payloadLen <= mss) {
      // One segment: a plain frame, identical but for the finished checksum.
      expect(readVnet(rx.frames[0])).toEqual(readVnet(vnet({})));
      expect(parseFrame(rx.frames[0].subarray(VNET_HDR_LEN)).l4CsumOk).toBe(true);
      return;
    }
    expect(rx.supers).toBe(1);
    expectSuper(rx.frames[0], orig.frame.subarray(orig.hdrs), mss, { v6 });
    // The whole super-frame comes back byte for byte.
    expect(Buffer.from(rx.frames[0].subarray(VNET_HDR_LEN)).equals(Buffer.from(orig.frame))).toBe(true);
  }

  it.each([
    ['IPv4 GRO', false, true],
    ['IPv4 single datagrams', false, false],
    ['IPv6 GRO', true, true],
    ['IPv6 single datagrams', true, false],
  ])('%s: a 64 KiB super-frame comes back whole', (_n, v6, gro) => {
    const mss = 1448;
    const payload = randomBytes(65535 - 14 - 40 - 32, 5);
    const { orig, rx } = roundTrip({ v6, tsopt: true, payload, mss, flags: ACK | PSH, seq: 0xffffff00 }, gro);
    expectRebuilt(orig, rx, mss, v6);
  });

  it('random payload lengths and MSS values round-trip (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 65535 - 14 - 40 - 32 }),
        fc.integer({ min: 64, max: 9000 }),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 0xffffffff }),
        (len, mss, v6, tsopt, gro, seq) => {
          const payload = randomBytes(len, len ^ mss);
          const { orig, rx, tx } = roundTrip({ v6, tsopt, payload, mss, seq, flags: ACK | PSH, id: seq & 0xffff }, gro);
          expect(tx.segments).toBe(Math.ceil(len / mss));
          expectRebuilt(orig, rx, mss, v6);
        },
      ),
      { numRuns: 150 },
    );
  });
});

// --- abuse --------------------------------------------------------------------------

describe('offload kernels refuse bad arguments', () => {
  const u8 = (n: number) => new Uint8Array(n);
  const u16 = (n: number) => new Uint16Array(n);
  const u32 = (n: number) => new Uint32Array(n);

  // The old positional slots, kept as the tables' keys: each becomes a descriptor
  // property (checked by the bind) or the call's count (checked by the call).
  const TX_KEYS = ['bufs', 'offsets', 'sizes', 'count', 'vxlan', 'maxMsgBytes', 'out', 'outOffset', 'msgBuf', 'msgOffsets', 'msgSizes', 'msgGso', 'msgFrame', 'result'];
  const RX_KEYS = ['bufs', 'offsets', 'sizes', 'gso', 'ok', 'count', 'vni', 'out', 'outOffset', 'frameOffsets', 'frameSizes', 'learnSrc', 'drops', 'result'];
  function call(keys: string[], args: unknown[], over: Partial<Record<number, unknown>>, bind: (d: never) => unknown, run: (h: never, n: number) => unknown): unknown {
    for (const [k, v] of Object.entries(over)) args[Number(k)] = v;
    const desc: Record<string, unknown> = {};
    keys.forEach((k, i) => (desc[k] = args[i]));
    return run(bind(desc as never) as never, desc.count as number);
  }
  function tx(over: Partial<Record<number, unknown>>): unknown {
    const args: unknown[] = [u8(100), u32(1), Uint32Array.of(100), 1, VXLAN, MAX_MSG, u8(100), 0, u8(4), u32(4), u32(4), u16(4), u32(4), u32(TX_OFFLOAD.LENGTH)];
    return call(
      TX_KEYS,
      args,
      over,
      (d) => addon.txOffloadBind(d),
      (h, n) => addon.txOffload(h, n),
    );
  }
  function rx(over: Partial<Record<number, unknown>>): unknown {
    const args: unknown[] = [u8(100), u32(1), Uint32Array.of(100), u16(1), Uint8Array.of(1), 1, VNI, u8(300), 0, u32(4), u32(4), u32(4), undefined, u32(RX_OFFLOAD.LENGTH)];
    return call(
      RX_KEYS,
      args,
      over,
      (d) => addon.rxOffloadBind(d),
      (h, n) => addon.rxOffload(h, n),
    );
  }

  it('accepts the baseline calls', () => {
    expect(tx({})).toBe(1); // 100 zero bytes, gso NONE: wrapped in place as they are
    expect(rx({})).toBe(0); // zero VXLAN flags
    expect(rx({ 11: undefined })).toBe(0); // learnSrc is optional
  });

  it.each([
    ['offset + size beyond bufs', { 1: Uint32Array.of(1) }],
    ['size beyond bufs', { 2: Uint32Array.of(101) }],
    ['offset near 2^32', { 1: Uint32Array.of(0xffffffff) }],
    ['count beyond offsets', { 3: 2 }],
    ['count above 1024', { 3: 1025 }],
    ['negative count', { 3: -1 }],
    ['maxMsgBytes above 65507', { 5: 65508 }],
    ['maxMsgBytes 0', { 5: 0 }],
    ['outOffset beyond out', { 7: 101 }],
    ['fractional outOffset', { 7: 1.5 }],
    ['short vxlan', { 4: u8(7) }],
    ['short result', { 13: u32(2) }],
  ])('txOffload: RangeError for %s', (_n, over) => {
    expect(() => tx(over)).toThrow(RangeError);
  });

  it.each([
    ['bufs', { 0: [1, 2] }],
    ['offsets', { 1: new Int32Array(1) }],
    ['vxlan', { 4: 'x' }],
    ['msgGso', { 11: u32(4) }],
    ['result', { 13: undefined }],
    ['count', { 3: '1' }],
  ])('txOffload: TypeError for a bad %s', (_n, over) => {
    expect(() => tx(over)).toThrow(TypeError);
  });

  it.each([
    ['offset + size beyond bufs', { 1: Uint32Array.of(1) }],
    ['count beyond gso', { 3: u16(0), 5: 1 }],
    ['count beyond ok', { 4: u8(0) }],
    ['vni above 24 bits', { 6: 0x1000000 }],
    ['outOffset beyond out', { 8: 301 }],
    ['short result', { 13: u32(6) }],
  ])('rxOffload: RangeError for %s', (_n, over) => {
    expect(() => rx(over)).toThrow(RangeError);
  });

  it.each([
    ['gso', { 3: u32(1) }],
    ['ok', { 4: [1] }],
    ['learnSrc', { 11: u16(4) }],
    ['frameOffsets', { 9: null }],
  ])('rxOffload: TypeError for a bad %s', (_n, over) => {
    expect(() => rx(over)).toThrow(TypeError);
  });

  // The byte-level invariants (bounds under ASan, checksums, reasons) are fuzzed for
  // real by native/fuzz (libFuzzer, no Node); this property checks, through the
  // N-API glue, that every frame and segment is accounted for exactly once.
  it('accounts for every frame and segment of random bytes and random vnet headers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 3000 }), (bytes, type, gsoSize) => {
        // Valid-looking headers with random bytes behind them reach deep into the parser.
        const base = superFrame({ payload: randomBytes(2000), mss: 700, v6: type % 2 === 0 }).tap;
        const f = base.slice();
        f.set(bytes.subarray(0, Math.min(bytes.length, f.length - VNET_HDR_LEN)), VNET_HDR_LEN + 12 + ((bytes.at(0) ?? 0) % 60));
        f[1] = [GSO_NONE, GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_UDP_L4, 0x81][type];
        f[0] = bytes.at(1) ?? 0;
        new DataView(f.buffer).setUint16(4, gsoSize, true);
        const cut = f.subarray(0, Math.min(f.length, 10 + (bytes.at(2) ?? 0) * 9));
        const run = runTx([cut, bytes]);
        // each input frame emitted (one or more messages) or dropped, never both
        expect(new Set(run.msgs.map((m) => m.frame)).size + run.dropped).toBe(2);
        expect(run.segments).toBe(run.msgs.reduce((n, m) => n + segmentsOf(m).length, 0));
        expect(run.used).toBe(run.msgs.filter((m) => m.buf === 1).reduce((n, m) => n + m.bytes.length, 0));
        const r = runRx([{ bytes: concat(VXLAN, cut.subarray(VNET_HDR_LEN)) }, { bytes }, { bytes: concat(VXLAN, bytes) }]);
        // each datagram is one segment (gso 0): dropped for a reason, or in exactly one output frame
        expect(r.drops[0] + r.drops[1] + r.drops[2] + r.segsIn).toBe(3);
        const segsOut = r.frames.reduce((n, f) => {
          if (f[1] === 0) return n + 1;
          const hdrLen = f[2] | (f[3] << 8);
          const gsoSize = f[4] | (f[5] << 8);
          return n + Math.ceil((f.length - VNET_HDR_LEN - hdrLen) / gsoSize);
        }, 0);
        expect(segsOut + r.noRoom).toBe(r.segsIn);
        expect(r.used).toBe(r.frames.reduce((n, f) => n + f.length, 0));
      }),
      { numRuns: 500 },
    );
  });
});

// --- txTunnel (uplink transmit) ----------------------------------------------------

describe('txTunnel wraps whole frames for a UDP-tunnel GSO uplink write', () => {
  const HEAD = 64;
  /** One outer template: dst MAC 02:..:0b, src MAC 02:..:0a, 198.18.0.1 -> 198.18.0.2, port 4789, VNI. */
  function template(): Uint8Array {
    const t = new Uint8Array(64);
    t.set([2, 0, 0, 0, 0, 0x0b, 2, 0, 0, 0, 0, 0x0a, 0x08, 0x00], 0);
    t.set([0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2], 14);
    t.set([0, 0, 0x12, 0xb5, 0, 0, 0, 0], 34);
    t.set(VXLAN, 42);
    return t;
  }
  function place(frames: Uint8Array[]): { bufs: Uint8Array; offsets: Uint32Array; sizes: Uint32Array } {
    const stride = 70_000;
    const bufs = new Uint8Array(stride * frames.length);
    const offsets = new Uint32Array(frames.length);
    const sizes = new Uint32Array(frames.length);
    frames.forEach((f, i) => {
      offsets[i] = i * stride + HEAD;
      sizes[i] = f.length;
      bufs.set(f, offsets[i]);
    });
    return { bufs, offsets, sizes };
  }
  function call(frames: Uint8Array[], sel: number[], maxOuterIp = 1500, dfMode = 0) {
    const { bufs, offsets, sizes } = place(frames);
    const n = frames.length;
    const s = Int32Array.from(sel);
    const outOffsets = new Uint32Array(n);
    const outSizes = new Uint32Array(n);
    const result = new Uint32Array(TX_TUNNEL.LENGTH);
    result[TX_TUNNEL.NEXT_IP_ID] = 0x1234;
    const ipId = result.subarray(TX_TUNNEL.NEXT_IP_ID, TX_TUNNEL.NEXT_IP_ID + 1);
    const h = addon.txTunnelBind({ bufs, offsets, sizes, sel: s, srcPort: Uint16Array.from(sel.map((_, i) => 49152 + i)), dfMode, maxOuterIp, outOffsets, outSizes, result });
    const k = addon.txTunnel(h, n, template());
    return { k, bufs, offsets, sel: s, outOffsets, outSizes, result, ipId };
  }

  it('turns a TSO super-frame into one tunnel-GSO write with the outer headers filled in', () => {
    const payload = randomBytes(20_000, 7);
    const { tap, built } = superFrame({ payload, mss: 1398, tsopt: true });
    const r = call([tap], [0]);
    expect(r.k).toBe(1);
    expect(r.result[0]).toBe(Math.ceil(20_000 / 1398)); // wire packets the kernel will cut
    const w = r.bufs.subarray(r.outOffsets[0], r.outOffsets[0] + r.outSizes[0]);
    expect(r.outSizes[0]).toBe(tap.length + HEAD);
    const dv = new DataView(w.buffer, w.byteOffset, w.length);
    expect(w[0]).toBe(F_NEEDS_CSUM);
    expect(w[1]).toBe(GSO_TCPV4 | 0x20); // inner TCPv4, outer UDP tunnel over IPv4
    expect(dv.getUint16(2, true)).toBe(50 + built.hdrs);
    expect(dv.getUint16(4, true)).toBe(1398);
    expect(dv.getUint16(6, true)).toBe(50 + built.l4);
    expect(dv.getUint16(8, true)).toBe(16);
    expect(dv.getUint16(20, true)).toBe(34); // outer UDP
    expect(dv.getUint16(22, true)).toBe(50 + 14); // inner IP
    const o = 24;
    expect([...w.subarray(o, o + 14)]).toEqual([...template().subarray(0, 14)]);
    const ipLen = dv.getUint16(o + 16);
    expect(ipLen).toBe(36 + built.frame.length);
    expect(w[o + 20] & 0x40).toBe(0); // df unset
    expect(dv.getUint16(o + 18)).toBe(0x1234); // the outer IPv4 ID, advanced by the packets it becomes
    expect(r.ipId[0]).toBe(0x1234 + Math.ceil(20_000 / 1398));
    expect(onesSum(w, o + 14, 20)).toBe(0xffff); // IP header checksum
    expect(dv.getUint16(o + 34)).toBe(49152);
    expect(dv.getUint16(o + 36)).toBe(4789);
    expect(dv.getUint16(o + 38)).toBe(16 + built.frame.length);
    expect(dv.getUint16(o + 40)).toBe(0);
    expect([...w.subarray(o + 42, o + 50)]).toEqual([...VXLAN]);
    expect([...w.subarray(o + 50)]).toEqual([...built.frame]); // the inner frame, untouched
  });

  it('leaves unselected frames alone and hands back what the kernel could not carry whole', () => {
    const small = concat(vnet({}), l4Frame({ payload: randomBytes(100) }).frame);
    const big = concat(vnet({}), l4Frame({ payload: randomBytes(1470) }).frame); // outer 36 + 14 + 1498 > 1500
    const ufo = concat(vnet({ gsoType: GSO_UDP, gsoSize: 1000, flags: F_NEEDS_CSUM }), l4Frame({ udp: true, payload: randomBytes(3000) }).frame);
    const r = call([small, small, big, ufo], [-1, 0, 0, 0]);
    expect(r.k).toBe(1);
    expect([...r.sel]).toEqual([-1, 0, -1, -1]);
    expect(r.result[1]).toBe(2);
    expect(r.outOffsets[0]).toBe(r.offsets[1] - HEAD);
    // a refused frame's bytes and headroom are as they were
    expect([...r.bufs.subarray(r.offsets[2] - HEAD, r.offsets[2])].every((x) => x === 0)).toBe(true);
    expect([...r.bufs.subarray(r.offsets[0] - HEAD, r.offsets[0])].every((x) => x === 0)).toBe(true);
  });

  it('hands back a TSO frame whose GSO type names the other IP version; a header-only one is one wire packet', () => {
    // both found by native/fuzz (tunnel)
    const v6 = superFrame({ v6: true, payload: randomBytes(3000), mss: 1200 }).tap;
    v6[1] = GSO_TCPV4;
    const v4 = superFrame({ payload: randomBytes(3000), mss: 1200 }).tap;
    v4[1] = GSO_TCPV6;
    const r = call([v6, v4], [0, 0]);
    expect(r.k).toBe(0);
    expect([...r.sel]).toEqual([-1, -1]);
    const empty = superFrame({ payload: new Uint8Array(0), mss: 1200 }).tap;
    const e = call([empty, empty], [0, 0]);
    expect(e.k).toBe(2);
    expect(e.result[0]).toBe(2);
    expect(e.ipId[0]).toBe(0x1234 + 2); // each took its own outer IPv4 ID
  });

  it('sets DF as asked: set, or copied from the inner IPv4 header', () => {
    const f = concat(vnet({}), l4Frame({ payload: randomBytes(200) }).frame); // l4Frame sets inner DF
    expect(call([f], [0], 1500, 1).bufs[24 + 20] & 0x40).toBe(0x40);
    expect(call([f], [0], 1500, 2).bufs[24 + 20] & 0x40).toBe(0x40);
    expect(call([f], [0], 1500, 0).bufs[24 + 20] & 0x40).toBe(0);
  });

  it('refuses bad arguments with a RangeError naming them', () => {
    const f = concat(vnet({}), l4Frame({ payload: randomBytes(100) }).frame);
    const bufs = new Uint8Array(4096);
    bufs.set(f, 10);
    const desc = (offset: number, sel: number, dfMode = 0) => ({
      bufs,
      offsets: Uint32Array.of(offset),
      sizes: Uint32Array.of(f.length),
      sel: Int32Array.of(sel),
      srcPort: Uint16Array.of(1),
      dfMode,
      maxOuterIp: 1500,
      outOffsets: new Uint32Array(1),
      outSizes: new Uint32Array(1),
      result: new Uint32Array(TX_TUNNEL.LENGTH),
    });
    expect(() => addon.txTunnel(addon.txTunnelBind(desc(10, 0)), 1, template())).toThrow(/headroom/);
    expect(() => addon.txTunnel(addon.txTunnelBind(desc(100, 5)), 1, template())).toThrow(/sel\[0\]/);
    expect(() => addon.txTunnelBind(desc(100, 0, 3))).toThrow(/desc\.dfMode/);
    expect(() => addon.txTunnelBind({ ...desc(100, 0), result: new Uint32Array(2) })).toThrow(/desc\.result/);
    expect(() => addon.txTunnel(addon.txTunnelBind(desc(100, 0)), 2, template())).toThrow(RangeError);
    expect(() => addon.txTunnel({} as never, 1, template())).toThrow(/txTunnel handle/);
    const rx = addon.rxOffloadBind({
      bufs,
      offsets: new Uint32Array(1),
      sizes: new Uint32Array(1),
      gso: new Uint16Array(1),
      ok: new Uint8Array(1),
      vni: 1,
      out: bufs,
      outOffset: 0,
      frameOffsets: new Uint32Array(1),
      frameSizes: new Uint32Array(1),
      result: new Uint32Array(RX_OFFLOAD.LENGTH),
    });
    expect(() => addon.txTunnel(rx as never, 1, template())).toThrow(/txTunnel handle/);
  });
});

describe('rxTunnel unwraps frames read whole from the uplink TAP', () => {
  /** A frame as the uplink TAP hands it over: the 24-byte tunnel header, outer headers, the inner frame. */
  function tunnelFrame(inner: Uint8Array, opts: { gso?: number; gsoSize?: number; csumStart?: number; flags?: number; vxlan?: Uint8Array; udpGso?: boolean } = {}): Uint8Array {
    const f = new Uint8Array(24 + 50 + inner.length);
    const dv = new DataView(f.buffer);
    f[0] = opts.flags ?? 0;
    f[1] = opts.gso ?? 0;
    dv.setUint16(4, opts.gsoSize ?? 0, true);
    dv.setUint16(6, opts.csumStart ?? 0, true);
    dv.setUint16(8, 16, true);
    const o = 24;
    f.set([2, 0, 0, 0, 0, 0x0a, 2, 0, 0, 0, 0, 0x0b, 0x08, 0x00], o);
    f.set([0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 2, 198, 18, 0, 1], o + 14);
    dv.setUint16(o + 16, 36 + inner.length);
    dv.setUint16(o + 34, 49999);
    dv.setUint16(o + 36, 4789);
    dv.setUint16(o + 38, 16 + inner.length);
    f.set(opts.vxlan ?? VXLAN, o + 42);
    f.set(inner, o + 50);
    dv.setUint16(o + 24, ~onesSum(f, o + 14, 20) & 0xffff);
    return f;
  }
  function call(frames: Uint8Array[]) {
    const stride = 70_000;
    const n = frames.length;
    const bufs = new Uint8Array(stride * n);
    const offsets = new Uint32Array(n);
    const sizes = new Uint32Array(n);
    frames.forEach((f, i) => {
      offsets[i] = i * stride;
      sizes[i] = f.length;
      bufs.set(f, offsets[i]);
    });
    const out = {
      addrs: new Uint8Array(n * 20),
      frameOffsets: new Uint32Array(n),
      frameSizes: new Uint32Array(n),
      result: new Uint32Array(RX_TUNNEL.LENGTH),
      usoOffsets: new Uint32Array(n),
      usoSizes: new Uint32Array(n),
      usoGso: new Uint16Array(n),
      usoAddrs: new Uint8Array(n * 20),
      order: new Uint8Array(n),
    };
    const k = addon.rxTunnel(addon.rxTunnelBind({ bufs, offsets, sizes, vni: VNI, port: 4789, ...out }), n);
    const drops = out.result.subarray(RX_TUNNEL.DROP_MALFORMED, RX_TUNNEL.DROP_WRONG_VNI + 1);
    return { k, bufs, offsets, drops, ...out };
  }

  it('turns a UDP-tunnel GSO super-frame into an inner GSO frame with its offsets moved', () => {
    const { tap, built } = superFrame({ payload: randomBytes(30_000, 3), mss: 1398, tsopt: true });
    const inner = tap.subarray(VNET_HDR_LEN);
    const r = call([tunnelFrame(inner, { gso: GSO_TCPV4 | 0x20, gsoSize: 1398, flags: F_NEEDS_CSUM, csumStart: 50 + built.l4 })]);
    expect(r.k).toBe(1);
    expect([...r.drops]).toEqual([0, 0, 0]);
    expect(r.result[1]).toBe(1); // a super-frame
    expect(r.result[0]).toBe(Math.ceil(30_000 / 1398));
    const f = r.bufs.subarray(r.frameOffsets[0], r.frameOffsets[0] + r.frameSizes[0]);
    expect(r.frameSizes[0]).toBe(VNET_HDR_LEN + inner.length);
    const h = readVnet(f);
    expect(h.flags).toBe(F_NEEDS_CSUM);
    expect(h.gsoType).toBe(GSO_TCPV4);
    expect(h.gsoSize).toBe(1398);
    expect(h.csumStart).toBe(built.l4);
    expect(h.csumOffset).toBe(16);
    expect([...f.subarray(VNET_HDR_LEN)]).toEqual([...inner]);
    expect([...r.addrs.subarray(0, 8)]).toEqual([4, 0, 49999 >> 8, 49999 & 0xff, 198, 18, 0, 2]);
  });

  it('counts bad flags and a wrong VNI, ignores what is not VXLAN for us, leaves UDP GSO runs to rxOffload', () => {
    const inner = l4Frame({ payload: randomBytes(1200) }).frame;
    const ok = tunnelFrame(inner);
    const badFlags = tunnelFrame(inner, { vxlan: Uint8Array.from([0x0c, 0, 0, 0, VNI >> 16, (VNI >> 8) & 0xff, VNI & 0xff, 0]) });
    const wrongVni = tunnelFrame(inner, { vxlan: Uint8Array.from([0x08, 0, 0, 0, 0, 0, 7, 0]) });
    const ipv6 = tunnelFrame(inner);
    ipv6[24 + 12] = 0x86;
    ipv6[24 + 13] = 0xdd;
    const run = tunnelFrame(inner, { gso: GSO_UDP_L4, gsoSize: 1000 });
    const tiny = new Uint8Array(40);
    const badSum = tunnelFrame(inner);
    badSum[24 + 22] ^= 1; // TTL changed under the IPv4 header checksum
    const r = call([ok, badFlags, wrongVni, ipv6, run, tiny, badSum, ok]);
    expect(r.k).toBe(2);
    expect([...r.drops]).toEqual([1, 1, 1]);
    expect([...r.order.subarray(0, 3)]).toEqual([0, 1, 0]); // frame, run, frame: as they came
    expect(r.result[2]).toBe(1);
    expect(r.usoOffsets[0]).toBe(r.offsets[4] + 24 + 14 + 20 + 8); // the UDP payload: the VXLAN datagrams
    expect(r.usoSizes[0]).toBe(8 + inner.length);
    expect(r.usoGso[0]).toBe(1000);
    expect(r.result[3]).toBe(2); // IPv6 and the runt: ignored
    expect(readVnet(r.bufs.subarray(r.frameOffsets[0])).flags).toBe(0);
  });
});
