/**
 * The lease keeper: takes this host's subnet lease, keeps it alive, and gives it
 * up only when asked to (an explicit leave).
 *
 * Acquire (one registry transaction per attempt, so racing hosts never share a
 * subnet): first adopt a lease that already holds our PublicIP (our previous
 * run, crashed or restarted: the subnet is kept and the value is rewritten with
 * the current VtepMAC), then the subnet recorded in subnet.env if it is free,
 * then a random free one. Keys that are not allocatable subnets are ignored when
 * looking for free space (allocate.ts `takenSubnets`), so one hostile record
 * cannot make the range look full.
 *
 * Renew flannel-style: a fresh etcd lease and a put iff our value is unchanged,
 * at TTL - min(1 h, TTL/3). An expired lease (outage longer than the TTL) is
 * re-taken; one that now holds another host's PublicIP is fatal (flanneld exits
 * too). Failed renewals back off (200 ms .. 5 s) until etcd answers again.
 */
import { Backoff } from '../etcd-client.js';
import type { Clock, TimerHandle } from './clock.js';
import { type Cidr, cidrOverlaps, formatCidr } from './cidr.js';
import type { FamilyRange } from './config.js';
import { subnetKey } from './lease.js';
import { inRange, pickFreeSubnet, takenSubnets } from './allocate.js';
import { EtcdHealth, FatalControlError, retrying } from './etcd-health.js';
import { isMalformed, type LeaseRegistry } from './registry.js';

/** Seconds between renewals for a TTL: flannel renews 1 h before expiry; short TTLs at 2/3. */
export function renewIntervalSeconds(ttlSeconds: number): number {
  return ttlSeconds - Math.min(3600, ttlSeconds / 3);
}

/** The lease this host holds. */
export interface HeldLease {
  subnet: Cidr;
  /** '198.19.5.0-24' */
  key: string;
  /** etcd lease id the record is attached to. */
  leaseId: string;
}

/** Counters for `vxtap stats`. */
export interface LeaseKeeperStats {
  renewals: number;
  renewFailures: number;
  /** Times the subnet was re-taken after its lease expired (etcd outage longer than the TTL). */
  retakes: number;
  /** Lost compare-and-swap races while acquiring. */
  acquireConflicts: number;
  lastRenewAtMs?: number;
}

/** What the keeper needs. */
export interface LeaseKeeperOptions {
  registry: LeaseRegistry;
  clock: Clock;
  health: EtcdHealth;
  range: FamilyRange;
  /** Our PublicIP. */
  local: string;
  /** Our record's value (flannel JSON with the current VtepMAC). */
  value: string;
  ttlSeconds: number;
  /** The subnet of our previous run (subnet.env), tried before a random one. */
  previous?: Cidr;
  /** Where subnet.env lives (for log lines). */
  subnetFile?: string;
  /** Subnets never to allocate (this host's underlay prefixes, etcd addresses). */
  reserved?: Cidr[];
  random?: () => number;
  log: (msg: string) => void;
  /** Called once when the lease cannot be kept (taken over by another host). */
  onFatal: (err: Error) => void;
}

/** Acquires, renews and releases one host's subnet lease. */
export class LeaseKeeper {
  readonly stats: LeaseKeeperStats = { renewals: 0, renewFailures: 0, retakes: 0, acquireConflicts: 0 };
  private own?: HeldLease;
  private timer?: TimerHandle;
  private renewing?: Promise<void>;
  private stopped = false;
  private fatalSeen = false;

  constructor(private readonly o: LeaseKeeperOptions) {}

  /** The lease held (after acquire()). */
  get held(): HeldLease {
    if (!this.own) throw new Error('no lease held yet');
    return this.own;
  }

  private get random(): () => number {
    return this.o.random ?? Math.random;
  }

  /** One acquisition attempt; undefined when a compare-and-swap race was lost. */
  private async acquireOnce(): Promise<HeldLease | undefined> {
    const { registry: reg, range, local, value } = this.o;
    const snap = await reg.listLeases();
    const leaseId = await reg.grant(this.o.ttlSeconds);
    let ok = false;
    try {
      for (const l of snap.leases) {
        // a record read from etcd always has its modRevision; without one there is nothing to compare against
        if (l.attrs.publicIP !== local || !inRange(range, l.subnet) || l.ipv6Subnet || l.modRevision === undefined) continue;
        if (await reg.tryAdopt(l.key, value, leaseId, l.modRevision)) {
          if (l.etcdLease && l.etcdLease !== '0') await reg.revoke(l.etcdLease).catch(() => undefined);
          this.o.log(`adopted existing lease ${l.key} (same PublicIP ${local})`);
          ok = true;
          return { subnet: l.subnet, key: l.key, leaseId };
        }
      }
      const records = [...snap.leases, ...snap.malformed];
      const taken = takenSubnets(records, range, this.o.reserved);
      const prev = this.o.previous;
      if (prev && inRange(range, prev) && !taken.some((t) => cidrOverlaps(t, prev))) {
        const key = subnetKey(prev);
        if (await reg.tryCreate(key, value, leaseId)) {
          this.o.log(`took previous subnet ${formatCidr(prev)} again${this.o.subnetFile ? ` (from ${this.o.subnetFile})` : ''}`);
          ok = true;
          return { subnet: prev, key, leaseId };
        }
        this.stats.acquireConflicts++;
        return undefined;
      }
      const pick = pickFreeSubnet(range, taken, this.random);
      if (!pick) {
        const ignoredKeys = records.length - records.filter((r) => r.subnet && inRange(range, r.subnet)).length;
        throw new FatalControlError(
          `no free subnet between SubnetMin and SubnetMax in ${formatCidr(range.network)} (${taken.length} taken of ${records.length} records; ${ignoredKeys} records that are not allocatable subnets ignored)`,
        );
      }
      const key = subnetKey(pick);
      if (await reg.tryCreate(key, value, leaseId)) {
        ok = true;
        return { subnet: pick, key, leaseId };
      }
      this.stats.acquireConflicts++;
      return undefined;
    } finally {
      if (!ok) await reg.revoke(leaseId).catch(() => undefined);
    }
  }

