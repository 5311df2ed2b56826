/**
 * One behavioural suite for the dataplane's devices, run over the fakes (always)
 * and over the real devices (as root: a TAP and an uplink TAP in a namespace,
 * UDP sockets on 198.18.99.x in two namespaces joined by a veth; all named vxdp*
 * and removed afterwards). What the packet path relies on must hold for both:
 * order, sizes, truncation reported as slotLen + 1, a short frame refused in
 * errs while the batch goes on, UDP GSO segments arriving intact (coalesced or
 * not), EMSGSIZE above the path MTU with DF, and source address records.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDR_LEN, TNL_VNET_HDR_LEN, VNET_HDR_LEN, native } from '../../src/native/index.js';
import { EINVAL, EMSGSIZE, type FrameQueue } from '../../src/tap/index.js';
import { FakeTap } from '../../src/tap/fake.js';
import { LinuxTapQueue } from '../../src/tap/linux.js';
import { FakeUplink } from '../../src/uplink/fake.js';
import { LinuxUplinkPort } from '../../src/uplink/linux.js';
import { FakeNetwork, FakeUdpTransport } from '../../src/transport/fake.js';
import { LinuxUdpTransport } from '../../src/transport/linux.js';
import type { Transport } from '../../src/transport/index.js';
import { HostScope, uniqueTag } from '../../src/host/netns.js';
import { run } from '../../src/host/exec.js';
import { addrRecord } from '../../src/wire/addr.js';
import { skipReason } from '../helpers/requires.js';

const REAL_SKIP = skipReason({ root: true, tun: true, build: true, commands: ['ip', 'python3'] });
if (REAL_SKIP) console.error(`devices suite over real devices: skipped: ${REAL_SKIP}`);
/** Local experimental ethertype: nothing else on the test TAP uses it. */
const ETHERTYPE = 0x88b5;

// --- helpers ------------------------------------------------------------------

function testFrame(len: number, tag: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01], 0);
  f[12] = ETHERTYPE >> 8;
  f[13] = ETHERTYPE & 0xff;
  for (let i = 14; i < len; i++) f[i] = (tag * 31 + i) & 0xff;
  return f;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Read until `want` frames came or `ms` passed (real devices deliver asynchronously). */
async function readFrames(q: FrameQueue, want: number, slotLen: number, max = want, ms = 2000) {
  const stride = slotLen + 64;
  const bufs = new Uint8Array(stride * max);
  const offsets = Uint32Array.from({ length: max }, (_, i) => i * stride + 32);
  const sizes = new Uint32Array(max);
  const got: { size: number; bytes: Uint8Array }[] = [];
  const until = Date.now() + ms;
  while (got.length < want && Date.now() < until) {
    const n = q.read(bufs, offsets, sizes, slotLen, Math.min(max, want - got.length));
    for (let i = 0; i < n; i++) got.push({ size: sizes[i], bytes: bufs.slice(offsets[i], offsets[i] + Math.min(sizes[i], slotLen)) });
    if (n === 0) await sleep(5);
  }
  return got;
}

/** The kernel side of a real TAP: an AF_PACKET helper in the namespace (send = the stack transmits to the TAP). */
class PacketPeer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly waiting: ((line: string) => void)[] = [];
  constructor(ns: string, dev: string) {
    const script = [
      'import socket, sys, select',
      `s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(${ETHERTYPE}))`,
      `s.bind((sys.argv[1], ${ETHERTYPE}))`,
      'for line in sys.stdin:',
      '    cmd, arg = line.split()',
      '    if cmd == "send":',
      '        s.send(bytes.fromhex(arg)); print("ok", flush=True)',
      '    else:',
      '        want, out = int(arg), []',
      '        while len(out) < want and select.select([s], [], [], 2.0)[0]:',
      '            data, addr = s.recvfrom(70000)',
      '            if addr[2] != socket.PACKET_OUTGOING: out.append(data.hex())',
      '        print(" ".join(out) or "-", flush=True)',
    ].join('\n');
    this.child = spawn('ip', ['netns', 'exec', ns, 'python3', '-u', '-c', script, dev], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on('line', (l) => this.waiting.shift()?.(l));
  }
  private ask(cmd: string): Promise<string> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin.write(cmd + '\n');
    });
  }
  async send(frame: Uint8Array): Promise<void> {
    await this.ask(`send ${Buffer.from(frame).toString('hex')}`);
  }
  async recv(want: number): Promise<Uint8Array[]> {
    const l = await this.ask(`recv ${want}`);
    return l === '-' ? [] : l.split(' ').map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
  }
  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}

