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
 *
 * Hostile peers choose the source MACs we learn, so the table defends itself:
 * - The slot hash is simple tabulation hashing (six tables of 256 random words,
 *   one per MAC byte, XORed) with tables drawn per process. Linear probing with
 *   simple tabulation has O(1) expected probe length for ANY set of keys chosen
 *   without knowing the tables (Patrascu and Thorup, "The power of simple
 *   tabulation hashing", 2012), and the tables never leave the process, so a
 *   sender cannot aim MACs at one cluster. Load stays <= 50%.
 * - Static and learned entries have separate bounds, and the table has room for
 *   both at once: learning can never crowd out or evict a static entry.
 * - Learned entries are bounded in total and per peer. A peer at its bound is
 *   flagged in shared memory, so workers stop reporting its new MACs at all
 *   (no message per flooded MAC); the flag clears when its entries age out.
 * - MAC moves are damped: a MAC that moves between peers more than MOVES_MAX
 *   times within MOVE_WINDOW_SECONDS is held at its current peer for
 *   HOLD_SECONDS (switches call this MAC flap detection).
 *
 * Layout of the shared buffer (Int32): the six 256-entry hash tables, the peer
 * flags (one byte per peer index, MAX_PEERS of them), a word that closes the
 * peer table to unknown sources (--accept-unknown-peers at its bound), then the
 * slots. A slot has
 * STRIDE fields; workers read only VERSION, HI, LO, PEER and store SEEN; FLAGS,
 * MOVES and MARK are the main thread's.
 */

/** Peer indices are below this (per-peer flags and counters are arrays of it). */
export const MAX_PEERS = 4096;

const HASH_INTS = 6 * 256;
const FLAG_INTS = MAX_PEERS / 4; // one byte per peer
const H_UNKNOWN_CLOSED = HASH_INTS + FLAG_INTS; // 1: the peer table takes no more unknown sources
const HEADER_INTS = H_UNKNOWN_CLOSED + 4;
/** Int32 fields per slot. */
const STRIDE = 8;
const F_VERSION = 0;
const F_HI = 1; // mac hi 16 bits | PRESENT
const F_LO = 2; // mac lo 32 bits
const F_PEER = 3;
const F_SEEN = 4; // seconds (monotonic, table epoch)
const F_FLAGS = 5; // main thread: STATIC | HELD
const F_MOVES = 6; // main thread: moves in the current window
const F_MARK = 7; // main thread: start of the move window, or end of the hold
const PRESENT = 0x10000;
const FL_STATIC = 1;
const FL_HELD = 2;

/** Peer flag: the peer has its full share of learned entries; do not report its new MACs. */
export const PEER_LEARN_FULL = 1;

/** Moves allowed within MOVE_WINDOW_SECONDS before a MAC is held. */
export const MOVES_MAX = 3;
export const MOVE_WINDOW_SECONDS = 10;
/** How long a flapping MAC stays at its peer. */
export const HOLD_SECONDS = 60;

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
  return (HEADER_INTS + slots * STRIDE) * 4;
}

/** Seconds on the monotonic clock shared by all threads of the process. */
export function nowSeconds(): number {
  return Math.floor(performance.timeOrigin / 1000 + performance.now() / 1000);
}

/** Simple tabulation hash of the MAC (hi 16 bits, lo 32 bits) over the tables at tab[0..HASH_INTS). */
function hashMac(tab: Int32Array, hi: number, lo: number): number {
  return tab[hi >>> 8] ^ tab[256 + (hi & 0xff)] ^ tab[512 + (lo >>> 24)] ^ tab[768 + ((lo >>> 16) & 0xff)] ^ tab[1024 + ((lo >>> 8) & 0xff)] ^ tab[1280 + (lo & 0xff)];
}

