/**
 * The uplink path, in front of the offload path (see src/uplink for the port).
 *
 * Transmit: the engine selects the frames of a TAP batch that go whole to the
 * uplink (unicast to a peer whose next hop is known); txTunnel wraps them in
 * their read slot's headroom. Ordering rule: the batch is cut into runs, and
 * each run of socket-path frames is segmented and sent before the run of uplink
 * frames after it is written, and so on, so no flow is reordered between the
 * two ways out.
 *
 * Receive: frames steered to the port are unwrapped in place by rxTunnel; UDP
 * GSO runs among them (from socket-path senders) go through rxOffload. Ordering
 * rule: in arrival order, the unwrapped frames before a run are written to the
 * TAP before the run's frames. (The pipeline reads the uplink before the socket:
 * a flow's large segments, steered here, before its small tail on the socket.)
 */
import { native, RX_OFFLOAD, RX_TUNNEL, TX_TUNNEL, type NativeAddon, type RxOffloadHandle, type RxTunnelHandle, type TxOffloadHandle, type TxTunnelHandle } from '../native/index.js';
import { ADDR_LEN, MAX_BATCH, TNL_VNET_HDR_LEN, VNET_HDR_LEN } from '../native/limits.js';
import type { Accounting } from '../dataplane/accounting.js';
import { newBatch, type Batch } from '../dataplane/batch.js';
import type { Engine, UplinkOptions } from '../dataplane/engine.js';
import type { UplinkPort } from '../uplink/index.js';
import { align64 } from './plain.js';
import type { OffloadPath } from './offload.js';
import type { Devices, Path, PipelineConfig } from './index.js';

/** Frames per uplink read: each is up to 64 KiB. */
const UPLINK_READ_MAX = 16;

export class UplinkPath implements Path {
  private readonly addon: NativeAddon = native();
  private readonly dev: Devices;
  private readonly vni: number;
  private readonly vxlanPort: number;
  private readonly dfMode: number;
  private readonly maxOuterIp: number;
  // transmit
  private readonly sel: Int32Array;
  private readonly srcPort: Uint16Array;
  private readonly tunOffsets: Uint32Array;
  private readonly tunSizes: Uint32Array;
  private readonly tunResult = new Uint32Array(TX_TUNNEL.LENGTH);
  private readonly txTunnel: TxTunnelHandle;
  private readonly restTx: TxOffloadHandle;
  /** A run of socket-path frames (into the offload path's transmit slab). */
  private readonly rest: Batch;
  /** A run of wrapped frames for the uplink port. */
  private readonly run: Batch;
  // receive
  private readonly upB: number;
  readonly batchLimits: Path['batchLimits'];
  private readonly upSlotLen: number;
  private readonly upIn: Batch;
  private readonly upFrames: Batch;
  private readonly upOk: Uint8Array;
  private readonly upPeerOf: Int32Array;
  private readonly upLearn: Uint32Array;
  private readonly upResult = new Uint32Array(RX_TUNNEL.LENGTH);
  private readonly rxTunnel: RxTunnelHandle | undefined;
  private readonly noDrops = new Uint32Array(3);
  private readonly usoOffsets: Uint32Array;
  private readonly usoSizes: Uint32Array;
  private readonly usoGso: Uint16Array;
  private readonly usoAddrs: Uint8Array;
  private readonly usoOk: Uint8Array;
  private readonly usoPeerOf: Int32Array;
  private readonly upOrder: Uint8Array;
  /** One UDP GSO run at a time: its inner frames plus their headers. */
  private readonly upOut: Uint8Array;
  private readonly usoFrames: Batch;
  private readonly usoLearn: Uint32Array;
  private readonly runOff = new Uint32Array(1);
  private readonly runSize = new Uint32Array(1);
  private readonly runGso = new Uint16Array(1);
  private readonly runOk = new Uint8Array(1);
  private readonly runPeer = new Int32Array(1);
  private readonly rxResult = new Uint32Array(RX_OFFLOAD.LENGTH);
  private readonly rxDrops = this.rxResult.subarray(RX_OFFLOAD.DROP_SHORT, RX_OFFLOAD.DROP_WRONG_VNI + 1);
  private readonly runRx: RxOffloadHandle | undefined;