/** What the frame-queue suite needs of a device: the queue and its stack side. */
interface QueueHarness {
  queue: FrameQueue;
  /** The stack transmits `frame` to the device (read returns it). */
  inject(frame: Uint8Array): Promise<void>;
  /** Frames the stack received from the device (what write wrote), headers stripped. */
  received(want: number): Promise<Uint8Array[]>;
}

// --- the frame-queue suite (TAP, vnet_hdr TAP, uplink TAP) ----------------------

function frameQueueSuite(make: () => QueueHarness | Promise<QueueHarness>, hdrLen: number): void {
  let h: QueueHarness;
  beforeAll(async () => {
    h = await make();
  });

  it('reports the vnet header size and reads nothing when nothing is queued', async () => {
    expect(h.queue.vnetHdrLen).toBe(hdrLen);
    expect(await readFrames(h.queue, 1, 2048, 1, 50)).toEqual([]);
  });

  it('reads injected frames in order, each with a zero vnet header, within max per call', async () => {
    const frames = [60, 61, 1000, 1514, 64].map((len, i) => testFrame(len, i));
    for (const f of frames) await h.inject(f);
    const first = await readFrames(h.queue, 3, 2048, 3);
    const rest = await readFrames(h.queue, 2, 2048, 8);
    const got = [...first, ...rest];
    expect(got.map((g) => g.size)).toEqual(frames.map((f) => f.length + hdrLen));
    got.forEach((g, i) => {
      expect([...g.bytes.subarray(0, hdrLen)]).toEqual(new Array(hdrLen).fill(0));
      expect(g.bytes.subarray(hdrLen)).toEqual(frames[i]);
    });
  });

  it('reports a frame longer than its slot as slotLen + 1, with the slot filled', async () => {
    const f = testFrame(900, 7);
    await h.inject(f);
    const slot = 400;
    const [g] = await readFrames(h.queue, 1, slot);
    expect(g.size).toBe(slot + 1);
    expect(g.bytes.subarray(hdrLen, slot)).toEqual(f.subarray(0, slot - hdrLen));
  });

  it('writes frames one each, refuses a short one in errs and goes on', async () => {
    const frames = [testFrame(60, 1), new Uint8Array(10), testFrame(1200, 2)];
    const stride = 2048;
    const bufs = new Uint8Array(stride * frames.length);
    const offsets = Uint32Array.from(frames.map((_, i) => i * stride + 64));
    const sizes = Uint32Array.from(frames.map((f) => f.length + hdrLen));
    frames.forEach((f, i) => bufs.set(f, offsets[i] + hdrLen)); // zero vnet header
    const errs = new Int32Array(frames.length);
    expect(h.queue.write(bufs, offsets, sizes, frames.length, errs)).toBe(3);
    expect([...errs]).toEqual([0, EINVAL, 0]);
    const got = await h.received(2);
    expect(got).toEqual([frames[0], frames[2]]);
  });
}

// --- the transport suite ----------------------------------------------------------

interface TransportHarness {
  a: Transport;
  b: Transport;
  aAddr: string;
  bAddr: string;
  port: number;
  srcPorts: number[];
  mtu: number;
}

async function recvAll(t: Transport, want: number, slotLen = 65535 + 64, ms = 2000) {
  const max = 64;
  const stride = slotLen + 64;
  const bufs = new Uint8Array(stride * max);
  const offsets = Uint32Array.from({ length: max }, (_, i) => i * stride);
  const sizes = new Uint32Array(max);
  const addrs = new Uint8Array(max * ADDR_LEN);
  const gso = new Uint16Array(max);
  const got: { size: number; bytes: Uint8Array; src: Uint8Array; gso: number }[] = [];
  const until = Date.now() + ms;
  while (got.length < want && Date.now() < until) {
    const n = t.recv(bufs, offsets, sizes, slotLen, max, addrs, gso);
    for (let i = 0; i < n; i++) {
      got.push({ size: sizes[i], bytes: bufs.slice(offsets[i], offsets[i] + Math.min(sizes[i], slotLen)), src: addrs.slice(i * ADDR_LEN, (i + 1) * ADDR_LEN), gso: gso[i] });
    }
    if (n === 0) await sleep(5);
  }
  return got;
}

