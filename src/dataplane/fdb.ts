/**
 * The forwarding database: inner MAC -> remote VTEP (peer index).
 *
 * Design note: the table lives in a SharedArrayBuffer so every worker looks MACs
 * up without locks or messages. The main thread is its only writer of keys and
 * values (static entries from the control plane, learned entries reported by the
 * workers as messages). Workers only read, plus a racy-but-benign store of the
 * "last seen" second on each hit so that the main thread can age entries. Each
 * slot carries a version (seqlock): odd while being written; readers retry. The
 * table is open addressing with linear probing and backward-shift deletion, so a
 * reader may briefly miss an entry while it moves; a miss only floods one frame,
 * which is always correct for an Ethernet segment.
 */

/** Int32 fields per slot. */
const STRIDE = 5;
const F_VERSION = 0;
const F_HI = 1; // mac hi 16 bits | PRESENT
const F_LO = 2; // mac lo 32 bits
const F_PEER = 3;
const F_SEEN = 4; // seconds (monotonic, table epoch)
const PRESENT = 0x10000;

/** Result of a lookup that found nothing. */
export const FDB_MISS = -1;

/** Number of slots for a table holding up to `entries` entries at <= 50% load. */
export function fdbSlotsFor(entries: number): number {
  let n = 64;
  while (n < entries * 2) n *= 2;
  return n;
}

/** Bytes of shared memory for a table of `slots` slots. */
export function fdbBytes(slots: number): number {
  return slots * STRIDE * 4;
}

function hashMac(hi: number, lo: number, mask: number): number {
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 15;
  return h & mask;
}

/** Seconds on the monotonic clock shared by all threads of the process. */
export function nowSeconds(): number {
  return Math.floor(performance.timeOrigin / 1000 + performance.now() / 1000);
}

/** The read side of the table, used by workers (and the main thread). */
export class FdbView {
  protected readonly tab: Int32Array;
  protected readonly mask: number;
  /** Slot of the last successful lookup (for touch()). */
  lastSlot = -1;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.tab = new Int32Array(buffer);
    const slots = this.tab.length / STRIDE;
    if (slots < 1 || (slots & (slots - 1)) !== 0) throw new RangeError('fdb buffer must hold a power-of-two number of slots');
    this.mask = slots - 1;
  }

  /** Peer index for the MAC (hi 16 bits, lo 32 bits), or FDB_MISS. */
  lookup(hi: number, lo: number): number {
    const tab = this.tab;
    const key = hi | PRESENT;
    let slot = hashMac(hi, lo, this.mask);
    for (let probes = 0; probes <= this.mask; probes++) {
      const base = slot * STRIDE;
      for (let tries = 0; tries < 4; tries++) {
        const v1 = Atomics.load(tab, base + F_VERSION);
        if (v1 & 1) continue; // being written
        const k = tab[base + F_HI];
        if (k === 0) {
          if (Atomics.load(tab, base + F_VERSION) !== v1) continue;
          return FDB_MISS;
        }
        if (k === key && tab[base + F_LO] === lo) {
          const peer = tab[base + F_PEER];
          if (Atomics.load(tab, base + F_VERSION) !== v1) continue;
          this.lastSlot = slot;
          return peer;
        }
        if (Atomics.load(tab, base + F_VERSION) !== v1) continue;
        break; // another key: probe on
      }
      slot = (slot + 1) & this.mask;
    }
    return FDB_MISS;
  }

  /** Mark the slot of the last hit as seen at `now` (seconds). */
  touch(now: number): void {
    if (this.lastSlot >= 0) this.tab[this.lastSlot * STRIDE + F_SEEN] = now;
  }
}

/** A table entry as the main thread sees it. */
export interface FdbEntry {
  mac: string;
  peer: number;
  static: boolean;
  /** Seconds since it was last seen (learned entries). */
  ageSeconds: number;
}

/**
 * The write side (main thread only). `capacity` bounds the number of entries; when
 * full, learning stops (counted) and static entries are still accepted while room
 * remains.
 */
export class Fdb extends FdbView {
  private readonly statics = new Set<string>();
  private count = 0;
  readonly capacity: number;

  constructor(capacity = 4096) {
    const slots = fdbSlotsFor(capacity);
    super(new SharedArrayBuffer(fdbBytes(slots)));
    this.capacity = capacity;
  }

  get size(): number {
    return this.count;
  }

  private findSlot(hi: number, lo: number): number {
    const key = hi | PRESENT;
    let slot = hashMac(hi, lo, this.mask);
    for (let probes = 0; probes <= this.mask; probes++) {
      const base = slot * STRIDE;
      const k = this.tab[base + F_HI];
      if (k === 0) return -1 - slot; // free slot encoded negative
      if (k === key && this.tab[base + F_LO] === lo) return slot;
      slot = (slot + 1) & this.mask;
    }
    return -1 - slot;
  }

