/**
 * The offload path: TSO super-frames from a vnet_hdr TAP are cut into wire-size
 * VXLAN segments by txOffload and sent as UDP GSO messages; GRO-coalesced
 * datagrams are split and their TCP segments re-coalesced into GSO super-frames
 * by rxOffload. The transmit slab holds the TAP read slots (TUNNEL_HEADROOM in
 * front of each, room for the uplink's outer headers) and the segment region,
 * so one send covers messages written in place and messages written to the
 * segment region.
 */
import { native, RX_OFFLOAD, TX_OFFLOAD, type NativeAddon, type RxOffloadHandle, type TxOffloadHandle } from '../native/index.js';
import { MAX_BATCH, TUNNEL_HEADROOM, UDP_GSO_MAX_SEGMENTS, VNET_HDR_LEN, VXLAN_HLEN } from '../native/limits.js';
import type { Accounting } from '../dataplane/accounting.js';
import { newBatch, type Batch } from '../dataplane/batch.js';
import type { Engine, FrameMeta } from '../dataplane/engine.js';
import { sendBatchCapacity, superFrameBatch } from '../dataplane/sizing.js';
import { writeVxlanHeader } from '../wire/vxlan.js';
import { align64 } from './plain.js';
import type { Devices, Path, PipelineConfig, Sender } from './index.js';

export class OffloadPath implements Path {
  private readonly addon: NativeAddon = native();
  private readonly dev: Devices;
  /** Super-frames per TAP read (superFrameBatch of --batch). */
  private readonly B: number;
  private readonly udpB: number;
  readonly batchLimits: Path['batchLimits'];
  private readonly vni: number;
  private readonly tapSlotLen: number;
  private readonly udpSlotLen: number;
  private readonly maxGsoBytes: number;
  /** Frames read from the TAP (the transmit slab's first region). */
  readonly frames: Batch;
  /** Where the segment region starts in the transmit slab (txOffload writes segmented super-frames there). */
  private readonly outBase: number;
  /** txOffload's messages. */
  private readonly msgBuf: Uint8Array;
  private readonly msgOffsets: Uint32Array;
  private readonly msgSizes: Uint32Array;
  private readonly msgGso: Uint16Array;
  private readonly msgFrame: Uint32Array;
  private readonly txResult = new Uint32Array(TX_OFFLOAD.LENGTH);
  /** What txOffload found in each frame (flow hash, DF): the engine does not parse frames again. */
  private readonly meta: FrameMeta;
  /** txOffload bound to the TAP batch. */
  readonly framesTx: TxOffloadHandle;
  private readonly vxlan = new Uint8Array(VXLAN_HLEN);
  /** Datagrams to send (pointing into the transmit slab). */
  readonly tx: Batch;
  /** Datagrams received (GRO runs). */
  private readonly dgrams: Batch;
  private readonly ok: Uint8Array;
  private readonly peerOf: Int32Array;
  /** Frames rxOffload built, to write to the TAP (in the receive slab's output region). */
  private readonly tapOut: Batch;
  private readonly tapOutRegion: Uint8Array;
  private readonly learnSrc = new Uint32Array(MAX_BATCH);
  private readonly rxResult = new Uint32Array(RX_OFFLOAD.LENGTH);
  /** The result view's drops (short, bad flags, wrong VNI), as the engine takes them. */
  private readonly rxDrops = this.rxResult.subarray(RX_OFFLOAD.DROP_SHORT, RX_OFFLOAD.DROP_WRONG_VNI + 1);
  /** rxOffload bound to the datagram batch. */
  private readonly rx: RxOffloadHandle;

  constructor(
    cfg: PipelineConfig,
    dev: Devices,
    private readonly engine: Engine,
    private readonly acct: Accounting,
    private readonly sender: Sender,
  ) {
    this.dev = dev;
    const B = (this.B = superFrameBatch(cfg.batchSize));
    this.udpB = Math.max(1, Math.min(B, Math.floor(MAX_BATCH / UDP_GSO_MAX_SEGMENTS)));
    this.batchLimits = { tap: B, uplink: 0, socket: this.udpB };
    this.vni = cfg.vni;
    this.tapSlotLen = cfg.tapSlotLen;
    this.udpSlotLen = cfg.udpSlotLen;
    this.maxGsoBytes = cfg.maxGsoBytes;
    writeVxlanHeader(this.vxlan, 0, cfg.vni);

    // transmit slab: TAP slots, then the segment region
    // (64 KiB at MSS 536 is ~123 segments x (VXLAN 8 + up to 110 header bytes))
    const tapStride = align64(TUNNEL_HEADROOM + cfg.tapSlotLen);
    const tapInBytes = tapStride * B;
    const outBytes = B * align64(cfg.tapSlotLen + 16 * 1024);
    const txSlab = new Uint8Array(tapInBytes + outBytes);
    this.frames = newBatch(B, txSlab);
    for (let i = 0; i < B; i++) this.frames.offsets[i] = i * tapStride + TUNNEL_HEADROOM;
    this.outBase = tapInBytes;
    const maxMsgs = sendBatchCapacity(B);
    this.msgBuf = new Uint8Array(maxMsgs);
    this.msgOffsets = new Uint32Array(maxMsgs);
    this.msgSizes = new Uint32Array(maxMsgs);
    this.msgGso = new Uint16Array(maxMsgs);
    this.msgFrame = new Uint32Array(maxMsgs);
    this.tx = newBatch(maxMsgs, txSlab);
    this.meta = { hash: new Uint32Array(B), df: new Uint8Array(B) };
    this.framesTx = this.bindEncap(this.frames);

    // receive slab: datagram slots, then the TAP output region
    const udpStride = align64(cfg.udpSlotLen);
    const udpInBytes = udpStride * this.udpB;
    const rxSlab = new Uint8Array(udpInBytes + udpInBytes + MAX_BATCH * (VNET_HDR_LEN + 64));
    this.dgrams = newBatch(this.udpB, rxSlab);
    for (let i = 0; i < this.udpB; i++) this.dgrams.offsets[i] = i * udpStride;
    this.ok = new Uint8Array(this.udpB);
    this.peerOf = new Int32Array(this.udpB);
    this.tapOutRegion = rxSlab.subarray(udpInBytes);
    this.tapOut = newBatch(MAX_BATCH, this.tapOutRegion);
    this.rx = this.addon.rxOffloadBind({
      bufs: rxSlab,
      offsets: this.dgrams.offsets,
      sizes: this.dgrams.sizes,
      gso: this.dgrams.gso,
      ok: this.ok,
      vni: cfg.vni,
      out: this.tapOutRegion,
      outOffset: 0,
      frameOffsets: this.tapOut.offsets,
      frameSizes: this.tapOut.sizes,
      learnSrc: this.learnSrc,
      result: this.rxResult,
    });
  }

