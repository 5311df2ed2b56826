/**
 * The controller <-> agent protocol of `vxtap bench --hosts`: one JSON object
 * per line over the agent's stdio (`vxtap agent --stdio`, started through the
 * SSH session or as a local child for the host `local`).
 *
 * - A request carries `id` and `op`; the agent answers each with exactly one
 *   response carrying the same `id` (`ok: true` + `result`, or `ok: false` +
 *   `error`). Requests may be answered out of order.
 * - The agent sends one kind of event (no id): `exit`, when a spawned process
 *   ended (with its output). A running process's output travels only when the
 *   controller asks for it (`output`), i.e. when the bench reads it: readiness
 *   checks and probes, between measurements.
 * - `hello` is the first request; its `protocol` must equal the agent's
 *   PROTOCOL_VERSION or the agent refuses and exits. Any change to a message
 *   shape bumps the version.
 * - Nothing is sent while a measurement runs: counters are read before and
 *   after by `counters`, a request's reply comes when its command ends, and
 *   the keep-alive (`lease`) is only sent between measurements. The agent
 *   cleans its host by itself when stdin closes or its lease runs out.
 *
 * Pure helpers only (no I/O): the line splitter and the message types.
 */
import type { CpuPlacement, CpuPriority } from '../placement.js';

/** Version of the message shapes below. */
export const PROTOCOL_VERSION = 1;

/** Identity of a vxtap build: hosts must run the controller's. */
export interface BuildId {
  version: string;
  commit: string | null;
  /** Node-API module ABI of the Node.js running it (process.versions.modules). */
  nodeAbi: string;
  /** First 16 hex digits of the SHA-256 of the native addon, or null when it is not built. */
  addon: string | null;
}

/** Text for a build in messages: "0.1.0 (commit abc1234, node ABI 115, addon 0123...)". */
export function describeBuild(b: BuildId): string {
  return `${b.version} (commit ${b.commit ? b.commit.slice(0, 12) : 'unknown'}, node ABI ${b.nodeAbi}, addon ${b.addon ?? 'not built'})`;
}

/** Why two builds differ, or null when they are the same. */
export function buildMismatch(controller: BuildId, host: BuildId): string | null {
  const diffs: string[] = [];
  if (controller.version !== host.version) diffs.push('version');
  if (controller.commit !== host.commit) diffs.push('commit');
  if (controller.nodeAbi !== host.nodeAbi) diffs.push('node ABI');
  if (controller.addon !== host.addon) diffs.push('native addon');
  return diffs.length ? `differs in ${diffs.join(', ')}` : null;
}

/** First request: who the controller is, which run, whether to take the host's bench lock. */
export interface HelloRequest {
  op: 'hello';
  protocol: number;
  runId: string;
  label: string;
  /** Take the per-host lock (a measuring run); false for --cleanup and probes. */
  lock: boolean;
  /** The agent cleans up when no request arrived for this long (ms). */
  leaseMs: number;
  /** --cpu-priority of a measuring run: high = the agent and all it starts move into a CPU group of their own (placement.ts); absent = stay. */
  cpuPriority?: CpuPriority;
}

/** What the agent says about itself and its host. */
export interface HelloResult {
  /** Where the agent measures (--cpu-priority); absent when not asked. */
  cpuPlacement?: CpuPlacement;
  protocol: number;
  build: BuildId;
  hostname: string;
  pid: number;
  uid: number;
  /** Agent's wall clock when answering (ms since epoch). */
  clockMs: number;
  /** Network namespace inode of the agent (tells two hosts on one machine apart). */
  netns: string;
  /** /proc/sys/kernel/random/boot_id: two hosts with the same one share CPUs and counters. */
  bootId: string;
  /** $SSH_CONNECTION as the host saw it ("client_ip client_port server_ip server_port"), or null. */
  sshConnection: string | null;
  /** Absolute path of node and of the vxtap checkout on the host (the controller's paths are translated). */
  nodePath: string;
  repoRoot: string;
  /** Directory for this run's files on the host (removed by the agent's clean-up). */
  workDir: string;
  /** The state file naming everything this run created on the host. */
  stateFile: string;
}

