/**
 * The flannel-compatible control plane: one host's life in a flannel network.
 *
 * Start-up follows flanneld's order: read `<prefix>/config`, create the VTEP
 * (the caller's `makeVtep`, with VNI, port and MTU from the config), take a
 * subnet lease whose value carries the VTEP's MAC, put the subnet's network
 * address (/32) on the overlay device, write subnet.env, then watch the leases
 * and program every remote host (see reconcile.ts).
 *
 * Leases: taken in one etcd transaction per attempt (registry.ts); a restart
 * first adopts a lease holding our PublicIP, then tries the subnet recorded in
 * subnet.env, then a random free one. Renewed flannel-style (new etcd lease, put
 * iff unchanged) at TTL - min(1 h, TTL/3); released on clean stop.
 *
 * etcd outages: the dataplane keeps its last peers; renewals and watch
 * reconnects back off (200 ms .. 5 s); when etcd returns, the renewal goes
 * through (or the subnet is re-taken if it expired meanwhile) and the watch
 * resynchronises with a full listing. Losing the subnet to another host is fatal
 * (flanneld exits too): `done` rejects and `onFatal` is called.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { DataplaneControl } from '../../dataplane/types.js';
import { Backoff, createEtcdClient, type EtcdClientOptions } from '../etcd-client.js';
import * as routes from '../../host/routes.js';
import { type Cidr, cidrOverlaps, formatCidr } from './cidr.js';
import { FLANNEL_DEFAULTS, NetworkConfigError, describeNetworkConfig, type NetworkConfig } from './config.js';
import { encodeLeaseValue, gatewayOf, subnetKey, type Lease, type LeaseAttrs } from './lease.js';
import { inRange, pickFreeSubnet } from './allocate.js';
import { FlannelRegistry, MissingConfigError, leaseFromKv } from './registry.js';
import { OverlayApplier, desiredRemotes, kernelOverlayHost, type RemoteHost } from './reconcile.js';
import { DEFAULT_SUBNET_FILE, readPreviousSubnet, renderSubnetEnv, writeSubnetEnv } from './subnet-env.js';

/** Options of the flannel control plane (see FLANNEL_CLI_OPTIONS for the flags). */
export interface FlannelControlOptions extends EtcdClientOptions {
  /** etcd key prefix (default '/coreos.com/network'). */
  prefix?: string;
  /** This host's underlay (public) IPv4 address: the lease's PublicIP. */
  local: string;
  /** subnet.env path (default /run/vxtap/subnet.env). */
  subnetFile?: string;
  /** Lease lifetime in seconds (default 24 h, as flannel). */
  leaseTtlSeconds?: number;
  /** Value of FLANNEL_IPMASQ (vxtap itself never masquerades). */
  ipMasq?: boolean;
  /** Run host commands (ip route/neigh/addr) in this namespace; default: the current one. */
  netns?: string;
  /** Give up start-up after this long without etcd (ms; default: keep trying). */
  startupTimeoutMs?: number;
  /** Progress and warnings (default: stderr). */
  log?: (msg: string) => void;
  /** Called once when the control plane cannot continue (subnet lost to another host). */
  onFatal?: (err: Error) => void;
  /** Called after each change applied to host and dataplane. */
  onApplied?: (change: { added: RemoteHost[]; removed: RemoteHost[]; atMs: number }) => void;
  /** Random source for subnet choice (tests). */
  random?: () => number;
  /** Use this client instead of creating one from endpoints/tls/auth (it is not closed by stop()). */
  client?: Etcd3;
}

/** What the control plane asks of the VTEP it will drive. */
export interface VtepRequest {
  vni: number;
  /** UDP port (8472 unless Backend.Port is set). */
  port: number;
  /** Overlay MTU: the underlay device's MTU - 50 (flannel's rule for IPv4 underlays). */
  mtu: number;
  /** Underlay address to bind. */
  local: string;
  /** The cluster network ('198.19.0.0/16'). */
  network: string;
}

/** A started VTEP, as the control plane uses it. */
export type ControlledVtep = DataplaneControl & { stop(): Promise<void> };

/** Creates the VTEP once the network config is known. */
export type MakeVtep = (net: VtepRequest) => Promise<ControlledVtep>;

/** Counters and state for `vxtap stats` and tests. */
export interface FlannelStats {
  /** 'ok', or 'etcd-unreachable' while calls fail. */
  etcd: 'ok' | 'etcd-unreachable';
  renewals: number;
  renewFailures: number;
  /** Times the subnet was re-taken after its lease expired (etcd outage longer than the TTL). */
  retakes: number;
  /** Lost compare-and-swap races while acquiring. */
  acquireConflicts: number;
  watchResyncs: number;
  applyErrors: number;
  /** Remote hosts programmed. */
  remotes: number;
  /** Leases not programmed (wrong backend, VNI, malformed). */
  ignored: number;
  lastRenewAtMs?: number;
}

