/**
 * Request/response latency (netperf TCP_RR style): a TCP ping-pong of small
 * messages, one outstanding request at a time. Run as a separate process in
 * each host:
 *
 *   node dist/bench/rr.js server --bind 198.19.0.2 --port 7000 [--size 1]
 *   node dist/bench/rr.js client --host 198.19.0.2 --port 7000 --seconds 2 [--size 1] [--max-count N]
 *
 * The server echoes every `size`-byte request. The client records each round
 * trip in microseconds into an HDR histogram (1 us .. 10 s, 3 significant
 * digits) and prints one JSON line: counts and the histogram encoded
 * (compressed base64), which the bench decodes, so raw samples never cross the
 * process boundary.
 */
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { arg, serveUntilSignalled } from './tool-cli.js';
import hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';

/** Histogram range: 1 us to 10 s, 3 significant digits. */
export const RR_HISTOGRAM = { lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000, numberOfSignificantValueDigits: 3 as const };

/** What the client prints. */
export interface RrClientOutput {
  count: number;
  seconds: number;
  /** Round trips per second. */
  transactionsPerSecond: number;
  /** Encoded HDR histogram of round-trip times in microseconds. */
  histogram: string;
  error?: string;
}

/** Percentiles of a round-trip histogram (microseconds). */
export interface LatencyPercentiles {
  count: number;
  minUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  meanUs: number;
}

/** A new empty round-trip histogram. */
export function newRrHistogram(): Histogram {
  return hdr.build({ ...RR_HISTOGRAM, bitBucketSize: 32, useWebAssembly: false });
}

/** Decode an encoded histogram and compute its percentiles. */
export function percentilesOf(encoded: string): LatencyPercentiles {
  const h = hdr.decodeFromCompressedBase64(encoded, 32, false);
  return {
    count: h.totalCount,
    minUs: h.minNonZeroValue === Number.MAX_SAFE_INTEGER ? 0 : h.minNonZeroValue,
    p50Us: h.getValueAtPercentile(50),
    p90Us: h.getValueAtPercentile(90),
    p99Us: h.getValueAtPercentile(99),
    p999Us: h.getValueAtPercentile(99.9),
    maxUs: h.maxValue,
    meanUs: h.mean,
  };
}

function server(argv: string[]): void {
  const size = Number(arg('rr', argv, 'size', '1'));
  const srv = net.createServer((sock) => {
    sock.setNoDelay(true);
    let pending = 0;
    sock.on('data', (d) => {
      // Answer each complete request with a response of the same size.
      pending += d.length;
      const n = Math.floor(pending / size);
      if (n > 0) {
        pending -= n * size;
        sock.write(Buffer.alloc(n * size, 0x5a));
      }
    });
    sock.on('error', () => sock.destroy());
  });
  serveUntilSignalled('rr', srv, argv);
}

function client(argv: string[]): void {
  const size = Number(arg('rr', argv, 'size', '1'));
  const seconds = Number(arg('rr', argv, 'seconds', '1'));
  const maxCount = Number(arg('rr', argv, 'max-count', '10000000'));
  const hist = newRrHistogram();
  const req = Buffer.alloc(size, 0x61);
  let count = 0;
  let got = 0;
  let sentAt = 0n;
  const startedAt = process.hrtime.bigint();
  const endAt = startedAt + BigInt(Math.round(seconds * 1e9));
  const finish = (error?: string) => {
    const elapsed = Number(process.hrtime.bigint() - startedAt) / 1e9;
    const out: RrClientOutput = { count, seconds: elapsed, transactionsPerSecond: elapsed > 0 ? count / elapsed : 0, histogram: hdr.encodeIntoCompressedBase64(hist) };
    if (error) out.error = error;
    process.stdout.write(`${JSON.stringify(out)}\n`, () => process.exit(error && count === 0 ? 1 : 0));
  };
  const sock = net.connect({ host: arg('rr', argv, 'host'), port: Number(arg('rr', argv, 'port')), noDelay: true });
  const timer = setTimeout(() => finish('connect timeout'), 5000);
  const send = () => {
    sentAt = process.hrtime.bigint();
    sock.write(req);
  };
  sock.on('connect', () => {
    clearTimeout(timer);
    // Hard stop even if a response never arrives (a dataplane that stalls).
    setTimeout(
      () => {
        sock.destroy();
        finish(count === 0 ? 'no response' : undefined);
      },
      Math.ceil(seconds * 1000) + 2000,
    ).unref();
    send();
  });
  sock.on('data', (d) => {
    got += d.length;
    while (got >= size) {
      got -= size;
      const now = process.hrtime.bigint();
      hist.recordValue(Math.max(1, Math.round(Number(now - sentAt) / 1000)));
      count++;
      if (now >= endAt || count >= maxCount) {
        sock.destroy();
        finish();
        return;
      }
      send();
    }
  });
  sock.on('error', (e) => {
    clearTimeout(timer);
    finish(e.message);
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === 'server') server(rest);
  else if (cmd === 'client') client(rest);
  else {
    process.stderr.write('usage: rr.js server --port P [--bind A] [--size N] | client --host H --port P --seconds S [--size N] [--max-count N]\n');
    process.exit(2);
  }
}
