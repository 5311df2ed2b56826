/**
 * A dataplane worker thread: owns one TAP queue and one receive socket, and a
 * pool of send sockets (one per source port). The loop moves batches between the
 * devices and the Engine; when both sides are idle it blocks in poll() on the TAP,
 * the socket and a wake-up eventfd. It has no event loop: control messages are
 * pulled with receiveMessageOnPort when the shared sequence number moves, and
 * shutdown is a flag plus an eventfd signal.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { ADDR_LEN, MAX_BATCH, native, POLLIN, TNL_VNET_HDR_LEN, TUNNEL_HEADROOM, UDP_GSO_MAX_SEGMENTS, VNET_HDR_LEN } from '../native/index.js';
import { sendBatchCapacity } from './sizing.js';
import { Engine, newFrameBatch, newTxBatch, type PeerInfo, type TxBatch, type UplinkOptions } from './engine.js';
import { FdbView, nowSeconds } from './fdb.js';
import { C, peerCounterView } from './stats.js';
import { VXLAN_HLEN, writeVxlanHeader } from '../wire/vxlan.js';

/** What the supervisor hands each worker. */
export interface WorkerInit {
  index: number;
  tapFd: number;
  rxFd: number;
  txFds: number[];
  txFdsNoDf: number[];
  wakeFd: number;
  vni: number;
  batchSize: number;
  /** Bytes a TAP read may return. */
  tapSlotLen: number;
  /** Bytes a UDP receive may return. */
  udpSlotLen: number;
  learning: boolean;
  acceptUnknownPeers: boolean;
  ownMac: Uint8Array;
  maxUnfragmentedPayload: number;
  /** TAP MTU. */
  mtu: number;
  busyPollUs: number;
  /** vnet_hdr TAP with TSO + UDP GSO/GRO (txOffload/rxOffload kernels). */
  offload: boolean;
  /** Largest UDP payload of one GSO message (65507). */
  maxGsoBytes: number;
  fdb: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  /** [0] stop flag, [1] control message sequence number */
  control: SharedArrayBuffer;
  /** The port control messages arrive on. */
  port: MessagePort;
  peers: PeerInfo[];
  /** Uplink transmit: this worker's queue of the uplink TAP (vnet header size 24). */
  uplinkFd?: number;
  uplink?: UplinkOptions;
  /** The uplink TAP also receives: VXLAN for us is steered to it (nftables fwd). */
  uplinkRx?: boolean;
  /** The VXLAN UDP port (what uplink receive accepts). */
  vxlanPort: number;
}

/**
 * Control messages from the supervisor. `fault` is the test hook behind
 * VXTAP_TEST_HOOKS=1: the worker fails as a bug would (throws from its loop,
 * or ends its thread), so the supervisor's restart can be tested.
 */
export type WorkerCommand = { type: 'peers'; peers: PeerInfo[] } | { type: 'fault'; how: 'throw' | 'exit' };

export const CTL_STOP = 0;
export const CTL_SEQ = 1;

/** Round up to a multiple of 64 (cache line). */
function align64(n: number): number {
  return (n + 63) & ~63;
}

function runWorker(init: WorkerInit): void {
  if (init.offload) runOffload(init);
  else runPlain(init);
  parentPort!.postMessage({ type: 'stopped', index: init.index });
}