  /**
   * Bind txOffload to `run` (frames in the transmit slab): the handle `encap` takes for it.
   * Its output buffer is the transmit slab itself, written from the segment region on, so
   * every message offset it returns is already an offset into the slab the send reads.
   */
  bindEncap(run: Batch): TxOffloadHandle {
    return this.addon.txOffloadBind({
      bufs: run.bufs,
      offsets: run.offsets,
      sizes: run.sizes,
      vxlan: this.vxlan,
      maxMsgBytes: this.maxGsoBytes,
      out: run.bufs,
      outOffset: this.outBase,
      msgBuf: this.msgBuf,
      msgOffsets: this.msgOffsets,
      msgSizes: this.msgSizes,
      msgGso: this.msgGso,
      msgFrame: this.msgFrame,
      result: this.txResult,
      frameHash: this.meta.hash,
      frameDf: this.meta.df,
    });
  }

  /** Read a batch of frames from the TAP into `frames`; returns the count. */
  readTap(): number {
    const f = this.frames;
    const n = this.dev.tap.read(f.bufs, f.offsets, f.sizes, this.tapSlotLen, this.B);
    f.count = n;
    if (n > 0) this.acct.tapBatch();
    return n;
  }

  transmit(): number {
    const t0 = performance.now();
    const n = this.readTap();
    if (n === 0) return 0;
    const t1 = performance.now();
    this.encap(this.frames, this.framesTx);
    const t2 = performance.now();
    this.sender.send(this.tx);
    this.acct.txTimes(t0, t1, t2, performance.now());
    return n;
  }

  /**
   * The socket path for `run` (frames in the transmit slab, vnet header first;
   * `handle` from bindEncap(run)): segment them and queue the messages in `tx`
   * (sent by the caller, or by the engine when the batch fills).
   */
  encap(run: Batch, handle: TxOffloadHandle): void {
    const r = this.txResult;
    const nmsg = this.addon.txOffload(handle, run.count);
    this.acct.segmentDrops(r[TX_OFFLOAD.DROPPED]);
    this.engine.encapMessages(run.bufs, run.offsets, run.sizes, run.count, nmsg, this.msgOffsets, this.msgSizes, this.msgGso, this.msgFrame, r[TX_OFFLOAD.SEGMENTS], this.tx, this.meta);
  }

  /** Send what `encap` queued. */
  flush(): void {
    this.sender.send(this.tx);
  }

  receiveUplink(): number {
    return 0;
  }

  receive(): number {
    const d = this.dgrams;
    const t0 = performance.now();
    const m = this.dev.transport.recv(d.bufs, d.offsets, d.sizes, this.udpSlotLen, this.udpB, d.addrs, d.gso);
    if (m === 0) return 0;
    d.count = m;
    this.acct.udpBatch();
    const t1 = performance.now();
    this.engine.checkSources(d.sizes, m, d.addrs, this.ok, this.peerOf, d.gso);
    const drops = this.rxDrops;
    const r = this.rxResult;
    const out = this.tapOut;
    const nf = this.addon.rxOffload(this.rx, m);
    this.acct.coalesced(r[RX_OFFLOAD.SUPER_FRAMES], r[RX_OFFLOAD.NO_ROOM]);
    this.engine.afterRxOffload(this.tapOutRegion, out, nf, this.learnSrc, this.peerOf, r[RX_OFFLOAD.SEGMENTS_IN], drops);
    const t2 = performance.now();
    if (out.count > 0) this.acct.written(out, this.dev.tap.write(out.bufs, out.offsets, out.sizes, out.count, out.errs));
    this.acct.rxTimes(t0, t1, t2, performance.now());
    return m;
  }
}
