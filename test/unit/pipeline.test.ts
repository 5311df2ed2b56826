/**
 * The worker's pipeline over fake devices (no root): two hosts on a FakeNetwork,
 * each with a fake TAP and UDP transport (and an uplink port where the test
 * needs one), running the real engine and the addon's byte kernels. Covers the
 * default (offload) path end to end, the plain path, and the uplink's ordering
 * rules, which the shared FakeTrace makes visible across devices.
 */
import { describe, expect, it } from 'vitest';
import { buildPipeline, READY_SOCKET, READY_TAP, READY_UPLINK, type Pipeline, type PipelineConfig } from '../../src/pipeline/index.js';
import { Fdb, MAX_PEERS } from '../../src/dataplane/fdb.js';
import { C, COUNTERS, PEER_STRIDE } from '../../src/dataplane/stats.js';
import type { PeerInfo } from '../../src/dataplane/engine.js';
import { FakeTap, FakeTrace } from '../../src/tap/fake.js';
import { FakeNetwork, FakeUdpTransport } from '../../src/transport/fake.js';
import { FakeUplink } from '../../src/uplink/fake.js';
import { TNL_VNET_HDR_LEN, VNET_HDR_LEN } from '../../src/native/limits.js';
import { addrRecord } from '../../src/wire/addr.js';
import { SUPER_FRAMES_PER_READ } from '../../src/dataplane/sizing.js';
import { macHi, macLo, parseMac } from '../../src/wire/mac.js';
import { onesSum, pseudoSumV4 } from '../../src/wire/checksum.js';

const PORT = 4789;
const MAC_A = parseMac('02:00:00:00:00:01'); // inner host behind A
const MAC_B = parseMac('02:00:00:00:00:02'); // inner host behind B

interface Host {
  name: string;
  address: string;
  tap: FakeTap;
  udp: FakeUdpTransport;
  uplink?: FakeUplink;
  fdb: Fdb;
  counters: Float64Array;
  pipeline: Pipeline;
}

/** A host on `net`: its pipeline over fakes, peered with `peers` (index = position). */
function host(net: FakeNetwork, name: string, address: string, peers: string[], o: { offload?: boolean; uplink?: 'tx' | 'rx'; batchSize?: number; peerMac?: boolean } = {}): Host {
  const offload = o.offload ?? true;
  const tap = new FakeTap({ vnetHdrLen: offload ? VNET_HDR_LEN : 0, name: `${name}.tap`, trace: net.trace });
  const udp = new FakeUdpTransport(net, { address, port: PORT, srcPorts: [49152, 49153], name: `${name}.udp` });
  const uplink = o.uplink ? new FakeUplink({ name: `${name}.uplink`, trace: net.trace, receives: o.uplink === 'rx' }) : undefined;
  const fdb = new Fdb(64);
  const counters = new Float64Array(COUNTERS.length);
  const peerInfos: PeerInfo[] = peers.map((p, i) => ({ index: i, record: addrRecord(p, PORT), flood: true, ...(o.peerMac ? { mac: parseMac('02:00:00:00:00:fe') } : {}) }));
  const cfg: PipelineConfig = {
    index: 0,
    vni: 42,
    batchSize: o.batchSize ?? 8,
    tapSlotLen: offload ? VNET_HDR_LEN + 65535 : 1514,
    udpSlotLen: offload ? 65535 : 2048,
    learning: true,
    acceptUnknownPeers: false,
    ownMac: parseMac(name === 'a' ? '02:00:00:00:aa:aa' : '02:00:00:00:bb:bb'),
    maxUnfragmentedPayload: 1472,
    mtu: 1450,
    offload,
    maxGsoBytes: 65507,
    vxlanPort: PORT,
    peers: peerInfos,
    ...(uplink ? { uplink: { srcMac: parseMac('02:00:00:00:00:fd'), srcIp: Uint8Array.from(address.split('.').map(Number)), srcPortMin: 49152, maxOuterIp: 1500, dfMode: 0 as const } } : {}),
  };
  const pipeline = buildPipeline(cfg, { tap, transport: udp, uplink }, { fdb, counters, peerCounters: new Float64Array(MAX_PEERS * PEER_STRIDE), post: () => {}, now: () => 1000 });
  return { name, address, tap, udp, uplink, fdb, counters, pipeline };
}

