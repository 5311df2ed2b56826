import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cv, mean, median, roundRatios, stddev, summarize } from '../../bench/stats.js';
import { rotate } from '../../bench/run.js';

describe('statistics', () => {
  it('median of odd, even and empty sets', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
    expect(median([NaN, 5])).toBe(5);
  });

  it('mean, sample standard deviation and CV', () => {
    expect(mean([2, 4, 6])).toBe(4);
    expect(stddev([2, 4, 6])).toBe(2);
    expect(cv([2, 4, 6])).toBe(0.5);
    expect(stddev([1])).toBeNull();
    expect(cv([0, 0])).toBeNull();
  });

  it('summarize ignores nulls', () => {
    expect(summarize([1, null, 3, undefined])).toEqual({ n: 2, median: 2, min: 1, max: 3, mean: 2, cv: Math.SQRT2 / 2 });
    expect(summarize([])).toEqual({ n: 0, median: null, min: null, max: null, mean: null, cv: null });
  });

  it('ratios are taken round by round and skip missing rounds', () => {
    expect(roundRatios([10, 20, null, 8], [5, 10, 3, 0])).toEqual([2, 2]);
  });

  it('round-by-round ratios cancel drift that pooled medians do not', () => {
    // The machine slows down 2x between rounds; mode X is always 90% of base.
    const base = [10, 5, 2.5];
    const x = base.map((b) => b * 0.9);
    expect(median(roundRatios(x, base))).toBeCloseTo(0.9);
  });

  it('median lies between min and max (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ noNaN: true, min: -1e9, max: 1e9 }), { minLength: 1 }), (xs) => {
        const s = summarize(xs);
        return s.min! <= s.median! && s.median! <= s.max!;
      }),
    );
  });

  it('rotate interleaves modes per round', () => {
    expect(rotate(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(rotate(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(rotate(['a', 'b', 'c'], 4)).toEqual(['b', 'c', 'a']);
  });
});
