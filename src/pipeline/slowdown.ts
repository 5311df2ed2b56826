/**
 * The test-only slowdown knob (VXTAP_TEST_SLOWDOWN_PCT): a real, known cost on
 * the packet path, so the bench's decision rule can be validated against a real
 * regression (issue 11). Off by default; never set it in production.
 *
 * With P set, after each batch a pass processes (TAP to underlay, uplink to
 * TAP, underlay to TAP) the worker busy-waits P/100 of the wall time that batch
 * took. A worker-bound dataplane then carries about 1/(1 + P/100) of its
 * throughput (P = 10: about 91%). Measured per batch, never per packet; nothing
 * is allocated.
 */

/** The environment variable of the knob. */
export const TEST_SLOWDOWN_ENV = 'VXTAP_TEST_SLOWDOWN_PCT';
/** Largest accepted value (percent of a batch's processing time). */
export const TEST_SLOWDOWN_MAX_PCT = 90;

/**
 * The knob's value from an environment: 0 when unset or empty, the percent when
 * it is an integer 0..90, else an Error naming the variable.
 */
export function testSlowdownFromEnv(env: NodeJS.ProcessEnv): number | Error {
  const raw = env[TEST_SLOWDOWN_ENV];
  if (raw === undefined || raw.trim() === '') return 0;
  const text = raw.trim();
  if (!/^\d+$/.test(text) || Number(text) > TEST_SLOWDOWN_MAX_PCT) {
    return new RangeError(`${TEST_SLOWDOWN_ENV} must be an integer percent 0..${TEST_SLOWDOWN_MAX_PCT} (test-only slowdown), got '${raw}'`);
  }
  return Number(text);
}

/**
 * Busy-wait until `pct`/100 of the batch's wall time (`t1 - t0`, ms from
 * performance.now()) has passed after `t1`; returns the clock when done.
 */
export function spinAfterBatch(t0: number, t1: number, pct: number): number {
  const until = t1 + ((t1 - t0) * pct) / 100;
  let t = t1;
  while (t < until) t = performance.now();
  return t;
}

/** The status field that shows the knob is on (`vxtap stats`): `{ testSlowdownPct }` when set, else nothing. */
export function testSlowdownStatus(env: NodeJS.ProcessEnv): { testSlowdownPct?: number } {
  const pct = testSlowdownFromEnv(env);
  return typeof pct === 'number' && pct > 0 ? { testSlowdownPct: pct } : {};
}
