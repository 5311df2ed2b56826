/**
 * In-memory UDP transports on a fake network (wireguard-go's conn/bindtest):
 * deterministic, in-process, no root. A `FakeNetwork` joins transports by
 * address and port; a send delivers at once into the receiver's queue. It keeps
 * the Linux edges the packet path depends on: a UDP GSO message is cut into
 * segments of gso bytes (at most 64, at most 65507 bytes in all, else EINVAL);
 * a receiver with GRO gets the message whole with its segment size, one without
 * gets the segments; a datagram larger than the path MTU is refused with
 * EMSGSIZE from a DF sender and delivered from a no-DF one (the kernel would
 * fragment it); a full receive queue or an unknown destination loses the
 * datagram silently, as UDP does; a datagram longer than the receive slot is
 * reported as slotLen + 1.
 */
import { ADDR_LEN, UDP_GSO_MAX_SEGMENTS, UDP_MAX_PAYLOAD } from '../native/limits.js';
import { addrRecord } from '../wire/addr.js';
import { EINVAL, EMSGSIZE } from '../tap/index.js';
import type { FakeTrace } from '../tap/fake.js';
import type { Transport } from './index.js';

/** IPv4 + UDP header bytes in front of a datagram's payload on the wire. */
const UDP_IP4_OVERHEAD = 28;

/** A datagram as a receiver holds it. */
export interface FakeDatagram {
  /** Source address record (ADDR_LEN bytes). */
  src: Uint8Array;
  bytes: Uint8Array;
  /** Segment size of a coalesced datagram, 0 when single. */
  gso: number;
}

function key(rec: Uint8Array, off = 0): string {
  return Array.from(rec.subarray(off, off + ADDR_LEN)).join('.');
}

/** Joins fake transports: the underlay. */
export class FakeNetwork {
  /** Datagrams sent to an address nobody listens on. */
  lost = 0;
  private readonly byAddr = new Map<string, FakeUdpTransport>();
  constructor(
    readonly mtu = 1500,
    readonly trace?: FakeTrace,
  ) {}

  /** @internal */
  attach(rec: Uint8Array, t: FakeUdpTransport): void {
    const k = key(rec);
    if (this.byAddr.has(k)) throw Object.assign(new Error(`fake network: address in use`), { code: 'EADDRINUSE' });
    this.byAddr.set(k, t);
  }

  /** @internal */
  detach(rec: Uint8Array): void {
    this.byAddr.delete(key(rec));
  }

  /** @internal */
  deliver(dst: Uint8Array, dstOff: number, d: FakeDatagram, gsoSize: number): void {
    const t = this.byAddr.get(key(dst, dstOff));
    if (!t) {
      this.lost++;
      return;
    }
    t.enqueue(d, gsoSize);
  }
}

export interface FakeUdpOptions {
  /** Local address (IPv4). */
  address: string;
  /** The receive port (the VXLAN port). */
  port: number;
  /** Source ports of the senders, by index (default [port]). */
  srcPorts?: number[];
  /** With --df inherit: also open no-DF senders (same ports). */
  noDf?: boolean;
  /** UDP_GRO on the receive socket (default true). */
  gro?: boolean;
  /** Datagrams the receive queue holds (default 4096). */
  rcvQueue?: number;
  /** Name in the network's trace (default 'udp'). */
  name?: string;
}

/**
 * A worker's sockets on a FakeNetwork. Sender handles are small integers:
 * index k of `senders` is source port srcPorts[k] with DF; `sendersNoDf[k]` is
 * the same port without DF.
 */
export class FakeUdpTransport implements Transport {
  readonly senders: Int32Array;
  readonly sendersNoDf: Int32Array;
  readonly pollFd = -1;
  /** Datagrams the receive queue dropped because it was full. */
  dropped = 0;
  private readonly rec: Uint8Array;
  private readonly srcRecs: Uint8Array[];
  private readonly gro: boolean;
  private readonly rcvQueue: number;
  private readonly name: string;
  private readonly queue: FakeDatagram[] = [];
  private closed = false;

