/**
 * The lease watcher: keeps an up-to-date copy of every record under
 * `<prefix>/subnets/` and says when it changed.
 *
 * A full listing first, then a watch from the listing's revision + 1. Whatever
 * happens to the watch, the copy converges:
 * - stream broken and back (etcd restart, network blip): events resume where
 *   they stopped, and a full resync catches anything missed;
 * - watch cancelled by etcd (after an outage longer than the compaction window,
 *   its start revision no longer exists): list again and watch anew from the new
 *   listing's revision, with backoff until etcd answers;
 * - and every `resyncIntervalMs` a full listing anyway; if it finds a change the
 *   watch did not deliver, the watch is restarted.
 * Stale events never undo newer state: each key remembers the revision it was
 * last updated at. Watch health (state, last event, last resync, restarts) is
 * in `stats`.
 */
import { Backoff } from '../etcd-client.js';
import type { Clock, TimerHandle } from './clock.js';
import { EtcdHealth, retrying } from './etcd-health.js';
import type { Lease } from './lease.js';
import type { LeaseRegistry, LeaseSnapshot, LeaseWatch, LeaseWatchEvent, MalformedLease } from './registry.js';

/** Default period of the full resync (one range read of the subnets prefix). */
export const DEFAULT_RESYNC_INTERVAL_MS = 5 * 60_000;

/** Watch health for `vxtap stats`. */
export interface LeaseWatcherStats {
  /** 'watching', 'disconnected' (stream broken, client reconnecting), 'restarting' (cancelled: relisting). */
  state: 'starting' | 'watching' | 'disconnected' | 'restarting' | 'stopped';
  /** Full listings done (start, reconnects, restarts, periodic). */
  resyncs: number;
  /** Watches re-created after etcd cancelled one (or a resync found it had missed events). */
  restarts: number;
  /** Changes a resync found that the watch had not delivered. */
  missedByWatch: number;
  lastEventAtMs?: number;
  lastResyncAtMs?: number;
  /** Revision of the last listing. */
  revision?: string;
}

/** What the watcher needs. */
export interface LeaseWatcherOptions {
  registry: LeaseRegistry;
  clock: Clock;
  health: EtcdHealth;
  log: (msg: string) => void;
  /** Called (synchronously) after the copy changed. */
  onChange: () => void;
  /** Called when a record was deleted (after onChange). */
  onDelete?: (key: string) => void;
  /** Period of the full resync (default 5 min; 0 = never). */
  resyncIntervalMs?: number;
}

/** Keeps `records` in step with the registry. */
export class LeaseWatcher {
  /** Every record under the subnets prefix, by key. */
  readonly records = new Map<string, Lease | MalformedLease>();
  readonly stats: LeaseWatcherStats = { state: 'starting', resyncs: 0, restarts: 0, missedByWatch: 0 };
  private seenRev = new Map<string, bigint>();
  private watch?: LeaseWatch;
  /** Bumped for each watch; events of an older one are ignored. */
  private generation = 0;
  private restarting?: Promise<void>;
  private resyncing?: Promise<void>;
  private periodic?: TimerHandle;
  private stopped = false;

  constructor(private readonly o: LeaseWatcherOptions) {}

  private get resyncIntervalMs(): number {
    return this.o.resyncIntervalMs ?? 0;
  }

  /** List, then watch. Retries connection errors until `deadlineMs`. */
  async start(deadlineMs?: number): Promise<void> {
    const snap = await retrying('list leases', () => this.resync(), { clock: this.o.clock, health: this.o.health, stopped: () => this.stopped, deadlineMs });
    await retrying('watch leases', () => this.openWatch(snap.revision), { clock: this.o.clock, health: this.o.health, stopped: () => this.stopped, deadlineMs });
    this.schedulePeriodic();
  }

  private apply(ev: LeaseWatchEvent): boolean {
    if ((this.seenRev.get(ev.key) ?? -1n) >= ev.revision) return false;
    this.seenRev.set(ev.key, ev.revision);
    if (ev.type === 'put') this.records.set(ev.key, ev.record);
    else this.records.delete(ev.key);
    return true;
  }

  private async openWatch(snapshotRevision: string): Promise<void> {
    const gen = ++this.generation;
    const mine = () => gen === this.generation && !this.stopped;
    const w = await this.o.registry.watchLeases(String(BigInt(snapshotRevision) + 1n), {
      onEvent: (ev) => {
        if (!mine()) return;
        this.stats.lastEventAtMs = this.o.clock.now();
        if (!this.apply(ev)) return;
        this.o.onChange();
        if (ev.type === 'delete') this.o.onDelete?.(ev.key);
      },
      onDisconnected: (e) => {
        if (!mine()) return;
        this.stats.state = 'disconnected';
        this.o.health.failed('watch', e);
      },
      onReconnected: () => {
        if (!mine()) return;
        this.stats.state = 'watching';
        this.o.health.ok();
        // Catch up on anything missed while the stream was down.
        void this.resyncNow().catch(() => undefined);
      },
      onCancelled: (e) => {
        if (!mine()) return;
        this.o.log(`lease watch cancelled by etcd (${e.message}); listing again and watching anew`);
        void this.restartWatch();
      },
    });
    if (!mine()) {
      await w.cancel();
      return;
    }
    this.watch = w;
    this.stats.state = 'watching';
  }

