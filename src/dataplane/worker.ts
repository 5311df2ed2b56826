/**
 * A dataplane worker thread: owns one TAP queue and one receive socket, and a
 * pool of send sockets (one per source port). The loop moves batches between the
 * devices and the Engine; when both sides are idle it blocks in poll() on the TAP,
 * the socket and a wake-up eventfd. It has no event loop: control messages are
 * pulled with receiveMessageOnPort when the shared sequence number moves, and
 * shutdown is a flag plus an eventfd signal.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { native, POLLIN } from '../native/index.js';
import { Engine, newFrameBatch, newTxBatch, type PeerInfo, type TxBatch } from './engine.js';
import { FdbView, nowSeconds } from './fdb.js';
import { C } from './stats.js';
import { VXLAN_HLEN } from '../wire/vxlan.js';

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
  busyPollUs: number;
  fdb: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  /** [0] stop flag, [1] control message sequence number */
  control: SharedArrayBuffer;
  /** The port control messages arrive on. */
  port: MessagePort;
  peers: PeerInfo[];
}

/** Control messages from the supervisor. */
export type WorkerCommand = { type: 'peers'; peers: PeerInfo[] };

export const CTL_STOP = 0;
export const CTL_SEQ = 1;

/** Round up to a multiple of 64 (cache line). */
function align64(n: number): number {
  return (n + 63) & ~63;
}

function runWorker(init: WorkerInit): void {
  const addon = native();
  const ctl = new Int32Array(init.control);
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
  const tx = newTxBatch(B * 4);
  const out = newFrameBatch(B);
  const pollFds = Int32Array.of(init.tapFd, init.rxFd, init.wakeFd);
  const pollEvents = Int16Array.of(POLLIN, POLLIN, POLLIN);
  const pollRevents = new Int16Array(3);

  const sendTx = (batch: TxBatch): void => {
    if (batch.count === 0) return;
    const consumed = addon.sendBatch(batch.fds, tapBufs, batch.offsets, batch.sizes, batch.count, batch.addrs, batch.gso, batch.errs);
    engine.accountTx(batch, consumed);
  };

  const engine = new Engine({
    vni: init.vni,
    fdb: new FdbView(init.fdb),
    counters,
    txFds: Int32Array.from(init.txFds),
    txFdsNoDf: Int32Array.from(init.txFdsNoDf),
    learning: init.learning,
    acceptUnknownPeers: init.acceptUnknownPeers,
    ownMac: init.ownMac,
    maxUnfragmentedPayload: init.maxUnfragmentedPayload,
    rxSlotLen: init.udpSlotLen,
    post: (ev) => parentPort!.postMessage(ev),
    flush: sendTx,
    now: nowSeconds,
  });
  engine.setPeers(init.peers);

  let seenSeq = Atomics.load(ctl, CTL_SEQ);
  const busyNs = init.busyPollUs * 1000;

  for (;;) {
    if (Atomics.load(ctl, CTL_STOP) !== 0) break;
    const seq = Atomics.load(ctl, CTL_SEQ);
    if (seq !== seenSeq) {
      seenSeq = seq;
      for (let m = receiveMessageOnPort(init.port); m; m = receiveMessageOnPort(init.port)) {
        const cmd = m.message as WorkerCommand;
        if (cmd.type === 'peers') engine.setPeers(cmd.peers);
      }
    }

    const n = addon.readBatch(init.tapFd, tapBufs, tapOffsets, tapSizes, init.tapSlotLen, B);
    if (n > 0) {
      engine.encap(tapBufs, tapOffsets, tapSizes, n, tx);
      sendTx(tx);
    }
    const m = addon.recvBatch(init.rxFd, udpBufs, udpOffsets, udpSizes, init.udpSlotLen, B, udpAddrs, udpGso);
    if (m > 0) {
      engine.decap(udpBufs, udpOffsets, udpSizes, m, udpAddrs, out);
      if (out.count > 0) {
        const done = addon.completeChecksums(udpBufs, out.offsets, out.sizes, out.count);
        counters[C.checksums_completed] += done;
        const consumed = addon.writeBatch(init.tapFd, udpBufs, out.offsets, out.sizes, out.count, out.errs);
        engine.accountTap(out, consumed);
      }
    }
    if (n === 0 && m === 0) {
      if (busyNs > 0) {
        const until = process.hrtime.bigint() + BigInt(busyNs);
        let ready = 0;
        while (process.hrtime.bigint() < until) {
          ready = addon.poll(pollFds, pollEvents, pollRevents, 0);
          if (ready > 0) break;
        }
        if (ready > 0) {
          if (pollRevents[2] !== 0) addon.eventfdDrain(init.wakeFd);
          continue;
        }
      }
      counters[C.polls]++;
      addon.poll(pollFds, pollEvents, pollRevents, 1000);
      if (pollRevents[2] !== 0) addon.eventfdDrain(init.wakeFd);
    }
  }
  parentPort!.postMessage({ type: 'stopped', index: init.index });
}

if (parentPort && workerData) {
  try {
    runWorker(workerData as WorkerInit);
  } catch (err) {
    const e = err as Error & { code?: string };
    parentPort.postMessage({ type: 'fatal', message: e.message, code: e.code });
  }
}