/** Tell `h` that inner MAC `mac` lives behind its peer `peer`. */
function fdbSet(h: Host, mac: Uint8Array, peer: number): void {
  h.fdb.set(macHi(mac, 0), macLo(mac, 0), peer, true);
}

/** An IPv4 TCP segment (full checksum) from MAC_A to MAC_B. */
function tcpFrame(payload: Uint8Array, seq: number, flags = 0x10): Uint8Array {
  const f = new Uint8Array(14 + 20 + 20 + payload.length);
  const dv = new DataView(f.buffer);
  f.set(MAC_B, 0);
  f.set(MAC_A, 6);
  dv.setUint16(12, 0x0800);
  f[14] = 0x45;
  dv.setUint16(16, 40 + payload.length);
  dv.setUint16(18, 1);
  dv.setUint16(20, 0x4000);
  f[22] = 64;
  f[23] = 6;
  f.set([198, 19, 0, 1, 198, 19, 0, 2], 26);
  dv.setUint16(24, ~onesSum(f, 14, 20) & 0xffff);
  dv.setUint16(34, 40000);
  dv.setUint16(36, 5201);
  dv.setUint32(38, seq);
  dv.setUint32(42, 1);
  f[46] = 0x50;
  f[47] = flags;
  dv.setUint16(48, 512);
  f.set(payload, 54);
  dv.setUint16(50, ~onesSum(f, 34, 20 + payload.length, pseudoSumV4(f, 14, 6, 20 + payload.length)) & 0xffff);
  return f;
}

/** The same as a TSO super-frame: a vnet header (NEEDS_CSUM, TCPV4, gso_size mss) and the checksum left partial. */
function tsoFrame(payload: Uint8Array, mss: number, seq = 1000): { hdr: Uint8Array; frame: Uint8Array } {
  const frame = tcpFrame(payload, seq);
  const dv = new DataView(frame.buffer);
  dv.setUint16(50, pseudoSumV4(frame, 14, 6, 20 + payload.length));
  const hdr = new Uint8Array(VNET_HDR_LEN);
  const hv = new DataView(hdr.buffer);
  hdr[0] = 1; // NEEDS_CSUM
  hdr[1] = 1; // GSO_TCPV4
  hv.setUint16(2, 54, true);
  hv.setUint16(4, mss, true);
  hv.setUint16(6, 34, true);
  hv.setUint16(8, 16, true);
  return { hdr, frame };
}

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

/** The TCP payload of each frame written to a TAP (vnet header stripped). */
function payloadOf(frame: Uint8Array): Uint8Array {
  return frame.subarray(14 + 20 + 20);
}

