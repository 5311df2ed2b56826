import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Fdb, FdbView, FDB_MISS, macKey, macParts } from '../../src/dataplane/fdb.js';

describe('forwarding table', () => {
  it('inserts, looks up, updates and deletes', () => {
    const t = new Fdb(16);
    const [hi, lo] = macParts('02:00:00:00:00:01');
    expect(t.lookup(hi, lo)).toBe(FDB_MISS);
    expect(t.set(hi, lo, 3, false)).toBe(true);
    expect(t.lookup(hi, lo)).toBe(3);
    t.set(hi, lo, 4, false);
    expect(t.lookup(hi, lo)).toBe(4);
    expect(t.size).toBe(1);
    expect(t.delete(hi, lo)).toBe(true);
    expect(t.lookup(hi, lo)).toBe(FDB_MISS);
    expect(t.size).toBe(0);
  });

  it('never lets learning replace a static entry', () => {
    const t = new Fdb(16);
    const [hi, lo] = macParts('02:00:00:00:00:09');
    t.set(hi, lo, 1, true);
    t.set(hi, lo, 2, false);
    expect(t.lookup(hi, lo)).toBe(1);
    expect(t.entries()[0]).toMatchObject({ mac: '02:00:00:00:00:09', static: true, peer: 1 });
  });

  it('ages learned entries and keeps statics', () => {
    const t = new Fdb(16);
    t.set(1, 1, 0, false, 100);
    t.set(1, 2, 0, true, 100);
    t.set(1, 3, 0, false, 100);
    const view = new FdbView(t.buffer);
    expect(view.lookup(1, 3)).toBe(0);
    view.touch(150); // seen recently through the worker's view
    expect(t.age(30, 160)).toBe(1);
    expect(t.lookup(1, 1)).toBe(FDB_MISS);
    expect(t.lookup(1, 2)).toBe(0);
    expect(t.lookup(1, 3)).toBe(0);
  });

  it('stops learning when full', () => {
    const t = new Fdb(4);
    for (let i = 0; i < 4; i++) expect(t.set(0, i, 0, false)).toBe(true);
    expect(t.set(0, 99, 0, false)).toBe(false);
    expect(t.size).toBe(4);
  });

  it('agrees with a Map under random operations (property, incl. backward-shift deletes)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ op: fc.constantFrom('set', 'del'), hi: fc.integer({ min: 0, max: 3 }), lo: fc.integer({ min: -8, max: 8 }), peer: fc.integer({ min: 0, max: 9 }) }),
          { maxLength: 300 },
        ),
        (ops) => {
          const t = new Fdb(64);
          const ref = new Map<string, number>();
          for (const o of ops) {
            const k = macKey(o.hi, o.lo);
            if (o.op === 'set') {
              t.set(o.hi, o.lo, o.peer, false);
              ref.set(k, o.peer);
            } else {
              expect(t.delete(o.hi, o.lo)).toBe(ref.delete(k));
            }
          }
          expect(t.size).toBe(ref.size);
          for (let hi = 0; hi <= 3; hi++) {
            for (let lo = -8; lo <= 8; lo++) {
              expect(t.lookup(hi, lo)).toBe(ref.get(macKey(hi, lo)) ?? FDB_MISS);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('formats and parses MAC keys', () => {
    expect(macKey(...macParts('ff:ee:dd:cc:bb:aa'))).toBe('ff:ee:dd:cc:bb:aa');
  });
});
