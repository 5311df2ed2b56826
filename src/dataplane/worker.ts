/**
 * A dataplane worker thread: owns one TAP queue, one receive socket and a pool
 * of send sockets (one per source port), and optionally a queue of the uplink
 * port. It wraps them in the device interfaces (src/tap, src/transport,
 * src/uplink), builds the pipeline (src/pipeline) over them, and runs passes;
 * when a pass found every device idle it blocks in poll() on the devices and a
 * wake-up eventfd. It has no event loop: control messages are pulled with
 * receiveMessageOnPort when the shared sequence number moves, and shutdown is a
 * flag plus an eventfd signal.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { native, POLLIN } from '../native/index.js';
import type { PeerInfo } from './engine.js';
import { FdbView, nowSeconds } from './fdb.js';
import { peerCounterView } from './stats.js';
import type { Accounting } from './accounting.js';
import { buildPipeline, READY_ALL, READY_SOCKET, READY_TAP, READY_UPLINK, testSlowdownFromEnv, type Pipeline, type PipelineConfig } from '../pipeline/index.js';
import { LinuxTapQueue } from '../tap/linux.js';
import { LinuxUdpTransport } from '../transport/linux.js';
import { LinuxUplinkPort } from '../uplink/linux.js';
import { VNET_HDR_LEN } from '../native/limits.js';

/** What the supervisor hands each worker: the pipeline's configuration plus the fds and shared blocks. */
export interface WorkerInit extends PipelineConfig {
  tapFd: number;
  rxFd: number;
  txFds: number[];
  txFdsNoDf: number[];
  wakeFd: number;
  busyPollUs: number;
  /** cpuPlacement 'local': the CPU this worker's thread is pinned to. */
  pinCpu?: number;
  fdb: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  /** [0] stop flag, [1] control message sequence number */
  control: SharedArrayBuffer;
  /** The port control messages arrive on. */
  port: MessagePort;
  /** Uplink transmit: this worker's queue of the uplink TAP (vnet header size 24). */
  uplinkFd?: number;
  /** The uplink TAP also receives: VXLAN for us is steered to it (nftables fwd). */
  uplinkRx?: boolean;
}

/**
 * Control messages from the supervisor. `fault` is the test hook behind
 * VXTAP_TEST_HOOKS=1: the worker fails as a bug would (throws from its loop,
 * or ends its thread), so the supervisor's restart can be tested.
 */
export type WorkerCommand = { type: 'peers'; peers: PeerInfo[] } | { type: 'fault'; how: 'throw' | 'exit' };

export const CTL_STOP = 0;
export const CTL_SEQ = 1;

function runWorker(init: WorkerInit, parent: MessagePort): void {
  // test-only (VXTAP_TEST_SLOWDOWN_PCT, src/pipeline/slowdown.ts): the worker inherits
  // the environment `vxtap up` validated at start
  const testSlowdownPct = testSlowdownFromEnv(process.env);
  if (testSlowdownPct instanceof Error) throw testSlowdownPct;
  if (init.pinCpu !== undefined) native().threadPinCpu(init.pinCpu);
  const uplink = init.uplinkFd !== undefined ? new LinuxUplinkPort(init.uplinkFd, init.uplinkRx === true) : undefined;
  const pipeline = buildPipeline(
    { ...init, uplink: uplink !== undefined ? init.uplink : undefined, testSlowdownPct },
    { tap: new LinuxTapQueue(init.tapFd, init.offload ? VNET_HDR_LEN : 0), transport: new LinuxUdpTransport(init.rxFd, init.txFds, init.txFdsNoDf), uplink },
    { fdb: new FdbView(init.fdb), counters: new Float64Array(init.counters), peerCounters: peerCounterView(init.counters), post: (ev) => parent.postMessage(ev), now: nowSeconds },
  );
  const idle = makeIdle(init, pipeline.acct); // the pipeline's own accounting counts the polls
  const stopped = makeControl(init, pipeline);
  // A pass that left every device empty is followed by a poll, not by one more
  // pass to find nothing (poll returns at once if something came meanwhile), and
  // the pass after a poll reads only the devices it found readable.
  let ready = READY_ALL;
  while (!stopped()) {
    pipeline.pass(ready);
    ready = pipeline.drained ? idle() : READY_ALL;
  }
  parent.postMessage({ type: 'stopped', index: init.index });
}

/**
 * Between two passes: true when the supervisor asked to stop; applies queued
 * control messages when the shared sequence number moved (no message-port
 * access otherwise, so the check costs two atomic loads).
 */
function makeControl(init: WorkerInit, pipeline: Pipeline): () => boolean {
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
        if (cmd.type === 'peers') pipeline.setPeers(cmd.peers);
        else {
          if (cmd.how === 'exit') process.exit(70); // ends this thread only
          throw new Error('injected fault (test hook)');
        }
      }
    }
    return false;
  };
}

/**
 * The wait used when a pass left every device empty: optionally spin
 * (busy-poll) for init.busyPollUs, then block in poll() on the TAP, the socket
 * and the wake-up eventfd (1 s at most, so a lost wake-up costs a second, not a hang).
 * Returns the devices poll found readable (READY_* bits; 0 after a wake-up or the timeout).
 */
function makeIdle(init: WorkerInit, acct: Accounting): () => number {
  const addon = native();
  // the uplink TAP (when it receives) is polled too; the wake-up eventfd stays at [2]
  const pollFds = init.uplinkRx && init.uplinkFd !== undefined ? Int32Array.of(init.tapFd, init.rxFd, init.wakeFd, init.uplinkFd) : Int32Array.of(init.tapFd, init.rxFd, init.wakeFd);
  const pollEvents = new Int16Array(pollFds.length).fill(POLLIN);
  const pollRevents = new Int16Array(pollFds.length);
  const busyNs = BigInt(init.busyPollUs * 1000);
  const readyMask = (): number => {
    if (pollRevents[2] !== 0) addon.eventfdDrain(init.wakeFd);
    // the uplink is read with the socket too: a flow's large segments (uplink) stay ahead of its small tail (socket)
    return (pollRevents[0] !== 0 ? READY_TAP : 0) | (pollRevents[1] !== 0 ? READY_SOCKET | READY_UPLINK : 0) | (pollRevents.length > 3 && pollRevents[3] !== 0 ? READY_UPLINK : 0);
  };
  return () => {
    if (busyNs > 0n) {
      const until = process.hrtime.bigint() + busyNs;
      do {
        if (addon.poll(pollFds, pollEvents, pollRevents, 0) > 0) return readyMask();
      } while (process.hrtime.bigint() < until);
    }
    acct.poll();
    addon.poll(pollFds, pollEvents, pollRevents, 1000);
    return readyMask();
  };
}

if (parentPort && workerData) {
  try {
    runWorker(workerData as WorkerInit, parentPort);
  } catch (err) {
    const e = err as Error & { code?: string };
    parentPort.postMessage({ type: 'fatal', message: e.message, code: e.code });
  }
}