  constructor(
    cfg: PipelineConfig,
    dev: Devices,
    private readonly port: UplinkPort,
    up: UplinkOptions,
    private readonly engine: Engine,
    private readonly acct: Accounting,
    private readonly offload: OffloadPath,
  ) {
    this.dev = dev;
    const B = offload.batchLimits.tap; // the TAP batch the offload stage reads
    this.vni = cfg.vni;
    this.vxlanPort = cfg.vxlanPort;
    this.dfMode = up.dfMode;
    this.maxOuterIp = up.maxOuterIp;
    this.sel = new Int32Array(B);
    this.srcPort = new Uint16Array(B);
    this.tunOffsets = new Uint32Array(B);
    this.tunSizes = new Uint32Array(B);
    this.tunResult[TX_TUNNEL.NEXT_IP_ID] = cfg.index << 12; // workers start apart in the ID space
    this.rest = newBatch(B, offload.frames.bufs);
    this.run = newBatch(B, offload.frames.bufs);
    const f = offload.frames;
    this.txTunnel = this.addon.txTunnelBind({
      bufs: f.bufs,
      offsets: f.offsets,
      sizes: f.sizes,
      sel: this.sel,
      srcPort: this.srcPort,
      dfMode: this.dfMode,
      maxOuterIp: this.maxOuterIp,
      outOffsets: this.tunOffsets,
      outSizes: this.tunSizes,
      result: this.tunResult,
    });
    this.restTx = offload.bindEncap(this.rest);

    const upB = (this.upB = port.receives ? Math.min(B, UPLINK_READ_MAX) : 0);
    this.batchLimits = { ...offload.batchLimits, uplink: upB };
    this.upSlotLen = TNL_VNET_HDR_LEN + 14 + 65535;
    const upStride = align64(this.upSlotLen);
    this.upIn = newBatch(upB, new Uint8Array(upStride * upB));
    for (let i = 0; i < upB; i++) this.upIn.offsets[i] = i * upStride;
    this.upFrames = newBatch(upB, this.upIn.bufs);
    this.upOk = new Uint8Array(upB);
    this.upPeerOf = new Int32Array(upB);
    this.upLearn = new Uint32Array(upB);
    this.usoOffsets = new Uint32Array(upB);
    this.usoSizes = new Uint32Array(upB);
    this.usoGso = new Uint16Array(upB);
    this.usoAddrs = new Uint8Array(upB * ADDR_LEN);
    this.usoOk = new Uint8Array(upB);
    this.usoPeerOf = new Int32Array(upB);
    this.upOrder = new Uint8Array(upB);
    this.upOut = new Uint8Array(upB > 0 ? this.upSlotLen + MAX_BATCH * (VNET_HDR_LEN + 64) : 0);
    this.usoFrames = newBatch(upB > 0 ? MAX_BATCH : 0, this.upOut);
    this.usoLearn = new Uint32Array(upB > 0 ? MAX_BATCH : 0);
    if (upB > 0) {
      this.rxTunnel = this.addon.rxTunnelBind({
        bufs: this.upIn.bufs,
        offsets: this.upIn.offsets,
        sizes: this.upIn.sizes,
        vni: this.vni,
        port: this.vxlanPort,
        addrs: this.upIn.addrs,
        frameOffsets: this.upFrames.offsets,
        frameSizes: this.upFrames.sizes,
        usoOffsets: this.usoOffsets,
        usoSizes: this.usoSizes,
        usoGso: this.usoGso,
        usoAddrs: this.usoAddrs,
        order: this.upOrder,
        result: this.upResult,
      });
      this.runRx = this.addon.rxOffloadBind({
        bufs: this.upIn.bufs,
        offsets: this.runOff,
        sizes: this.runSize,
        gso: this.runGso,
        ok: this.runOk,
        vni: this.vni,
        out: this.upOut,
        outOffset: 0,
        frameOffsets: this.usoFrames.offsets,
        frameSizes: this.usoFrames.sizes,
        learnSrc: this.usoLearn,
        result: this.rxResult,
      });
    }
  }

  transmit(): number {
    const o = this.offload;
    const t0 = performance.now();
    const n = o.readTap();
    if (n === 0) return 0;
    const f = o.frames;
    const t1 = performance.now();
    const sel = this.sel;
    const tunnelled = this.engine.selectTunnel(f.bufs, f.offsets, f.sizes, n, sel, this.srcPort) > 0 ? this.addon.txTunnel(this.txTunnel, n, this.engine.tunnelTemplates) : 0;
    if (tunnelled === 0) {
      o.encap(f, o.framesTx);
      const t2 = performance.now();
      o.flush();
      this.acct.txTimes(t0, t1, t2, performance.now());
      return n;
    }
    // in batch order: each run of socket-path frames is sent before the run of
    // uplink frames after it is written, and so on, so no flow is reordered
    const t2 = performance.now();
    const rest = this.rest;
    const run = this.run;
    let frames = 0;
    let bytes = 0;
    for (let i = 0, k = 0; i < n;) {
      let r = 0;
      if (sel[i] < 0) {
        for (; i < n && sel[i] < 0; i++, r++) {
          rest.offsets[r] = f.offsets[i];
          rest.sizes[r] = f.sizes[i];
        }
        rest.count = r;
        o.encap(rest, this.restTx);
        o.flush();
      } else {
        for (; i < n && sel[i] >= 0; i++, k++, r++) {
          run.offsets[r] = this.tunOffsets[k];
          run.sizes[r] = this.tunSizes[k];
          run.peers[r] = sel[i];
          bytes += f.sizes[i] - VNET_HDR_LEN;
        }
        run.count = r;
        this.acct.uplinkWritten(run, this.port.write(run.bufs, run.offsets, run.sizes, r, run.errs));
        frames += r;
      }
    }
    this.acct.uplinkBatch(this.tunResult[TX_TUNNEL.SEGMENTS], frames, bytes);
    this.acct.txTimes(t0, t1, t2, performance.now());
    return n;
  }

