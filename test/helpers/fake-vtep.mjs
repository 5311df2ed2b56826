#!/usr/bin/env node
/**
 * A fake VTEP for tests: a plain UDP socket on a peer's underlay address that
 * sends hand-made VXLAN datagrams (no kernel VXLAN, no vxtap), so a test controls
 * every byte a vxtap host receives. Runs inside the peer's namespace.
 *
 *   fake-vtep.mjs tcp-corrupt JSON   a TCP client in VXLAN: handshake with a server
 *                                    behind the vxtap host, then data segments larger
 *                                    than the TAP MTU, one of them corrupted (payload
 *                                    changed after its checksum was computed), then
 *                                    the same segment intact, then FIN. Prints a JSON
 *                                    line with what it sent. `corrupt: false` skips
 *                                    the corrupted copy; `partial: true` sends the
 *                                    data segments with partial checksums.
 *   fake-vtep.mjs flood JSON         `count` frames with random unicast source MACs,
 *                                    paced (`burst` frames every `gapMs`), bounded by
 *                                    count and time. Prints a JSON line.
 *   fake-vtep.mjs sources JSON       `count` frames from each of the addresses in
 *                                    `binds` (one socket each): many underlay sources;
 *                                    `rounds` times (default 1), `gapMs` apart.
 *
 * JSON fields: bind (local underlay), bindPort (default 0), remote (vxtap host
 * underlay), port (default 4789), vni; tcp-corrupt: dstMac, srcMac, srcIp, dstIp,
 * dstPort, segment (payload bytes per segment), segments; flood: count, burst, gapMs.
 */
import dgram from 'node:dgram';

const [mode, json] = process.argv.slice(2);
const o = JSON.parse(json);
const port = o.port ?? 4789;
const bindTo = async (address, p) => {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind({ address, port: p }, r));
  return s;
};
const sock = await bindTo(o.bind ?? o.binds[0], o.bindPort ?? 0);
const sendOn = (s, buf) => new Promise((r, j) => s.send(buf, port, o.remote, (err) => (err ? j(err) : r())));
const send = (buf) => sendOn(sock, buf);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The byte at stream offset i of the test pattern. */
export const pattern = (i) => (i * 7 + 3) & 0xff;

function vxlan(inner) {
  const b = Buffer.alloc(8 + inner.length);
  b[0] = 0x08;
  b.writeUIntBE(o.vni, 4, 3);
  inner.copy(b, 8);
  return b;
}