/** The read side of the table, used by workers (and the main thread). */
export class FdbView {
  protected readonly tab: Int32Array;
  protected readonly mask: number;
  /** One byte per peer index: PEER_LEARN_FULL. */
  readonly peerFlags: Uint8Array;
  /** Slot of the last successful lookup (for touch()). */
  lastSlot = -1;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.tab = new Int32Array(buffer);
    const slots = (this.tab.length - HEADER_INTS) / STRIDE;
    if (slots < 1 || !Number.isInteger(slots) || (slots & (slots - 1)) !== 0) throw new RangeError('fdb buffer must hold a power-of-two number of slots');
    this.mask = slots - 1;
    this.peerFlags = new Uint8Array(buffer, HASH_INTS * 4, MAX_PEERS);
  }

  /** Home slot of a MAC. */
  protected home(hi: number, lo: number): number {
    return hashMac(this.tab, hi, lo) & this.mask;
  }

  /** Peer index for the MAC (hi 16 bits, lo 32 bits), or FDB_MISS. */
  lookup(hi: number, lo: number): number {
    const tab = this.tab;
    const key = hi | PRESENT;
    let slot = hashMac(tab, hi, lo) & this.mask;
    for (let probes = 0; probes <= this.mask; probes++) {
      const base = HEADER_INTS + slot * STRIDE;
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
    if (this.lastSlot >= 0) this.tab[HEADER_INTS + this.lastSlot * STRIDE + F_SEEN] = now;
  }

  /** True when the peer has its full share of learned entries (workers then stop reporting its MACs). */
  learnFull(peer: number): boolean {
    return (this.peerFlags[peer] & PEER_LEARN_FULL) !== 0;
  }

  /** True when the peer table takes no more unknown sources (they are dropped). */
  unknownPeersClosed(): boolean {
    return this.tab[H_UNKNOWN_CLOSED] !== 0;
  }
}

/** A table entry as the main thread sees it. */
export interface FdbEntry {
  mac: string;
  peer: number;
  static: boolean;
  /** Seconds since it was last seen (learned entries). */
  ageSeconds: number;
  /** Held at its peer after flapping between peers (learned entries). */
  held?: boolean;
}

/** Bounds of a table. */
export interface FdbOptions {
  /** Static entries (default 1024). */
  staticCapacity?: number;
  /** Learned entries in total (default 4096). */
  learnedCapacity?: number;
  /** Learned entries per peer (default: a quarter of learnedCapacity, at least 1). */
  learnedPerPeer?: number;
  /** Seed for the hash tables (tests); default: random per table. */
  seed?: number;
}

/** What became of a learn report. */
export type LearnResult =
  | 'added' // a new entry
  | 'refreshed' // already there with this peer
  | 'moved' // moved from another peer
  | 'static' // a static entry holds the MAC: not changed
  | 'held' // flapping: held at its current peer
  | 'full' // the learned entries are at their total bound
  | 'peer-full'; // the peer has its full share

/** Refused learn reports, by reason (main thread counters). */
export interface LearnRefusals {
  full: number;
  peerFull: number;
  held: number;
  moves: number;
}

/**
 * The write side (main thread only).
 */
export class Fdb extends FdbView {
  private staticCount = 0;
  private learnedCount = 0;
  private readonly byPeer = new Map<number, number>();
  readonly staticCapacity: number;
  readonly learnedCapacity: number;
  readonly learnedPerPeer: number;
  /** Refused learn reports and moves since start. */
  readonly refusals: LearnRefusals = { full: 0, peerFull: 0, held: 0, moves: 0 };

  /** A number sets every bound to it (the old single-capacity form). */
  constructor(opts: FdbOptions | number = {}) {
    const o: FdbOptions = typeof opts === 'number' ? { staticCapacity: opts, learnedCapacity: opts, learnedPerPeer: opts } : opts;
    const staticCapacity = o.staticCapacity ?? 1024;
    const learnedCapacity = o.learnedCapacity ?? 4096;
    const slots = fdbSlotsFor(staticCapacity + learnedCapacity);
    super(new SharedArrayBuffer(fdbBytes(slots)));
    this.staticCapacity = staticCapacity;
    this.learnedCapacity = learnedCapacity;
    this.learnedPerPeer = Math.max(1, Math.min(learnedCapacity, o.learnedPerPeer ?? Math.floor(learnedCapacity / 4)));
    fillHashTables(this.tab, o.seed);
  }

  /** Entries in the table. */
  get size(): number {
    return this.staticCount + this.learnedCount;
  }

  /** Learned entries (in total, or of one peer). */
  learned(peer?: number): number {
    return peer === undefined ? this.learnedCount : (this.byPeer.get(peer) ?? 0);
  }

  /** Static entries. */
  get statics(): number {
    return this.staticCount;
  }

  /** Open or close the peer table to unknown sources (read by the workers). */
  setUnknownPeersClosed(closed: boolean): void {
    Atomics.store(this.tab, H_UNKNOWN_CLOSED, closed ? 1 : 0);
  }

  /** Slot of the MAC, or -1 - (the free slot where it would go). */
  private findSlot(hi: number, lo: number): number {
    const key = hi | PRESENT;
    let slot = this.home(hi, lo);
    for (let probes = 0; probes <= this.mask; probes++) {
      const base = HEADER_INTS + slot * STRIDE;
      const k = this.tab[base + F_HI];
      if (k === 0) return -1 - slot;
      if (k === key && this.tab[base + F_LO] === lo) return slot;
      slot = (slot + 1) & this.mask;
    }
    return -1 - slot;
  }

