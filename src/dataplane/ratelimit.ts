/**
 * Rate limits for the dataplane's slow paths: log lines and worker events that a
 * hostile sender can trigger once per packet. Each keeps O(1) state and never
 * allocates per call.
 */

/**
 * Log lines per kind, at most `burst` per `intervalSeconds`; the first line after
 * a suppressed stretch says how many were left out (OVS's VLOG_RATE_LIMIT).
 */
export class LogLimiter {
  private readonly kinds = new Map<string, { start: number; shown: number; suppressed: number }>();

  constructor(
    private readonly write: (line: string) => void,
    private readonly now: () => number,
    private readonly intervalSeconds = 10,
    private readonly burst = 3,
  ) {}

  /** Log `line` (built only when it will be shown) under `kind`; returns whether it was written. */
  log(kind: string, line: string | (() => string)): boolean {
    const now = this.now();
    let k = this.kinds.get(kind);
    if (!k) {
      k = { start: now, shown: 0, suppressed: 0 };
      this.kinds.set(kind, k);
    }
    if (now - k.start >= this.intervalSeconds) {
      k.start = now;
      k.shown = 0;
    }
    if (k.shown >= this.burst) {
      k.suppressed++;
      return false;
    }
    k.shown++;
    const text = typeof line === 'string' ? line : line();
    this.write(k.suppressed > 0 ? `${text} (${k.suppressed} similar messages suppressed)` : text);
    k.suppressed = 0;
    return true;
  }
}

/**
 * A token bucket: `take()` is true at most `ratePerSecond` times a second on
 * average, with bursts up to `burst`. Worker-side; no allocation.
 */
export class TokenBucket {
  private tokens: number;
  private last = -1;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** Take one token at time `now` (seconds, fractional allowed). */
  take(now: number): boolean {
    if (this.last >= 0) this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.ratePerSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