/** A running flannel control plane. */
export interface FlannelControl {
  readonly config: NetworkConfig;
  /** Our subnet ('198.19.5.0/24'). */
  readonly subnet: string;
  /** Lease key ('198.19.5.0-24'). */
  readonly key: string;
  /** The network address on the overlay device ('198.19.5.0'). */
  readonly gateway: string;
  readonly vtep: ControlledVtep;
  stats(): FlannelStats;
  /** Remote hosts currently programmed. */
  remotes(): RemoteHost[];
  /** Resolves when every change seen so far has been applied. */
  settled(): Promise<void>;
  /** Renew now (tests; normally timer-driven). */
  renewNow(): Promise<void>;
  /** Resolves after stop(); rejects on a fatal error. */
  readonly done: Promise<void>;
  /** Stop watching and renewing, release the lease (default), remove routes, stop the VTEP. */
  stop(opts?: { release?: boolean }): Promise<void>;
}

/** Seconds between renewals for a TTL: flannel renews 1 h before expiry; short test TTLs at 2/3. */
export function renewIntervalSeconds(ttlSeconds: number): number {
  return ttlSeconds - Math.min(3600, ttlSeconds / 3);
}

/** Validate the options; an Error naming the option, or undefined. */
export function validateFlannelOptions(o: FlannelControlOptions): Error | undefined {
  if (typeof o.local !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(o.local)) return new TypeError(`--local must be this host's underlay IPv4 address, got ${JSON.stringify(o.local)}`);
  const ttl = o.leaseTtlSeconds ?? FLANNEL_DEFAULTS.leaseTtlSeconds;
  if (!Number.isInteger(ttl) || ttl < 3 || ttl > 10 * 365 * 86400) return new TypeError(`--lease-ttl must be a whole number of seconds >= 3, got ${JSON.stringify(o.leaseTtlSeconds)}`);
  const prefix = o.prefix ?? FLANNEL_DEFAULTS.prefix;
  if (!prefix.startsWith('/')) return new TypeError(`--etcd-prefix must start with '/', got ${JSON.stringify(prefix)}`);
  return undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());

/** etcd said no to our credentials: retrying cannot help. */
function isCredentialError(e: unknown): boolean {
  const err = e as Error;
  return (
    ['EtcdAuthenticationFailedError', 'EtcdPermissionDeniedError', 'EtcdUserNotFoundError', 'EtcdRoleNotGrantedError'].includes(err?.name) ||
    /authentication failed|user name is empty|permission denied|invalid user ID or password/i.test(err?.message ?? '')
  );
}

function isRetryable(e: unknown): boolean {
  return !(e instanceof NetworkConfigError || e instanceof MissingConfigError || e instanceof FatalControlError || isCredentialError(e));
}

/** An unrecoverable condition (no free subnet, subnet taken over). */
export class FatalControlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FatalControlError';
  }
}

