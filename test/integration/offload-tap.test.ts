/**
 * Real-kernel check of the offload kernels: a TSO super-frame built in JS goes
 * through txOffload (segments) and rxOffload (re-coalesced GSO super-frame) and is
 * written to a vnet_hdr TAP in a namespace of our own; a TCP socket listening there
 * must receive every byte. This is what proves the kernel accepts the vnet_hdr,
 * the rewritten IP header and the seeded checksum rxOffload produces.
 * Needs root and /dev/net/tun; names start with `vxo`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { native, POLLIN, RX_OFFLOAD, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TX_OFFLOAD, VNET_HDR_LEN, type TapHandle } from '../../src/native/index.js';
import { HostScope, listNetns, uniqueTag } from '../../src/host/netns.js';
import { run } from '../../src/host/exec.js';
import { onesSum, pseudoSumV4, pseudoSumV6 } from '../../src/wire/checksum.js';

const canRun = process.getuid?.() === 0 && existsSync('/dev/net/tun');
const addon = canRun ? native() : undefined;

const VNI = 42;
const VXLAN = Uint8Array.from([0x08, 0, 0, 0, 0, 0, VNI, 0]);
const TAP_MAC = Uint8Array.from([2, 0, 0, 0x0f, 0, 2]);
const PEER_MAC = Uint8Array.from([2, 0, 0, 0x0f, 0, 1]);
const PORT = 5201;
const SYN = 0x02;
const FIN = 0x01;
const PSH = 0x08;
const ACK = 0x10;

interface Family {
  v6: boolean;
  local: string; // the TAP's address (the listener)
  peer: string; // our side
  localBytes: number[];
  peerBytes: number[];
}

const V4: Family = { v6: false, local: '198.19.0.2', peer: '198.19.0.1', localBytes: [198, 19, 0, 2], peerBytes: [198, 19, 0, 1] };
const v6b = (last: number) => [0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last];
const V6: Family = { v6: true, local: '2001:2::2', peer: '2001:2::1', localBytes: v6b(2), peerBytes: v6b(1) };

/** Ethernet + IP + TCP from the peer to the listener; checksum full, or partial (pseudo sum). */
function tcpFrame(fam: Family, seq: number, ack: number, flags: number, payload: Uint8Array, opts: number[] = [], partial = false): { frame: Uint8Array; l4: number; hdrs: number } {
  const l3 = 14;
  const ipLen = fam.v6 ? 40 : 20;
  const l4 = l3 + ipLen;
  const l4hdr = 20 + opts.length;
  const hdrs = l4 + l4hdr;
  const f = new Uint8Array(hdrs + payload.length);
  const dv = new DataView(f.buffer);
  f.set(TAP_MAC, 0);
  f.set(PEER_MAC, 6);
  dv.setUint16(12, fam.v6 ? 0x86dd : 0x0800);
  const l4len = l4hdr + payload.length;
  if (fam.v6) {
    dv.setUint32(l3, 0x60000000);
    dv.setUint16(l3 + 4, l4len);
    f[l3 + 6] = 6;
    f[l3 + 7] = 64;
    f.set(fam.peerBytes, l3 + 8);
    f.set(fam.localBytes, l3 + 24);
  } else {
    f[l3] = 0x45;
    dv.setUint16(l3 + 2, ipLen + l4len);
    dv.setUint16(l3 + 4, 0x4242);
    dv.setUint16(l3 + 6, 0x4000);
    f[l3 + 8] = 64;
    f[l3 + 9] = 6;
    f.set(fam.peerBytes, l3 + 12);
    f.set(fam.localBytes, l3 + 16);
    dv.setUint16(l3 + 10, ~onesSum(f, l3, 20) & 0xffff);
  }
  dv.setUint16(l4, 40001);
  dv.setUint16(l4 + 2, PORT);
  dv.setUint32(l4 + 4, seq >>> 0);
  dv.setUint32(l4 + 8, ack >>> 0);
  f[l4 + 12] = (l4hdr / 4) << 4;
  f[l4 + 13] = flags;
  dv.setUint16(l4 + 14, 65535);
  f.set(opts, l4 + 20);
  f.set(payload, hdrs);
  const pseudo = fam.v6 ? pseudoSumV6(f, l3, 6, l4len) : pseudoSumV4(f, l3, 6, l4len);
  dv.setUint16(l4 + 16, partial ? pseudo : ~onesSum(f, l4, l4len, pseudo) & 0xffff);
  return { frame: f, l4, hdrs };
}