/** Send `msgs` from a's senders to b; returns errs. */
function sendFrom(h: TransportHarness, msgs: { sender: number; bytes: Uint8Array; gso?: number }[]): { consumed: number; errs: number[] } {
  const n = msgs.length;
  const total = msgs.reduce((s, m) => s + m.bytes.length, 0);
  const bufs = new Uint8Array(total);
  const offsets = new Uint32Array(n);
  const sizes = new Uint32Array(n);
  const gso = new Uint16Array(n);
  const socks = new Int32Array(n);
  const addrs = new Uint8Array(n * ADDR_LEN);
  const dst = addrRecord(h.bAddr, h.port);
  let at = 0;
  msgs.forEach((m, i) => {
    bufs.set(m.bytes, at);
    offsets[i] = at;
    sizes[i] = m.bytes.length;
    at += m.bytes.length;
    gso[i] = m.gso ?? 0;
    socks[i] = h.a.senders[m.sender];
    addrs.set(dst, i * ADDR_LEN);
  });
  const errs = new Int32Array(n);
  const consumed = h.a.send(socks, bufs, offsets, sizes, n, addrs, gso, errs);
  return { consumed, errs: [...errs] };
}

function payload(len: number, tag: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (tag * 7 + i * 13) & 0xff);
}

function transportSuite(make: () => TransportHarness | Promise<TransportHarness>): void {
  let h: TransportHarness;
  beforeAll(async () => {
    h = await make();
  });

  it('receives nothing when nothing was sent', async () => {
    expect(await recvAll(h.b, 1, 2048, 50)).toEqual([]);
  });

  it("delivers datagrams with their bytes, sizes and source records (the sender's port)", async () => {
    const msgs = [
      { sender: 0, bytes: payload(100, 1) },
      { sender: 1, bytes: payload(1400, 2) },
      { sender: 0, bytes: payload(9, 3) },
    ];
    expect(sendFrom(h, msgs)).toEqual({ consumed: 3, errs: [0, 0, 0] });
    const got = await recvAll(h.b, 3);
    expect(got.length).toBe(3);
    for (const m of msgs) {
      const g = got.find((x) => x.size === m.bytes.length)!;
      expect(g.bytes).toEqual(m.bytes);
      expect(g.gso).toBe(0);
      expect(g.src).toEqual(addrRecord(h.aAddr, h.srcPorts[m.sender]));
    }
  });

  it('carries a UDP GSO message as its segments, whole or coalesced with their size', async () => {
    const seg = 1000;
    const bytes = payload(5 * seg + 300, 4);
    expect(sendFrom(h, [{ sender: 0, bytes, gso: seg }])).toEqual({ consumed: 1, errs: [0] });
    const segments: Uint8Array[] = [];
    const until = Date.now() + 2000;
    while (segments.length < 6 && Date.now() < until) {
      for (const g of await recvAll(h.b, 1, 65535 + 64, 200)) {
        const step = g.gso > 0 ? g.gso : g.size;
        for (let at = 0; at < g.size; at += step) segments.push(g.bytes.subarray(at, Math.min(at + step, g.size)));
      }
    }
    expect(segments.map((s) => s.length)).toEqual([seg, seg, seg, seg, seg, 300]);
    expect(Uint8Array.from(segments.flatMap((s) => [...s]))).toEqual(bytes);
  });

  it('refuses a datagram above the path MTU with DF (EMSGSIZE) and goes on', async () => {
    const big = payload(h.mtu, 5); // + 28 bytes of headers: above the MTU
    const small = payload(200, 6);
    expect(
      sendFrom(h, [
        { sender: 0, bytes: big },
        { sender: 0, bytes: small },
      ]),
    ).toEqual({ consumed: 2, errs: [EMSGSIZE, 0] });
    const got = await recvAll(h.b, 2, 2048, 300);
    expect(got.map((g) => g.size)).toEqual([200]);
  });

  it('reports a datagram longer than its slot as slotLen + 1', async () => {
    sendFrom(h, [{ sender: 1, bytes: payload(1200, 7) }]);
    const [g] = await recvAll(h.b, 1, 1000);
    expect(g.size).toBe(1001);
  });
}

// --- over the fakes -------------------------------------------------------------