/** Run a command to completion (always answered, whatever the exit status). */
export interface ExecRequest {
  op: 'exec';
  argv: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** Start a long-running command. */
export interface SpawnRequest {
  op: 'spawn';
  argv: string[];
  env?: Record<string, string>;
}

/** What a spawned process wrote since the last `output` request for it. */
export interface OutputRequest {
  op: 'output';
  handle: number;
}

/** SIGTERM a spawned process group, SIGKILL after graceMs; answered after it exited. */
export interface StopRequest {
  op: 'stop';
  handle: number;
  graceMs: number;
}

/** Counters of the host now, with the CPU ticks and RSS of `pids` (processes on this host). */
export interface CountersRequest {
  op: 'counters';
  pids: number[];
}

/** Record names the run is about to create (before it creates them). */
export interface TrackRequest {
  op: 'track' | 'untrack';
  links?: string[];
  dirs?: string[];
  /** Daemons the run started itself (they detach): killed at clean-up if still the same process. */
  pids?: number[];
  /** Commands that undo a change to the host (an address moved with --data-dev), run at clean-up. */
  restore?: string[][];
}

/** Keep the agent alive for `ms` more (sent between measurements only). */
export interface LeaseRequest {
  op: 'lease';
  ms: number;
}

/** Remove what killed runs left on this host (state files whose agent is gone). */
export interface CleanupRequest {
  op: 'cleanup';
  force: boolean;
}

/**
 * Preflight: does UDP to the VXLAN port arrive? `udpListen` binds a socket on
 * the host (answered once bound), the other host sends with `udpSend`,
 * `udpResult` closes the socket and says how many datagrams arrived from `from`,
 * first waiting (at most `waitMs`, capped at 10 s) until `expect` of them came.
 */
export interface UdpListenRequest {
  op: 'udpListen';
  addr: string;
  port: number;
}

export interface UdpSendRequest {
  op: 'udpSend';
  from: string;
  to: string;
  port: number;
  count: number;
}

export interface UdpResultRequest {
  op: 'udpResult';
  handle: number;
  from: string;
  expect?: number;
  waitMs?: number;
}

/** Everything the controller may send. */
export type Request =
  | HelloRequest
  | ExecRequest
  | SpawnRequest
  | StopRequest
  | CountersRequest
  | TrackRequest
  | LeaseRequest
  | CleanupRequest
  | UdpListenRequest
  | OutputRequest
  | UdpSendRequest
  | UdpResultRequest
  | { op: 'clock' }
  | { op: 'environment'; dev: string | null }
  | { op: 'interrupt' }
  | { op: 'bye' };

/** A request on the wire. */
export type RequestFrame = Request & { id: number };

/** A response on the wire. */
export type ResponseFrame = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: { message: string; code?: string } };

/** An event on the wire. */
export type EventFrame = { event: 'exit'; handle: number; code: number | null; signal: string | null; stdout: string; stderr: string };

/** Result of `counters`. */
export interface CountersResult {
  atMs: number;
  nstat: Record<string, number>;
  cpu: import('../../src/host/procstat.js').CpuTimes;
  /** CPU ticks (utime + stime) of the requested pids. */
  ticks: number;
  /** Largest VmRSS of the requested pids, bytes. */
  rssBytes: number;
  /**
   * New output of every running spawned process, by handle (as `output` would
   * return it): reading counters also brings a capture's lines up to date.
   */
  outputs: Record<number, { stdout: string; stderr: string }>;
}

/** Wall clock with sub-millisecond resolution (ms since epoch), on both ends of `clock`: offsets between hosts are often < 1 ms. */
export function preciseNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Split a byte stream into lines; `push` returns the complete lines so far. */
export class LineSplitter {
  private rest = '';

  /** Largest line accepted (a longer one is a protocol error, not a memory leak). */
  constructor(private readonly maxLineBytes = 64 * 1024 * 1024) {}

  push(chunk: string): string[] {
    this.rest += chunk;
    const lines = this.rest.split('\n');
    this.rest = lines.pop() ?? '';
    if (this.rest.length > this.maxLineBytes) throw new Error(`protocol line longer than ${this.maxLineBytes} bytes`);
    return lines.filter((l) => l.trim().length > 0);
  }
}

/** Parse one line into an object; throws an Error naming the problem. */
export function parseFrame(line: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error(`protocol: not JSON: ${line.slice(0, 120)}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`protocol: not an object: ${line.slice(0, 120)}`);
  return v as Record<string, unknown>;
}