  /**
   * Full listing: records at or below the snapshot's revision are replaced by the
   * snapshot (deleted when absent), newer ones (from events) are kept.
   */
  private async resync(countMissed = false): Promise<LeaseSnapshot> {
    const snap = await this.o.registry.listLeases();
    const rev = BigInt(snap.revision);
    let changed = false;
    let missed = 0;
    const present = new Set<string>();
    const deleted: string[] = [];
    for (const r of [...snap.leases, ...snap.malformed]) {
      present.add(r.key);
      const seen = this.seenRev.get(r.key) ?? -1n;
      if (seen > rev) continue;
      const mod = 'modRevision' in r && r.modRevision ? BigInt(r.modRevision) : rev;
      const had = this.records.get(r.key);
      const hadMod = had && 'modRevision' in had && had.modRevision ? BigInt(had.modRevision) : undefined;
      if (!had || hadMod !== mod) {
        changed = true;
        missed++;
      }
      this.records.set(r.key, r);
      this.seenRev.set(r.key, rev);
    }
    for (const key of [...this.records.keys()]) {
      if (present.has(key) || (this.seenRev.get(key) ?? -1n) > rev) continue;
      this.records.delete(key);
      this.seenRev.set(key, rev);
      deleted.push(key);
      changed = true;
      missed++;
    }
    this.stats.resyncs++;
    this.stats.lastResyncAtMs = this.o.clock.now();
    this.stats.revision = snap.revision;
    this.lastMissed = countMissed ? missed : 0;
    this.stats.missedByWatch += this.lastMissed;
    if (changed) this.o.onChange();
    for (const key of deleted) this.o.onDelete?.(key);
    return snap;
  }

  private lastMissed = 0;

  /**
   * One full resync now (coalesced with one in progress). With `countMissed`
   * (the periodic resync), changes the watch had not delivered are counted (an
   * event still in flight can be counted too: the cost is one needless re-watch).
   */
  resyncNow(countMissed = false): Promise<void> {
    if (this.resyncing) return this.resyncing;
    this.resyncing = (async () => {
      try {
        await this.resync(countMissed);
        this.o.health.ok();
      } catch (e) {
        this.o.health.failed('resync leases', e);
        throw e;
      }
    })().finally(() => {
      this.resyncing = undefined;
    });
    return this.resyncing;
  }

  /** Drop the watch, list again and watch from the new listing, with backoff until it works. */
  restartWatch(): Promise<void> {
    if (this.restarting) return this.restarting;
    this.stats.restarts++;
    this.stats.state = 'restarting';
    this.restarting = (async () => {
      const old = this.watch;
      this.watch = undefined;
      this.generation++;
      await old?.cancel().catch(() => undefined);
      const backoff = new Backoff();
      while (!this.stopped) {
        try {
          await this.resyncing?.catch(() => undefined);
          const snap = await this.resync();
          await this.openWatch(snap.revision);
          this.o.health.ok();
          return;
        } catch (e) {
          this.o.health.failed('re-watch leases', e);
          await this.o.clock.sleep(backoff.next());
        }
      }
    })().finally(() => {
      this.restarting = undefined;
    });
    return this.restarting;
  }

  private schedulePeriodic(): void {
    if (this.stopped || !this.resyncIntervalMs) return;
    this.periodic?.cancel();
    this.periodic = this.o.clock.setTimer(this.resyncIntervalMs, () => void this.periodicResync());
  }

  private async periodicResync(): Promise<void> {
    try {
      if (!this.restarting) {
        await this.resyncNow(true);
        // A change the watch should have delivered but did not: do not trust it.
        if (this.lastMissed > 0 && this.stats.state === 'watching') {
          this.o.log(`periodic resync found ${this.lastMissed} change(s) the watch had not delivered; re-watching`);
          await this.restartWatch();
        }
      }
    } catch {
      // counted by health; the next period tries again
    } finally {
      this.schedulePeriodic();
    }
  }

  /** Stop watching and resyncing. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stats.state = 'stopped';
    this.periodic?.cancel();
    this.generation++;
    const w = this.watch;
    this.watch = undefined;
    await w?.cancel().catch(() => undefined);
  }
}
