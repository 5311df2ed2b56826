#!/usr/bin/env node
// Writes the seed corpus of the native fuzz targets (native/fuzz/corpus/<target>/)
// from real frames: TSO/USO super-frames as a vnet_hdr TAP delivers them, GRO
// datagrams of consecutive TCP segments, uplink frames as txTunnel writes them,
// CHECKSUM_PARTIAL frames. Each file follows its target's input layout (see the
// header comment of fuzz_<target>.cc). Deterministic: re-running gives the same
// files; regress-* files (inputs that found a bug, kept as regression tests) are
// left alone. Usage: node native/fuzz/seeds.mjs
import { mkdirSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const MAC_A = [2, 0, 0, 0, 0, 0x0a];
const MAC_B = [2, 0, 0, 0, 0, 0x0b];
const V4_A = [198, 18, 0, 1];
const V4_B = [198, 18, 0, 2];
const V6_A = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_B = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
const VNI = 42;
const PORT = 4789;

let rnd = 12345;
/** Deterministic payload bytes. */
function bytes(n) {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    rnd = (rnd * 1103515245 + 12345) >>> 0;
    b[i] = rnd >>> 24;
  }
  return b;
}
const cat = (...parts) => Uint8Array.from(parts.flatMap((p) => [...p]));
const be16 = (v) => [(v >> 8) & 255, v & 255];
const le16 = (v) => [v & 255, (v >> 8) & 255];
const be32 = (v) => [(v >>> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255];

function sum(b, acc = 0) {
  for (let i = 0; i + 1 < b.length; i += 2) acc += (b[i] << 8) | b[i + 1];
  if (b.length & 1) acc += b[b.length - 1] << 8;
  return acc;
}
function fold(acc) {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

/**
 * One Ethernet frame: IPv4 or IPv6, TCP or UDP, checksums full ('full'),
 * partial ('partial': the folded pseudo-header sum) or left zero ('none').
 * ipLen0: IPv4 total length 0 (BIG TCP form).
 */
function frame({ v6 = false, udp = false, payload = new Uint8Array(0), seq = 1000, flags = 0x10, id = 7, vlan = 0, tsopt = false, csum = 'full', ipLen0 = false, df = true }) {
  const opts = !udp && tsopt ? [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2] : [];
  const l4hdr = udp ? 8 : 20 + opts.length;
  const l4len = l4hdr + payload.length;
  const l4 = udp
    ? [...be16(40000), ...be16(5201), ...be16(l4len), 0, 0]
    : [...be16(40000), ...be16(5201), ...be32(seq), ...be32(555), (l4hdr / 4) << 4, flags, ...be16(64240), 0, 0, 0, 0, ...opts];
  const ip = v6
    ? [0x60, 0, 0, 0, ...be16(l4len), udp ? 17 : 6, 64, ...V6_A, ...V6_B]
    : [0x45, 0, ...be16(ipLen0 ? 0 : 20 + l4len), ...be16(id), df ? 0x40 : 0, 0, 64, udp ? 17 : 6, 0, 0, ...V4_A, ...V4_B];
  if (!v6) {
    const c = ~fold(sum(ip)) & 0xffff;
    ip[10] = c >> 8;
    ip[11] = c & 255;
  }
  const pseudo = v6 ? sum([...V6_A, ...V6_B]) + (udp ? 17 : 6) + l4len : sum([...V4_A, ...V4_B]) + (udp ? 17 : 6) + l4len;
  const field = udp ? 6 : 16;
  let c = 0;
  if (csum === 'partial') c = fold(pseudo);
  if (csum === 'full') {
    c = ~fold(sum(cat(l4, payload), pseudo)) & 0xffff;
    if (udp && c === 0) c = 0xffff;
  }
  l4[field] = c >> 8;
  l4[field + 1] = c & 255;
  const tag = vlan ? [0x81, 0, ...be16(vlan)] : [];
  const eth = [...MAC_B, ...MAC_A, ...tag, ...(v6 ? [0x86, 0xdd] : [0x08, 0x00])];
  return { bytes: cat(eth, ip, l4, payload), l4: eth.length + ip.length, hdrs: eth.length + ip.length + l4hdr };
}

/** virtio_net_hdr (host order, little-endian here). */
function vnet({ flags = 0, gsoType = 0, hdrLen = 0, gsoSize = 0, csumStart = 0, csumOffset = 0 }) {
  return [flags, gsoType, ...le16(hdrLen), ...le16(gsoSize), ...le16(csumStart), ...le16(csumOffset)];
}
/** A TSO/USO super-frame as a vnet_hdr TAP delivers it: NEEDS_CSUM, partial checksum. */
function superFrame({ v6 = false, udp = false, payload, mss, vlan = 0, tsopt = false, flags = 0x18, ipLen0 = false }) {
  const f = frame({ v6, udp, payload, vlan, tsopt, flags, csum: 'partial', ipLen0 });
  const gsoType = udp ? 5 : v6 ? 4 : 1;
  return cat(vnet({ flags: 1, gsoType, hdrLen: f.hdrs, gsoSize: mss, csumStart: f.l4, csumOffset: udp ? 6 : 16 }), f.bytes);
}
const VXLAN = [0x08, 0, 0, 0, ...[(VNI >> 16) & 255, (VNI >> 8) & 255, VNI & 255], 0];
const rec = (b) => [...le16(b.length), ...b];

const corpus = {};
const add = (target, name, data) => ((corpus[target] ??= []).push([name, Uint8Array.from(data)]));

// --- segment: [u16 maxMsg][u8 outSel][u8 msgSel][u8 outOffset][vxlan 8] frames [u16 len][bytes]
const segHead = (maxMsg, outSel = 0, msgSel = 0, outOffset = 0) => [...le16(maxMsg), outSel, msgSel, outOffset, ...VXLAN];
add('segment', 'tso-v4', [...segHead(65507), ...rec(superFrame({ payload: bytes(3000), mss: 1000 }))]);
add('segment', 'tso-v6-opts-fin', [...segHead(65507), ...rec(superFrame({ v6: true, payload: bytes(2500), mss: 700, tsopt: true, flags: 0x19 }))]);
add('segment', 'uso-v4', [...segHead(65507), ...rec(superFrame({ udp: true, payload: bytes(3000), mss: 1200 }))]);
add('segment', 'mixed-vlan-small-msgs', [
  ...segHead(1500, 0, 0, 3),
  ...rec(superFrame({ payload: bytes(4000), mss: 600, vlan: 5 })),
  ...rec(cat(vnet({ flags: 1, csumStart: 34, csumOffset: 16 }), frame({ payload: bytes(200), csum: 'partial' }).bytes)),
  ...rec(cat(vnet({}), frame({ udp: true, payload: bytes(100) }).bytes)),
  ...rec(cat(vnet({ flags: 1, csumStart: 54, csumOffset: 6 }), frame({ v6: true, udp: true, payload: bytes(33), csum: 'partial' }).bytes)),
]);
add('segment', 'tight-room', [...segHead(9000, 192 + 30, 192 + 2), ...rec(superFrame({ payload: bytes(2000), mss: 500 })), ...rec(superFrame({ v6: true, payload: bytes(900), mss: 300 }))]);
add('segment', 'big-tcp-len0', [...segHead(65507), ...rec(superFrame({ payload: bytes(1500), mss: 512, ipLen0: true }))]);
add('segment', 'ecn-ufo-short', [
  ...segHead(65507),
  ...rec(cat([1, 0x81], superFrame({ payload: bytes(800), mss: 400 }).subarray(2))),
  ...rec(cat([1, 3], superFrame({ udp: true, payload: bytes(800), mss: 400 }).subarray(2))),
  ...rec(bytes(20)),
]);

// --- coalesce: [u24 vni][u8 outSel][u8 frameSel][u8 outOffset][u8 options] datagrams [u16 len][u16 gso][u8 ok][bytes]
const coHead = (options = 1, outSel = 0, frameSel = 0, outOffset = 0) => [VNI & 255, (VNI >> 8) & 255, (VNI >> 16) & 255, outSel, frameSel, outOffset, options];
const dgram = (segs, ok = 1) => {
  const b = cat(...segs.map((s) => cat(VXLAN, s)));
  const gso = segs.length > 1 ? segs[0].length + 8 : 0;
  return [...le16(b.length), ...le16(gso), ok, ...b];
};
function flow({ v6 = false, n = 4, mss = 500, last = 300, csum = 'full', ids = 'up', tsopt = false, lastFlags = 0x18 }) {
  const segs = [];
  for (let k = 0; k < n; k++) {
    const len = k + 1 < n ? mss : last;
    segs.push(frame({ v6, payload: bytes(len), seq: 1000 + k * mss, id: ids === 'up' ? 7 + k : 7, csum, tsopt, flags: k + 1 < n ? 0x10 : lastFlags }).bytes);
  }
  return segs;
}
add('coalesce', 'gro-v4', [...coHead(), ...dgram(flow({}))]);
add('coalesce', 'gro-v6-partial-two-datagrams', [...coHead(1), ...dgram(flow({ v6: true, csum: 'partial', n: 3, last: 500, lastFlags: 0x10 })), ...dgram(flow({ v6: true, csum: 'partial', n: 2, mss: 500, last: 100 }).map((s, k) => frame({ v6: true, payload: bytes(k ? 100 : 500), seq: 2500 + k * 500, csum: 'partial', flags: k ? 0x18 : 0x10 }).bytes))]);
add('coalesce', 'gro-v4-fixed-ids-opts', [...coHead(3), ...dgram(flow({ ids: 'same', tsopt: true, n: 5 }))]);
add('coalesce', 'mixed-drops', [
  ...coHead(0),
  ...dgram([frame({ udp: true, payload: bytes(64) }).bytes]),
  ...dgram([frame({ udp: true, payload: bytes(64), csum: 'partial' }).bytes]),
  ...dgram([frame({ payload: bytes(10) }).bytes], 0),
  ...[...le16(30), 0, 0, 1, 0x0c, 0, 0, 0, 0, 0, 42, 0, ...bytes(22)],
  ...[...le16(30), 0, 0, 1, 0x08, 0, 0, 0, 0, 0, 43, 0, ...bytes(22)],
  ...[...le16(10), 0, 0, 1, ...bytes(10)],
]);
add('coalesce', 'no-room', [...coHead(1, 192 + 20, 192 + 1), ...dgram(flow({ n: 3 })), ...dgram(flow({ v6: true, n: 2 }))]);

// --- tunnel: [u8 mode][u24 vni][u16 port][u8 dfMode][u16 maxOuterIp][u16 ipId lo][u16 ipId hi][u8 ntpl][50 bytes each]
const template = (vni = VNI) => [...MAC_B, ...MAC_A, 0x08, 0, 0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, ...V4_A, ...V4_B, 0, 0, ...be16(PORT), 0, 0, 0, 0, 0x08, 0, 0, 0, (vni >> 16) & 255, (vni >> 8) & 255, vni & 255, 0];
const tunHead = (mode, dfMode = 2, maxOuterIp = 1500, ntpl = 1) => [mode, VNI & 255, (VNI >> 8) & 255, (VNI >> 16) & 255, ...le16(PORT), dfMode, ...le16(maxOuterIp), 0x34, 0x12, 0, 0, ntpl - 1, ...Array.from({ length: ntpl }, (_, i) => template(VNI + i)).flat()];
const txRec = (b, sel = 0, port = 49152) => [...le16(b.length), sel, ...le16(port), ...b];
add('tunnel', 'tx-tso-uso-plain', [
  ...tunHead(0, 2, 1500, 2),
  ...txRec(superFrame({ payload: bytes(5000), mss: 1398, tsopt: true })),
  ...txRec(superFrame({ v6: true, payload: bytes(3000), mss: 1200 }), 1),
  ...txRec(superFrame({ udp: true, payload: bytes(2000), mss: 1000 })),
  ...txRec(cat(vnet({ flags: 1, csumStart: 34, csumOffset: 16 }), frame({ payload: bytes(300), csum: 'partial' }).bytes)),
  ...txRec(cat(vnet({}), frame({ udp: true, payload: bytes(100) }).bytes), 0xff),
  ...txRec(cat(vnet({}), frame({ payload: bytes(1600) }).bytes)),
]);
add('tunnel', 'tx-vlan-df-set', [...tunHead(0, 1, 9000), ...txRec(superFrame({ payload: bytes(4000), mss: 1400, vlan: 9 })), ...txRec(superFrame({ payload: bytes(0), mss: 1400 }))]);
/** An uplink frame as the TAP delivers it: 24-byte tunnel header, outer headers, inner frame. */
function uplink(inner, { gsoType = 0, gsoSize = 0, flags = 0, csumStart = 0, csumOffset = 0, hdrLen = 0, vni = VNI, port = PORT, vxFlags = 0x08 }) {
  const tot = 20 + 8 + 8 + inner.length;
  const ip = [0x45, 0, ...be16(tot), 0, 1, 0, 0, 64, 17, 0, 0, ...V4_A, ...V4_B];
  const c = ~fold(sum(ip)) & 0xffff;
  ip[10] = c >> 8;
  ip[11] = c & 255;
  const hdr = [flags, gsoType, ...le16(hdrLen), ...le16(gsoSize), ...le16(csumStart), ...le16(csumOffset), ...new Array(10).fill(0), ...le16(34), ...le16(64)];
  return cat(hdr, [...MAC_B, ...MAC_A, 8, 0], ip, [...be16(49152), ...be16(port), ...be16(tot - 20), 0, 0], [vxFlags, 0, 0, 0, (vni >> 16) & 255, (vni >> 8) & 255, vni & 255, 0], inner);
}
const tsoInner = frame({ payload: bytes(4000), csum: 'partial', flags: 0x18 });
const usoRun = cat(...[0, 1, 2].map(() => cat(VXLAN, frame({ payload: bytes(200) }).bytes)));
add('tunnel', 'rx-mixed', [
  ...tunHead(1),
  ...rec(uplink(tsoInner.bytes, { gsoType: 0x21, gsoSize: 1398, flags: 1, csumStart: 50 + tsoInner.l4, csumOffset: 16, hdrLen: 50 + tsoInner.hdrs })),
  ...rec(uplink(frame({ udp: true, payload: bytes(80) }).bytes, {})),
  ...rec(uplink(frame({ payload: bytes(80) }).bytes, { vni: VNI + 1 })),
  ...rec(uplink(frame({ payload: bytes(80) }).bytes, { vxFlags: 0x0c })),
  ...rec(uplink(frame({ payload: bytes(80) }).bytes, { port: 8472 })),
  ...rec(uplink(usoRun.subarray(8), { gsoType: 5, gsoSize: usoRun.length / 3 })), // the run starts with our VXLAN header
]);

add('tunnel', 'rx-uso-gso0-and-bad-csum', [
  ...tunHead(1),
  ...rec(uplink(usoRun.subarray(8), { gsoType: 5, gsoSize: 0 })),
  ...rec(uplink(frame({ payload: bytes(80) }).bytes, { gsoType: 0x21, gsoSize: 0, flags: 1, csumStart: 84, csumOffset: 16 })),
]);

// --- checksum: [u8 misalign | options][u16 prefix][bytes]
add('checksum', 'tcp-v4-partial', [0x13, ...le16(40), ...frame({ payload: bytes(1000), csum: 'partial' }).bytes]);
add('checksum', 'udp-v6-partial-vlan', [0x05, ...le16(7), ...frame({ v6: true, udp: true, payload: bytes(301), csum: 'partial', vlan: 3 }).bytes]);
{
  // IPv6 with a hop-by-hop header (8 bytes) in front of TCP
  const f = frame({ v6: true, payload: bytes(120), csum: 'none' }).bytes;
  const withHbh = cat(f.subarray(0, 14 + 40), [6, 0, 1, 4, 0, 0, 0, 0], f.subarray(14 + 40));
  withHbh[14 + 6] = 0;
  withHbh[14 + 5] += 8;
  add('checksum', 'tcp-v6-hop-by-hop', [0x1f, ...le16(100), ...withHbh]);
}
add('checksum', 'random-odd', [0x07, ...le16(33), ...bytes(257)]);

for (const [target, files] of Object.entries(corpus)) {
  const dir = path.join(here, 'corpus', target);
  mkdirSync(dir, { recursive: true });
  // regress-* files (inputs that once found a bug) stay; seed-* files are rewritten
  for (const f of readdirSync(dir)) if (f.startsWith('seed-')) rmSync(path.join(dir, f));
  for (const [name, data] of files) writeFileSync(path.join(dir, `seed-${name}`), data);
  process.stderr.write(`seeds: ${files.length} in corpus/${target}\n`);
}