function withVnet(frame: Uint8Array, h: number[] = []): Uint8Array {
  const b = new Uint8Array(VNET_HDR_LEN + frame.length);
  const dv = new DataView(b.buffer);
  b[0] = h[0] ?? 0;
  b[1] = h[1] ?? 0;
  for (let i = 2; i < h.length; i++) dv.setUint16(2 * (i - 1), h[i], true);
  b.set(frame, VNET_HDR_LEN);
  return b;
}

/** Write frames (each with its vnet_hdr) to the TAP; returns the errnos. */
function writeFrames(fd: number, frames: Uint8Array[]): number[] {
  const total = frames.reduce((n, f) => n + f.length, 0);
  const bufs = new Uint8Array(total);
  const offsets = new Uint32Array(frames.length);
  const sizes = new Uint32Array(frames.length);
  let o = 0;
  frames.forEach((f, i) => {
    bufs.set(f, o);
    offsets[i] = o;
    sizes[i] = f.length;
    o += f.length;
  });
  const errs = new Int32Array(frames.length);
  expect(addon!.writeBatch(fd, bufs, offsets, sizes, frames.length, errs)).toBe(frames.length);
  return Array.from(errs);
}

/** Wait (bounded) for the listener's SYN-ACK on the TAP; returns its sequence number. */
async function readSynAck(fd: number, fam: Family): Promise<number> {
  const slot = 70_000;
  const bufs = new Uint8Array(slot * 8);
  const offsets = Uint32Array.from({ length: 8 }, (_, i) => i * slot);
  const sizes = new Uint32Array(8);
  const fds = Int32Array.of(fd);
  const ev = Int16Array.of(POLLIN);
  const rev = new Int16Array(1);
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    addon!.poll(fds, ev, rev, 50);
    const n = addon!.readBatch(fd, bufs, offsets, sizes, slot, 8);
    for (let i = 0; i < n; i++) {
      const e = bufs.subarray(offsets[i] + VNET_HDR_LEN, offsets[i] + sizes[i]);
      const dv = new DataView(e.buffer, e.byteOffset, e.length);
      if (e.length < 54 || dv.getUint16(12) !== (fam.v6 ? 0x86dd : 0x0800)) continue;
      const l4 = fam.v6 ? (e[20] === 6 ? 54 : -1) : e[23] === 6 ? 14 + (e[14] & 15) * 4 : -1;
      if (l4 < 0 || dv.getUint16(l4) !== PORT || (e[l4 + 13] & (SYN | ACK)) !== (SYN | ACK)) continue;
      return dv.getUint32(l4 + 4);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('no SYN-ACK from the listener within 5 s');
}

function pseudoRandom(n: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

describe.skipIf(!canRun)('offload kernels against a real vnet_hdr TAP', () => {
  const scope = new HostScope('vxo');
  let ns = '';
  let tap: TapHandle | undefined;

  beforeAll(async () => {
    const tag = uniqueTag();
    ns = await scope.netns(tag);
    tap = addon!.tapOpen(`vxo${tag}t`, { vnetHdr: true });
    const fd = tap.fd;
    scope.onCleanup(() => addon!.close(fd));
    addon!.tapSetOffload(fd, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
    addon!.ifSetMac(tap.name, TAP_MAC);
    await run(['ip', 'link', 'set', tap.name, 'netns', ns]);
    await run(['ip', 'link', 'set', tap.name, 'up'], { netns: ns });
    await run(['ip', 'addr', 'add', `${V4.local}/24`, 'dev', tap.name], { netns: ns });
    await run(['ip', '-6', 'addr', 'add', `${V6.local}/64`, 'dev', tap.name, 'nodad'], { netns: ns });
    const mac = Array.from(PEER_MAC, (x) => x.toString(16).padStart(2, '0')).join(':');
    await run(['ip', 'neigh', 'replace', V4.peer, 'lladdr', mac, 'dev', tap.name, 'nud', 'permanent'], { netns: ns });
    await run(['ip', '-6', 'neigh', 'replace', V6.peer, 'lladdr', mac, 'dev', tap.name, 'nud', 'permanent'], { netns: ns });
  });

  afterAll(async () => {
    await scope.cleanup();
    // No leaks: the namespace is gone, and the TAP with it (its fd was closed first).
    expect(await listNetns()).not.toContain(ns);
  });

  it.each([
    ['IPv4', V4],
    ['IPv6', V6],
  ])('%s: a re-coalesced GSO super-frame is accepted and delivered to a socket', async (_n, fam) => {
    const fd = tap!.fd;
    // Listener: counts and hashes what it receives, prints it at FIN; exits by itself after 15 s.
    const script = `const net=require('net'),h=require('crypto').createHash('sha256');let n=0;
const s=net.createServer(c=>{c.on('data',d=>{h.update(d);n+=d.length});c.on('end',()=>{console.log(JSON.stringify({n,sha:h.digest('hex')}));c.end();s.close();setTimeout(()=>process.exit(0),50)})});
s.listen(${PORT},'${fam.local}',()=>console.log('listening'));setTimeout(()=>process.exit(3),15000);`;
    const child = scope.spawn([process.execPath, '-e', script], { netns: ns });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const deadline = Date.now() + 5000;
    while (!stdout.includes('listening') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(stdout).toContain('listening');

    // Handshake through the TAP (plain frames, full checksums, zero vnet_hdr).
    const isn = 0x7fff0000;
    expect(writeFrames(fd, [withVnet(tcpFrame(fam, isn, 0, SYN, new Uint8Array(0), [2, 4, 0x05, 0xb4]).frame)])).toEqual([0]);
    const serverIsn = await readSynAck(fd, fam);
    const seq = isn + 1;
    const ack = (serverIsn + 1) >>> 0;
    expect(writeFrames(fd, [withVnet(tcpFrame(fam, seq, ack, ACK, new Uint8Array(0)).frame)])).toEqual([0]);

    // A TSO super-frame (as a TAP read would give it) -> txOffload -> rxOffload.
    const mss = 1448;
    const payload = pseudoRandom(40_000);
    const sup = tcpFrame(fam, seq, ack, ACK | PSH | FIN, payload, [], true);
    const tapRead = withVnet(sup.frame, [1, fam.v6 ? 4 : 1, sup.hdrs, mss, sup.l4, 16]);
    const out = new Uint8Array(256 * 1024);
    const cap = 64;
    const msgBuf = new Uint8Array(cap);
    const msgOffsets = new Uint32Array(cap);
    const msgSizes = new Uint32Array(cap);
    const msgGso = new Uint16Array(cap);
    const msgFrame = new Uint32Array(cap);
    const txr = new Uint32Array(TX_OFFLOAD.LENGTH);
    const txh = addon!.txOffloadBind({
      bufs: tapRead,
      offsets: Uint32Array.of(0),
      sizes: Uint32Array.of(tapRead.length),
      vxlan: VXLAN,
      maxMsgBytes: 65507,
      out,
      outOffset: 0,
      msgBuf,
      msgOffsets,
      msgSizes,
      msgGso,
      msgFrame,
      result: txr,
    });
    const nMsg = addon!.txOffload(txh, 1);
    expect(txr[TX_OFFLOAD.DROPPED]).toBe(0);
    expect(txr[TX_OFFLOAD.SEGMENTS]).toBe(Math.ceil(payload.length / mss));
    const rxOut = new Uint8Array(128 * 1024);
    const frameOffsets = new Uint32Array(16);
    const frameSizes = new Uint32Array(16);
    const rxr = new Uint32Array(RX_OFFLOAD.LENGTH);
    const rxh = addon!.rxOffloadBind({
      bufs: out,
      offsets: msgOffsets.slice(0, nMsg),
      sizes: msgSizes.slice(0, nMsg),
      gso: msgGso.slice(0, nMsg),
      ok: new Uint8Array(nMsg).fill(1),
      vni: VNI,
      out: rxOut,
      outOffset: 0,
      frameOffsets,
      frameSizes,
      result: rxr,
    });
    const nFrames = addon!.rxOffload(rxh, nMsg);
    expect(nFrames).toBe(1);
    expect(rxr[RX_OFFLOAD.SUPER_FRAMES]).toBe(1);
    const superWrite = rxOut.slice(frameOffsets[0], frameOffsets[0] + frameSizes[0]);
    expect(superWrite[1]).toBe(fam.v6 ? 4 : 1);
    expect(writeFrames(fd, [superWrite])).toEqual([0]);

    // The listener must see all 40000 bytes, then the FIN.
    const end = Date.now() + 5000;
    while (!stdout.includes('"sha"') && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const line = stdout.split('\n').find((l) => l.includes('"sha"'));
    expect(line, `listener output: ${stdout}`).toBeDefined();
    const got = JSON.parse(line!) as { n: number; sha: string };
    expect(got.n).toBe(payload.length);
    expect(got.sha).toBe(createHash('sha256').update(payload).digest('hex'));
  });

  it('keeps the TAP in the test namespace (removed with it in afterAll)', async () => {
    const links = await run(['ip', '-o', 'link', 'show', tap!.name], { netns: ns });
    expect(links.stdout).toContain(tap!.name);
  });
});
