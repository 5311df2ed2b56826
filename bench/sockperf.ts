/**
 * sockperf as the bench's latency tool (`--latency-tool sockperf`), beside the
 * project's own Node ping-pong (rr.ts). sockperf 3.7 (Debian) is a C++ TCP
 * ping-pong that blocks in recvfrom() and stamps each message with the TSC, so
 * it adds no event-loop wake-ups to the round trip.
 *
 * Server on host B, as ServerSet starts it:
 *
 *   sockperf server --tcp -i 198.19.0.2 -p 7000
 *
 * Client on host A, through this wrapper, like rr.js:
 *
 *   node dist/bench/sockperf.js client --host 198.19.0.2 --port 7000 --seconds 2
 *
 * The wrapper runs `sockperf ping-pong --tcp -m 14 --full-rtt --full-log FILE`
 * (FILE in a private temporary directory on host A), reads every round trip of
 * the full log into the same HDR histogram rr.js fills (RR_HISTOGRAM,
 * microseconds, rounded to whole microseconds as rr.js does) and prints the
 * same one JSON line (RrClientOutput): raw samples never leave host A, and the
 * bench reads both tools alike. The histogram comes from the full log's
 * per-sample RTTs, never from sockperf's printed percentiles; the printed
 * summary is only used for the measured duration and the message counts, and
 * as a cross-check of the log.
 *
 * Differences from rr.js, stated so the two can be read side by side:
 * - message size 14 bytes (sockperf's minimum: its own header) against 1 byte;
 * - sockperf discards the first 400 ms (warm-up) and the last 50 ms of a run
 *   and takes whole seconds only, so it runs `ceil(seconds + 0.45)` s to
 *   measure at least `seconds` s (`sockperfRunSeconds`);
 * - `--full-rtt`: sockperf reports round trips (without it, half of them).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import hdr from 'hdr-histogram-js';
import { newRrHistogram, type RrClientOutput } from './rr.js';
import { arg } from './tool-cli.js';

/** The latency tools the bench can run. */
export type LatencyTool = 'rr' | 'sockperf';
/** Every latency tool, in the order --help names them. */
export const LATENCY_TOOLS: readonly LatencyTool[] = ['rr', 'sockperf'];

/** Message size of each round trip: sockperf's minimum (its 14-byte header). */
export const SOCKPERF_MESSAGE_BYTES = 14;
/** Seconds of a run sockperf leaves out of its statistics: 400 ms warm-up, 50 ms cool-down (measured: `-t 1` reports RunTime=0.550). */
export const SOCKPERF_UNMEASURED_SECONDS = 0.45;

/** Whole seconds to pass to `sockperf -t` so that at least `seconds` are measured. */
export function sockperfRunSeconds(seconds: number): number {
  return Math.max(1, Math.ceil(seconds + SOCKPERF_UNMEASURED_SECONDS - 1e-9));
}

/** What the installation hint says when sockperf is missing on a host. */
export const SOCKPERF_INSTALL_HINT = 'apt-get install sockperf';

/** The server on host B (TCP, one port, bound to the overlay address). */
export function sockperfServerArgv(bind: string, port: number): string[] {
  return ['sockperf', 'server', '--tcp', '-i', bind, '-p', String(port)];
}

/** The line a sockperf server prints once it listens and waits for clients (`[tid 5514] using recvfrom() to block on socket(s)`). */
export const SOCKPERF_SERVER_READY = /using \S+ to block on socket/;

/** The sockperf client command the wrapper runs. */
export function sockperfClientArgv(o: { host: string; port: number; seconds: number; fullLog: string }): string[] {
  return [
    'sockperf',
    'ping-pong',
    '--tcp',
    '-i',
    o.host,
    '-p',
    String(o.port),
    '-t',
    String(sockperfRunSeconds(o.seconds)),
    '-m',
    String(SOCKPERF_MESSAGE_BYTES),
    '--full-rtt',
    '--full-log',
    o.fullLog,
  ];
}

/**
 * Round-trip times (microseconds) from a sockperf `--full-log` CSV: a header
 * `packet, txTime(sec), rxTime(sec), rtt(usec)` and one line per message of the
 * measured window, between dashed lines and a parameter line. With --full-rtt
 * the last column is the whole round trip. Lines that are not four numbers are
 * skipped; a log without the header throws (it is not a full log).
 */
export function parseSockperfFullLog(text: string): { rttsUs: number[]; firstTxSeconds: number | null; lastRxSeconds: number | null } {
  if (!/^packet,\s*txTime\(sec\),\s*rxTime\(sec\),\s*rtt\(usec\)/m.test(text)) throw new Error('sockperf full log: no "packet, txTime(sec), rxTime(sec), rtt(usec)" header');
  const rttsUs: number[] = [];
  let firstTxSeconds: number | null = null;
  let lastRxSeconds: number | null = null;
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+),\s*([\d.]+),\s*([\d.]+),\s*([\d.]+)\s*$/.exec(line);
    if (!m) continue;
    const rtt = Number(m[4]);
    if (!Number.isFinite(rtt)) continue;
    rttsUs.push(rtt);
    firstTxSeconds ??= Number(m[2]);
    lastRxSeconds = Number(m[3]);
  }
  return { rttsUs, firstTxSeconds, lastRxSeconds };
}

/** What sockperf ping-pong prints (stdout and stderr together), parsed. */
export interface SockperfSummary {
  /** Measured window ("[Valid Duration] RunTime"), seconds; null when absent. */
  validSeconds: number | null;
  validSent: number | null;
  validReceived: number | null;
  /** Printed percentiles by name ("50.000", "99.900", ...) and "min"/"max", microseconds. */
  percentilesUs: Record<string, number>;
  avgUs: number | null;
  /** sockperf's own error line ("ERROR: Can`t connect socket ..."), or null. */
  error: string | null;
}