  private field(slot: number, f: number): number {
    return this.tab[HEADER_INTS + slot * STRIDE + f];
  }

  /** Write a whole slot under its seqlock (hi === -1 empties it). */
  private writeSlot(slot: number, hi: number, lo: number, peer: number, seen: number, flags: number, moves: number, mark: number): void {
    const base = HEADER_INTS + slot * STRIDE;
    const tab = this.tab;
    Atomics.add(tab, base + F_VERSION, 1);
    tab[base + F_HI] = hi === -1 ? 0 : hi | PRESENT;
    tab[base + F_LO] = lo;
    tab[base + F_PEER] = peer;
    tab[base + F_SEEN] = seen;
    tab[base + F_FLAGS] = flags;
    tab[base + F_MOVES] = moves;
    tab[base + F_MARK] = mark;
    Atomics.add(tab, base + F_VERSION, 1);
  }

  private countPeer(peer: number, delta: number): void {
    const n = (this.byPeer.get(peer) ?? 0) + delta;
    if (n <= 0) this.byPeer.delete(peer);
    else this.byPeer.set(peer, n);
    if (peer >= 0 && peer < MAX_PEERS) this.peerFlags[peer] = n >= this.learnedPerPeer ? this.peerFlags[peer] | PEER_LEARN_FULL : this.peerFlags[peer] & ~PEER_LEARN_FULL;
  }

  /**
   * Put or replace a static entry (it replaces a learned one for the MAC). Returns
   * false when the static entries are at their bound.
   */
  setStatic(hi: number, lo: number, peer: number, now = nowSeconds()): boolean {
    const found = this.findSlot(hi, lo);
    if (found >= 0) {
      const flags = this.field(found, F_FLAGS);
      if ((flags & FL_STATIC) === 0) {
        if (this.staticCount >= this.staticCapacity) return false;
        this.learnedCount--;
        this.countPeer(this.field(found, F_PEER), -1);
        this.staticCount++;
      }
      this.writeSlot(found, hi, lo, peer, now, FL_STATIC, 0, 0);
      return true;
    }
    if (this.staticCount >= this.staticCapacity) return false;
    this.writeSlot(-1 - found, hi, lo, peer, now, FL_STATIC, 0, 0);
    this.staticCount++;
    return true;
  }

  /** A worker saw source MAC (hi, lo) behind `peer`: add, refresh or move the learned entry. */
  learn(hi: number, lo: number, peer: number, now = nowSeconds()): LearnResult {
    const found = this.findSlot(hi, lo);
    if (found >= 0) {
      const flags = this.field(found, F_FLAGS);
      if (flags & FL_STATIC) return 'static';
      const old = this.field(found, F_PEER);
      let moves = this.field(found, F_MOVES);
      let mark = this.field(found, F_MARK);
      if (old === peer) {
        this.tab[HEADER_INTS + found * STRIDE + F_SEEN] = now;
        return 'refreshed';
      }
      if (flags & FL_HELD) {
        if (now < mark) {
          this.refusals.held++;
          return 'held';
        }
        moves = 0; // the hold is over
        mark = now;
      }
      if (now - mark >= MOVE_WINDOW_SECONDS) {
        moves = 0;
        mark = now;
      }
      if (moves >= MOVES_MAX) {
        // flapping: stay where it is for HOLD_SECONDS
        this.writeSlot(found, hi, lo, old, this.field(found, F_SEEN), FL_HELD, moves, now + HOLD_SECONDS);
        this.refusals.held++;
        return 'held';
      }
      if ((this.byPeer.get(peer) ?? 0) >= this.learnedPerPeer) {
        this.refusals.peerFull++;
        return 'peer-full';
      }
      this.countPeer(old, -1);
      this.countPeer(peer, 1);
      this.writeSlot(found, hi, lo, peer, now, 0, moves + 1, mark);
      this.refusals.moves++;
      return 'moved';
    }
    if (this.learnedCount >= this.learnedCapacity) {
      this.refusals.full++;
      return 'full';
    }
    if ((this.byPeer.get(peer) ?? 0) >= this.learnedPerPeer) {
      this.refusals.peerFull++;
      return 'peer-full';
    }
    this.writeSlot(-1 - found, hi, lo, peer, now, 0, 0, now);
    this.learnedCount++;
    this.countPeer(peer, 1);
    return 'added';
  }

  /**
   * Insert or update (static, or learned through learn()). Returns false when the
   * entry was refused (bounds, a held MAC). A learned update never replaces a
   * static entry (and returns true, as the MAC is forwarded).
   */
  set(hi: number, lo: number, peer: number, isStatic: boolean, now = nowSeconds()): boolean {
    if (isStatic) return this.setStatic(hi, lo, peer, now);
    const r = this.learn(hi, lo, peer, now);
    return r === 'added' || r === 'refreshed' || r === 'moved' || r === 'static';
  }

