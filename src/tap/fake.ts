/**
 * An in-memory TAP queue (wireguard-go's tun/tuntest): deterministic, in-process,
 * no root. The "stack side" is the test: `inject` queues a frame as if the kernel
 * transmitted it to the device (what `read` returns), `takeWritten` returns what
 * the dataplane wrote (what the kernel would receive). It keeps the Linux edges
 * that the packet path depends on: a frame longer than its read slot is reported
 * as slotLen + 1 with only slotLen bytes copied; a written frame shorter than the
 * vnet header plus an Ethernet header is refused with EINVAL in `errs` and the
 * batch goes on; a full transmit queue drops what is injected.
 */
import { EINVAL, type FrameQueue } from './index.js';

/**
 * One order across fake devices: every write or send any fake makes takes the
 * next sequence number, so a test can assert the order in which the dataplane
 * handed frames to different devices (the uplink's ordering rules).
 */
export class FakeTrace {
  private seq = 0;
  readonly events: { device: string; seq: number; bytes: Uint8Array }[] = [];
  /** Record one frame or datagram leaving through `device`. */
  record(device: string, bytes: Uint8Array): void {
    this.events.push({ device, seq: this.seq++, bytes });
  }
}

export interface FakeTapOptions {
  /** Bytes of virtio_net_hdr in front of every frame (default 0). */
  vnetHdrLen?: number;
  /** Frames the transmit queue holds before `inject` drops (default 1000, as txqueuelen). */
  queueLen?: number;
  /** The device name in a shared trace. */
  name?: string;
  trace?: FakeTrace;
}

/** A written frame: its vnet header (empty without one) and the Ethernet frame. */
export interface WrittenFrame {
  hdr: Uint8Array;
  frame: Uint8Array;
}

export class FakeTap implements FrameQueue {
  readonly vnetHdrLen: number;
  readonly pollFd = -1;
  /** Frames `inject` dropped because the queue was full. */
  dropped = 0;
  private readonly queueLen: number;
  private readonly name: string;
  private readonly trace: FakeTrace | undefined;
  private readonly pending: Uint8Array[] = [];
  private written: WrittenFrame[] = [];
  private closed = false;

  constructor(options: FakeTapOptions = {}) {
    this.vnetHdrLen = options.vnetHdrLen ?? 0;
    this.queueLen = options.queueLen ?? 1000;
    this.name = options.name ?? 'tap';
    this.trace = options.trace;
  }

  /**
   * Queue `frame` for `read`, as the kernel transmitting it to the device; `hdr`
   * is its vnet header (default: zeros). Returns false when the queue was full.
   */
  inject(frame: Uint8Array, hdr?: Uint8Array): boolean {
    if (this.pending.length >= this.queueLen) {
      this.dropped++;
      return false;
    }
    const b = new Uint8Array(this.vnetHdrLen + frame.length);
    if (hdr) b.set(hdr.subarray(0, this.vnetHdrLen));
    b.set(frame, this.vnetHdrLen);
    this.pending.push(b);
    return true;
  }

  /** Frames waiting to be read. */
  get queued(): number {
    return this.pending.length;
  }

  /** What the dataplane wrote since the last call, in order. */
  takeWritten(): WrittenFrame[] {
    const w = this.written;
    this.written = [];
    return w;
  }

  read(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, slotLen: number, max: number): number {
    this.check();
    let n = 0;
    while (n < max) {
      const f = this.pending.shift();
      if (f === undefined) break;
      const len = Math.min(f.length, slotLen);
      bufs.set(f.subarray(0, len), offsets[n]);
      sizes[n] = f.length > slotLen ? slotLen + 1 : f.length;
      n++;
    }
    return n;
  }

  write(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number, errs: Int32Array): number {
    this.check();
    for (let i = 0; i < count; i++) {
      const size = sizes[i];
      if (size < this.vnetHdrLen + 14) {
        errs[i] = EINVAL;
        continue;
      }
      errs[i] = 0;
      const o = offsets[i];
      const bytes = bufs.slice(o, o + size);
      this.written.push({ hdr: bytes.subarray(0, this.vnetHdrLen), frame: bytes.subarray(this.vnetHdrLen) });
      this.trace?.record(this.name, bytes);
    }
    return count;
  }

  close(): void {
    this.closed = true;
  }

  private check(): void {
    if (this.closed) throw Object.assign(new Error('fake TAP queue is closed (EBADF)'), { code: 'EBADF', errno: 9, syscall: 'read' });
  }
}