/** The plain path: one MTU-sized frame per TAP read and per datagram. */
function runPlain(init: WorkerInit): void {
  const addon = native();
  const counters = new Float64Array(init.counters);
  const B = init.batchSize;

  // --- buffers, allocated once --------------------------------------------
  const tapStride = align64(VXLAN_HLEN + init.tapSlotLen);
  const udpStride = align64(init.udpSlotLen);
  const tapBufs = new Uint8Array(tapStride * B);
  const udpBufs = new Uint8Array(udpStride * B);
  const tapOffsets = new Uint32Array(B);
  const tapSizes = new Uint32Array(B);
  const udpOffsets = new Uint32Array(B);
  const udpSizes = new Uint32Array(B);
  const udpAddrs = new Uint8Array(B * 20);
  const udpGso = new Uint16Array(B);
  for (let i = 0; i < B; i++) {
    tapOffsets[i] = i * tapStride + VXLAN_HLEN;
    udpOffsets[i] = i * udpStride;
  }
  const out = newFrameBatch(B);

  const { engine, tx, sendTx } = makeEngine(init, counters, tapBufs, sendBatchCapacity(B));
  const idle = makeIdle(init, counters);
  const stopped = makeControl(init, engine);

  while (!stopped()) {

    const t0 = performance.now();
    const n = addon.readBatch(init.tapFd, tapBufs, tapOffsets, tapSizes, init.tapSlotLen, B);
    if (n > 0) counters[C.batches_tap]++;
    if (n > 0) {
      const t1 = performance.now();
      engine.encap(tapBufs, tapOffsets, tapSizes, n, tx);
      const t2 = performance.now();
      sendTx(tx);
      stamp(counters, t0, t1, t2);
    }
    const tr = performance.now();
    const m = addon.recvBatch(init.rxFd, udpBufs, udpOffsets, udpSizes, init.udpSlotLen, B, udpAddrs, udpGso);
    if (m > 0) counters[C.batches_udp]++;
    if (m > 0) {
      const t1 = performance.now();
      engine.decap(udpBufs, udpOffsets, udpSizes, m, udpAddrs, out);
      if (out.count > 0) {
        const done = addon.completeChecksums(udpBufs, out.offsets, out.sizes, out.count);
        counters[C.checksums_completed] += done;
      }
      const t2 = performance.now();
      if (out.count > 0) {
        const consumed = addon.writeBatch(init.tapFd, udpBufs, out.offsets, out.sizes, out.count, out.errs);
        engine.accountTap(out, consumed);
      }
      stampRx(counters, tr, t1, t2);
    }
    if (n === 0 && m === 0) idle();
  }
}

/** Add the tx stage times (t0 read start, t1 encap start, t2 send start). */
function stamp(counters: Float64Array, t0: number, t1: number, t2: number): void {
  const t3 = performance.now();
  counters[C.ns_tap_read] += (t1 - t0) * 1e6;
  counters[C.ns_encap] += (t2 - t1) * 1e6;
  counters[C.ns_udp_send] += (t3 - t2) * 1e6;
}

/** Add the rx stage times (t0 receive start, t1 decap start, t2 write start). */
function stampRx(counters: Float64Array, t0: number, t1: number, t2: number): void {
  const t3 = performance.now();
  counters[C.ns_udp_recv] += (t1 - t0) * 1e6;
  counters[C.ns_decap] += (t2 - t1) * 1e6;
  counters[C.ns_tap_write] += (t3 - t2) * 1e6;
}

/**
 * The engine of one worker and the tx batch it fills; `sendTx` sends the batch
 * from `slab` (every tx offset is relative to it) and accounts the result.
 */
function makeEngine(init: WorkerInit, counters: Float64Array, slab: Uint8Array, txCap: number) {
  const addon = native();
  const tx = newTxBatch(txCap);
  const sendTx = (batch: TxBatch): void => {
    if (batch.count === 0) return;
    const consumed = addon.sendBatch(batch.fds, slab, batch.offsets, batch.sizes, batch.count, batch.addrs, batch.gso, batch.errs);
    engine.accountTx(batch, consumed);
  };
  const engine = new Engine({
    vni: init.vni,
    fdb: new FdbView(init.fdb),
    counters,
    peerCounters: peerCounterView(init.counters),
    txFds: Int32Array.from(init.txFds),
    txFdsNoDf: Int32Array.from(init.txFdsNoDf),
    learning: init.learning,
    acceptUnknownPeers: init.acceptUnknownPeers,
    ownMac: init.ownMac,
    maxUnfragmentedPayload: init.maxUnfragmentedPayload,
    rxSlotLen: init.udpSlotLen,
    tapSlotLen: init.tapSlotLen,
    tapMtu: init.offload ? init.mtu : 0,
    uplink: init.uplinkFd !== undefined ? init.uplink : undefined,
    post: (ev) => parentPort!.postMessage(ev),
    flush: sendTx,
    now: nowSeconds,
  });
  engine.setPeers(init.peers);
  return { engine, tx, sendTx };
}

/**
 * Between two passes: true when the supervisor asked to stop; applies queued
 * control messages when the shared sequence number moved (no message-port
 * access otherwise, so the check costs two atomic loads).
 */