  /** Take a lease (retrying connection errors until `deadlineMs`); throws FatalControlError when none can be had. */
  async acquire(deadlineMs?: number): Promise<HeldLease> {
    for (let attempt = 0; !this.own; attempt++) {
      if (attempt >= 100) throw new FatalControlError('could not acquire a subnet lease after 100 conflicting attempts');
      this.own = await retrying('acquire lease', () => this.acquireOnce(), { clock: this.o.clock, health: this.o.health, stopped: () => this.stopped, deadlineMs });
      if (!this.own) await this.o.clock.sleep(5 + Math.floor(this.random() * 45));
    }
    return this.own;
  }

  /** Start the renewal timer. */
  start(): void {
    this.schedule();
  }

  private fatal(err: Error): void {
    if (this.fatalSeen || this.stopped) return;
    this.fatalSeen = true;
    this.timer?.cancel();
    this.o.log(`fatal: ${err.message}`);
    this.o.onFatal(err);
  }

  private async renewOnce(): Promise<void> {
    const reg = this.o.registry;
    const own = this.held;
    const newId = await reg.grant(this.o.ttlSeconds);
    let keep = false;
    try {
      if (await reg.tryRenew(own.key, this.o.value, newId)) {
        keep = true;
      } else {
        const cur = await reg.getLease(own.key);
        if (!cur) {
          if (await reg.tryCreate(own.key, this.o.value, newId)) {
            keep = true;
            this.stats.retakes++;
            this.o.log(`lease ${own.key} had expired; re-took it`);
          }
        } else if (!isMalformed(cur) && cur.attrs.publicIP === this.o.local && cur.modRevision) {
          if (await reg.tryAdopt(own.key, this.o.value, newId, cur.modRevision)) keep = true;
        } else {
          throw new FatalControlError(`subnet ${formatCidr(own.subnet)} is now held by ${isMalformed(cur) ? 'a malformed record' : cur.attrs.publicIP}`);
        }
        if (!keep) throw new Error(`lease ${own.key} changed during renewal; retrying`);
      }
    } finally {
      if (!keep) await reg.revoke(newId).catch(() => undefined);
    }
    const old = own.leaseId;
    own.leaseId = newId;
    if (old !== newId) await reg.revoke(old).catch(() => undefined);
    this.stats.renewals++;
    this.stats.lastRenewAtMs = this.o.clock.now();
  }

  /** Renew now (and keep retrying with backoff until it works); then reschedule. */
  renewNow(): Promise<void> {
    if (this.renewing) return this.renewing;
    this.renewing = (async () => {
      this.timer?.cancel();
      const backoff = new Backoff();
      while (!this.stopped && !this.fatalSeen) {
        try {
          await this.renewOnce();
          this.o.health.ok();
          break;
        } catch (e) {
          if (e instanceof FatalControlError) {
            this.fatal(e);
            return;
          }
          this.stats.renewFailures++;
          this.o.health.failed('renew lease', e);
          await this.o.clock.sleep(backoff.next());
        }
      }
    })().finally(() => {
      this.renewing = undefined;
      this.schedule();
    });
    return this.renewing;
  }

  /** Our record was deleted under us (revoked by hand, expired): take it back now. */
  onOwnDeleted(): void {
    if (this.stopped || this.fatalSeen) return;
    this.o.log(`our lease ${this.held.key} was deleted; re-taking it`);
    void this.renewNow();
  }

  private schedule(): void {
    if (this.stopped || this.fatalSeen) return;
    this.timer?.cancel();
    this.timer = this.o.clock.setTimer(renewIntervalSeconds(this.o.ttlSeconds) * 1000, () => void this.renewNow());
  }

  /** Stop renewing; the lease stays until its TTL runs out (a crash or restart keeps the subnet). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    await this.renewing?.catch(() => undefined);
  }

  /** Stop renewing and delete our record (an explicit leave); bounded by `timeoutMs`. */
  async release(timeoutMs = 3000): Promise<boolean> {
    await this.stop();
    const own = this.own;
    if (!own) return false;
    const reg = this.o.registry;
    let timer: TimerHandle | undefined;
    try {
      await Promise.race([
        (async () => {
          await reg.tryDelete(own.key, this.o.value);
          await reg.revoke(own.leaseId);
        })(),
        new Promise<never>((_, reject) => {
          timer = this.o.clock.setTimer(timeoutMs, () => reject(new Error('timed out')));
        }),
      ]);
      this.o.log(`released lease ${own.key}`);
      return true;
    } catch (e) {
      this.o.log(`could not release lease ${own.key} (${(e as Error).message}); it expires with its TTL`);
      return false;
    } finally {
      timer?.cancel();
    }
  }
}
