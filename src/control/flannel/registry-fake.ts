/**
 * An in-memory LeaseRegistry with etcd's semantics where the control plane
 * depends on them: one revision counter for every write, compare-and-swap
 * transactions, leases that expire on the injected clock and take their keys
 * with them, watches that deliver events in revision order, and the faults that
 * matter: an unreachable registry (every call rejects), a broken watch stream
 * (disconnect, then reconnect), and compaction that cancels a watch whose start
 * revision is gone.
 */
import type { Clock } from './clock.js';
import { parseNetworkConfig, type NetworkConfig } from './config.js';
import type { Lease } from './lease.js';
import {
  MissingConfigError,
  decodeRecord,
  isMalformed,
  type LeaseRegistry,
  type LeaseSnapshot,
  type LeaseWatch,
  type LeaseWatchEvent,
  type LeaseWatchHandlers,
  type MalformedLease,
} from './registry.js';

interface Kv {
  value: string;
  createRevision: bigint;
  modRevision: bigint;
  lease: string;
}

interface FakeWatch {
  from: bigint;
  h: LeaseWatchHandlers;
  live: boolean;
  /** Disconnected: events are held back until reconnect. */
  paused: boolean;
}

/** Raised by every call while the fake is unreachable. */
export class FakeUnreachableError extends Error {
  constructor() {
    super('fake etcd unreachable');
    this.name = 'FakeUnreachableError';
  }
}

/** In-memory registry for unit tests of the lease keeper and lease watcher. */
export class FakeLeaseRegistry implements LeaseRegistry {
  revision = 1n;
  compactedRevision = 0n;
  private kvs = new Map<string, Kv>();
  private leases = new Map<string, { expiresAtMs: number }>();
  private history: { rev: bigint; ev: 'put' | 'delete'; key: string }[] = [];
  private watches: FakeWatch[] = [];
  private nextLease = 100;
  private configText: string | undefined;
  /** While true, every call rejects with FakeUnreachableError. */
  unreachable = false;
  /** Calls made, by method name. */
  readonly calls: Record<string, number> = {};

  constructor(
    private readonly clock: Clock,
    config?: unknown,
  ) {
    if (config !== undefined) this.configText = typeof config === 'string' ? config : JSON.stringify(config);
  }

  private async call(name: string): Promise<void> {
    this.calls[name] = (this.calls[name] ?? 0) + 1;
    await Promise.resolve();
    this.expire();
    if (this.unreachable) throw new FakeUnreachableError();
  }

  /** Drop keys whose lease ran out on the clock (as etcd's lessor does). */
  expire(): void {
    const now = this.clock.now();
    for (const [id, l] of this.leases) {
      if (l.expiresAtMs > now) continue;
      this.leases.delete(id);
      for (const [key, kv] of [...this.kvs]) if (kv.lease === id) this.del(key);
    }
  }

  private bump(ev: 'put' | 'delete', key: string): bigint {
    this.revision++;
    this.history.push({ rev: this.revision, ev, key });
    return this.revision;
  }

  private record(key: string, kv: Kv): Lease | MalformedLease {
    return decodeRecord(key, kv.value, { modRevision: String(kv.modRevision), createRevision: String(kv.createRevision), etcdLease: kv.lease });
  }

  private put(key: string, value: string, lease: string, silent = false): void {
    const rev = this.bump('put', key);
    const old = this.kvs.get(key);
    const kv: Kv = { value, createRevision: old?.createRevision ?? rev, modRevision: rev, lease };
    this.kvs.set(key, kv);
    if (!silent) this.emit({ type: 'put', key, revision: rev, record: this.record(key, kv) });
  }

  private del(key: string): void {
    if (!this.kvs.has(key)) return;
    this.kvs.delete(key);
    const rev = this.bump('delete', key);
    this.emit({ type: 'delete', key, revision: rev });
  }

  private emit(ev: LeaseWatchEvent): void {
    for (const w of this.watches) if (w.live && !w.paused && ev.revision >= w.from) w.h.onEvent(ev);
  }

  // ---- test controls -------------------------------------------------

  /**
   * Write a record as another writer would (any key, any value, optional TTL).
   * `lostEvent` keeps the event from live watches (a watch that silently missed it).
   */
  write(key: string, value: string | object, ttlSeconds?: number, opts: { lostEvent?: boolean } = {}): void {
    let lease = '0';
    if (ttlSeconds !== undefined) {
      lease = String(this.nextLease++);
      this.leases.set(lease, { expiresAtMs: this.clock.now() + ttlSeconds * 1000 });
    }
    this.put(key, typeof value === 'string' ? value : JSON.stringify(value), lease, opts.lostEvent);
  }

  /** Delete a record as another writer would. */
  remove(key: string): void {
    this.del(key);
  }

  /** The raw value at `key`. */
  value(key: string): string | undefined {
    return this.kvs.get(key)?.value;
  }

  /** Keys present. */
  keys(): string[] {
    this.expire();
    return [...this.kvs.keys()].sort();
  }

  /** Break every watch stream: onDisconnected now; events are held until `reconnectWatches()`. */
  disconnectWatches(err = new Error('watch stream broken')): void {
    for (const w of this.watches) {
      if (!w.live || w.paused) continue;
      w.paused = true;
      w.h.onDisconnected(err);
    }
  }