  receiveUplink(): number {
    if (this.rxTunnel === undefined) return 0;
    const up = this.upIn;
    const t0 = performance.now();
    const u = this.port.read(up.bufs, up.offsets, up.sizes, this.upSlotLen, this.upB);
    if (u === 0) return 0;
    up.count = u;
    const t1 = performance.now();
    const fr = this.upFrames;
    const res = this.upResult;
    const k = this.addon.rxTunnel(this.rxTunnel, u);
    const runs = res[RX_TUNNEL.USO_RUNS];
    this.engine.checkSources(fr.sizes, k, up.addrs, this.upOk, this.upPeerOf);
    if (runs > 0) this.engine.checkSources(this.usoSizes, runs, this.usoAddrs, this.usoOk, this.usoPeerOf, this.usoGso);
    this.acct.tunnelDrops(res[RX_TUNNEL.DROP_MALFORMED], res[RX_TUNNEL.DROP_BAD_FLAGS], res[RX_TUNNEL.DROP_WRONG_VNI]);
    this.acct.uplinkRead(k, runs, res[RX_TUNNEL.SEGMENTS], res[RX_TUNNEL.SUPER_FRAMES], res[RX_TUNNEL.IGNORED]);
    const t2 = performance.now();
    // in arrival order: the frames before a UDP GSO run are written before it
    let from = 0;
    let f = 0;
    for (let x = 0, j = 0; x < k + runs; x++) {
      if (this.upOrder[x] === 0) {
        f++;
        continue;
      }
      this.writeFrames(from, f);
      from = f;
      this.writeRun(j++);
    }
    this.writeFrames(from, f);
    this.acct.rxTimes(t0, t1, t2, performance.now());
    return u;
  }

  receive(): number {
    return this.offload.receive();
  }

  /** Write unwrapped frames from..to-1 (those from peers) to the TAP. */
  private writeFrames(from: number, to: number): void {
    const fr = this.upFrames;
    let kept = 0;
    for (let i = from; i < to; i++) {
      if (this.upOk[i] === 0) continue;
      fr.offsets[kept] = fr.offsets[i];
      fr.sizes[kept] = fr.sizes[i];
      this.upLearn[kept] = i;
      kept++;
    }
    if (kept === 0) return;
    this.engine.afterRxOffload(fr.bufs, fr, kept, this.upLearn, this.upPeerOf, 0, this.noDrops);
    if (fr.count > 0) this.acct.written(fr, this.dev.tap.write(fr.bufs, fr.offsets, fr.sizes, fr.count, fr.errs));
  }

  /** UDP GSO run j through rxOffload into upOut, then to the TAP. */
  private writeRun(j: number): void {
    if (this.usoOk[j] === 0 || this.runRx === undefined) return;
    this.runOff[0] = this.usoOffsets[j];
    this.runSize[0] = this.usoSizes[j];
    this.runGso[0] = this.usoGso[j];
    this.runOk[0] = 1;
    this.runPeer[0] = this.usoPeerOf[j];
    const out = this.usoFrames;
    const r = this.rxResult;
    const nf = this.addon.rxOffload(this.runRx, 1);
    this.acct.coalesced(r[RX_OFFLOAD.SUPER_FRAMES], r[RX_OFFLOAD.NO_ROOM]); // no room in upOut: sized so that it cannot happen
    this.engine.afterRxOffload(this.upOut, out, nf, this.usoLearn, this.runPeer, r[RX_OFFLOAD.SEGMENTS_IN], this.rxDrops, this.runPeer[0]);
    if (out.count > 0) this.acct.written(out, this.dev.tap.write(out.bufs, out.offsets, out.sizes, out.count, out.errs));
  }
}