function makeControl(init: WorkerInit, engine: Engine): () => boolean {
  const ctl = new Int32Array(init.control);
  // Start "behind" so the first call drains: the supervisor may already have
  // posted (and bumped the sequence for) commands before this worker ran.
  let seenSeq = -1;
  return () => {
    if (Atomics.load(ctl, CTL_STOP) !== 0) return true;
    const seq = Atomics.load(ctl, CTL_SEQ);
    if (seq !== seenSeq) {
      seenSeq = seq;
      for (let m = receiveMessageOnPort(init.port); m; m = receiveMessageOnPort(init.port)) {
        const cmd = m.message as WorkerCommand;
        if (cmd.type === 'peers') engine.setPeers(cmd.peers);
        else if (cmd.type === 'fault') {
          if (cmd.how === 'exit') process.exit(70); // ends this thread only
          throw new Error('injected fault (test hook)');
        }
      }
    }
    return false;
  };
}

/**
 * The wait used when a pass over both devices found nothing: optionally spin
 * (busy-poll) for init.busyPollUs, then block in poll() on the TAP, the socket
 * and the wake-up eventfd (1 s at most, so a lost wake-up costs a second, not a hang).
 */
function makeIdle(init: WorkerInit, counters: Float64Array): () => void {
  const addon = native();
  // the uplink TAP (when it receives) is polled too; the wake-up eventfd stays at [2]
  const pollFds = init.uplinkRx && init.uplinkFd !== undefined ? Int32Array.of(init.tapFd, init.rxFd, init.wakeFd, init.uplinkFd) : Int32Array.of(init.tapFd, init.rxFd, init.wakeFd);
  const pollEvents = new Int16Array(pollFds.length).fill(POLLIN);
  const pollRevents = new Int16Array(pollFds.length);
  const busyNs = BigInt(init.busyPollUs * 1000);
  return () => {
    if (busyNs > 0n) {
      const until = process.hrtime.bigint() + busyNs;
      do {
        if (addon.poll(pollFds, pollEvents, pollRevents, 0) > 0) {
          if (pollRevents[2] !== 0) addon.eventfdDrain(init.wakeFd);
          return;
        }
      } while (process.hrtime.bigint() < until);
    }
    counters[C.polls]++;
    addon.poll(pollFds, pollEvents, pollRevents, 1000);
    if (pollRevents[2] !== 0) addon.eventfdDrain(init.wakeFd);
  };
}

/** Most inner frames one rxOffload call may produce (the addon's batch limit). */
const MAX_TAP_FRAMES = MAX_BATCH;
/** UDP GSO: at most 64 segments per message. */
const GRO_MAX_SEGMENTS = UDP_GSO_MAX_SEGMENTS;

/**
 * The offload path: TSO super-frames from a vnet_hdr TAP are cut into wire-size
 * VXLAN segments by txOffload and sent as UDP GSO messages; GRO-coalesced
 * datagrams are split and their TCP segments re-coalesced into GSO super-frames
 * by rxOffload. One slab holds every region, so one sendBatch covers messages
 * written in place and messages written to the output region.
 */
