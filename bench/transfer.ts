/**
 * A bounded TCP transfer that tells "completed" from "stalled" (the MTU
 * mismatch measurement, `mtu-mismatch.ts`). Run as a separate process in each
 * host, like `rr.js`:
 *
 *   node dist/bench/transfer.js server --bind 198.19.0.2 --port 7011
 *   node dist/bench/transfer.js client --host 198.19.0.2 --port 7011 --message-bytes 65536 --count 64
 *       [--window N] [--stall-ms 2000] [--timeout-ms 8000]
 *
 * Protocol: the client sends a 4-byte big-endian message size, then `count`
 * messages of that size; the server answers every complete message with one
 * byte. The client keeps at most `window` messages unacknowledged (1 = one
 * request at a time, as a small-message application does; the default,
 * `count`, streams with the socket's back-pressure, as a bulk transfer does).
 * Progress is what the receiver acknowledged, never what the sender buffered,
 * so a path that silently drops full-size segments (a black hole) shows as
 * no progress. The client prints one JSON line (TransferOutput) and always
 * stops: on completion, after `stall-ms` without progress, or at `timeout-ms`.
 */
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { arg, intArg, serveUntilSignalled } from './tool-cli.js';

/** How a transfer ended. */
export type TransferEnd = 'completed' | 'stalled' | 'timeout' | 'error';

/** What the client prints. */
export interface TransferOutput {
  messageBytes: number;
  count: number;
  window: number;
  /** The TCP connection was established (the handshake's small packets crossed). */
  connected: boolean;
  connectMs: number | null;
  /** Messages the receiver acknowledged. */
  acked: number;
  /** Bytes the receiver acknowledged (acked x messageBytes). */
  deliveredBytes: number;
  end: TransferEnd;
  /** From connect to the end decision (completion, stall detection, timeout or error), ms. */
  elapsedMs: number;
  /** From connect to the last acknowledgement (0 when none came), ms: the time to stall for a stalled transfer. */
  lastProgressMs: number;
  error: string | null;
}

/**
 * The state of a transfer at `nowMs` (pure; all times in ms since connect).
 * Completed wins over everything; then a stall (no acknowledgement for
 * `stallMs`, counted from the last one, or from connect when none came); then
 * the overall timeout.
 */
export function transferState(s: { nowMs: number; lastProgressMs: number; acked: number; count: number; stallMs: number; timeoutMs: number }): 'running' | 'completed' | 'stalled' | 'timeout' {
  if (s.acked >= s.count) return 'completed';
  if (s.nowMs - s.lastProgressMs >= s.stallMs) return 'stalled';
  if (s.nowMs >= s.timeoutMs) return 'timeout';
  return 'running';
}

function server(argv: string[]): void {
  const srv = net.createServer((sock) => {
    sock.setNoDelay(true);
    let size = 0;
    let header = Buffer.alloc(0);
    let pending = 0;
    sock.on('data', (d: Buffer) => {
      let data = d;
      if (size === 0) {
        header = Buffer.concat([header, data]);
        if (header.length < 4) return;
        size = header.readUInt32BE(0);
        data = header.subarray(4);
        if (size === 0) {
          sock.destroy();
          return;
        }
      }
      pending += data.length;
      const n = Math.floor(pending / size);
      if (n > 0) {
        pending -= n * size;
        sock.write(Buffer.alloc(n, 0x06));
      }
    });
    sock.on('error', () => sock.destroy());
  });
  serveUntilSignalled('transfer', srv, argv);
}

function client(argv: string[]): void {
  const messageBytes = intArg('transfer', argv, 'message-bytes', 1, 16 * 1024 * 1024);
  const count = intArg('transfer', argv, 'count', 1, 1_000_000);
  const window = intArg('transfer', argv, 'window', 1, 1_000_000, String(count));
  const stallMs = intArg('transfer', argv, 'stall-ms', 50, 600_000, '2000');
  const timeoutMs = intArg('transfer', argv, 'timeout-ms', 100, 600_000, '8000');
  const message = Buffer.alloc(messageBytes, 0x61);
  const t0 = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - t0) / 1e6;
  let connectedAt: number | null = null;
  let sent = 0;
  let acked = 0;
  let lastProgress = 0;
  let done = false;
  let ticker: NodeJS.Timeout | undefined;
  const rel = () => since() - (connectedAt ?? 0);
  const finish = (end: TransferEnd, error: string | null = null) => {
    if (done) return;
    done = true;
    if (ticker) clearInterval(ticker);
    const out: TransferOutput = {
      messageBytes,
      count,
      window,
      connected: connectedAt !== null,
      connectMs: connectedAt,
      acked,
      deliveredBytes: acked * messageBytes,
      end,
      elapsedMs: connectedAt !== null ? rel() : since(),
      lastProgressMs: lastProgress,
      error,
    };
    sock.destroy();
    process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(0));
  };
  const sock = net.connect({ host: arg('transfer', argv, 'host'), port: Number(arg('transfer', argv, 'port')), noDelay: true });
  const connectTimer = setTimeout(() => finish('error', 'connect timeout'), Math.min(timeoutMs, 5000));
  // Write while the window and the socket allow; the write callback of a full socket resumes it.
  const pump = () => {
    while (!done && sent < count && sent - acked < window) {
      sent++;
      if (!sock.write(message)) {
        sock.once('drain', pump);
        return;
      }
    }
  };
  sock.on('connect', () => {
    clearTimeout(connectTimer);
    connectedAt = since();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(messageBytes, 0);
    sock.write(header);
    pump();
    ticker = setInterval(() => {
      const st = transferState({ nowMs: rel(), lastProgressMs: lastProgress, acked, count, stallMs, timeoutMs });
      if (st === 'stalled' || st === 'timeout') finish(st);
    }, 20);
  });
  sock.on('data', (d: Buffer) => {
    acked += d.length;
    lastProgress = rel();
    if (acked >= count) finish('completed');
    else pump();
  });
  sock.on('error', (e) => finish('error', e.message));
  sock.on('close', () => finish(acked >= count ? 'completed' : 'error', acked >= count ? null : 'connection closed'));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [cmd, ...rest] = process.argv.slice(2);
  try {
    if (cmd === 'server') server(rest);
    else if (cmd === 'client') client(rest);
    else throw new TypeError('usage: transfer.js server --port P [--bind A] | client --host H --port P --message-bytes N --count N [--window N] [--stall-ms MS] [--timeout-ms MS]');
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
}