  private writeSlot(slot: number, hi: number, lo: number, peer: number, seen: number): void {
    const base = slot * STRIDE;
    const tab = this.tab;
    Atomics.add(tab, base + F_VERSION, 1);
    tab[base + F_HI] = hi === -1 ? 0 : hi | PRESENT;
    tab[base + F_LO] = lo;
    tab[base + F_PEER] = peer;
    tab[base + F_SEEN] = seen;
    Atomics.add(tab, base + F_VERSION, 1);
  }

  /**
   * Insert or update. Returns false when the table is full. A learned update never
   * replaces a static entry.
   */
  set(hi: number, lo: number, peer: number, isStatic: boolean, now = nowSeconds()): boolean {
    const found = this.findSlot(hi, lo);
    const key = macKey(hi, lo);
    if (found >= 0) {
      if (!isStatic && this.statics.has(key)) return true;
      if (isStatic) this.statics.add(key);
      else this.statics.delete(key);
      this.writeSlot(found, hi, lo, peer, now);
      return true;
    }
    if (this.count >= this.capacity) return false;
    if (isStatic) this.statics.add(key);
    this.writeSlot(-1 - found, hi, lo, peer, now);
    this.count++;
    return true;
  }

  /** Remove an entry; returns whether it existed. */
  delete(hi: number, lo: number): boolean {
    let slot = this.findSlot(hi, lo);
    if (slot < 0) return false;
    this.statics.delete(macKey(hi, lo));
    const tab = this.tab;
    // backward-shift deletion: pull later members of the probe run into the hole
    let next = (slot + 1) & this.mask;
    for (;;) {
      const nb = next * STRIDE;
      const k = tab[nb + F_HI];
      if (k === 0) break;
      const home = hashMac(k & 0xffff, tab[nb + F_LO], this.mask);
      // can the entry at `next` move to `slot`? yes if home is not in (slot, next]
      const dist = (next - home) & this.mask;
      const gap = (next - slot) & this.mask;
      if (dist >= gap) {
        this.writeSlot(slot, k & 0xffff, tab[nb + F_LO], tab[nb + F_PEER], tab[nb + F_SEEN]);
        slot = next;
      }
      next = (next + 1) & this.mask;
    }
    this.writeSlot(slot, -1, 0, 0, 0);
    this.count--;
    return true;
  }

  /** Remove every learned entry (keep statics) for which `pred(peer)` holds; returns how many. */
  deleteWhere(pred: (peer: number, isStatic: boolean) => boolean): number {
    const victims: [number, number][] = [];
    for (const e of this.rawEntries()) {
      if (pred(e.peer, this.statics.has(macKey(e.hi, e.lo)))) victims.push([e.hi, e.lo]);
    }
    for (const [hi, lo] of victims) this.delete(hi, lo);
    return victims.length;
  }

  /** Remove learned entries not seen for `maxAgeSeconds`; returns how many. */
  age(maxAgeSeconds: number, now = nowSeconds()): number {
    const victims: [number, number][] = [];
    for (const e of this.rawEntries()) {
      if (!this.statics.has(macKey(e.hi, e.lo)) && now - e.seen > maxAgeSeconds) victims.push([e.hi, e.lo]);
    }
    for (const [hi, lo] of victims) this.delete(hi, lo);
    return victims.length;
  }

  private *rawEntries(): Generator<{ hi: number; lo: number; peer: number; seen: number }> {
    const tab = this.tab;
    for (let slot = 0; slot <= this.mask; slot++) {
      const base = slot * STRIDE;
      const k = tab[base + F_HI];
      if (k !== 0) yield { hi: k & 0xffff, lo: tab[base + F_LO], peer: tab[base + F_PEER], seen: tab[base + F_SEEN] };
    }
  }

  /** Every entry, for dumps and `vxtap stats`. */
  entries(now = nowSeconds()): FdbEntry[] {
    const out: FdbEntry[] = [];
    for (const e of this.rawEntries()) {
      const key = macKey(e.hi, e.lo);
      out.push({ mac: key, peer: e.peer, static: this.statics.has(key), ageSeconds: Math.max(0, now - e.seen) });
    }
    return out.sort((a, b) => (a.mac < b.mac ? -1 : 1));
  }
}

/** 'aa:bb:cc:dd:ee:ff' for a (hi, lo) pair. */
export function macKey(hi: number, lo: number): string {
  const b = [(hi >>> 8) & 0xff, hi & 0xff, (lo >>> 24) & 0xff, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** (hi, lo) of a MAC string. */
export function macParts(mac: string): [number, number] {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  return [(b[0] << 8) | b[1], (b[2] << 24) | (b[3] << 16) | (b[4] << 8) | b[5]];
}