  constructor(
    private readonly net: FakeNetwork,
    o: FakeUdpOptions,
  ) {
    this.rec = addrRecord(o.address, o.port);
    const ports = o.srcPorts ?? [o.port];
    this.srcRecs = ports.map((p) => addrRecord(o.address, p));
    this.senders = Int32Array.from(ports.map((_, k) => k));
    this.sendersNoDf = o.noDf ? Int32Array.from(ports.map((_, k) => ports.length + k)) : new Int32Array(0);
    this.gro = o.gro ?? true;
    this.rcvQueue = o.rcvQueue ?? 4096;
    this.name = o.name ?? 'udp';
    net.attach(this.rec, this);
  }

  /** Datagrams waiting to be received. */
  get queued(): number {
    return this.queue.length;
  }

  /** Put a datagram from `src` (an address record) into the receive queue, as the network would. */
  inject(src: Uint8Array, bytes: Uint8Array, gso = 0): void {
    this.enqueue({ src: Uint8Array.from(src), bytes: Uint8Array.from(bytes), gso: 0 }, gso);
  }

  /** @internal one message (segments of gsoSize bytes when > 0) into the queue */
  enqueue(d: FakeDatagram, gsoSize: number): void {
    const segs = gsoSize > 0 ? Math.ceil(d.bytes.length / gsoSize) : 1;
    if (this.gro || segs === 1) {
      this.push({ src: d.src, bytes: d.bytes, gso: segs > 1 ? gsoSize : 0 });
      return;
    }
    for (let at = 0; at < d.bytes.length; at += gsoSize) this.push({ src: d.src, bytes: d.bytes.subarray(at, Math.min(at + gsoSize, d.bytes.length)), gso: 0 });
  }

  private push(d: FakeDatagram): void {
    if (this.queue.length >= this.rcvQueue) {
      this.dropped++;
      return;
    }
    this.queue.push(d);
  }

  recv(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, slotLen: number, max: number, addrs: Uint8Array, gso: Uint16Array): number {
    this.check();
    let n = 0;
    while (n < max) {
      const d = this.queue.shift();
      if (d === undefined) break;
      bufs.set(d.bytes.subarray(0, Math.min(d.bytes.length, slotLen)), offsets[n]);
      sizes[n] = d.bytes.length > slotLen ? slotLen + 1 : d.bytes.length;
      addrs.set(d.src, n * ADDR_LEN);
      gso[n] = d.gso;
      n++;
    }
    return n;
  }

  send(socks: Int32Array, bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number, addrs: Uint8Array, gso: Uint16Array, errs: Int32Array): number {
    this.check();
    const ports = this.srcRecs.length;
    for (let i = 0; i < count; i++) {
      const h = socks[i];
      const noDf = h >= ports;
      const k = noDf ? h - ports : h;
      if (k < 0 || k >= ports || (noDf && this.sendersNoDf.length === 0)) {
        errs[i] = 9; // EBADF: not one of our senders
        continue;
      }
      const size = sizes[i];
      const g = gso[i];
      if (size > UDP_MAX_PAYLOAD || (g > 0 && Math.ceil(size / g) > UDP_GSO_MAX_SEGMENTS)) {
        errs[i] = EINVAL;
        continue;
      }
      const gsoRun = g > 0 && g < size;
      if ((gsoRun ? g : size) + UDP_IP4_OVERHEAD > this.net.mtu) {
        if (gsoRun) {
          errs[i] = EINVAL; // GSO never fragments: Linux refuses a segment above the MTU
          continue;
        }
        if (!noDf) {
          errs[i] = EMSGSIZE;
          continue;
        }
      }
      errs[i] = 0;
      const src = this.srcRecs[k];
      const bytes = bufs.slice(offsets[i], offsets[i] + size);
      this.net.trace?.record(this.name, bytes);
      this.net.deliver(addrs, i * ADDR_LEN, { src, bytes, gso: 0 }, g > 0 && g < size ? g : 0);
    }
    return count;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.net.detach(this.rec);
  }

  private check(): void {
    if (this.closed) throw Object.assign(new Error('fake UDP transport is closed (EBADF)'), { code: 'EBADF', errno: 9, syscall: 'recvmmsg' });
  }
}