function runOffload(init: WorkerInit): void {
  const addon = native();
  const counters = new Float64Array(init.counters);
  const B = init.batchSize;
  const udpB = Math.max(1, Math.min(B, Math.floor(MAX_TAP_FRAMES / GRO_MAX_SEGMENTS)));

  // --- regions of one slab, allocated once ----------------------------------
  // every TAP slot starts TUNNEL_HEADROOM bytes in: room for the uplink's outer headers
  const tapStride = align64(TUNNEL_HEADROOM + init.tapSlotLen);
  const udpStride = align64(init.udpSlotLen);
  const tapInBytes = tapStride * B;
  // segment headers: 64 KiB at MSS 536 is ~123 segments x (VXLAN 8 + up to 110 header bytes)
  const outBytes = B * align64(init.tapSlotLen + 16 * 1024);
  const udpInBytes = udpStride * udpB;
  const tapOutBytes = udpInBytes + MAX_TAP_FRAMES * (VNET_HDR_LEN + 64);
  const slab = new Uint8Array(tapInBytes + outBytes + udpInBytes + tapOutBytes);
  const tapIn = slab.subarray(0, tapInBytes);
  const outBase = tapInBytes;
  const out = slab.subarray(outBase, outBase + outBytes);
  const udpIn = slab.subarray(outBase + outBytes, outBase + outBytes + udpInBytes);
  const tapOut = slab.subarray(outBase + outBytes + udpInBytes);

  const tapOffsets = new Uint32Array(B);
  const tapSizes = new Uint32Array(B);
  for (let i = 0; i < B; i++) tapOffsets[i] = i * tapStride + TUNNEL_HEADROOM;
  // uplink transmit: frames selected for the uplink, and the rest for the socket path
  const uplinkFd = init.uplinkFd;
  const tunSel = new Int32Array(B);
  const tunPort = new Uint16Array(B);
  const tunOffsets = new Uint32Array(B);
  const tunSizes = new Uint32Array(B);
  const tunErrs = new Int32Array(B);
  const tunResult = new Uint32Array(2);
  const restOffsets = new Uint32Array(B);
  const restSizes = new Uint32Array(B);
  const dfMode = init.uplink?.dfMode ?? 0;
  // uplink receive: outer frames read whole from the uplink TAP, unwrapped in place
  const upRx = init.uplinkRx === true && uplinkFd !== undefined;
  const upB = upRx ? Math.min(B, 16) : 0;
  const upSlotLen = TNL_VNET_HDR_LEN + 14 + 65535;
  const upStride = align64(upSlotLen);
  const upIn = new Uint8Array(upStride * upB);
  const upOffsets = new Uint32Array(upB);
  const upSizes = new Uint32Array(upB);
  for (let i = 0; i < upB; i++) upOffsets[i] = i * upStride;
  const upAddrs = new Uint8Array(upB * ADDR_LEN);
  const upFrames = newFrameBatch(upB);
  const upOk = new Uint8Array(upB);
  const upPeerOf = new Int32Array(upB);
  const upLearn = new Uint32Array(upB);
  const upDrops = new Uint32Array(3);
  const upResult = new Uint32Array(4);
  const NO_DROPS = new Uint32Array(3);
  // UDP GSO runs among them (socket-path senders) go through rxOffload into upOut
  const usoOffsets = new Uint32Array(upB);
  const usoSizes = new Uint32Array(upB);
  const usoGso = new Uint16Array(upB);
  const usoAddrs = new Uint8Array(upB * ADDR_LEN);
  const usoOk = new Uint8Array(upB);
  const usoPeerOf = new Int32Array(upB);
  // one run at a time: its inner frames (at most its payload) plus their headers
  const upOut = new Uint8Array(upRx ? upSlotLen + MAX_TAP_FRAMES * (VNET_HDR_LEN + 64) : 0);
  const upOrder = new Uint8Array(upB);
  const runOff = new Uint32Array(1);
  const runSize = new Uint32Array(1);
  const runGso = new Uint16Array(1);
  const runOk = new Uint8Array(1);
  const runPeer = new Int32Array(1);
  const runOffsets = new Uint32Array(B);
  const runSizes = new Uint32Array(B);
  const runPeers = new Int32Array(B);
  const ipId = Uint32Array.of(init.index << 12); // workers start apart in the ID space
  const usoFrames = newFrameBatch(upRx ? MAX_TAP_FRAMES : 0);
  const usoLearn = new Uint32Array(upRx ? MAX_TAP_FRAMES : 0);
  const maxOuterIp = init.uplink?.maxOuterIp ?? 1500;
  const maxMsgs = sendBatchCapacity(B);
  const msgBuf = new Uint8Array(maxMsgs);
  const msgOffsets = new Uint32Array(maxMsgs);
  const msgSizes = new Uint32Array(maxMsgs);
  const msgGso = new Uint16Array(maxMsgs);
  const msgFrame = new Uint32Array(maxMsgs);
  const txResult = new Uint32Array(4);
  const vxlan = new Uint8Array(VXLAN_HLEN);
  writeVxlanHeader(vxlan, 0, init.vni);

  const udpOffsets = new Uint32Array(udpB);
  const udpSizes = new Uint32Array(udpB);
  const udpAddrs = new Uint8Array(udpB * 20);
  const udpGso = new Uint16Array(udpB);
  const udpOk = new Uint8Array(udpB);
  const peerOf = new Int32Array(udpB);
  for (let i = 0; i < udpB; i++) udpOffsets[i] = i * udpStride;
  const frames = newFrameBatch(MAX_TAP_FRAMES);
  const learnSrc = new Uint32Array(MAX_TAP_FRAMES);
  const rxDrops = new Uint32Array(4);
  const rxResult = new Uint32Array(4);

  const { engine, tx, sendTx } = makeEngine(init, counters, slab, maxMsgs);
  const idle = makeIdle(init, counters);
  const stopped = makeControl(init, engine);

  /** The socket path for frames (offsets/sizes) 0..count-1 of tapIn: segment and queue in tx. */
  const encap = (offsets: Uint32Array, sizes: Uint32Array, count: number): void => {
    const nmsg = addon.txOffload(tapIn, offsets, sizes, count, vxlan, init.maxGsoBytes, out, 0, msgBuf, msgOffsets, msgSizes, msgGso, msgFrame, txResult);
    for (let k = 0; k < nmsg; k++) if (msgBuf[k] === 1) msgOffsets[k] += outBase;
    counters[C.drop_tx_error] += txResult[1];
    engine.encapMessages(tapIn, offsets, sizes, count, nmsg, msgOffsets, msgSizes, msgGso, msgFrame, txResult[2], tx);
  };
  /** Uplink receive: write unwrapped frames from..to-1 (those from peers) to the TAP. */
  const writeUplinkFrames = (from: number, to: number): void => {
    let kept = 0;
    for (let i = from; i < to; i++) {
      if (upOk[i] === 0) continue;
      upFrames.offsets[kept] = upFrames.offsets[i];
      upFrames.sizes[kept] = upFrames.sizes[i];
      upLearn[kept] = i;
      kept++;
    }
    if (kept === 0) return;
    engine.afterRxOffload(upIn, upFrames, kept, upLearn, upPeerOf, 0, NO_DROPS);
    if (upFrames.count > 0) engine.accountTap(upFrames, addon.writeBatch(init.tapFd, upIn, upFrames.offsets, upFrames.sizes, upFrames.count, upFrames.errs));
  };
  /** Uplink receive: UDP GSO run j through rxOffload into upOut, then to the TAP. */
  const writeRun = (j: number): void => {
    if (usoOk[j] === 0) return;
    runOff[0] = usoOffsets[j];
    runSize[0] = usoSizes[j];
    runGso[0] = usoGso[j];
    runOk[0] = 1;
    runPeer[0] = usoPeerOf[j];
    rxDrops.fill(0);
    const nf = addon.rxOffload(upIn, runOff, runSize, runGso, runOk, 1, init.vni, upOut, 0, usoFrames.offsets, usoFrames.sizes, usoLearn, rxDrops, rxResult);
    counters[C.tap_tx_superframes] += rxResult[2];
    counters[C.drop_truncated] += rxResult[3]; // no room in upOut (sized so that it cannot happen)
    engine.afterRxOffload(upOut, usoFrames, nf, usoLearn, runPeer, rxResult[1], rxDrops, runPeer[0]);
    if (usoFrames.count > 0) engine.accountTap(usoFrames, addon.writeBatch(init.tapFd, upOut, usoFrames.offsets, usoFrames.sizes, usoFrames.count, usoFrames.errs));
  };

  while (!stopped()) {

    const t0 = performance.now();
    const n = addon.readBatch(init.tapFd, tapIn, tapOffsets, tapSizes, init.tapSlotLen, B);
    if (n > 0) counters[C.batches_tap]++;
    if (n > 0) {
      const t1 = performance.now();
      const tunnelled =
        uplinkFd !== undefined && engine.selectTunnel(tapIn, tapOffsets, tapSizes, n, tunSel, tunPort) > 0
          ? addon.txTunnel(tapIn, tapOffsets, tapSizes, n, tunSel, tunPort, engine.tunnelTemplates, dfMode, maxOuterIp, tunOffsets, tunSizes, tunResult, ipId)
          : 0;
      if (tunnelled === 0) {
        encap(tapOffsets, tapSizes, n);
        const t2 = performance.now();
        sendTx(tx);
        stamp(counters, t0, t1, t2);
      } else {
        // in batch order: each run of socket-path frames is sent before the run of
        // uplink frames after it is written, and so on, so no flow is reordered
        const t2 = performance.now();
        let frames = 0;
        let bytes = 0;
        for (let i = 0, k = 0; i < n; ) {
          let r = 0;
          if (tunSel[i] < 0) {
            for (; i < n && tunSel[i] < 0; i++, r++) {
              restOffsets[r] = tapOffsets[i];
              restSizes[r] = tapSizes[i];
            }
            encap(restOffsets, restSizes, r);
            sendTx(tx);
          } else {
            for (; i < n && tunSel[i] >= 0; i++, k++, r++) {
              runOffsets[r] = tunOffsets[k];
              runSizes[r] = tunSizes[k];
              runPeers[r] = tunSel[i];
              bytes += tapSizes[i] - VNET_HDR_LEN;
            }
            engine.accountUplink(tapIn, runOffsets, runSizes, runPeers, r, addon.writeBatch(uplinkFd!, tapIn, runOffsets, runSizes, r, tunErrs), tunErrs);
            frames += r;
          }
        }
        engine.accountUplinkBatch(tunResult[0], frames, bytes);
        stamp(counters, t0, t1, t2);
      }
    }
    // the uplink before the socket: a flow's large segments before its small tail
    let u = 0;
    if (upRx) {
      const tu = performance.now();
      u = addon.readBatch(uplinkFd!, upIn, upOffsets, upSizes, upSlotLen, upB);
      if (u > 0) {
        const t1 = performance.now();
        const k = addon.rxTunnel(upIn, upOffsets, upSizes, u, init.vni, init.vxlanPort, upAddrs, upFrames.offsets, upFrames.sizes, upDrops, upResult, usoOffsets, usoSizes, usoGso, usoAddrs, upOrder);
        const runs = upResult[2];
        engine.checkSources(upFrames.sizes, k, upAddrs, upOk, upPeerOf);
        if (runs > 0) engine.checkSources(usoSizes, runs, usoAddrs, usoOk, usoPeerOf, usoGso);
        engine.countDrops(upDrops);
        counters[C.tap_tx_superframes] += upResult[1];
        counters[C.rx_packets] += upResult[0];
        counters[C.rx_uplink_frames] += k + runs;
        counters[C.rx_uplink_ignored] += upResult[3];
        const t2 = performance.now();
        // in arrival order: the frames before a UDP GSO run are written before it
        let from = 0;
        let f = 0;
        for (let x = 0, j = 0; x < k + runs; x++) {
          if (upOrder[x] === 0) {
            f++;
            continue;
          }
          writeUplinkFrames(from, f);
          from = f;
          writeRun(j++);
        }
        writeUplinkFrames(from, f);
        stampRx(counters, tu, t1, t2);
      }
    }
    const tr = performance.now();
    const m = addon.recvBatch(init.rxFd, udpIn, udpOffsets, udpSizes, init.udpSlotLen, udpB, udpAddrs, udpGso);
    if (m > 0) counters[C.batches_udp]++;
    if (m > 0) {
      const t1 = performance.now();
      engine.checkSources(udpSizes, m, udpAddrs, udpOk, peerOf, udpGso);
      rxDrops.fill(0);
      const nf = addon.rxOffload(udpIn, udpOffsets, udpSizes, udpGso, udpOk, m, init.vni, tapOut, 0, frames.offsets, frames.sizes, learnSrc, rxDrops, rxResult);
      counters[C.tap_tx_superframes] += rxResult[2];
      engine.afterRxOffload(tapOut, frames, nf, learnSrc, peerOf, rxResult[1], rxDrops);
      const t2 = performance.now();
      if (frames.count > 0) {
        const consumed = addon.writeBatch(init.tapFd, tapOut, frames.offsets, frames.sizes, frames.count, frames.errs);
        engine.accountTap(frames, consumed);
      }
      stampRx(counters, tr, t1, t2);
    }
    if (n === 0 && m === 0 && u === 0) idle();
  }
}

if (parentPort && workerData) {
  try {
    runWorker(workerData as WorkerInit);
  } catch (err) {
    const e = err as Error & { code?: string };
    parentPort.postMessage({ type: 'fatal', message: e.message, code: e.code });
  }
}
