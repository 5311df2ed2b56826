/**
 * flannel's registry: the network config at `<prefix>/config` and the leases
 * under `<prefix>/subnets/`. `LeaseRegistry` is what the lease keeper and the
 * lease watcher need; `EtcdLeaseRegistry` implements it on etcd v3 and
 * `FakeLeaseRegistry` (registry-fake.ts) in memory for unit tests.
 *
 * Every change to a lease is one etcd transaction whose compare makes it safe
 * against concurrent hosts:
 * - create: `If(CreateRevision(key) == 0) Then(Put(key, value, lease))`: of ten
 *   hosts picking the same subnet, exactly one succeeds;
 * - renew: flannel-style, a fresh etcd lease and
 *   `If(Value(key) == ours) Then(Put(key, value, newLease))`;
 * - adopt (restart): `If(ModRevision(key) == seen) Then(Put(...))`.
 *
 * Watch: events from a revision on; a watch that etcd cancels (its start
 * revision was compacted away during an outage) is reported through
 * `onCancelled` and is dead: the caller lists again and watches anew.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { NetworkConfigError, parseNetworkConfig, type NetworkConfig } from './config.js';
import { decodeLeaseValue, parseSubnetKey, type Lease } from './lease.js';
import type { Cidr } from './cidr.js';

/** A record under `<prefix>/subnets/` that could not be decoded. */
export interface MalformedLease {
  key: string;
  error: string;
  /** The subnet its key names, when the key itself is a lease key (the value is what is bad). */
  subnet?: Cidr;
}

/** True for a record that could not be decoded. */
export function isMalformed(x: Lease | MalformedLease): x is MalformedLease {
  return 'error' in x;
}

/** Thrown when `<prefix>/config` does not exist. */
export class MissingConfigError extends Error {
  constructor(readonly key: string) {
    super(`network config not found at ${key} (write it with: etcdctl put ${key} '{"Network": "198.19.0.0/16", "Backend": {"Type": "vxlan"}}')`);
    this.name = 'MissingConfigError';
  }
}

/** Decode one record under the subnets prefix (key given without the prefix). */
export function decodeRecord(key: string, value: string, meta: { modRevision?: string; createRevision?: string; etcdLease?: string } = {}): Lease | MalformedLease {
  const sk = parseSubnetKey(key);
  if (!sk) return { key, error: 'key is not a subnet key (want e.g. 198.19.5.0-24)' };
  try {
    const attrs = decodeLeaseValue(value);
    return { subnet: sk.subnet, ipv6Subnet: sk.ipv6Subnet, key: sk.key, attrs, ...meta };
  } catch (e) {
    return { key: sk.key, subnet: sk.subnet, error: (e as Error).message };
  }
}

/** Decode one etcd KV under the subnets prefix (full key). */
export function leaseFromKv(kv: IKeyValue, subnetsPrefix?: string): Lease | MalformedLease {
  const full = kv.key.toString();
  const key = subnetsPrefix && full.startsWith(subnetsPrefix) ? full.slice(subnetsPrefix.length) : full.slice(full.lastIndexOf('/') + 1);
  return decodeRecord(key, kv.value.toString(), { modRevision: kv.mod_revision, createRevision: kv.create_revision, etcdLease: kv.lease });
}

/** All records under the subnets prefix at one revision. */
export interface LeaseSnapshot {
  leases: Lease[];
  malformed: MalformedLease[];
  /** The etcd revision of the listing (watch from revision + 1). */
  revision: string;
}

/** One change under the subnets prefix. */
export type LeaseWatchEvent = { type: 'put'; key: string; revision: bigint; record: Lease | MalformedLease } | { type: 'delete'; key: string; revision: bigint };

