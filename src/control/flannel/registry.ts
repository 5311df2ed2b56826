/**
 * flannel's etcd v3 registry: the network config at `<prefix>/config` and the
 * leases under `<prefix>/subnets/`. Every change to a lease is one etcd
 * transaction whose compare makes it safe against concurrent hosts:
 * - create: `If(CreateRevision(key) == 0) Then(Put(key, value, lease))`: of ten
 *   hosts picking the same subnet, exactly one succeeds;
 * - renew: flannel-style, a fresh etcd lease and
 *   `If(Value(key) == ours) Then(Put(key, value, newLease))`;
 * - adopt (restart): `If(ModRevision(key) == seen) Then(Put(...))`.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import { NetworkConfigError, parseNetworkConfig, type NetworkConfig } from './config.js';
import { decodeLeaseValue, parseSubnetKey, type Lease } from './lease.js';

/** A lease record that could not be decoded. */
export interface MalformedLease {
  key: string;
  error: string;
}

/** Thrown when `<prefix>/config` does not exist. */
export class MissingConfigError extends Error {
  constructor(readonly key: string) {
    super(`network config not found at ${key} (write it with: etcdctl put ${key} '{"Network": "198.19.0.0/16", "Backend": {"Type": "vxlan"}}')`);
    this.name = 'MissingConfigError';
  }
}

/** Decode one KV under the subnets prefix; undefined for keys that are not leases. */
export function leaseFromKv(kv: IKeyValue): Lease | MalformedLease | undefined {
  const key = kv.key.toString();
  const sk = parseSubnetKey(key);
  if (!sk) return undefined;
  try {
    const attrs = decodeLeaseValue(kv.value.toString());
    return { subnet: sk.subnet, ipv6Subnet: sk.ipv6Subnet, key: sk.key, attrs, modRevision: kv.mod_revision, etcdLease: kv.lease };
  } catch (e) {
    return { key: sk.key, error: (e as Error).message };
  }
}

function isMalformed(x: Lease | MalformedLease): x is MalformedLease {
  return 'error' in x;
}

/** etcd operations on one flannel network prefix. */
export class FlannelRegistry {
  /** '<prefix>/subnets/' */
  readonly subnetsPrefix: string;
  /** '<prefix>/config' */
  readonly configKey: string;

  constructor(readonly client: Etcd3, readonly prefix: string) {
    const p = prefix.replace(/\/+$/, '');
    this.subnetsPrefix = `${p}/subnets/`;
    this.configKey = `${p}/config`;
  }

  /** Full key of a lease. */
  leaseKey(key: string): string {
    return this.subnetsPrefix + key;
  }

  /** Read and validate the network config. Throws MissingConfigError or NetworkConfigError. */
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

  /** All leases, with the etcd revision of the snapshot. */
  async listLeases(): Promise<{ leases: Lease[]; malformed: MalformedLease[]; revision: string }> {
    const res = await this.client.getAll().prefix(this.subnetsPrefix).exec();
    const leases: Lease[] = [];
    const malformed: MalformedLease[] = [];
    for (const kv of res.kvs) {
      const l = leaseFromKv(kv);
      if (!l) continue;
      if (isMalformed(l)) malformed.push(l);
      else leases.push(l);
    }
    return { leases, malformed, revision: res.header.revision };
  }

  /** Grant an etcd lease; resolves to its id. */
  async grant(ttlSeconds: number): Promise<string> {
    const res = await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 });
    return String(res.ID);
  }

  /** Revoke an etcd lease (deleting the keys attached to it); ignores unknown leases. */
  async revoke(id: string): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: id });
    } catch (e) {
      if ((e as Error).name !== 'EtcdLeaseInvalidError') throw e;
    }
  }

  /** Put `value` at lease `key` with `leaseId` iff the key does not exist. */
  async tryCreate(key: string, value: string, leaseId: string): Promise<boolean> {
    const full = this.leaseKey(key);
    const res = await this.client.if(full, 'Create', '==', 0).then(this.client.put(full).value(value).lease(leaseId)).commit();
    return res.succeeded;
  }

  /** Re-put our own record under a new etcd lease iff it still holds exactly `value`. */
  async tryRenew(key: string, value: string, leaseId: string): Promise<boolean> {
    const full = this.leaseKey(key);
    const res = await this.client.if(full, 'Value', '==', value).then(this.client.put(full).value(value).lease(leaseId)).commit();
    return res.succeeded;
  }

  /** Replace a record iff it was last modified at `modRevision` (adopting our previous run's lease). */
  async tryAdopt(key: string, value: string, leaseId: string, modRevision: string): Promise<boolean> {
    const full = this.leaseKey(key);
    const res = await this.client.if(full, 'Mod', '==', modRevision).then(this.client.put(full).value(value).lease(leaseId)).commit();
    return res.succeeded;
  }

  /** Delete a record iff it still holds `value` (release on clean shutdown). */
  async tryDelete(key: string, value: string): Promise<boolean> {
    const full = this.leaseKey(key);
    const res = await this.client.if(full, 'Value', '==', value).then(this.client.delete().key(full)).commit();
    return res.succeeded;
  }

  /** Read one lease record. */
  async getLease(key: string): Promise<Lease | MalformedLease | undefined> {
    const res = await this.client.get(this.leaseKey(key)).exec();
    const kv = res.kvs[0];
    return kv ? leaseFromKv(kv) : undefined;
  }
}
