import { describe, expect, it } from 'vitest';
import { LogLimiter, TokenBucket } from '../../src/dataplane/ratelimit.js';

describe('rate limits', () => {
  it('writes a few lines per kind per interval and says how many it left out', () => {
    const lines: string[] = [];
    let now = 100;
    const l = new LogLimiter(
      (s) => lines.push(s),
      () => now,
      10,
      3,
    );
    for (let i = 0; i < 1000; i++) l.log('full', `table full ${i}`);
    l.log('other', 'another kind');
    expect(lines).toEqual(['table full 0', 'table full 1', 'table full 2', 'another kind']);
    now = 110;
    let built = 0;
    l.log('full', () => `table full again ${++built}`);
    expect(lines[4]).toBe('table full again 1 (997 similar messages suppressed)');
    for (let i = 0; i < 100; i++) l.log('full', () => `x ${++built}`);
    expect(built).toBe(3); // suppressed lines are never even built
  });

  it('lets through at most rate x time + burst', () => {
    const b = new TokenBucket(20, 20);
    let ok = 0;
    for (let t = 0; t < 10; t += 0.01) if (b.take(t)) ok++;
    expect(ok).toBeLessThanOrEqual(20 + 20 * 10);
    expect(ok).toBeGreaterThanOrEqual(200);
    const whole = new TokenBucket(500, 500);
    let n = 0;
    for (let i = 0; i < 100_000; i++) if (whole.take(1000)) n++;
    expect(n).toBe(500); // one second's flood: the burst, no more
  });
});
