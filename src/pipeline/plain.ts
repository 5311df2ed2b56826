/**
 * The plain path: one MTU-sized frame per TAP read and per datagram. A TAP slot
 * starts VXLAN_HLEN bytes in, so the engine writes the VXLAN header in place and
 * the datagram is sent from the read slot (no copy); a received datagram's
 * inner frame is written to the TAP from the receive slot.
 */
import { native, type NativeAddon } from '../native/index.js';
import { VXLAN_HLEN } from '../native/limits.js';
import type { Accounting } from '../dataplane/accounting.js';
import { newBatch, type Batch } from '../dataplane/batch.js';
import type { Engine } from '../dataplane/engine.js';
import { sendBatchCapacity } from '../dataplane/sizing.js';
import type { Devices, Path, PipelineConfig, Sender } from './index.js';

/** Round up to a multiple of 64 (cache line). */
export function align64(n: number): number {
  return (n + 63) & ~63;
}

export class PlainPath implements Path {
  private readonly addon: NativeAddon = native();
  private readonly dev: Devices;
  private readonly B: number;
  readonly batchLimits: Path['batchLimits'];
  private readonly tapSlotLen: number;
  private readonly udpSlotLen: number;
  /** Frames read from the TAP (slab: one slot per frame, VXLAN headroom in front). */
  private readonly frames: Batch;
  /** Datagrams to send (pointing into the frames' slab). */
  private readonly tx: Batch;
  /** Datagrams received. */
  private readonly dgrams: Batch;
  /** Inner frames to write to the TAP (pointing into the datagrams' slab). */
  private readonly out: Batch;

  constructor(
    cfg: PipelineConfig,
    dev: Devices,
    private readonly engine: Engine,
    private readonly acct: Accounting,
    private readonly sender: Sender,
  ) {
    this.dev = dev;
    const B = (this.B = cfg.batchSize);
    this.tapSlotLen = cfg.tapSlotLen;
    this.udpSlotLen = cfg.udpSlotLen;
    const tapStride = align64(VXLAN_HLEN + cfg.tapSlotLen);
    const udpStride = align64(cfg.udpSlotLen);
    this.frames = newBatch(B, new Uint8Array(tapStride * B));
    this.dgrams = newBatch(B, new Uint8Array(udpStride * B));
    for (let i = 0; i < B; i++) {
      this.frames.offsets[i] = i * tapStride + VXLAN_HLEN;
      this.dgrams.offsets[i] = i * udpStride;
    }
    this.tx = newBatch(sendBatchCapacity(B), this.frames.bufs);
    this.out = newBatch(B, this.dgrams.bufs);
    this.batchLimits = { tap: B, uplink: 0, socket: B };
  }

  transmit(): number {
    const f = this.frames;
    const t0 = performance.now();
    const n = this.dev.tap.read(f.bufs, f.offsets, f.sizes, this.tapSlotLen, this.B);
    if (n === 0) return 0;
    f.count = n;
    this.acct.tapBatch();
    const t1 = performance.now();
    this.engine.encap(f.bufs, f.offsets, f.sizes, n, this.tx);
    const t2 = performance.now();
    this.sender.send(this.tx);
    this.acct.txTimes(t0, t1, t2, performance.now());
    return n;
  }

  receiveUplink(): number {
    return 0;
  }

  receive(): number {
    const d = this.dgrams;
    const out = this.out;
    const t0 = performance.now();
    const m = this.dev.transport.recv(d.bufs, d.offsets, d.sizes, this.udpSlotLen, this.B, d.addrs, d.gso);
    if (m === 0) return 0;
    d.count = m;
    this.acct.udpBatch();
    const t1 = performance.now();
    this.engine.decap(d.bufs, d.offsets, d.sizes, m, d.addrs, out);
    if (out.count > 0) this.acct.checksumsCompleted(this.addon.completeChecksums(out.bufs, out.offsets, out.sizes, out.count));
    const t2 = performance.now();
    if (out.count > 0) this.acct.written(out, this.dev.tap.write(out.bufs, out.offsets, out.sizes, out.count, out.errs));
    this.acct.rxTimes(t0, t1, t2, performance.now());
    return m;
  }
}