/** Start the control plane; resolves once the lease is held and the VTEP configured. */
export async function startFlannelControl(opts: FlannelControlOptions, makeVtep: MakeVtep): Promise<FlannelControl> {
  const bad = validateFlannelOptions(opts);
  if (bad) throw bad;
  const log = opts.log ?? ((m: string) => process.stderr.write(`vxtap flannel: ${m}\n`));
  const prefix = opts.prefix ?? FLANNEL_DEFAULTS.prefix;
  const ttl = opts.leaseTtlSeconds ?? FLANNEL_DEFAULTS.leaseTtlSeconds;
  const subnetFile = opts.subnetFile ?? DEFAULT_SUBNET_FILE;
  const random = opts.random ?? Math.random;
  const target: routes.HostTarget = { netns: opts.netns };
  const ownsClient = !opts.client;
  const client = opts.client ?? createEtcdClient(opts);
  const reg = new FlannelRegistry(client, prefix);
  const stats: FlannelStats = { etcd: 'ok', renewals: 0, renewFailures: 0, retakes: 0, acquireConflicts: 0, watchResyncs: 0, applyErrors: 0, remotes: 0, ignored: 0 };
  let stopped = false;
  const startedAt = Date.now();

  const etcdFailed = (what: string, e: unknown) => {
    if (stats.etcd === 'ok') log(`etcd unreachable (${what}: ${(e as Error).message}); keeping last known peers, retrying with backoff`);
    stats.etcd = 'etcd-unreachable';
  };
  const etcdOk = () => {
    if (stats.etcd !== 'ok') log('etcd reachable again');
    stats.etcd = 'ok';
  };

  /** Retry `fn` on connection errors with backoff until it succeeds, stop() or the start-up deadline. */
  async function retrying<T>(what: string, fn: () => Promise<T>, deadlineMs?: number): Promise<T> {
    const backoff = new Backoff();
    for (;;) {
      try {
        const r = await fn();
        etcdOk();
        return r;
      } catch (e) {
        if (isCredentialError(e)) throw new Error(`${what}: etcd refused our credentials (--etcd-username/--etcd-password): ${(e as Error).message}`);
        if (!isRetryable(e) || stopped) throw e;
        etcdFailed(what, e);
        if (deadlineMs !== undefined && Date.now() > deadlineMs) throw new Error(`${what}: etcd unreachable: ${(e as Error).message}`);
        await sleep(backoff.next());
      }
    }
  }

  const startupDeadline = opts.startupTimeoutMs !== undefined ? startedAt + opts.startupTimeoutMs : undefined;
  let vtep: ControlledVtep | undefined;
  try {
    const config = await retrying('read network config', () => reg.getConfig(), startupDeadline);
    if (config.enableIPv6) throw new NetworkConfigError('EnableIPv6', 'the IPv6 overlay is not implemented by vxtap yet (leases with IPv6 parts are read, but this host can only join with EnableIPv6 false)');
    const range = config.ipv4!;
    log(`network config: ${describeNetworkConfig(config)}`);

    const under = await routes.deviceOfAddress(opts.local, target);
    if (!under) throw new TypeError(`--local ${opts.local} is not an address of this host${opts.netns ? ` (namespace ${opts.netns})` : ''}`);
    const mtu = under.mtu - 50;
    vtep = await makeVtep({ vni: config.backend.vni, port: config.backend.port, mtu, local: opts.local, network: formatCidr(range.network) });
    const dp = vtep;

    const attrs: LeaseAttrs = { publicIP: opts.local, publicIPv6: null, backendType: 'vxlan', vxlan: { vni: config.backend.vni, vtepMac: dp.tapMac.toLowerCase() } };
    const value = encodeLeaseValue(attrs);
    const previous = await readPreviousSubnet(subnetFile);

    // ---- acquire -------------------------------------------------------
    async function acquireOnce(): Promise<{ subnet: Cidr; key: string; leaseId: string } | undefined> {
      const { leases } = await reg.listLeases();
      const leaseId = await reg.grant(ttl);
      let ok = false;
      try {
        for (const l of leases) {
          if (l.attrs.publicIP !== opts.local || !inRange(range, l.subnet) || l.ipv6Subnet) continue;
          if (await reg.tryAdopt(l.key, value, leaseId, l.modRevision!)) {
            if (l.etcdLease && l.etcdLease !== '0') await reg.revoke(l.etcdLease).catch(() => undefined);
            log(`adopted existing lease ${l.key} (same PublicIP ${opts.local})`);
            ok = true;
            return { subnet: l.subnet, key: l.key, leaseId };
          }
        }
        const taken = leases.map((l) => l.subnet);
        const free = (c: Cidr) => !taken.some((t) => cidrOverlaps(t, c));
        if (previous && inRange(range, previous) && free(previous)) {
          const key = subnetKey(previous);
          if (await reg.tryCreate(key, value, leaseId)) {
            log(`took previous subnet ${formatCidr(previous)} again (from ${subnetFile})`);
            ok = true;
            return { subnet: previous, key, leaseId };
          }
          stats.acquireConflicts++;
          return undefined;
        }
        const pick = pickFreeSubnet(range, taken, random);
        if (!pick) throw new FatalControlError(`no free subnet between SubnetMin and SubnetMax in ${formatCidr(range.network)} (${leases.length} leases)`);
        const key = subnetKey(pick);
        if (await reg.tryCreate(key, value, leaseId)) {
          ok = true;
          return { subnet: pick, key, leaseId };
        }
        stats.acquireConflicts++;
        return undefined;
      } finally {
        if (!ok) await reg.revoke(leaseId).catch(() => undefined);
      }
    }

    let held: { subnet: Cidr; key: string; leaseId: string } | undefined;
    for (let attempt = 0; !held; attempt++) {
      if (attempt >= 100) throw new FatalControlError('could not acquire a subnet lease after 100 conflicting attempts');
      held = await retrying('acquire lease', acquireOnce, startupDeadline);
      if (!held) await sleep(5 + Math.floor(random() * 45));
    }
    const own = held;
    const subnetText = formatCidr(own.subnet);
    const gateway = gatewayOf(own.subnet);
    log(`lease ${own.key}: subnet ${subnetText}, PublicIP ${opts.local}, VtepMAC ${attrs.vxlan!.vtepMac}, TTL ${ttl}s`);

    // ---- local device and subnet.env ----------------------------------
    await routes.addressReplace(dp.tapName, `${gateway}/32`, target);
    await routes.linkUp(dp.tapName, target);
    await writeSubnetEnv(subnetFile, renderSubnetEnv(config, own.subnet, dp.mtu, opts.ipMasq ?? false));

    // ---- fatal handling -------------------------------------------------
    let resolveDone!: () => void;
    let rejectDone!: (e: Error) => void;
    const done = new Promise<void>((res, rej) => {
      resolveDone = res;
      rejectDone = rej;
    });
    done.catch(() => undefined);
    let fatalSeen = false;
    const fatal = (err: Error) => {
      if (fatalSeen || stopped) return;
      fatalSeen = true;
      log(`fatal: ${err.message}`);
      clearTimeout(renewTimer);
      rejectDone(err);
      opts.onFatal?.(err);
    };

    // ---- renewal ---------------------------------------------------------
    let renewTimer: NodeJS.Timeout | undefined;
    let renewing: Promise<void> | undefined;
    async function renewOnce(): Promise<void> {
      const newId = await reg.grant(ttl);
      let keep = false;
      try {
        if (await reg.tryRenew(own.key, value, newId)) {
          keep = true;
        } else {
          const cur = await reg.getLease(own.key);
          if (!cur) {
            if (await reg.tryCreate(own.key, value, newId)) {
              keep = true;
              stats.retakes++;
              log(`lease ${own.key} had expired; re-took it`);
            }
          } else if (!('error' in cur) && cur.attrs.publicIP === opts.local && cur.modRevision) {
            if (await reg.tryAdopt(own.key, value, newId, cur.modRevision)) keep = true;
          } else {
            throw new FatalControlError(`subnet ${subnetText} is now held by ${'error' in cur ? 'a malformed record' : cur.attrs.publicIP}`);
          }
          if (!keep) throw new Error(`lease ${own.key} changed during renewal; retrying`);
        }
      } finally {
        if (!keep) await reg.revoke(newId).catch(() => undefined);
      }
      const old = own.leaseId;
      own.leaseId = newId;
      if (old !== newId) await reg.revoke(old).catch(() => undefined);
      stats.renewals++;
      stats.lastRenewAtMs = Date.now();
    }
    function renewLoop(): Promise<void> {
      if (renewing) return renewing;
      renewing = (async () => {
        clearTimeout(renewTimer);
        const backoff = new Backoff();
        while (!stopped && !fatalSeen) {
          try {
            await renewOnce();
            etcdOk();
            break;
          } catch (e) {
            if (e instanceof FatalControlError) {
              fatal(e);
              return;
            }
            stats.renewFailures++;
            etcdFailed('renew lease', e);
            await sleep(backoff.next());
          }
        }
      })().finally(() => {
        renewing = undefined;
        scheduleRenew();
      });
      return renewing;
    }
    function scheduleRenew(): void {
      if (stopped || fatalSeen) return;
      clearTimeout(renewTimer);
      renewTimer = setTimeout(() => void renewLoop(), renewIntervalSeconds(ttl) * 1000);
      renewTimer.unref?.();
    }

    // ---- watch and apply -------------------------------------------------
    const applier = new OverlayApplier(dp, kernelOverlayHost(dp.tapName, target));
    const known = new Map<string, Lease>();
    const seenRev = new Map<string, bigint>();
    let dirty = false;
    let applying: Promise<void> | undefined;
    let retryApply: NodeJS.Timeout | undefined;
    function scheduleApply(): void {
      dirty = true;
      if (!applying) applying = runApply();
    }
    async function runApply(): Promise<void> {
      try {
        while (dirty && !stopped) {
          dirty = false;
          const { remotes, ignored } = desiredRemotes(known.values(), { key: own.key, publicIP: opts.local, vni: config.backend.vni });
          stats.ignored = ignored.length;
          try {
            const change = await applier.apply(remotes);
            stats.remotes = remotes.length;
            for (const r of change.added) log(`peer ${r.key}: ${formatCidr(r.subnet)} via ${r.gateway} (VtepMAC ${r.vtepMac}) at ${r.publicIP}`);
            for (const r of change.removed) if (!remotes.some((x) => x.key === r.key)) log(`peer ${r.key} gone: removed route, neighbour and forwarding entry`);
            if (change.added.length || change.removed.length) opts.onApplied?.({ ...change, atMs: Date.now() });
          } catch (e) {
            stats.applyErrors++;
            log(`applying peers failed: ${(e as Error).message}; retrying in 1 s`);
            clearTimeout(retryApply);
            retryApply = setTimeout(scheduleApply, 1000);
            retryApply.unref?.();
          }
        }
      } finally {
        applying = undefined;
      }
    }
    function onPut(kv: IKeyValue): void {
      const rev = BigInt(kv.mod_revision);
      const l = leaseFromKv(kv);
      if (!l) return;
      if ((seenRev.get(l.key) ?? -1n) >= rev) return;
      seenRev.set(l.key, rev);
      if ('error' in l) {
        log(`ignoring malformed lease ${l.key}: ${l.error}`);
        known.delete(l.key);
      } else known.set(l.key, l);
      scheduleApply();
    }
    function onDelete(kv: IKeyValue): void {
      const key = kv.key.toString().slice(reg.subnetsPrefix.length);
      const rev = BigInt(kv.mod_revision);
      if ((seenRev.get(key) ?? -1n) >= rev) return;
      seenRev.set(key, rev);
      known.delete(key);
      if (key === own.key && !stopped) {
        log(`our lease ${key} was deleted; re-taking it`);
        void renewLoop();
      }
      scheduleApply();
    }
    async function resync(): Promise<string> {
      const snap = await reg.listLeases();
      const rev = BigInt(snap.revision);
      const present = new Set<string>();
      for (const l of snap.leases) {
        present.add(l.key);
        if ((seenRev.get(l.key) ?? -1n) <= rev) {
          known.set(l.key, l);
          seenRev.set(l.key, rev);
        }
      }
      for (const m of snap.malformed) log(`ignoring malformed lease ${m.key}: ${m.error}`);
      for (const key of [...known.keys()]) {
        if (!present.has(key) && (seenRev.get(key) ?? -1n) <= rev) {
          known.delete(key);
          seenRev.set(key, rev);
        }
      }
      stats.watchResyncs++;
      scheduleApply();
      return snap.revision;
    }
    const rev0 = await retrying('list leases', resync, startupDeadline);
    let watcher: Watcher | undefined;
    let disconnected = false;
    watcher = await client.watch().prefix(reg.subnetsPrefix).startRevision(String(BigInt(rev0) + 1n)).create();
    watcher.on('put', onPut);
    watcher.on('delete', onDelete);
    watcher.on('disconnected', (e) => {
      disconnected = true;
      etcdFailed('watch', e);
    });
    watcher.on('error', (e) => log(`watch error: ${e.message}`));
    watcher.on('connected', () => {
      if (!disconnected) return;
      disconnected = false;
      etcdOk();
      // Catch up on anything missed (including a compacted history).
      void retrying('resync leases', resync).catch(() => undefined);
    });
    scheduleRenew();
    await applying;

    const control: FlannelControl = {
      config,
      subnet: subnetText,
      key: own.key,
      gateway,
      vtep: dp,
      done,
      stats: () => ({ ...stats }),
      remotes: () => applier.current,
      async settled() {
        while (applying || dirty) await (applying ?? sleep(1));
      },
      renewNow: () => renewLoop(),
      async stop(o = {}) {
        if (stopped) return;
        stopped = true;
        clearTimeout(renewTimer);
        clearTimeout(retryApply);
        await watcher?.cancel().catch(() => undefined);
        watcher = undefined;
        await renewing?.catch(() => undefined);
        if (o.release ?? true) {
          try {
            await Promise.race([
              (async () => {
                await reg.tryDelete(own.key, value);
                await reg.revoke(own.leaseId);
              })(),
              sleep(3000).then(() => {
                throw new Error('timed out');
              }),
            ]);
            log(`released lease ${own.key}`);
          } catch (e) {
            log(`could not release lease ${own.key} (${(e as Error).message}); it expires with its TTL`);
          }
        }
        await applying?.catch(() => undefined);
        await applier.clear().catch((e) => log(`removing routes failed: ${(e as Error).message}`));
        await routes.addressDel(dp.tapName, `${gateway}/32`, target).catch(() => undefined);
        await dp.stop().catch((e) => log(`stopping the VTEP failed: ${(e as Error).message}`));
        if (ownsClient) client.close();
        resolveDone();
      },
    };
    return control;
  } catch (e) {
    stopped = true;
    if (vtep) await vtep.stop().catch(() => undefined);
    if (ownsClient) client.close();
    throw e;
  }
}