  /**
   * Reconnect broken watch streams. A watch whose next revision was compacted
   * away is cancelled (onCancelled), as etcd does; the others get the events they
   * missed and onReconnected.
   */
  reconnectWatches(): void {
    for (const w of this.watches) {
      if (!w.live || !w.paused) continue;
      w.paused = false;
      const next = this.lastDelivered.get(w) ?? w.from;
      if (next <= this.compactedRevision) {
        w.live = false;
        w.h.onCancelled(new Error(`Watcher canceled: mvcc: required revision has been compacted`));
        continue;
      }
      for (const e of this.history) {
        if (e.rev < next) continue;
        const kv = this.kvs.get(e.key);
        if (e.ev === 'put' && kv && kv.modRevision === e.rev) w.h.onEvent({ type: 'put', key: e.key, revision: e.rev, record: this.record(e.key, kv) });
        else if (e.ev === 'delete') w.h.onEvent({ type: 'delete', key: e.key, revision: e.rev });
      }
      w.h.onReconnected();
    }
  }

  /** Where each paused watch would resume (revision of the first missed event). */
  private lastDelivered = new Map<FakeWatch, bigint>();

  /** Forget history up to the current revision (etcdctl compact). */
  compact(): void {
    this.compactedRevision = this.revision;
    this.history = [];
  }

  /** Live watches. */
  get liveWatches(): number {
    return this.watches.filter((w) => w.live).length;
  }

  // ---- LeaseRegistry -------------------------------------------------

  async getConfig(): Promise<NetworkConfig> {
    await this.call('getConfig');
    if (this.configText === undefined) throw new MissingConfigError('/fake/config');
    return parseNetworkConfig(this.configText);
  }

  async listLeases(): Promise<LeaseSnapshot> {
    await this.call('listLeases');
    const leases: Lease[] = [];
    const malformed: MalformedLease[] = [];
    for (const [key, kv] of this.kvs) {
      const r = this.record(key, kv);
      if (isMalformed(r)) malformed.push(r);
      else leases.push(r);
    }
    return { leases, malformed, revision: String(this.revision) };
  }

  async grant(ttlSeconds: number): Promise<string> {
    await this.call('grant');
    const id = String(this.nextLease++);
    this.leases.set(id, { expiresAtMs: this.clock.now() + ttlSeconds * 1000 });
    return id;
  }

  async revoke(id: string): Promise<void> {
    await this.call('revoke');
    if (!this.leases.delete(id)) return;
    for (const [key, kv] of [...this.kvs]) if (kv.lease === id) this.del(key);
  }

  private checkLease(id: string): void {
    if (!this.leases.has(id)) throw Object.assign(new Error(`lease ${id} not found`), { name: 'EtcdLeaseInvalidError' });
  }

  async tryCreate(key: string, value: string, leaseId: string): Promise<boolean> {
    await this.call('tryCreate');
    if (this.kvs.has(key)) return false;
    this.checkLease(leaseId);
    this.put(key, value, leaseId);
    return true;
  }

  async tryRenew(key: string, value: string, leaseId: string): Promise<boolean> {
    await this.call('tryRenew');
    if (this.kvs.get(key)?.value !== value) return false;
    this.checkLease(leaseId);
    this.put(key, value, leaseId);
    return true;
  }

  async tryAdopt(key: string, value: string, leaseId: string, modRevision: string): Promise<boolean> {
    await this.call('tryAdopt');
    const kv = this.kvs.get(key);
    if (!kv || String(kv.modRevision) !== modRevision) return false;
    this.checkLease(leaseId);
    this.put(key, value, leaseId);
    return true;
  }

  async tryDelete(key: string, value: string): Promise<boolean> {
    await this.call('tryDelete');
    if (this.kvs.get(key)?.value !== value) return false;
    this.del(key);
    return true;
  }

  async getLease(key: string): Promise<Lease | MalformedLease | undefined> {
    await this.call('getLease');
    const kv = this.kvs.get(key);
    return kv ? this.record(key, kv) : undefined;
  }

  async watchLeases(fromRevision: string, h: LeaseWatchHandlers): Promise<LeaseWatch> {
    await this.call('watchLeases');
    const from = BigInt(fromRevision);
    if (from <= this.compactedRevision) throw new Error('Watcher canceled: mvcc: required revision has been compacted');
    const w: FakeWatch = { from, h, live: true, paused: false };
    // Deliver what happened since `from` (history not yet compacted), as etcd does.
    const catchUp = this.history.filter((e) => e.rev >= from);
    const wrapped: LeaseWatchHandlers = {
      ...h,
      onEvent: (ev) => {
        this.lastDelivered.set(w, ev.revision + 1n);
        h.onEvent(ev);
      },
    };
    w.h = wrapped;
    this.lastDelivered.set(w, this.revision + 1n);
    this.watches.push(w);
    for (const e of catchUp) {
      const kv = this.kvs.get(e.key);
      if (e.ev === 'put' && kv && kv.modRevision === e.rev) wrapped.onEvent({ type: 'put', key: e.key, revision: e.rev, record: this.record(e.key, kv) });
      else if (e.ev === 'delete') wrapped.onEvent({ type: 'delete', key: e.key, revision: e.rev });
    }
    return {
      cancel: async () => {
        w.live = false;
      },
    };
  }
}
