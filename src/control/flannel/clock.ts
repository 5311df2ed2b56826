/**
 * Time as the control plane sees it: the wall clock for timestamps and timers
 * for renewal, retries and periodic resync. Injected so that renewal, resync and
 * back-off run under a simulated clock in unit tests (clock-fake.ts).
 *
 * Node timers overflow above 2^31-1 ms (about 24.8 days) and then fire after
 * 1 ms; `realClock` splits longer delays into chained timers so a long one can
 * never turn into a busy loop (the lease TTL is also bounded, see control.ts).
 */

/** A pending timer; `cancel()` is idempotent. */
export interface TimerHandle {
  cancel(): void;
}

/** Wall-clock time and timers. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Run `fn` once after `ms`; the timer never keeps the process alive. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** Resolve after `ms`. */
  sleep(ms: number): Promise<void>;
}

/** Longest delay a single Node timer holds without overflowing. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The process clock (Date.now and unref'd setTimeout, chained past MAX_TIMER_MS). */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    let t: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = (left: number) => {
      const step = Math.min(Math.max(0, left), MAX_TIMER_MS);
      t = setTimeout(() => {
        if (cancelled) return;
        if (left > step) arm(left - step);
        else fn();
      }, step);
      t.unref();
    };
    arm(ms);
    return {
      cancel() {
        cancelled = true;
        clearTimeout(t);
      },
    };
  },
  sleep(ms) {
    return new Promise<void>((resolve) => realClock.setTimer(ms, resolve));
  },
};