  /** Remove an entry; returns whether it existed. */
  delete(hi: number, lo: number): boolean {
    let slot = this.findSlot(hi, lo);
    if (slot < 0) return false;
    if (this.field(slot, F_FLAGS) & FL_STATIC) this.staticCount--;
    else {
      this.learnedCount--;
      this.countPeer(this.field(slot, F_PEER), -1);
    }
    const tab = this.tab;
    // backward-shift deletion: pull later members of the probe run into the hole
    let next = (slot + 1) & this.mask;
    for (;;) {
      const nb = HEADER_INTS + next * STRIDE;
      const k = tab[nb + F_HI];
      if (k === 0) break;
      const home = this.home(k & 0xffff, tab[nb + F_LO]);
      // can the entry at `next` move to `slot`? yes if home is not in (slot, next]
      const dist = (next - home) & this.mask;
      const gap = (next - slot) & this.mask;
      if (dist >= gap) {
        this.writeSlot(slot, k & 0xffff, tab[nb + F_LO], tab[nb + F_PEER], tab[nb + F_SEEN], tab[nb + F_FLAGS], tab[nb + F_MOVES], tab[nb + F_MARK]);
        slot = next;
      }
      next = (next + 1) & this.mask;
    }
    this.writeSlot(slot, -1, 0, 0, 0, 0, 0, 0);
    return true;
  }

  /** Remove every entry for which `pred(peer, isStatic)` holds; returns how many. */
  deleteWhere(pred: (peer: number, isStatic: boolean) => boolean): number {
    const victims: [number, number][] = [];
    for (const e of this.rawEntries()) if (pred(e.peer, (e.flags & FL_STATIC) !== 0)) victims.push([e.hi, e.lo]);
    for (const [hi, lo] of victims) this.delete(hi, lo);
    return victims.length;
  }

  /** Remove learned entries not seen for `maxAgeSeconds`; returns how many. */
  age(maxAgeSeconds: number, now = nowSeconds()): number {
    const victims: [number, number][] = [];
    for (const e of this.rawEntries()) {
      if ((e.flags & FL_STATIC) === 0 && now - e.seen > maxAgeSeconds) victims.push([e.hi, e.lo]);
    }
    for (const [hi, lo] of victims) this.delete(hi, lo);
    return victims.length;
  }

  /** Probe lengths (1 = found in its home slot) over every entry: the longest and the mean. */
  probeStats(): { max: number; mean: number } {
    let max = 0;
    let sum = 0;
    let n = 0;
    for (let slot = 0; slot <= this.mask; slot++) {
      const base = HEADER_INTS + slot * STRIDE;
      const k = this.tab[base + F_HI];
      if (k === 0) continue;
      const len = ((slot - this.home(k & 0xffff, this.tab[base + F_LO])) & this.mask) + 1;
      if (len > max) max = len;
      sum += len;
      n++;
    }
    return { max, mean: n ? sum / n : 0 };
  }

  private *rawEntries(): Generator<{ hi: number; lo: number; peer: number; seen: number; flags: number }> {
    const tab = this.tab;
    for (let slot = 0; slot <= this.mask; slot++) {
      const base = HEADER_INTS + slot * STRIDE;
      const k = tab[base + F_HI];
      if (k !== 0) yield { hi: k & 0xffff, lo: tab[base + F_LO], peer: tab[base + F_PEER], seen: tab[base + F_SEEN], flags: tab[base + F_FLAGS] };
    }
  }

  /** Every entry, for dumps and `vxtap stats`. */
  entries(now = nowSeconds()): FdbEntry[] {
    const out: FdbEntry[] = [];
    for (const e of this.rawEntries()) {
      const isStatic = (e.flags & FL_STATIC) !== 0;
      out.push({
        mac: macKey(e.hi, e.lo),
        peer: e.peer,
        static: isStatic,
        ageSeconds: Math.max(0, now - e.seen),
        ...(e.flags & FL_HELD ? { held: true } : {}),
      });
    }
    return out.sort((a, b) => (a.mac < b.mac ? -1 : 1));
  }
}

/** Fill the tabulation tables: from crypto, or from a seed (tests). */
function fillHashTables(tab: Int32Array, seed: number | undefined): void {
  const t = tab.subarray(0, HASH_INTS);
  if (seed === undefined) {
    crypto.getRandomValues(t);
    return;
  }
  // splitmix32: deterministic tables for reproducible tests
  let s = seed | 0;
  for (let i = 0; i < t.length; i++) {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    t[i] = z ^ (z >>> 16);
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