/** Callbacks of a lease watch. */
export interface LeaseWatchHandlers {
  onEvent(ev: LeaseWatchEvent): void;
  /** The stream broke; the client reconnects by itself. */
  onDisconnected(err: Error): void;
  /** The stream is back after onDisconnected (events may have been missed: list again). */
  onReconnected(): void;
  /** etcd cancelled the watch (e.g. compacted past its revision): it is dead. */
  onCancelled(err: Error): void;
}

/** A running watch. */
export interface LeaseWatch {
  cancel(): Promise<void>;
}

/** The registry operations the lease keeper and lease watcher use. */
export interface LeaseRegistry {
  /** Read and validate the network config. Throws MissingConfigError or NetworkConfigError. */
  getConfig(): Promise<NetworkConfig>;
  /** All leases, with the revision of the snapshot. */
  listLeases(): Promise<LeaseSnapshot>;
  /** Grant an etcd lease; resolves to its id. */
  grant(ttlSeconds: number): Promise<string>;
  /** Revoke an etcd lease (deleting its keys); ignores unknown leases. */
  revoke(id: string): Promise<void>;
  /** Put `value` at `key` under `leaseId` iff the key does not exist. */
  tryCreate(key: string, value: string, leaseId: string): Promise<boolean>;
  /** Re-put our record under a new lease iff it still holds exactly `value`. */
  tryRenew(key: string, value: string, leaseId: string): Promise<boolean>;
  /** Replace a record iff it was last modified at `modRevision`. */
  tryAdopt(key: string, value: string, leaseId: string, modRevision: string): Promise<boolean>;
  /** Delete a record iff it still holds `value`. */
  tryDelete(key: string, value: string): Promise<boolean>;
  /** Read one record. */
  getLease(key: string): Promise<Lease | MalformedLease | undefined>;
  /** Watch the subnets prefix from `fromRevision` on (inclusive). Resolves once the watch is created. */
  watchLeases(fromRevision: string, h: LeaseWatchHandlers): Promise<LeaseWatch>;
}

/** etcd operations on one flannel network prefix. */
export class EtcdLeaseRegistry implements LeaseRegistry {
  /** '<prefix>/subnets/' */
  readonly subnetsPrefix: string;
  /** '<prefix>/config' */
  readonly configKey: string;

  constructor(
    readonly client: Etcd3,
    readonly prefix: string,
  ) {
    const p = prefix.replace(/\/+$/, '');
    this.subnetsPrefix = `${p}/subnets/`;
    this.configKey = `${p}/config`;
  }

  /** Full key of a lease. */
  leaseKey(key: string): string {
    return this.subnetsPrefix + key;
  }

  async getConfig(): Promise<NetworkConfig> {
    const text = await this.client.get(this.configKey).string();
    if (text === null) throw new MissingConfigError(this.configKey);
    try {
      return parseNetworkConfig(text);
    } catch (e) {
      if (e instanceof NetworkConfigError) throw new NetworkConfigError(e.field, `${e.message.replace(/^network config: [^:]*: /, '')} (in ${this.configKey})`);
      throw e;
    }
  }

  async listLeases(): Promise<LeaseSnapshot> {
    const res = await this.client.getAll().prefix(this.subnetsPrefix).exec();
    const leases: Lease[] = [];
    const malformed: MalformedLease[] = [];
    for (const kv of res.kvs) {
      const l = leaseFromKv(kv, this.subnetsPrefix);
      if (isMalformed(l)) malformed.push(l);
      else leases.push(l);
    }
    return { leases, malformed, revision: res.header.revision };
  }

