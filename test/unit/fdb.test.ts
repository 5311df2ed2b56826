import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Fdb, FdbView, FDB_MISS, HOLD_SECONDS, MOVES_MAX, MOVE_WINDOW_SECONDS, macKey, macParts, type LearnResult } from '../../src/dataplane/fdb.js';

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
    expect(t.learn(hi, lo, 2)).toBe('static');
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

  it('bounds learned entries per peer and in total, apart from static ones', () => {
    const t = new Fdb({ staticCapacity: 4, learnedCapacity: 10, learnedPerPeer: 4, seed: 1 });
    for (let i = 0; i < 4; i++) expect(t.setStatic(9, i, 7)).toBe(true);
    expect(t.setStatic(9, 99, 7)).toBe(false);
    for (let i = 0; i < 6; i++) t.learn(1, i, 0);
    expect(t.learned(0)).toBe(4);
    expect(t.refusals.peerFull).toBe(2);
    const view = new FdbView(t.buffer);
    expect(view.learnFull(0)).toBe(true); // workers stop reporting peer 0
    expect(view.learnFull(1)).toBe(false);
    for (let i = 0; i < 4; i++) t.learn(2, i, 1);
    expect(t.learn(3, 0, 2)).toBe('added');
    expect(t.learn(3, 1, 2)).toBe('added');
    expect(t.learn(3, 2, 2)).toBe('full'); // 10 learned in all
    expect(t.learned()).toBe(10);
    // every static entry is still there, and a new static one fits after a delete
    for (let i = 0; i < 4; i++) expect(t.lookup(9, i)).toBe(7);
    expect(t.delete(9, 0)).toBe(true);
    expect(t.setStatic(9, 0, 7)).toBe(true);
    // ageing frees the peer's share and clears its flag
    expect(t.age(0, nowPlus(10))).toBe(10);
    expect(view.learnFull(0)).toBe(false);
    expect(t.statics).toBe(4);
  });

  it('holds a MAC that flaps between peers, and lets it move again after the hold', () => {
    const t = new Fdb({ seed: 2 });
    const now = 1000;
    expect(t.learn(1, 1, 0, now)).toBe('added');
    const seen: LearnResult[] = [];
    for (let k = 0; k < MOVES_MAX; k++) seen.push(t.learn(1, 1, (k + 1) % 2, now + k));
    const other = 1 - t.lookup(1, 1);
    seen.push(t.learn(1, 1, other, now + MOVES_MAX), t.learn(1, 1, other, now + MOVES_MAX));
    expect(seen).toEqual([...Array(MOVES_MAX).fill('moved'), 'held', 'held']);
    const at = t.lookup(1, 1);
    expect(t.entries(now)[0].held).toBe(true);
    expect(t.learn(1, 1, 1 - at, now + HOLD_SECONDS - 1 + MOVES_MAX)).toBe('held');
    expect(t.learn(1, 1, 1 - at, now + HOLD_SECONDS + MOVES_MAX + 1)).toBe('moved');
    // one move now and then (a migrating VM) is never held
    const u = new Fdb({ seed: 3 });
    u.learn(2, 2, 0, 0);
    for (let k = 1; k <= 20; k++) expect(u.learn(2, 2, k % 2, k * MOVE_WINDOW_SECONDS)).toBe('moved');
  });

  it('keeps probe runs short for keys that all collided under the old unkeyed hash', () => {
    // the old hash: imul(lo ^ imul(hi, 0x9e3779b1), 0x85ebca6b), then h ^= h >>> 15, & mask:
    // (an 8192-slot table): 4096 MACs that all had one home slot
    const t = new Fdb({ staticCapacity: 64, learnedCapacity: 4096, learnedPerPeer: 4096 });
    const oldMask = 8191;
    const oldHash = (hi: number, lo: number) => {
      let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
      h ^= h >>> 15;
      return h & oldMask;
    };
    const keys: number[] = [];
    for (let lo = 0; keys.length < 4096; lo++) if (oldHash(0, lo) === 0) keys.push(lo);
    for (const lo of keys) expect(t.learn(0, lo, 0)).toBe('added');
    const p = t.probeStats();
    expect(p.mean).toBeLessThan(3);
    expect(p.max).toBeLessThan(48);
    // random MACs too, under many seeds
    for (let seed = 0; seed < 20; seed++) {
      const u = new Fdb({ learnedCapacity: 4096, learnedPerPeer: 4096, seed });
      for (let i = 0; i < 4096; i++) u.learn((Math.random() * 65536) & 0xfffe, (Math.random() * 2 ** 32) | 0, 0);
      const q = u.probeStats();
      expect(q.mean).toBeLessThan(3);
      expect(q.max).toBeLessThan(64);
    }
  });

  it('agrees with a reference model under random operations (property, incl. backward-shift deletes, bounds, damping)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom('learn', 'learn', 'static', 'del', 'age'),
            hi: fc.integer({ min: 0, max: 3 }),
            lo: fc.integer({ min: -8, max: 8 }),
            peer: fc.integer({ min: 0, max: 3 }),
            dt: fc.integer({ min: 0, max: 30 }),
          }),
          { maxLength: 300 },
        ),
        fc.integer(),
        (ops, seed) => {
          const bounds = { staticCapacity: 6, learnedCapacity: 20, learnedPerPeer: 8 };
          const t = new Fdb({ ...bounds, seed });
          const ref = new RefFdb(bounds);
          let now = 1000;
          for (const o of ops) {
            now += o.dt === 30 ? 100 : o.dt < 25 ? 0 : o.dt - 24;
            if (o.op === 'learn') expect(t.learn(o.hi, o.lo, o.peer, now)).toBe(ref.learn(macKey(o.hi, o.lo), o.peer, now));
            else if (o.op === 'static') expect(t.setStatic(o.hi, o.lo, o.peer, now)).toBe(ref.setStatic(macKey(o.hi, o.lo), o.peer, now));
            else if (o.op === 'del') expect(t.delete(o.hi, o.lo)).toBe(ref.entries.delete(macKey(o.hi, o.lo)));
            else expect(t.age(60, now)).toBe(ref.age(60, now));
          }
          expect(t.size).toBe(ref.entries.size);
          for (let p = 0; p <= 3; p++) expect(t.learned(p)).toBe(ref.learned(p));
          for (let hi = 0; hi <= 3; hi++) {
            for (let lo = -8; lo <= 8; lo++) {
              expect(t.lookup(hi, lo)).toBe(ref.entries.get(macKey(hi, lo))?.peer ?? FDB_MISS);
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

function nowPlus(s: number): number {
  return Math.floor(performance.timeOrigin / 1000 + performance.now() / 1000) + s;
}

/** The table's rules, written plainly over a Map (the slow reference). */
class RefFdb {
  readonly entries = new Map<string, { peer: number; static: boolean; seen: number; moves: number; mark: number; heldUntil: number }>();
  constructor(private readonly b: { staticCapacity: number; learnedCapacity: number; learnedPerPeer: number }) {}

  learned(peer?: number): number {
    let n = 0;
    for (const e of this.entries.values()) if (!e.static && (peer === undefined || e.peer === peer)) n++;
    return n;
  }

  statics(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.static) n++;
    return n;
  }

  setStatic(key: string, peer: number, now: number): boolean {
    const e = this.entries.get(key);
    if ((!e || !e.static) && this.statics() >= this.b.staticCapacity) return false;
    this.entries.set(key, { peer, static: true, seen: now, moves: 0, mark: 0, heldUntil: 0 });
    return true;
  }

  learn(key: string, peer: number, now: number): LearnResult {
    const e = this.entries.get(key);
    if (!e) {
      if (this.learned() >= this.b.learnedCapacity) return 'full';
      if (this.learned(peer) >= this.b.learnedPerPeer) return 'peer-full';
      this.entries.set(key, { peer, static: false, seen: now, moves: 0, mark: now, heldUntil: 0 });
      return 'added';
    }
    if (e.static) return 'static';
    if (e.peer === peer) {
      e.seen = now;
      return 'refreshed';
    }
    if (e.heldUntil) {
      if (now < e.heldUntil) return 'held';
      e.heldUntil = 0;
      e.moves = 0;
      e.mark = now;
    }
    if (now - e.mark >= MOVE_WINDOW_SECONDS) {
      e.moves = 0;
      e.mark = now;
    }
    if (e.moves >= MOVES_MAX) {
      e.heldUntil = now + HOLD_SECONDS;
      return 'held';
    }
    if (this.learned(peer) >= this.b.learnedPerPeer) return 'peer-full';
    e.peer = peer;
    e.seen = now;
    e.moves++;
    return 'moved';
  }

  age(max: number, now: number): number {
    let n = 0;
    for (const [k, e] of this.entries) {
      if (!e.static && now - e.seen > max) {
        this.entries.delete(k);
        n++;
      }
    }
    return n;
  }
}
