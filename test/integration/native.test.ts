/**
 * The native addon against real kernel objects: TAP devices moved into a
 * namespace this test creates (198.19.77.0/24 there), UDP on loopback only,
 * eventfd/poll across threads, and abuse that must throw instead of crashing.
 * Everything created is removed in afterAll, also after a failure.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { native, isErrno, ADDR_LEN, POLLIN, TUN_F_CSUM, VNET_HDR_LEN, type NativeAddon, type NativeError } from '../../src/native/index.js';
import { HostScope, uniqueTag } from '../../src/host/netns.js';
import { run, output } from '../../src/host/exec.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const ADDON_PATH = path.resolve(here, '../../native/build/Release/vxtap_native.node');

const tag = uniqueTag();
const scope = new HostScope('vxn');
/** Every fd this file opens; closed in afterAll (closing a TAP fd removes the device). */
const openFds = new Set<number>();
let n: NativeAddon;

function track(fd: number): number {
  openFds.add(fd);
  return fd;
}
function closeFd(fd: number): void {
  if (openFds.delete(fd)) n.close(fd);
}

beforeAll(() => {
  n = native();
});

afterAll(async () => {
  for (const fd of [...openFds]) {
    try {
      n.close(fd);
    } catch {
      /* already closed */
    }
  }
  openFds.clear();
  await scope.cleanup();
  // Leak check: no link or namespace of this run survives.
  const links = await output(['ip', '-o', 'link', 'show']);
  expect(links).not.toContain(`vxn${tag}`);
  const nss = await output(['ip', 'netns', 'list'], { allowFail: true });
  expect(nss).not.toContain(`vxn${tag}`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- reference checksum (slow, obvious) ----------------------------------------

function fold(s: number): number {
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}
function refSum(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i + 1 < len; i += 2) s += (b[off + i] << 8) | b[off + i + 1];
  if (len & 1) s += b[off + len - 1] << 8;
  return fold(s);
}
const be16 = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

// --- frames for the namespace's stack ------------------------------------------

const NS_IP = [198, 19, 77, 1];
const FAKE_IP = [198, 19, 77, 2];
const FAKE_MAC = [0x02, 0, 0, 0, 0x77, 0x02];

/** An ARP reply from FAKE_IP/FAKE_MAC to the requester in `req` (an Ethernet frame). */
function arpReply(req: Uint8Array): Uint8Array {
  const f = new Uint8Array(42);
  f.set(req.subarray(6, 12), 0);
  f.set(FAKE_MAC, 6);
  put16(f, 12, 0x0806);
  put16(f, 14, 1);
  put16(f, 16, 0x0800);
  f[18] = 6;
  f[19] = 4;
  put16(f, 20, 2);
  f.set(FAKE_MAC, 22);
  f.set(FAKE_IP, 28);
  f.set(req.subarray(22, 28), 32); // requester's MAC and IP
  f.set(req.subarray(28, 32), 38);
  return f;
}

/** An ICMP echo reply answering the echo request `req`. */
function echoReply(req: Uint8Array): Uint8Array {
  const f = new Uint8Array(req);
  f.set(req.subarray(6, 12), 0);
  f.set(FAKE_MAC, 6);
  f.set(req.subarray(30, 34), 26); // swap IPs (the header checksum stays valid)
  f.set(req.subarray(26, 30), 30);
  const ihl = (f[14] & 15) * 4;
  const icmp = 14 + ihl;
  const len = be16(f, 16) - ihl;
  f[icmp] = 0;
  put16(f, icmp + 2, 0);
  put16(f, icmp + 2, ~n.checksum(f, icmp, len, 0) & 0xffff);
  return f;
}

const isArpRequestForFake = (f: Uint8Array) => f.length >= 42 && be16(f, 12) === 0x0806 && be16(f, 20) === 1 && f.subarray(38, 42).every((x, i) => x === FAKE_IP[i]);
const isEchoToFake = (f: Uint8Array) => f.length >= 42 && be16(f, 12) === 0x0800 && f[23] === 1 && f[34] === 8 && f.subarray(30, 34).every((x, i) => x === FAKE_IP[i]);

/**
 * Answer ARP and ICMP echo for FAKE_IP on the TAP queue `fd` until `done` settles
 * (bounded by `timeoutMs`). `hdr` is the vnet header length in front of each frame.
 */
async function respond(fd: number, hdr: number, done: Promise<unknown>, timeoutMs: number) {
  const SLOT = 2048;
  const MAX = 16;
  const bufs = new Uint8Array(SLOT * MAX);
  const offsets = Uint32Array.from({ length: MAX }, (_, i) => i * SLOT);
  const sizes = new Uint32Array(MAX);
  const out = new Uint8Array(SLOT * MAX);
  const outSizes = new Uint32Array(MAX);
  const errs = new Int32Array(MAX);
  const seen = { arp: 0, echo: 0, written: 0, hdrs: [] as number[][] };
  const run = { finished: false }; // set from the promise callback
  void done.finally(() => (run.finished = true));
  const deadline = Date.now() + timeoutMs;
  while (!run.finished && Date.now() < deadline) {
    const count = n.readBatch(fd, bufs, offsets, sizes, SLOT, MAX);
    let w = 0;
    for (let i = 0; i < count; i++) {
      expect(sizes[i]).toBeLessThanOrEqual(SLOT);
      const frame = bufs.subarray(offsets[i] + hdr, offsets[i] + sizes[i]);
      if (hdr) seen.hdrs.push([...bufs.subarray(offsets[i], offsets[i] + hdr)]);
      let reply: Uint8Array | undefined;
      if (isArpRequestForFake(frame)) {
        seen.arp++;
        reply = arpReply(frame);
      } else if (isEchoToFake(frame)) {
        seen.echo++;
        reply = echoReply(frame);
      }
      if (reply) {
        out.fill(0, offsets[w], offsets[w] + hdr); // zero virtio_net_hdr: a plain frame
        out.set(reply, offsets[w] + hdr);
        outSizes[w++] = hdr + reply.length;
      }
    }
    if (w) {
      expect(n.writeBatch(fd, out, offsets, outSizes, w, errs)).toBe(w);
      expect([...errs.subarray(0, w)]).toEqual(new Array(w).fill(0));
      seen.written += w;
    }
    if (count === 0) await sleep(2);
  }
  return seen;
}

/** Open a TAP in the root namespace, move it into a fresh namespace, address it, up. */
async function tapInNamespace(suffix: string, options: { vnetHdr?: boolean } = {}) {
  const ns = await scope.netns(`${tag}${suffix}`);
  const tap = n.tapOpen(`vxn${tag}${suffix}`, options);
  track(tap.fd);
  expect(tap.name).toBe(`vxn${tag}${suffix}`);
  await run(['ip', 'link', 'set', tap.name, 'netns', ns]);
  await run(['ip', 'addr', 'add', `${NS_IP.join('.')}/24`, 'dev', tap.name], { netns: ns });
  await run(['ip', 'link', 'set', tap.name, 'up'], { netns: ns });
  return { ns, tap };
}

// -------------------------------------------------------------------------------

describe('TAP devices', () => {
  it('opens a TAP, sets MTU/MAC/up through ioctls, and reports errors with code/errno/syscall', () => {
    const tap = n.tapOpen(`vxn${tag}i`);
    track(tap.fd);
    expect(tap.fd).toBeGreaterThan(2);
    const index = n.ifIndex(tap.name);
    expect(index).toBe(Number(readFileSync(`/sys/class/net/${tap.name}/ifindex`, 'utf8')));
    expect(n.ifIndex(`vxn${tag}none`)).toBe(0);

    n.ifSetMtu(tap.name, 1400);
    expect(n.ifGetMtu(tap.name)).toBe(1400);
    const mac = Uint8Array.from([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
    n.ifSetMac(tap.name, mac);
    expect([...n.ifGetMac(tap.name)]).toEqual([...mac]);
    n.ifSetUp(tap.name, true);
    expect(Number(readFileSync(`/sys/class/net/${tap.name}/flags`, 'utf8')) & 1).toBe(1);
    n.ifSetUp(tap.name, false);
    expect(Number(readFileSync(`/sys/class/net/${tap.name}/flags`, 'utf8')) & 1).toBe(0);

    // A second non-multi-queue open of the same device is refused.
    let err: NativeError | undefined;
    try {
      track(n.tapOpen(tap.name).fd);
    } catch (e) {
      err = e as NativeError;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err!.code).toBe('EBUSY');
    expect(err!.errno).toBe(16);
    expect(err!.syscall).toBe('ioctl(TUNSETIFF)');
    expect(err!.message).toBe('ioctl(TUNSETIFF): Device or resource busy (EBUSY)');
    expect(isErrno(err, 'EBUSY')).toBe(true);

    // Unknown offload bits: EINVAL from TUNSETOFFLOAD.
    expect(() => n.tapSetOffload(tap.fd, 0x8000)).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'ioctl(TUNSETOFFLOAD)' }));
    closeFd(tap.fd);
    expect(n.ifIndex(tap.name)).toBe(0); // a non-persistent TAP goes with its last fd
  });

  it('rejects invalid names: the kernel with EINVAL, the addon with RangeError', () => {
    expect(() => n.tapOpen('bad/name')).toThrow(expect.objectContaining({ code: 'EINVAL', errno: 22, syscall: 'ioctl(TUNSETIFF)' }));
    expect(() => n.tapOpen('vxn-name-too-long')).toThrow(RangeError);
    expect(() => n.ifGetMtu(`vxn${tag}none`)).toThrow(expect.objectContaining({ code: 'ENODEV', syscall: 'ioctl(SIOCGIFMTU)' }));
  });

  it('expands a name pattern and opens a multi-queue TAP twice', () => {
    const q0 = n.tapOpen(`vxn${tag}q%d`, { multiQueue: true });
    track(q0.fd);
    expect(q0.name).toMatch(new RegExp(`^vxn${tag}q\\d+$`));
    const q1 = n.tapOpen(q0.name, { multiQueue: true });
    track(q1.fd);
    expect(q1.name).toBe(q0.name);
    expect(q1.fd).not.toBe(q0.fd);
    expect(() => track(n.tapOpen(q0.name).fd)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    closeFd(q0.fd);
    expect(n.ifIndex(q0.name)).toBeGreaterThan(0); // still one queue
    closeFd(q1.fd);
    expect(n.ifIndex(q0.name)).toBe(0);
  });

  it('moves frames both ways after the TAP moved into a namespace: ARP and ping answered from JS', async () => {
    const { ns, tap } = await tapInNamespace('p');
    const ping = run(['ping', '-c', '3', '-i', '0.2', '-W', '2', FAKE_IP.join('.')], { netns: ns, allowFail: true, timeoutMs: 15_000 });
    const seen = await respond(tap.fd, 0, ping, 15_000);
    const result = await ping;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('3 received');
    expect(seen.arp).toBeGreaterThanOrEqual(1);
    expect(seen.echo).toBe(3);
    const neigh = await output(['ip', 'neigh', 'show', FAKE_IP.join('.'), 'dev', tap.name], { netns: ns });
    expect(neigh).toContain('02:00:00:00:77:02');
    closeFd(tap.fd);
  });

  it('carries 10-byte virtio_net_hdr on a vnet_hdr TAP, and completes a real CHECKSUM_PARTIAL UDP frame', async () => {
    const { ns, tap } = await tapInNamespace('v', { vnetHdr: true });
    n.tapSetVnetHdrSize(tap.fd, VNET_HDR_LEN);
    n.tapSetOffload(tap.fd, TUN_F_CSUM);
    const ping = run(['ping', '-c', '2', '-i', '0.2', '-W', '2', FAKE_IP.join('.')], { netns: ns, allowFail: true, timeoutMs: 15_000 });
    const seen = await respond(tap.fd, VNET_HDR_LEN, ping, 15_000);
    const result = await ping;
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(seen.echo).toBe(2);
    // ARP and ICMP need no offload: their headers are all zero.
    expect(seen.hdrs.length).toBeGreaterThanOrEqual(3);

    // A UDP datagram from the namespace's stack leaves with TX checksum offload:
    // flags NEEDS_CSUM, csum_start 34, csum_offset 6, the field holding only the
    // pseudo-header sum. completeChecksums must finish it.
    await run(['bash', '-c', `echo vxtap-native-test > /dev/udp/${FAKE_IP.join('.')}/9`], { netns: ns });
    const SLOT = 2048;
    const bufs = new Uint8Array(SLOT * 8);
    const offsets = Uint32Array.from({ length: 8 }, (_, i) => i * SLOT);
    const sizes = new Uint32Array(8);
    let frame: Uint8Array | undefined;
    let vhdr: Uint8Array | undefined;
    for (let tries = 0; tries < 200 && !frame; tries++) {
      const count = n.readBatch(tap.fd, bufs, offsets, sizes, SLOT, 8);
      for (let i = 0; i < count; i++) {
        const f = bufs.subarray(offsets[i] + VNET_HDR_LEN, offsets[i] + sizes[i]);
        if (be16(f, 12) === 0x0800 && f[23] === 17) {
          frame = new Uint8Array(f);
          vhdr = new Uint8Array(bufs.subarray(offsets[i], offsets[i] + VNET_HDR_LEN));
        }
      }
      if (!frame) await sleep(10);
    }
    expect(frame, 'UDP frame from the namespace').toBeDefined();
    const f = frame!;
    const hdr = vhdr!;
    const csumStart = hdr[6] | (hdr[7] << 8); // host-endian (little-endian here)
    const csumOffset = hdr[8] | (hdr[9] << 8);
    expect(hdr[0] & 1).toBe(1); // VIRTIO_NET_HDR_F_NEEDS_CSUM
    expect(csumStart).toBe(34);
    expect(csumOffset).toBe(6);
    const udpLen = be16(f, 38);
    const pseudo = fold(refSum(f, 26, 8) + 17 + udpLen);
    expect(be16(f, 40)).toBe(pseudo);
    const done = n.completeChecksums(f, Uint32Array.of(0), Uint32Array.of(f.length), 1);
    expect(done).toBe(1);
    // Verify: the full sum over pseudo-header + segment is 0xffff.
    expect(fold(fold(refSum(f, 26, 8) + 17 + udpLen) + refSum(f, 34, udpLen))).toBe(0xffff);
    closeFd(tap.fd);
  });
});

// -------------------------------------------------------------------------------

/** An IPv4 loopback address record for `port`. */
function rec4(addrs: Uint8Array, i: number, port: number, ip = [127, 0, 0, 1]): void {
  const o = i * ADDR_LEN;
  addrs.fill(0, o, o + ADDR_LEN);
  addrs[o] = 4;
  put16(addrs, o + 2, port);
  addrs.set(ip, o + 4);
}

interface Slab {
  bufs: Uint8Array;
  offsets: Uint32Array;
  sizes: Uint32Array;
  addrs: Uint8Array;
  gso: Uint16Array;
  errs: Int32Array;
  fds: Int32Array;
}
function slab(count: number, slot: number): Slab {
  return {
    bufs: new Uint8Array(count * slot),
    offsets: Uint32Array.from({ length: count }, (_, i) => i * slot),
    sizes: new Uint32Array(count),
    addrs: new Uint8Array(count * ADDR_LEN),
    gso: new Uint16Array(count),
    errs: new Int32Array(count),
    fds: new Int32Array(count),
  };
}

/** recvBatch until `want` datagrams arrived (bounded). */
async function recvAll(fd: number, s: Slab, slot: number, want: number): Promise<number> {
  const rev = new Int16Array(1);
  let got = 0;
  for (let tries = 0; tries < 100 && got < want; tries++) {
    if (n.poll(Int32Array.of(fd), Int16Array.of(POLLIN), rev, 20) === 0) continue;
    // Receive into the slots after what we have.
    const max = Math.min(s.offsets.length - got, 64);
    const offsets = s.offsets.subarray(got);
    const c = n.recvBatch(fd, s.bufs, offsets, s.sizes.subarray(got), slot, max, s.addrs.subarray(got * ADDR_LEN), s.gso.subarray(got));
    got += c;
  }
  await Promise.resolve();
  return got;
}

describe('UDP batches on loopback', () => {
  it('round-trips a batch with source address records and replicates one frame to two sockets', async () => {
    const rx1 = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    const rx2 = track(n.udpOpen({ address: '127.0.0.1', port: 0, reusePort: true, rcvbuf: 1 << 20, sndbuf: 1 << 20 }));
    const tx = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    const p1 = n.udpLocalPort(rx1);
    const p2 = n.udpLocalPort(rx2);
    const ptx = n.udpLocalPort(tx);
    expect(p1).toBeGreaterThan(0);

    const out = slab(8, 256);
    for (let i = 0; i < 4; i++) {
      out.bufs.fill(i + 1, out.offsets[i], out.offsets[i] + 100 + i);
      out.sizes[i] = 100 + i;
      out.fds[i] = tx;
      rec4(out.addrs, i, p1);
    }
    // Entries 4 and 5: the same bytes (entry 0's) to rx1 and rx2: replication.
    for (const [i, port] of [
      [4, p1],
      [5, p2],
    ] as const) {
      out.offsets[i] = out.offsets[0];
      out.sizes[i] = out.sizes[0];
      out.fds[i] = tx;
      rec4(out.addrs, i, port);
    }
    expect(n.sendBatch(out.fds, out.bufs, out.offsets, out.sizes, 6, out.addrs, out.gso, out.errs)).toBe(6);
    expect([...out.errs.subarray(0, 6)]).toEqual([0, 0, 0, 0, 0, 0]);

    const in1 = slab(8, 256);
    expect(await recvAll(rx1, in1, 256, 5)).toBe(5);
    expect([...in1.sizes.subarray(0, 5)]).toEqual([100, 101, 102, 103, 100]);
    for (let i = 0; i < 5; i++) {
      const b = in1.bufs[in1.offsets[i]];
      expect(b).toBe(i < 4 ? i + 1 : 1);
      const r = in1.addrs.subarray(i * ADDR_LEN, (i + 1) * ADDR_LEN);
      expect(r[0]).toBe(4);
      expect(be16(r, 2)).toBe(ptx);
      expect([...r.subarray(4, 8)]).toEqual([127, 0, 0, 1]);
      expect(r.subarray(8).every((x) => x === 0)).toBe(true);
      expect(in1.gso[i]).toBe(0);
    }
    const in2 = slab(4, 256);
    expect(await recvAll(rx2, in2, 256, 1)).toBe(1);
    expect(in2.sizes[0]).toBe(100);
    expect(in2.bufs.subarray(0, 100).every((x) => x === 1)).toBe(true);
    // Nothing more is queued: a non-blocking receive returns 0.
    expect(n.recvBatch(rx1, in1.bufs, in1.offsets, in1.sizes, 256, 8, in1.addrs, in1.gso)).toBe(0);
    for (const fd of [rx1, rx2, tx]) closeFd(fd);
  });

  it('reports per-message errors in errs and goes on (EMSGSIZE with pmtu do), and MSG_TRUNC as slotLen + 1', async () => {
    const rx = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    const tx = track(n.udpOpen({ address: '127.0.0.1', port: 0, pmtu: 'do' }));
    const port = n.udpLocalPort(rx);
    const SLOT = 70_000;
    const out = slab(4, SLOT);
    out.sizes.set([200, 65_600, 300, 1000]); // entry 1 exceeds the 65507-byte UDP maximum
    for (let i = 0; i < 4; i++) {
      out.fds[i] = tx;
      rec4(out.addrs, i, port);
    }
    expect(n.sendBatch(out.fds, out.bufs, out.offsets, out.sizes, 4, out.addrs, out.gso, out.errs)).toBe(4);
    expect(out.errs[0]).toBe(0);
    expect(out.errs[1]).toBe(90); // EMSGSIZE
    expect(out.errs[2]).toBe(0);
    expect(out.errs[3]).toBe(0);
    const inb = slab(4, 512);
    expect(await recvAll(rx, inb, 512, 3)).toBe(3);
    expect([...inb.sizes.subarray(0, 3)]).toEqual([200, 300, 513]); // 1000 > slotLen 512
    for (const fd of [rx, tx]) closeFd(fd);
  });

  it('sends UDP GSO super-datagrams that a UDP_GRO socket receives whole, with gso[i]', async () => {
    const rx = track(n.udpOpen({ address: '127.0.0.1', port: 0, gro: true }));
    const plain = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    const tx = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    const SLOT = 65_536;
    const out = slab(2, SLOT);
    out.sizes.set([4000, 4000]);
    out.gso.set([1000, 1000]);
    out.fds.set([tx, tx]);
    rec4(out.addrs, 0, n.udpLocalPort(rx));
    rec4(out.addrs, 1, n.udpLocalPort(plain));
    for (let i = 0; i < 4000; i++) out.bufs[i] = i & 0xff;
    out.offsets[1] = 0;
    expect(n.sendBatch(out.fds, out.bufs, out.offsets, out.sizes, 2, out.addrs, out.gso, out.errs)).toBe(2);
    expect([...out.errs.subarray(0, 2)]).toEqual([0, 0]);

    const inGro = slab(8, SLOT);
    expect(await recvAll(rx, inGro, SLOT, 1)).toBe(1);
    expect(inGro.sizes[0]).toBe(4000);
    expect(inGro.gso[0]).toBe(1000);
    expect(inGro.bufs[3999]).toBe(3999 & 0xff);
    // Without UDP_GRO the kernel segments: four 1000-byte datagrams, gso 0.
    const inPlain = slab(8, SLOT);
    expect(await recvAll(plain, inPlain, SLOT, 4)).toBe(4);
    expect([...inPlain.sizes.subarray(0, 4)]).toEqual([1000, 1000, 1000, 1000]);
    expect([...inPlain.gso.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
    for (const fd of [rx, plain, tx]) closeFd(fd);
  });

  it('speaks IPv6 on ::1, reports v4-mapped sources as IPv4, and fails IPv4 on a v6-only socket per message', async () => {
    const rx6 = track(n.udpOpen({ address: '::1', port: 0, pmtu: 'want' }));
    const tx6 = track(n.udpOpen({ address: '::1', port: 0 }));
    const out = slab(2, 256);
    out.sizes.set([64, 64]);
    out.fds.set([tx6, tx6]);
    out.addrs[0] = 6;
    put16(out.addrs, 2, n.udpLocalPort(rx6));
    out.addrs[19] = 1; // ::1
    rec4(out.addrs, 1, n.udpLocalPort(rx6)); // IPv4 record on a v6-only socket
    expect(n.sendBatch(out.fds, out.bufs, out.offsets, out.sizes, 2, out.addrs, out.gso, out.errs)).toBe(2);
    expect(out.errs[0]).toBe(0);
    expect(out.errs[1]).toBe(101); // ENETUNREACH
    const in6 = slab(2, 256);
    expect(await recvAll(rx6, in6, 256, 1)).toBe(1);
    expect(in6.addrs[0]).toBe(6);
    expect(be16(in6.addrs, 2)).toBe(n.udpLocalPort(tx6));
    expect([...in6.addrs.subarray(4, 20)]).toEqual([...new Array(15).fill(0), 1]);

    // A dual-stack socket bound to the v4-mapped loopback address.
    const dual = track(n.udpOpen({ address: '::ffff:127.0.0.1', port: 0, v6only: false, pmtu: 'dont' }));
    const tx4 = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    rec4(out.addrs, 0, n.udpLocalPort(dual));
    out.fds[0] = tx4;
    expect(n.sendBatch(out.fds, out.bufs, out.offsets, out.sizes, 1, out.addrs, out.gso, out.errs)).toBe(1);
    const inD = slab(2, 256);
    expect(await recvAll(dual, inD, 256, 1)).toBe(1);
    expect(inD.addrs[0]).toBe(4);
    expect([...inD.addrs.subarray(4, 8)]).toEqual([127, 0, 0, 1]);
    expect(be16(inD.addrs, 2)).toBe(n.udpLocalPort(tx4));
    // ...and answers through the same record (sockaddr_in on an AF_INET6 socket).
    inD.fds[0] = dual;
    inD.sizes[0] = 10;
    expect(n.sendBatch(inD.fds, inD.bufs, inD.offsets, inD.sizes, 1, inD.addrs, inD.gso, inD.errs)).toBe(1);
    expect(inD.errs[0]).toBe(0);
    const back = slab(1, 256);
    expect(await recvAll(tx4, back, 256, 1)).toBe(1);
    expect(back.sizes[0]).toBe(10);
    for (const fd of [rx6, tx6, dual, tx4]) closeFd(fd);
  });

  it('groups runs of equal fds and accepts slabs on a SharedArrayBuffer', async () => {
    const rx = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    const a = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    const b = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    const port = n.udpLocalPort(rx);
    const COUNT = 40;
    const shared = new Uint8Array(new SharedArrayBuffer(COUNT * 64));
    const out = slab(COUNT, 64);
    for (let i = 0; i < COUNT; i++) {
      out.fds[i] = i % 7 < 3 ? a : b; // runs of 3 and 4
      out.sizes[i] = 8;
      new DataView(shared.buffer).setUint32(out.offsets[i], i);
      rec4(out.addrs, i, port);
    }
    expect(n.sendBatch(out.fds, shared, out.offsets, out.sizes, COUNT, out.addrs, out.gso, out.errs)).toBe(COUNT);
    const inb = slab(COUNT, 64);
    const inShared = new Uint8Array(new SharedArrayBuffer(COUNT * 64));
    inb.bufs = inShared;
    expect(await recvAll(rx, inb, 64, COUNT)).toBe(COUNT);
    const seq = [...inb.offsets].map((o) => new DataView(inShared.buffer).getUint32(o));
    expect(seq).toEqual([...Array(COUNT).keys()]);
    const ports = new Set([...Array(COUNT).keys()].map((i) => be16(inb.addrs, i * ADDR_LEN + 2)));
    expect(ports).toEqual(new Set([n.udpLocalPort(a), n.udpLocalPort(b)]));
    for (const fd of [rx, a, b]) closeFd(fd);
  });

  it('throws bind errors with a code and closes the socket', () => {
    const fd = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    const port = n.udpLocalPort(fd);
    expect(() => n.udpOpen({ address: '127.0.0.1', port })).toThrow(expect.objectContaining({ code: 'EADDRINUSE', syscall: 'bind' }));
    closeFd(fd);
  });
});

// -------------------------------------------------------------------------------

interface FrameSpec {
  vlan: boolean;
  v6: boolean;
  hopByHop: boolean;
  tcp: boolean;
  partial: boolean;
  fragment: boolean;
  src: Uint8Array;
  dst: Uint8Array;
  l4: Uint8Array; // random header bytes
  payload: Uint8Array;
  pad: number;
  align: number;
}

const frameArb = fc.record({
  vlan: fc.boolean(),
  v6: fc.boolean(),
  hopByHop: fc.boolean(),
  tcp: fc.boolean(),
  partial: fc.boolean(),
  fragment: fc.boolean(),
  src: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  dst: fc.uint8Array({ minLength: 16, maxLength: 16 }),
  l4: fc.uint8Array({ minLength: 20, maxLength: 20 }),
  payload: fc.uint8Array({ minLength: 0, maxLength: 1500 }),
  pad: fc.integer({ min: 0, max: 12 }),
  align: fc.integer({ min: 0, max: 7 }),
});

/** Build a frame; returns it and the expected checksum field after completion. */
function buildFrame(s: FrameSpec): { frame: Uint8Array; field: number; expectDone: boolean; expected: number; original: number } {
  const l2 = s.vlan ? 18 : 14;
  const ext = s.v6 && s.hopByHop ? 8 : 0;
  const l3len = s.v6 ? 40 + ext : 20;
  const l4hdr = s.tcp ? 20 : 8;
  const l4len = l4hdr + s.payload.length;
  const frame = new Uint8Array(l2 + l3len + l4len + s.pad);
  frame.fill(0xaa, 0, 12);
  if (s.vlan) {
    put16(frame, 12, 0x8100);
    put16(frame, 14, 42);
  }
  put16(frame, l2 - 2, s.v6 ? 0x86dd : 0x0800);
  const proto = s.tcp ? 6 : 17;
  const l3 = l2;
  let pseudo: number;
  if (s.v6) {
    frame[l3] = 0x60;
    put16(frame, l3 + 4, ext + l4len);
    frame[l3 + 6] = s.hopByHop ? 0 : proto;
    frame[l3 + 7] = 64;
    frame.set(s.src, l3 + 8);
    frame.set(s.dst, l3 + 24);
    if (s.hopByHop) {
      frame[l3 + 40] = proto;
      frame[l3 + 41] = 0;
      frame[l3 + 42] = 1; // PadN
      frame[l3 + 43] = 4;
    }
    pseudo = fold(refSum(frame, l3 + 8, 32) + (l4len >>> 16) + (l4len & 0xffff) + proto);
  } else {
    frame[l3] = 0x45;
    put16(frame, l3 + 2, 20 + l4len);
    put16(frame, l3 + 6, s.fragment ? 0x2000 : 0x4000); // MF, or DF
    frame[l3 + 8] = 64;
    frame[l3 + 9] = proto;
    frame.set(s.src.subarray(0, 4), l3 + 12);
    frame.set(s.dst.subarray(0, 4), l3 + 16);
    put16(frame, l3 + 10, ~refSum(frame, l3, 20) & 0xffff);
    pseudo = fold(refSum(frame, l3 + 12, 8) + proto + l4len);
  }
  const l4 = l3 + l3len;
  frame.set(s.l4.subarray(0, l4hdr), l4);
  if (s.tcp) frame[l4 + 12] = 0x50;
  else put16(frame, l4 + 4, l4len);
  frame.set(s.payload, l4 + l4hdr);
  const fieldOff = l4 + (s.tcp ? 16 : 6);
  put16(frame, fieldOff, 0);
  let full = ~fold(pseudo + refSum(frame, l4, l4len)) & 0xffff;
  if (!s.tcp && full === 0) full = 0xffff;
  frame.fill(0x55, frame.length - s.pad); // Ethernet padding, not covered
  const original = s.partial ? pseudo : full;
  put16(frame, fieldOff, original);
  const fragmented = !s.v6 && s.fragment;
  // A frame whose correct checksum equals the pseudo sum is indistinguishable.
  const expectDone = !fragmented && (s.partial || full === pseudo);
  return { frame, field: fieldOff, expectDone, expected: fragmented ? original : expectDone ? full : original, original };
}

describe('checksum kernels', () => {
  it('checksum() matches the RFC 1071 reference for any bytes, offset, length and seed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), (bytes, a, b, seed) => {
        const off = bytes.length ? a % (bytes.length + 1) : 0;
        const len = bytes.length - off ? b % (bytes.length - off + 1) : 0;
        expect(n.checksum(bytes, off, len, seed)).toBe(fold(refSum(bytes, off, len) + seed));
      }),
      { numRuns: 500 },
    );
    // Carry-heavy inputs: all 0xff.
    const ones = new Uint8Array(65_536).fill(0xff);
    expect(n.checksum(ones, 0, ones.length, 0)).toBe(0xffff);
    expect(n.checksum(ones, 1, 65_535, 0)).toBe(fold(refSum(ones, 1, 65_535)));
    expect(n.checksum(new Uint8Array(10), 0, 10, 0)).toBe(0);
  });

  it('completeChecksums finishes CHECKSUM_PARTIAL TCP/UDP over IPv4/IPv6 (+VLAN) and leaves others alone', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 24 }), (specs) => {
        const built = specs.map(buildFrame);
        const total = built.reduce((t, b) => t + b.frame.length + 8, 0);
        const bufs = new Uint8Array(total);
        const offsets = new Uint32Array(built.length);
        const sizes = new Uint32Array(built.length);
        let pos = 0;
        built.forEach((b, i) => {
          pos += specs[i].align;
          offsets[i] = pos;
          sizes[i] = b.frame.length;
          bufs.set(b.frame, pos);
          pos += b.frame.length;
        });
        const done = n.completeChecksums(bufs, offsets, sizes, built.length);
        expect(done).toBe(built.filter((b) => b.expectDone).length);
        built.forEach((b, i) => {
          expect(be16(bufs, offsets[i] + b.field)).toBe(b.expected);
          // Nothing but the checksum field changed.
          const after = bufs.slice(offsets[i], offsets[i] + sizes[i]);
          put16(after, b.field, b.original);
          expect(after).toEqual(b.frame);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('ignores truncated and non-IP frames', () => {
    const bufs = new Uint8Array(200).fill(0xff);
    put16(bufs, 12, 0x0800);
    bufs[14] = 0x45;
    put16(bufs, 16, 500); // claims more than the frame holds
    const sizes = Uint32Array.of(0, 13, 14, 40, 200);
    expect(n.completeChecksums(bufs, new Uint32Array(5), sizes, 5)).toBe(0);
  });
});

// -------------------------------------------------------------------------------

describe('poll and eventfd', () => {
  it('times out, wakes on a signal, and drains the counter', () => {
    const efd = track(n.eventfdOpen());
    const fds = Int32Array.of(efd, -1);
    const events = Int16Array.of(POLLIN, POLLIN);
    const revents = new Int16Array(2);
    const t0 = Date.now();
    expect(n.poll(fds, events, revents, 30)).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);
    expect(n.eventfdDrain(efd)).toBe(0);
    n.eventfdSignal(efd);
    n.eventfdSignal(efd);
    expect(n.poll(fds, events, revents, 1000)).toBe(1);
    expect(revents[0] & POLLIN).toBe(POLLIN);
    expect(revents[1]).toBe(0);
    expect(n.eventfdDrain(efd)).toBe(2);
    expect(n.poll(fds, events, revents, 0)).toBe(0);
    closeFd(efd);
    expect(() => n.eventfdDrain(efd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(() => n.close(efd)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'close' }));
  });

  it('wakes a worker thread blocked in poll(-1) from the main thread', async () => {
    const efd = track(n.eventfdOpen());
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const a = require(workerData.addon);
       const rev = new Int16Array(1);
       parentPort.postMessage('ready');
       const r = a.poll(Int32Array.of(workerData.fd), Int16Array.of(1), rev, -1);
       parentPort.postMessage({ r, rev: rev[0], value: a.eventfdDrain(workerData.fd) });`,
      { eval: true, workerData: { addon: ADDON_PATH, fd: efd } },
    );
    try {
      const result = await new Promise<{ r: number; rev: number; value: number }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('worker did not wake')), 10_000);
        worker.on('error', reject);
        worker.on('message', (m) => {
          if (m === 'ready') setTimeout(() => n.eventfdSignal(efd), 50);
          else {
            clearTimeout(timer);
            resolve(m);
          }
        });
      });
      expect(result).toEqual({ r: 1, rev: POLLIN, value: 1 });
    } finally {
      n.eventfdSignal(efd); // never leave the worker blocked
      await worker.terminate();
      closeFd(efd);
    }
  });
});

// -------------------------------------------------------------------------------

describe('worker threads', () => {
  it('loads the addon in several workers at once, each with its own scratch space', async () => {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const a = require(workerData.addon);
      const rx = a.udpOpen({ address: '127.0.0.1', port: 0 });
      const tx = a.udpOpen({ address: '127.0.0.1', port: 0 });
      const port = a.udpLocalPort(rx);
      const COUNT = 64, SLOT = 128;
      const bufs = new Uint8Array(COUNT * SLOT);
      const offsets = Uint32Array.from({ length: COUNT }, (_, i) => i * SLOT);
      const sizes = new Uint32Array(COUNT).fill(16);
      const addrs = new Uint8Array(COUNT * 20);
      const gso = new Uint16Array(COUNT), errs = new Int32Array(COUNT), fds = new Int32Array(COUNT).fill(tx);
      let received = 0, good = 0;
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < COUNT; i++) {
          addrs[i * 20] = 4; addrs[i * 20 + 2] = port >> 8; addrs[i * 20 + 3] = port & 255;
          addrs.set([127, 0, 0, 1], i * 20 + 4);
          bufs.fill(workerData.id, offsets[i], offsets[i] + 16);
          sizes[i] = 16;
        }
        a.sendBatch(fds, bufs, offsets, sizes, COUNT, addrs, gso, errs);
        const rev = new Int16Array(1);
        let got = 0;
        for (let t = 0; t < 50 && got < COUNT; t++) {
          if (a.poll(Int32Array.of(rx), Int16Array.of(1), rev, 20) === 0) continue;
          got += a.recvBatch(rx, bufs, offsets.subarray(got), sizes.subarray(got), SLOT, COUNT - got,
                             addrs.subarray(got * 20), gso.subarray(got));
        }
        received += got;
        for (let i = 0; i < got; i++) if (bufs[offsets[i]] === workerData.id && sizes[i] === 16) good++;
      }
      const csum = a.checksum(new Uint8Array(1000).fill(workerData.id), 0, 1000, 0);
      a.close(rx); a.close(tx);
      parentPort.postMessage({ received, good, csum });`;
    const WORKERS = 4;
    const results = await Promise.all(
      Array.from({ length: WORKERS }, (_, id) => {
        const w = new Worker(code, { eval: true, workerData: { addon: ADDON_PATH, id: id + 1 } });
        return new Promise<{ received: number; good: number; csum: number; exit: number }>((resolve, reject) => {
          let msg: { received: number; good: number; csum: number } | undefined;
          const timer = setTimeout(() => {
            void w.terminate();
            reject(new Error('worker timed out'));
          }, 30_000);
          w.on('message', (m) => (msg = m));
          w.on('error', reject);
          w.on('exit', (exit) => {
            clearTimeout(timer);
            if (msg) resolve({ ...msg, exit });
            else reject(new Error(`worker exited ${exit} without a result`));
          });
        });
      }),
    );
    results.forEach((r, i) => {
      expect(r.exit).toBe(0);
      expect(r.received).toBe(20 * 64);
      expect(r.good).toBe(20 * 64);
      const id = i + 1;
      expect(r.csum).toBe(fold(refSum(new Uint8Array(1000).fill(id), 0, 1000)));
    });
    // The main thread's instance survived the workers' teardown.
    expect(n.checksum(Uint8Array.of(1, 2), 0, 2, 0)).toBe(0x0102);
  });
});

// -------------------------------------------------------------------------------

describe('abuse', () => {
  function expectArgError(fn: () => unknown, kind: 'TypeError' | 'RangeError', mention: string): void {
    let err: (Error & { code?: string }) | undefined;
    try {
      fn();
    } catch (e) {
      err = e as Error;
    }
    expect(err, `expected ${kind} mentioning ${mention}`).toBeDefined();
    expect(err!.name).toBe(kind);
    expect(err!.message).toContain(mention);
    expect(err!.code).toBe(kind === 'TypeError' ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE');
  }

  it('throws TypeError/RangeError naming the argument', () => {
    const efd = track(n.eventfdOpen());
    const s = slab(4, 64);
    const any = n as unknown as Record<string, (...args: unknown[]) => unknown>;
    expectArgError(() => any.readBatch(), 'TypeError', 'fd');
    expectArgError(() => any.readBatch(-1, s.bufs, s.offsets, s.sizes, 64, 4), 'RangeError', 'fd');
    expectArgError(() => any.readBatch(efd, 'x', s.offsets, s.sizes, 64, 4), 'TypeError', 'bufs');
    expectArgError(() => any.readBatch(efd, s.bufs, new Float64Array(4), s.sizes, 64, 4), 'TypeError', 'offsets');
    expectArgError(() => any.readBatch(efd, s.bufs, s.offsets, s.sizes, 64, 2000), 'RangeError', 'max');
    expectArgError(() => any.readBatch(efd, s.bufs, s.offsets, s.sizes, 64, 5), 'RangeError', 'offsets');
    expectArgError(() => any.readBatch(efd, s.bufs, s.offsets, s.sizes, 65, 4), 'RangeError', 'offsets[3]');
    expectArgError(() => any.readBatch(efd, s.bufs, s.offsets, s.sizes, 1.5, 4), 'RangeError', 'slotLen');
    expectArgError(() => any.readBatch(efd, s.bufs, s.offsets, s.sizes, NaN, 4), 'RangeError', 'slotLen');
    expectArgError(() => any.writeBatch(efd, s.bufs, s.offsets, s.sizes, 4, new Uint32Array(4)), 'TypeError', 'errs');
    expectArgError(() => any.writeBatch(efd, s.bufs, s.offsets, Uint32Array.of(1, 1, 1, 65), 4, s.errs), 'RangeError', 'sizes[3]');
    expectArgError(() => any.recvBatch(efd, s.bufs, s.offsets, s.sizes, 64, 4, new Uint8Array(79), s.gso), 'RangeError', 'addrs');
    expectArgError(() => any.recvBatch(efd, s.bufs, s.offsets, s.sizes, 64, 4, s.addrs, new Uint16Array(3)), 'RangeError', 'gso');
    expectArgError(() => any.sendBatch(s.fds, s.bufs, s.offsets, s.sizes, 4, s.addrs, s.gso, s.errs), 'RangeError', 'family');
    expectArgError(() => any.sendBatch(Int32Array.of(-1), s.bufs, s.offsets, s.sizes, 1, s.addrs, s.gso, s.errs), 'RangeError', 'fds[0]');
    expectArgError(() => any.sendBatch([1], s.bufs, s.offsets, s.sizes, 1, s.addrs, s.gso, s.errs), 'TypeError', 'fds');
    expectArgError(() => any.sendBatch(s.fds, s.bufs, s.offsets, s.sizes, 1025, s.addrs, s.gso, s.errs), 'RangeError', 'count');
    expectArgError(() => any.completeChecksums(s.bufs, s.offsets, s.sizes, -1), 'RangeError', 'count');
    expectArgError(() => any.checksum(s.bufs, 300, 1, 0), 'RangeError', 'offset');
    expectArgError(() => any.checksum(s.bufs, 0, 1, -1), 'RangeError', 'seed');
    expectArgError(() => any.poll(new Int32Array(2000), new Int16Array(2000), new Int16Array(2000), 0), 'RangeError', 'fds');
    expectArgError(() => any.poll(Int32Array.of(efd), new Int16Array(0), new Int16Array(1), 0), 'RangeError', 'events');
    expectArgError(() => any.poll(Int32Array.of(efd), new Int16Array(1), new Int16Array(1), -2), 'RangeError', 'timeoutMs');
    expectArgError(() => any.tapOpen(42), 'TypeError', 'name');
    expectArgError(() => any.tapOpen('vxnx', 'mq'), 'TypeError', 'options');
    expectArgError(() => any.tapOpen('vxnx', { multiQueue: 'yes' }), 'TypeError', 'options.multiQueue');
    expectArgError(() => any.tapOpen('vxn\u0000x'), 'RangeError', 'NUL');
    expectArgError(() => any.ifSetMac('lo', new Uint8Array(5)), 'RangeError', 'mac');
    expectArgError(() => any.ifSetMtu('lo', 10), 'RangeError', 'mtu');
    expectArgError(() => any.ifSetUp('lo', 1), 'TypeError', 'up');
    expectArgError(() => any.ifIndex(''), 'RangeError', 'name');
    expectArgError(() => any.udpOpen(), 'TypeError', 'options');
    expectArgError(() => any.udpOpen({ address: 'nonsense', port: 0 }), 'TypeError', 'options.address');
    expectArgError(() => any.udpOpen({ address: '127.0.0.1', port: 70000 }), 'RangeError', 'options.port');
    expectArgError(() => any.udpOpen({ address: '127.0.0.1', port: 0, pmtu: 'sometimes' }), 'TypeError', 'options.pmtu');
    expectArgError(() => any.udpOpen({ address: '127.0.0.1', port: 0, rcvbuf: -5 }), 'RangeError', 'options.rcvbuf');
    expectArgError(() => any.udpOpen({ address: '127.0.0.1', port: 0, gro: 1 }), 'TypeError', 'options.gro');
    // A detached slab reads as empty.
    const detached = new Uint8Array(64);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expectArgError(() => any.checksum(detached, 0, 1, 0), 'RangeError', 'bufs.length');
    // An error from the kernel, not from validation: read(eventfd) into a 4-byte slot.
    expect(() => n.readBatch(efd, s.bufs, s.offsets, s.sizes, 4, 1)).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'read' }));
    closeFd(efd);
  });

  it('survives random arguments to every batch and byte call (returns or throws, never crashes)', () => {
    const efd = track(n.eventfdOpen());
    const rx = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    const tx = track(n.udpOpen({ address: '127.0.0.1', port: 0 }));
    const safeAddrs = new Uint8Array(64 * ADDR_LEN);
    for (let i = 0; i < 64; i++) rec4(safeAddrs, i, n.udpLocalPort(rx));
    const junk = fc.oneof(
      fc.constantFrom(undefined, null, -1, 0, 1, 3, 64, 1024, 1025, 2 ** 31, 2 ** 32, NaN, Infinity, 1.5, 'x', {}, []),
      fc.uint8Array({ maxLength: 256 }),
      fc.uint32Array({ maxLength: 16 }).map((a) => a.map((x) => x % 300)),
      fc.uint32Array({ maxLength: 16 }),
      fc.int32Array({ maxLength: 16 }),
      fc.uint16Array({ maxLength: 16 }),
      fc.int16Array({ maxLength: 16 }),
      fc.float64Array({ maxLength: 4 }),
    );
    // Positions that reach the kernel only get our own fds and loopback records.
    const fd = fc.constantFrom(efd, rx, -1, 'x', undefined, 1.5);
    const fds = fc.constantFrom(new Int32Array(64).fill(tx), Int32Array.of(tx, -1), new Uint32Array(4), undefined);
    const addrs = fc.constantFrom(safeAddrs, new Uint8Array(20).fill(9), new Uint8Array(3), undefined);
    const timeout = fc.constantFrom(0, -2, NaN, 'x', undefined);
    const pollFds = fc.constantFrom(Int32Array.of(efd), new Int32Array(0), new Uint32Array(1), undefined);
    // Each position is either a valid value (so some calls get through to the
    // kernel) or junk.
    const mix = (valid: unknown, bad: fc.Arbitrary<unknown> = junk) => fc.oneof({ weight: 3, arbitrary: fc.constant(valid) }, { weight: 1, arbitrary: bad });
    const bufs = new Uint8Array(256);
    const offsets = Uint32Array.of(0, 64, 128, 192);
    const sizes = Uint32Array.of(8, 8, 8, 8);
    const gso = new Uint16Array(4);
    const errs = new Int32Array(4);
    const calls: [string, fc.Arbitrary<unknown[]>][] = [
      ['readBatch', fc.tuple(mix(efd, fd), mix(bufs), mix(offsets), mix(sizes), mix(64), mix(4))],
      ['writeBatch', fc.tuple(mix(efd, fd), mix(bufs), mix(offsets), mix(sizes), mix(4), mix(errs))],
      ['recvBatch', fc.tuple(mix(rx, fd), mix(bufs), mix(offsets), mix(sizes), mix(64), mix(4), mix(safeAddrs, addrs), mix(gso))],
      ['sendBatch', fc.tuple(mix(new Int32Array(4).fill(tx), fds), mix(bufs), mix(offsets), mix(sizes), mix(4), mix(safeAddrs, addrs), mix(gso), mix(errs))],
      ['completeChecksums', fc.tuple(mix(bufs), mix(offsets), mix(sizes), mix(4))],
      ['checksum', fc.tuple(mix(bufs), mix(0), mix(10), mix(0))],
      ['poll', fc.tuple(mix(Int32Array.of(efd), pollFds), mix(Int16Array.of(POLLIN)), mix(new Int16Array(1)), mix(0, timeout))],
    ];
    const any = n as unknown as Record<string, (...args: unknown[]) => unknown>;
    let threw = 0;
    let returned = 0;
    for (const [name, args] of calls) {
      fc.assert(
        fc.property(args, (argv) => {
          try {
            const r = any[name](...argv);
            expect(typeof r === 'number' || r === undefined).toBe(true);
            returned++;
          } catch (e) {
            threw++;
            expect(e).toBeInstanceOf(Object);
            const err = e as Error & { code?: unknown };
            expect(['TypeError', 'RangeError', 'Error']).toContain(err.name);
            expect(typeof err.code).toBe('string');
          }
        }),
        { numRuns: 300 },
      );
    }
    expect(threw).toBeGreaterThan(0);
    expect(returned).toBeGreaterThan(0);
    // Drain whatever the fuzzer sent to rx (loopback only), then close.
    const s = slab(64, 2048);
    while (n.recvBatch(rx, s.bufs, s.offsets, s.sizes, 2048, 64, s.addrs, s.gso) > 0) {
      /* drain */
    }
    for (const f of [efd, rx, tx]) closeFd(f);
  });
});