  async grant(ttlSeconds: number): Promise<string> {
    const res = await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 });
    return res.ID;
  }

  async revoke(id: string): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: id });
    } catch (e) {
      if ((e as Error).name !== 'EtcdLeaseInvalidError') throw e;
    }
  }

  async tryCreate(key: string, value: string, leaseId: string): Promise<boolean> {
    const full = this.leaseKey(key);
    const res = await this.client.if(full, 'Create', '==', 0).then(this.client.put(full).value(value).lease(leaseId)).commit();
    return res.succeeded;
  }

  async tryRenew(key: string, value: string, leaseId: string): Promise<boolean> {
    const full = this.leaseKey(key);
    const res = await this.client.if(full, 'Value', '==', value).then(this.client.put(full).value(value).lease(leaseId)).commit();
    return res.succeeded;
  }

  async tryAdopt(key: string, value: string, leaseId: string, modRevision: string): Promise<boolean> {
    const full = this.leaseKey(key);
    const res = await this.client.if(full, 'Mod', '==', modRevision).then(this.client.put(full).value(value).lease(leaseId)).commit();
    return res.succeeded;
  }

  async tryDelete(key: string, value: string): Promise<boolean> {
    const full = this.leaseKey(key);
    const res = await this.client.if(full, 'Value', '==', value).then(this.client.delete().key(full)).commit();
    return res.succeeded;
  }

  async getLease(key: string): Promise<Lease | MalformedLease | undefined> {
    const res = await this.client.get(this.leaseKey(key)).exec();
    const kv = res.kvs.at(0);
    return kv ? leaseFromKv(kv, this.subnetsPrefix) : undefined;
  }

  /**
   * Each watch gets its own watch stream (a fresh `namespace('')`, so its own etcd3
   * WatchManager): when etcd answers a watch creation with "created and cancelled"
   * (its start revision was compacted), etcd3 1.1 leaves that manager's attach queue
   * waiting for the cancelled watcher forever, and any later watch on the same
   * manager would never be created. A creation that takes longer than
   * `createTimeoutMs` is given up (the caller retries with backoff).
   */
  async watchLeases(fromRevision: string, h: LeaseWatchHandlers, createTimeoutMs = 30_000): Promise<LeaseWatch> {
    const watcher: Watcher = this.client.namespace('').watch().prefix(this.subnetsPrefix).startRevision(fromRevision).watcher();
    let disconnected = false;
    let created = false;
    const prefix = this.subnetsPrefix;
    const keyOf = (kv: IKeyValue) => kv.key.toString().slice(prefix.length);
    watcher.on('put', (kv: IKeyValue) => h.onEvent({ type: 'put', key: keyOf(kv), revision: BigInt(kv.mod_revision), record: leaseFromKv(kv, prefix) }));
    watcher.on('delete', (kv: IKeyValue) => h.onEvent({ type: 'delete', key: keyOf(kv), revision: BigInt(kv.mod_revision) }));
    watcher.on('disconnected', (e: Error) => {
      disconnected = true;
      h.onDisconnected(e);
    });
    watcher.on('connected', () => {
      if (!disconnected) return;
      disconnected = false;
      h.onReconnected();
    });
    // etcd3 emits 'error' when etcd cancels the watch (compaction, permission); the
    // watcher is then detached from its manager and never comes back.
    let dead = false;
    watcher.on('error', (e: Error) => {
      dead = true;
      if (created) h.onCancelled(e);
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        watcher.off('connected', ok);
        watcher.off('error', bad);
        void watcher.cancel().catch(() => undefined);
        reject(new Error(`watch on ${this.subnetsPrefix} not created after ${createTimeoutMs} ms`));
      }, createTimeoutMs);
      timer.unref();
      const ok = () => {
        clearTimeout(timer);
        watcher.off('error', bad);
        resolve();
      };
      const bad = (e: Error) => {
        clearTimeout(timer);
        watcher.off('connected', ok);
        reject(e);
      };
      watcher.once('connected', ok);
      watcher.once('error', bad);
    });
    created = true;
    return {
      // A watch etcd already cancelled is gone: etcd3 would send a cancel request for it
      // and wait for an answer that never comes. Otherwise wait at most 2 s.
      cancel: async () => {
        if (dead) return;
        dead = true;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([watcher.cancel().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
        clearTimeout(timer);
      },
    };
  }
}