/** Parse sockperf ping-pong's summary output (colour escapes are ignored). */
export function parseSockperfSummary(text: string): SockperfSummary {
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/\u001b\[[0-9;]*m/g, '');
  const valid = /\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)/.exec(plain);
  const percentilesUs: Record<string, number> = {};
  for (const m of plain.matchAll(/---> percentile\s+([\d.]+)\s*=\s*([\d.]+)/g)) percentilesUs[m[1]] = Number(m[2]);
  const max = /---> <MAX> observation\s*=\s*([\d.]+)/.exec(plain);
  const min = /---> <MIN> observation\s*=\s*([\d.]+)/.exec(plain);
  if (max) percentilesUs.max = Number(max[1]);
  if (min) percentilesUs.min = Number(min[1]);
  const avg = /avg-rtt=([\d.]+)/.exec(plain);
  const err = /^sockperf: ERROR: (.*)$/m.exec(plain);
  return {
    validSeconds: valid ? Number(valid[1]) : null,
    validSent: valid ? Number(valid[2]) : null,
    validReceived: valid ? Number(valid[3]) : null,
    percentilesUs,
    avgUs: avg ? Number(avg[1]) : null,
    error: err ? err[1].trim() : null,
  };
}

/**
 * The client's JSON line from the full log and the summary: each RTT rounded
 * to whole microseconds (at least 1) into the RR_HISTOGRAM, as rr.js records;
 * transactions per second over sockperf's measured window (the log's span when
 * the summary lacks it).
 */
export function sockperfClientOutput(fullLog: string | null, summaryText: string, exitCode: number | null): RrClientOutput {
  const summary = parseSockperfSummary(summaryText);
  const hist = newRrHistogram();
  let count = 0;
  let seconds = summary.validSeconds ?? 0;
  let error: string | undefined;
  if (fullLog !== null) {
    try {
      const log = parseSockperfFullLog(fullLog);
      for (const rtt of log.rttsUs) hist.recordValue(Math.max(1, Math.round(rtt)));
      count = log.rttsUs.length;
      if (summary.validSeconds === null && log.firstTxSeconds !== null && log.lastRxSeconds !== null) seconds = log.lastRxSeconds - log.firstTxSeconds;
      if (summary.validReceived !== null && summary.validReceived !== count) error = `sockperf full log holds ${count} round trips, its summary ${summary.validReceived}`;
    } catch (e) {
      error = (e as Error).message;
    }
  }
  if (count === 0) error = summary.error ?? error ?? `sockperf measured no round trips (exit ${String(exitCode)}): ${summaryText.trim().split('\n').slice(-2).join(' | ').slice(-300) || 'no output'}`;
  const out: RrClientOutput = { count, seconds, transactionsPerSecond: seconds > 0 ? count / seconds : 0, histogram: hdr.encodeIntoCompressedBase64(hist) };
  if (error) out.error = error;
  return out;
}

/**
 * `command -v sockperf` on a host: null when present, else the message naming
 * the host and the fix. The bench asks this of both hosts before anything is
 * created when --latency-tool names sockperf.
 */
export async function sockperfMissing(host: { label: string; exec(argv: string[], opts?: { allowFail?: boolean; timeoutMs?: number }): Promise<{ code: number | null }> }): Promise<string | null> {
  const r = await host.exec(['sh', '-c', 'command -v sockperf'], { allowFail: true, timeoutMs: 10_000 });
  return r.code === 0 ? null : `host ${host.label}: sockperf not installed (${SOCKPERF_INSTALL_HINT})`;
}

/** The wrapper's client: run sockperf, print one RrClientOutput line, exit 0 when it measured. */
function client(argv: string[]): void {
  const seconds = Number(arg('sockperf', argv, 'seconds', '1'));
  if (!(seconds > 0)) throw new TypeError('sockperf: --seconds must be a positive number');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vxtap-sockperf-'));
  const fullLog = path.join(dir, 'full-log.csv');
  const [cmd, ...args] = sockperfClientArgv({ host: arg('sockperf', argv, 'host'), port: Number(arg('sockperf', argv, 'port')), seconds, fullLog });
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (text += d));
  // Hard stop if sockperf hangs (a dataplane that stalls mid-run).
  const timer = setTimeout(() => child.kill('SIGKILL'), (sockperfRunSeconds(seconds) + 10) * 1000);
  const forward = () => child.kill('SIGTERM');
  process.on('SIGTERM', forward);
  process.on('SIGINT', forward);
  let finished = false;
  const finish = (code: number | null, spawnError?: Error) => {
    if (finished) return; // 'error' and 'close' can both come
    finished = true;
    clearTimeout(timer);
    let logText: string | null = null;
    try {
      logText = readFileSync(fullLog, 'utf8');
    } catch {
      /* no log: sockperf did not measure */
    }
    rmSync(dir, { recursive: true, force: true });
    const out = spawnError
      ? { count: 0, seconds: 0, transactionsPerSecond: 0, histogram: hdr.encodeIntoCompressedBase64(newRrHistogram()), error: `sockperf: ${spawnError.message}` }
      : sockperfClientOutput(logText, text, code);
    process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(out.count === 0 ? 1 : 0));
  };
  child.once('error', (e) => finish(null, e));
  child.once('close', (code) => finish(code));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === 'client') client(rest);
  else {
    process.stderr.write('usage: sockperf.js client --host H --port P --seconds S (runs sockperf ping-pong; the server is `sockperf server --tcp -i ADDR -p PORT`)\n');
    process.exit(2);
  }
}
