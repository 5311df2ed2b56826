/**
 * A simulated clock for unit tests of the lease keeper and watcher: time moves
 * only when the test calls `advance()`, which fires due timers in order and lets
 * the promises they start settle before moving on.
 */
import type { Clock, TimerHandle } from './clock.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Let pending promise callbacks (and the I/O-free work they start) run. */
export async function flushAsync(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A Clock whose time only moves in `advance()`. */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Pending[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const p: Pending = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(p);
    return {
      cancel: () => {
        p.cancelled = true;
      },
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.setTimer(ms, resolve));
  }

  /** Timers still pending (not cancelled). */
  get pending(): number {
    return this.timers.filter((p) => !p.cancelled).length;
  }

  /** Move time forward by `ms`, firing every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await flushAsync();
    for (;;) {
      this.timers = this.timers.filter((p) => !p.cancelled);
      const due = this.timers
        .filter((p) => p.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)
        .at(0);
      if (!due) break;
      this.timers.splice(this.timers.indexOf(due), 1);
      this.t = Math.max(this.t, due.at);
      due.fn();
      await flushAsync();
    }
    this.t = end;
    await flushAsync();
  }
}