describe('pipeline over fakes: the offload path (default)', () => {
  it('carries a 64 KiB TSO super-frame as UDP GSO and re-coalesces it into super-frames on the far side', () => {
    const net = new FakeNetwork(1500);
    const a = host(net, 'a', '198.18.0.1', ['198.18.0.2']);
    const b = host(net, 'b', '198.18.0.2', ['198.18.0.1']);
    fdbSet(a, MAC_B, 0);
    const data = bytes(60000, 3);
    const mss = 1398;
    const { hdr, frame } = tsoFrame(data, mss);
    a.tap.inject(frame, hdr);
    expect(a.pipeline.pass()).toBe(1);
    const segments = Math.ceil(data.length / mss);
    expect(a.counters[C.tap_rx_segments]).toBe(segments);
    expect(a.counters[C.tx_packets]).toBe(segments);
    expect(b.udp.queued).toBeGreaterThan(0);
    while (b.pipeline.pass() > 0);
    const written = b.tap.takeWritten();
    // every byte arrives, in order, in super-frames with a GSO header
    expect(Uint8Array.from(written.flatMap((w) => [...payloadOf(w.frame)]))).toEqual(data);
    expect(written.length).toBeLessThan(segments);
    expect(written[0].hdr[1]).toBe(1); // GSO_TCPV4
    expect(b.counters[C.rx_packets]).toBe(segments);
    expect(b.counters[C.tap_tx_superframes]).toBe(written.filter((w) => w.hdr[1] !== 0).length);
    expect(b.counters[C.drop_truncated] + b.counters[C.drop_short] + b.counters[C.drop_unknown_peer]).toBe(0);
  });

  it('floods a broadcast to every peer and drops what comes from a non-peer', () => {
    const net = new FakeNetwork(1500);
    const a = host(net, 'a', '198.18.0.1', ['198.18.0.2', '198.18.0.3']);
    const b = host(net, 'b', '198.18.0.2', ['198.18.0.1']);
    const c = host(net, 'c', '198.18.0.3', ['198.18.0.9']); // does not know a
    const arp = new Uint8Array(60);
    arp.fill(0xff, 0, 6);
    arp.set(MAC_A, 6);
    arp[12] = 0x08;
    arp[13] = 0x06;
    a.tap.inject(arp);
    a.pipeline.pass();
    expect(a.counters[C.tx_flood_packets]).toBe(2);
    b.pipeline.pass();
    c.pipeline.pass();
    expect(b.tap.takeWritten().map((w) => w.frame)).toEqual([arp]);
    expect(c.tap.takeWritten()).toEqual([]);
    expect(c.counters[C.drop_unknown_peer]).toBe(1);
  });

  it('keeps the batch limits: 64 queued TSO frames to three flood peers go in reads of SUPER_FRAMES_PER_READ, sent without throwing', () => {
    const net = new FakeNetwork(1500);
    const a = host(net, 'a', '198.18.0.1', ['198.18.0.2', '198.18.0.3', '198.18.0.4'], { batchSize: 64 });
    const peers = ['198.18.0.2', '198.18.0.3', '198.18.0.4'].map((p) => host(net, `p${p}`, p, ['198.18.0.1']));
    for (let i = 0; i < 64; i++) {
      const { hdr, frame } = tsoFrame(bytes(8000, i), 1398, 1000 + i * 8000);
      frame.fill(0xff, 0, 6); // broadcast: every peer gets a copy of every segment
      a.tap.inject(frame, hdr);
    }
    // --batch 64 is capped for super-frames: four reads of 16
    for (let p = 0; p < 64 / SUPER_FRAMES_PER_READ; p++) expect(a.pipeline.pass()).toBe(SUPER_FRAMES_PER_READ);
    expect(a.pipeline.pass()).toBe(0);
    const msgs = 64 * 3 * Math.ceil(8000 / 1398);
    expect(a.counters[C.tx_packets] + a.counters[C.drop_tx_error]).toBe(msgs);
    expect(peers.map((p) => p.udp.queued + p.udp.dropped).reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
  });
});

describe('pipeline over fakes: the plain path', () => {
  it('carries MTU-sized frames both ways', () => {
    const net = new FakeNetwork(1500);
    const a = host(net, 'a', '198.18.0.1', ['198.18.0.2'], { offload: false });
    const b = host(net, 'b', '198.18.0.2', ['198.18.0.1'], { offload: false });
    fdbSet(a, MAC_B, 0);
    const frames = [tcpFrame(bytes(1000, 1), 1), tcpFrame(bytes(1400, 2), 1001)];
    for (const f of frames) a.tap.inject(f);
    expect(a.pipeline.pass()).toBe(2);
    expect(b.pipeline.pass()).toBe(2);
    expect(b.tap.takeWritten().map((w) => w.frame)).toEqual(frames);
    expect(b.counters[C.tap_tx_packets]).toBe(2);
  });
});

describe('pipeline over fakes: passes and readiness', () => {
  it('a pass that read less than a full batch from every device leaves the pipeline drained; a full batch does not', () => {
    const net = new FakeNetwork(1500);
    const a = host(net, 'a', '198.18.0.1', ['198.18.0.2'], { offload: false, batchSize: 4 });
    const b = host(net, 'b', '198.18.0.2', ['198.18.0.1'], { offload: false, batchSize: 4 });
    fdbSet(a, MAC_B, 0);
    for (let i = 0; i < 3; i++) a.tap.inject(tcpFrame(bytes(100, i), 1 + 100 * i));
    expect(a.pipeline.pass()).toBe(3);
    expect(a.pipeline.drained).toBe(true);
    for (let i = 0; i < 4; i++) a.tap.inject(tcpFrame(bytes(100, i), 301 + 100 * i));
    expect(a.pipeline.pass()).toBe(4); // the whole batch: the TAP may hold more
    expect(a.pipeline.drained).toBe(false);
    expect(a.pipeline.pass()).toBe(0);
    expect(a.pipeline.drained).toBe(true);
    expect(b.pipeline.pass()).toBe(4); // 7 datagrams queued, the first 4
    expect(b.pipeline.drained).toBe(false);
    expect(b.pipeline.pass()).toBe(3);
    expect(b.pipeline.drained).toBe(true);
  });

  it('a pass reads only the devices in its ready set', () => {
    const net = new FakeNetwork(1500);
    const a = host(net, 'a', '198.18.0.1', ['198.18.0.2'], { offload: false });
    const b = host(net, 'b', '198.18.0.2', ['198.18.0.1'], { offload: false });
    fdbSet(a, MAC_B, 0);
    a.tap.inject(tcpFrame(bytes(100, 1), 1));
    expect(a.pipeline.pass(READY_SOCKET)).toBe(0); // the TAP is not asked
    expect(a.pipeline.pass(READY_TAP)).toBe(1);
    expect(b.pipeline.pass(READY_TAP | READY_UPLINK)).toBe(0); // nor the socket
    expect(b.pipeline.pass(READY_SOCKET)).toBe(1);
    expect(b.tap.takeWritten()).toHaveLength(1);
  });
});

describe('pipeline over fakes: the uplink ordering rules', () => {
  it('transmit: socket-path runs and uplink runs of one TAP batch leave in batch order', () => {
    const trace = new FakeTrace();
    const net = new FakeNetwork(1500, trace);
    const a = host(net, 'a', '198.18.0.1', ['198.18.0.2'], { uplink: 'tx', peerMac: true });
    host(net, 'b', '198.18.0.2', ['198.18.0.1']);
    fdbSet(a, MAC_B, 0);
    const small = tcpFrame(bytes(200, 1), 1); // small: the batched socket path while it leads
    const big1 = tsoFrame(bytes(20000, 2), 1398, 201);
    const bcast = new Uint8Array(60);
    bcast.fill(0xff, 0, 6);
    bcast.set(MAC_A, 6);
    bcast[13] = 0x06;
    bcast[12] = 0x08;
    const big2 = tsoFrame(bytes(20000, 3), 1398, 20201);
    a.tap.inject(small);
    a.tap.inject(big1.frame, big1.hdr);
    a.tap.inject(bcast);
    a.tap.inject(big2.frame, big2.hdr);
    a.pipeline.pass();
    // one event per datagram or uplink frame, in the order they left
    const order = trace.events.map((e) => e.device);
    expect(order).toEqual(['a.udp', 'a.uplink', 'a.udp', 'a.uplink']);
    const up = trace.events.filter((e) => e.device === 'a.uplink');
    // whole frames: 24-byte tunnel header + outer 50 bytes + the inner super-frame
    expect(up.map((e) => e.bytes.length)).toEqual([TNL_VNET_HDR_LEN + 50 + big1.frame.length, TNL_VNET_HDR_LEN + 50 + big2.frame.length]);
    expect(a.counters[C.tx_uplink_frames]).toBe(2);
  });

  it('receive: the uplink is read before the socket, and its frames keep arrival order', () => {
    const trace = new FakeTrace();
    const net = new FakeNetwork(1500, trace);
    const a = host(net, 'a', '198.18.0.1', ['198.18.0.2'], { uplink: 'tx', peerMac: true });
    const b = host(net, 'b', '198.18.0.2', ['198.18.0.1'], { uplink: 'rx' });
    fdbSet(a, MAC_B, 0);
    // A sends a flow: its small first segment by the socket, then two super-frames by the uplink
    const small = tcpFrame(bytes(200, 1), 1);
    const big1 = tsoFrame(bytes(20000, 2), 1398, 201);
    const big2 = tsoFrame(bytes(20000, 3), 1398, 20201);
    a.tap.inject(small);
    a.tap.inject(big1.frame, big1.hdr);
    a.tap.inject(big2.frame, big2.hdr);
    a.pipeline.pass();
    // the bridge steers A's uplink frames to B's uplink port
    for (const w of a.uplink!.takeWritten()) b.uplink!.inject(w.frame, w.hdr);
    expect(b.udp.queued).toBe(1);
    expect(b.uplink!.queued).toBe(2);
    b.pipeline.pass();
    const written = b.tap.takeWritten();
    // uplink first (in arrival order), then the socket's datagram
    expect(written.map((w) => payloadOf(w.frame).length)).toEqual([20000, 20000, 200]);
    expect(payloadOf(written[0].frame)).toEqual(bytes(20000, 2));
    expect(payloadOf(written[1].frame)).toEqual(bytes(20000, 3));
    expect(b.counters[C.rx_uplink_frames]).toBe(2);
    expect(b.counters[C.drop_unknown_peer] + b.counters[C.drop_malformed]).toBe(0);
  });
});