function sum16(buf, start, end, init = 0) {
  let s = init;
  for (let i = start; i + 1 < end; i += 2) s += (buf[i] << 8) | buf[i + 1];
  if ((end - start) & 1) s += buf[end - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

const mac = (s) => Buffer.from(s.split(':').map((h) => parseInt(h, 16)));
const ip4 = (s) => Buffer.from(s.split('.').map(Number));

/**
 * Ethernet + IPv4 + TCP frame with a correct checksum, or with `partial` the
 * folded pseudo-header sum only (CHECKSUM_PARTIAL, as kernel VXLAN with TSO
 * over veth sends: the receiver's stack finishes it).
 */
function tcpFrame({ seq, ack, flags, payload = Buffer.alloc(0), options = Buffer.alloc(0), partial = false }) {
  const tcpLen = 20 + options.length;
  const f = Buffer.alloc(14 + 20 + tcpLen + payload.length);
  mac(o.dstMac).copy(f, 0);
  mac(o.srcMac).copy(f, 6);
  f.writeUInt16BE(0x0800, 12);
  const ip = 14;
  f[ip] = 0x45;
  f.writeUInt16BE(20 + tcpLen + payload.length, ip + 2);
  f.writeUInt16BE(0x4000, ip + 6); // DF
  f[ip + 8] = 64;
  f[ip + 9] = 6;
  ip4(o.srcIp).copy(f, ip + 12);
  ip4(o.dstIp).copy(f, ip + 16);
  f.writeUInt16BE(~sum16(f, ip, ip + 20) & 0xffff, ip + 10);
  const t = ip + 20;
  f.writeUInt16BE(o.srcPort ?? 40000, t);
  f.writeUInt16BE(o.dstPort, t + 2);
  f.writeUInt32BE(seq >>> 0, t + 4);
  f.writeUInt32BE(ack >>> 0, t + 8);
  f[t + 12] = (tcpLen / 4) << 4;
  f[t + 13] = flags;
  f.writeUInt16BE(65535, t + 14);
  options.copy(f, t + 20);
  payload.copy(f, t + tcpLen);
  const l4 = tcpLen + payload.length;
  let pseudo = sum16(f, ip + 12, ip + 20);
  pseudo += 6 + l4;
  f.writeUInt16BE(partial ? sum16(Buffer.alloc(0), 0, 0, pseudo) : ~sum16(f, t, t + l4, pseudo) & 0xffff, t + 16);
  return f;
}

const SYN = 0x02;
const ACK = 0x10;
const PSH = 0x08;
const FIN = 0x01;

async function tcpCorrupt() {
  const isn = 1000;
  let synAck;
  const got = new Promise((resolve) => {
    sock.on('message', (m) => {
      const e = 8;
      if (m.length < e + 14 + 20 + 20 || m.readUInt16BE(e + 12) !== 0x0800 || m[e + 14 + 9] !== 6) return;
      const t = e + 14 + (m[e + 14] & 0x0f) * 4;
      if ((m[t + 13] & (SYN | ACK)) === (SYN | ACK)) resolve(m.readUInt32BE(t + 4));
    });
  });
  const mss = Buffer.from([2, 4, (1400 >> 8) & 0xff, 1400 & 0xff]);
  for (let tries = 0; tries < 20 && synAck === undefined; tries++) {
    await send(vxlan(tcpFrame({ seq: isn, ack: 0, flags: SYN, options: mss })));
    synAck = await Promise.race([got, sleep(250).then(() => undefined)]);
  }
  if (synAck === undefined) throw new Error('no SYN-ACK from the server');
  const ack = synAck + 1;
  await send(vxlan(tcpFrame({ seq: isn + 1, ack, flags: ACK })));
  const seg = o.segment;
  const data = Buffer.alloc(seg * o.segments);
  for (let i = 0; i < data.length; i++) data[i] = pattern(i);
  let corrupted = 0;
  for (let k = 0; k < o.segments; k++) {
    const payload = data.subarray(k * seg, (k + 1) * seg);
    const frame = tcpFrame({ seq: isn + 1 + k * seg, ack, flags: ACK | PSH, payload, partial: o.partial === true });
    if (k === 1 && o.corrupt !== false) {
      // corrupt after the checksum: what a bad link or a buggy middlebox does
      const bad = Buffer.from(frame);
      for (let i = bad.length - seg + 100; i < bad.length - seg + 356; i++) bad[i] ^= 0x55;
      corrupted = 256;
      await send(vxlan(bad));
      await sleep(200);
    }
    await send(vxlan(frame)); // the intact segment (for k = 1, the retransmission)
    await sleep(50);
  }
  await sleep(200);
  await send(vxlan(tcpFrame({ seq: isn + 1 + data.length, ack, flags: ACK | FIN })));
  await sleep(300);
  return { sent: data.length, corrupted, segment: seg, partial: o.partial === true };
}

async function flood() {
  const frame = Buffer.alloc(8 + 60);
  frame[0] = 0x08;
  frame.writeUIntBE(o.vni, 4, 3);
  frame.fill(0xff, 8, 14); // broadcast
  frame.writeUInt16BE(0x88b5, 8 + 12); // local experimental EtherType: the kernel ignores it
  const deadline = Date.now() + (o.maxMs ?? 60_000);
  let sent = 0;
  while (sent < o.count && Date.now() < deadline) {
    for (let i = 0; i < o.burst && sent < o.count; i++, sent++) {
      const src = 8 + 6;
      for (let b = 0; b < 6; b++) frame[src + b] = (Math.random() * 256) | 0;
      frame[src] = (frame[src] & 0xfc) | 0x02; // locally administered unicast
      await send(frame);
    }
    await sleep(o.gapMs);
  }
  return { sent };
}

async function sources() {
  let sent = 0;
  const socks = [sock];
  for (const address of o.binds.slice(1)) socks.push(await bindTo(address, 0));
  for (let round = 0; round < (o.rounds ?? 1); round++) {
    if (round > 0) await sleep(o.gapMs ?? 0);
    for (const s of socks) {
      for (let i = 0; i < o.count; i++, sent++) {
      const frame = Buffer.alloc(8 + 60);
      frame[0] = 0x08;
      frame.writeUIntBE(o.vni, 4, 3);
      frame.fill(0xff, 8, 14);
      Buffer.from([0x02, 0, 0, 0, (sent >> 8) & 0xff, sent & 0xff]).copy(frame, 14);
      frame.writeUInt16BE(0x88b5, 8 + 12);
      await sendOn(s, frame);
      }
    }
  }
  for (const s of socks.slice(1)) s.close();
  return { sent };
}

try {
  const r = mode === 'tcp-corrupt' ? await tcpCorrupt() : mode === 'flood' ? await flood() : mode === 'sources' ? await sources() : null;
  if (!r) throw new Error(`unknown mode '${mode}'`);
  process.stdout.write(JSON.stringify(r) + '\n');
} finally {
  sock.close();
}