describe('devices over the fakes', () => {
  for (const [name, hdr, make] of [
    ['TAP', 0, () => new FakeTap()],
    ['vnet_hdr TAP', VNET_HDR_LEN, () => new FakeTap({ vnetHdrLen: VNET_HDR_LEN })],
    ['uplink', TNL_VNET_HDR_LEN, () => new FakeUplink()],
  ] as const) {
    describe(`fake ${name}`, () => {
      frameQueueSuite(() => {
        const tap: FakeTap = make();
        return {
          queue: tap,
          inject: (f) => {
            tap.inject(f);
            return Promise.resolve();
          },
          received: () => Promise.resolve(tap.takeWritten().map((w) => w.frame)),
        };
      }, hdr);
    });
  }

  describe('fake UDP transport', () => {
    transportSuite(() => {
      const net = new FakeNetwork(1500);
      const srcPorts = [49152, 49153];
      const a = new FakeUdpTransport(net, { address: '198.18.99.1', port: 4789, srcPorts });
      const b = new FakeUdpTransport(net, { address: '198.18.99.2', port: 4789, srcPorts });
      return { a, b, aAddr: '198.18.99.1', bAddr: '198.18.99.2', port: 4789, srcPorts, mtu: 1500 };
    });
  });

  it('fake TAP: a full transmit queue drops what is injected; a closed queue throws EBADF', () => {
    const tap = new FakeTap({ queueLen: 2 });
    expect([tap.inject(testFrame(60, 1)), tap.inject(testFrame(60, 2)), tap.inject(testFrame(60, 3))]).toEqual([true, true, false]);
    expect(tap.dropped).toBe(1);
    tap.close();
    expect(() => tap.read(new Uint8Array(100), new Uint32Array(1), new Uint32Array(1), 100, 1)).toThrow(/EBADF/);
  });
});

// --- over the real devices ---------------------------------------------------------

/** Run `fn` with the calling thread in namespace `ns` (sockets and TAPs opened there stay there). */
function inNetns<T>(ns: string, fn: () => T): T {
  const addon = native();
  const back = addon.netnsEnter(`/run/netns/${ns}`);
  try {
    return fn();
  } finally {
    addon.netnsEnterFd(back);
    addon.close(back);
  }
}

describe.skipIf(REAL_SKIP !== null)('devices over Linux (namespaces vxdp*)', () => {
  const scope = new HostScope('vxdp');
  const closers: (() => void)[] = [];
  afterAll(async () => {
    for (const c of closers.splice(0).reverse()) {
      try {
        c();
      } catch {
        /* keep cleaning */
      }
    }
    await scope.cleanup();
  });

  /** A TAP queue made by `open` in a fresh namespace, up, IPv6 off (the kernel sends nothing of its own). */
  async function realTap(open: (name: string) => FrameQueue & { fd: number }): Promise<QueueHarness> {
    const t = uniqueTag();
    const ns = await scope.netns(`q${t}`);
    await run(['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'], { netns: ns });
    const dev = `vxdpt${t}`;
    const queue = inNetns(ns, () => open(dev));
    closers.push(() => queue.close());
    await run(['ip', 'link', 'set', dev, 'up'], { netns: ns });
    const peer = new PacketPeer(ns, dev);
    closers.push(() => peer.close());
    return { queue, inject: (f) => peer.send(f), received: (n) => peer.recv(n) };
  }

  describe('Linux TAP', () => {
    frameQueueSuite(() => realTap((name) => LinuxTapQueue.open(name).queue), 0);
  });
  describe('Linux vnet_hdr TAP', () => {
    frameQueueSuite(() => realTap((name) => LinuxTapQueue.open(name, { vnetHdrLen: VNET_HDR_LEN }).queue), VNET_HDR_LEN);
  });
  describe('Linux uplink TAP (24-byte tunnel vnet header)', () => {
    frameQueueSuite(() => realTap((name) => LinuxUplinkPort.openPort(name).port), TNL_VNET_HDR_LEN);
  });

  describe('Linux UDP transport (198.18.99.x, veth between two namespaces)', () => {
    transportSuite(async () => {
      const t = uniqueTag();
      const na = await scope.netns(`a${t}`);
      const nb = await scope.netns(`b${t}`);
      await scope.veth({ name: `vxdpa${t}`, netns: na }, { name: `vxdpb${t}`, netns: nb }, 1500);
      await scope.addr(na, `vxdpa${t}`, '198.18.99.1/24');
      await scope.addr(nb, `vxdpb${t}`, '198.18.99.2/24');
      const port = 4789;
      const srcPorts = [49152, 49153];
      const open = (ns: string, address: string) =>
        inNetns(ns, () => {
          const addon = native();
          const rx = addon.udpOpen({ address, port, reusePort: true, gro: true });
          const tx = srcPorts.map((p) => addon.udpOpen({ address, port: p, reusePort: true, pmtu: 'do' }));
          const tr = new LinuxUdpTransport(rx, tx, [], true);
          closers.push(() => tr.close());
          return tr;
        });
      const a = open(na, '198.18.99.1');
      const b = open(nb, '198.18.99.2');
      // resolve the neighbour first, so the first datagrams are not held in the ARP queue
      await run(['ping', '-c1', '-W1', '198.18.99.2'], { netns: na });
      return { a, b, aAddr: '198.18.99.1', bAddr: '198.18.99.2', port, srcPorts, mtu: 1500 };
    });
  });
});
