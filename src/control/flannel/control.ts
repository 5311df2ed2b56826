/**
 * The flannel-compatible control plane: one host's life in a flannel network.
 *
 * Start-up follows flanneld's order: read `<prefix>/config`, create the VTEP
 * (the caller's `makeVtep`, with VNI, port and MTU from the config), take a
 * subnet lease whose value carries the VTEP's MAC, put the subnet's network
 * address (/32) on the overlay device, write subnet.env, then watch the leases
 * and program every remote host that passes the screen.
 *
 * Three parts over one injected registry and clock, each tested alone:
 * - `LeaseKeeper` (lease-keeper.ts): acquire (adopting our previous run's lease,
 *   so a crash or restart keeps the subnet), renew, and release on an explicit
 *   leave only;
 * - `LeaseWatcher` (lease-watcher.ts): listing + watch, re-listing and
 *   re-watching when etcd cancels the watch, periodic resync, watch health;
 * - `screenLeases` (lease-policy.ts) and `OverlayApplier` (reconcile.ts): refuse
 *   hostile leases (counted per reason, logged rate-limited), program each
 *   remaining remote on its own.
 *
 * etcd outages: the dataplane keeps its last peers; renewals and re-watches back
 * off (200 ms .. 5 s); when etcd returns the renewal goes through (or the subnet
 * is re-taken if it expired meanwhile) and the watcher resynchronises. Losing the
 * subnet to another host is fatal (flanneld exits too): `done` rejects and
 * `onFatal` is called.
 */
import { lookup } from 'node:dns/promises';
import type { Etcd3 } from 'etcd3';
import type { DataplaneControl } from '../../dataplane/types.js';
import { createEtcdClient, type EtcdClientOptions } from '../etcd-client.js';
import * as routes from '../../host/routes.js';
import { type Cidr, formatCidr, parseAddress, prefixMask } from './cidr.js';
import { FLANNEL_DEFAULTS, MAX_LEASE_TTL_SECONDS, NetworkConfigError, describeNetworkConfig, type NetworkConfig } from './config.js';
import { encodeLeaseValue, gatewayOf, type LeaseAttrs } from './lease.js';
import { EtcdLeaseRegistry, type LeaseRegistry } from './registry.js';
import { OverlayApplier, desiredRemotes, kernelOverlayHost, type RemoteHost } from './reconcile.js';
import { readPreviousSubnet, renderSubnetEnv, writeSubnetEnv, DEFAULT_SUBNET_FILE } from './subnet-env.js';
import { realClock, type Clock, type TimerHandle } from './clock.js';
import { EtcdHealth, retrying } from './etcd-health.js';
import { LeaseKeeper, type LeaseKeeperStats } from './lease-keeper.js';
import { DEFAULT_RESYNC_INTERVAL_MS, LeaseWatcher, type LeaseWatcherStats } from './lease-watcher.js';
import { LogLimiter, type RefusalReason, type RefusedLease, type ScreenContext } from './lease-policy.js';

export { FatalControlError } from './etcd-health.js';
export { renewIntervalSeconds } from './lease-keeper.js';

// MAX_LEASE_TTL_SECONDS lives in config.ts so the CLI options load without the etcd client
export { MAX_LEASE_TTL_SECONDS };
/** Shortest --lease-ttl (renewal at 2/3 of it). */
export const MIN_LEASE_TTL_SECONDS = 3;

/** Options of the flannel control plane (see FLANNEL_CLI_OPTIONS for the flags). */
export interface FlannelControlOptions extends EtcdClientOptions {
  /** etcd key prefix (default '/coreos.com/network'). */
  prefix?: string;
  /** This host's underlay (public) IPv4 address: the lease's PublicIP. */
  local: string;
  /** subnet.env path (default /run/vxtap/subnet.env). */
  subnetFile?: string;
  /** Lease lifetime in seconds (default 24 h, as flannel; 3 s .. 24 days). */
  leaseTtlSeconds?: number;
  /** Value of FLANNEL_IPMASQ (vxtap itself never masquerades). */
  ipMasq?: boolean;
  /** Run host commands (ip route/neigh/addr) in this namespace; default: the current one. */
  netns?: string;
  /** Give up start-up after this long without etcd (ms; default: keep trying). */
  startupTimeoutMs?: number;
  /** Full lease resync period (ms; default 5 min; 0 = only after watch trouble). */
  resyncIntervalMs?: number;
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
  /** Use this registry instead of etcd (tests). */
  registry?: LeaseRegistry;
  /** Time source (tests; default the process clock). */
  clock?: Clock;
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
export interface FlannelStats extends LeaseKeeperStats {
  /** 'ok', or 'etcd-unreachable' while calls fail. */
  etcd: 'ok' | 'etcd-unreachable';
  /** Full lease listings (same as watch.resyncs). */
  watchResyncs: number;
  /** Remotes the host refused to program (each retried every second). */
  applyErrors: number;
  /** Remote hosts programmed. */
  remotes: number;
  /** Remote hosts wanted but not programmed yet (the host refused them; retried). */
  pendingRemotes: number;
  /** Leases not programmed right now (sum of leasesRefused). */
  ignored: number;
  /** Leases not programmed right now, per reason (lease-policy.ts). */
  leasesRefused: Partial<Record<RefusalReason, number>>;
  /** Refusals since start, per reason (each record version counted once). */
  refusalsTotal: Partial<Record<RefusalReason, number>>;
  /** Health of the lease watch. */
  watch: LeaseWatcherStats;
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
  /** The VtepMAC our lease announces. */
  readonly vtepMac: string;
  readonly vtep: ControlledVtep;
  stats(): FlannelStats;
  /** Remote hosts currently programmed. */
  remotes(): RemoteHost[];
  /** Leases refused right now, with reasons. */
  refused(): RefusedLease[];
  /** Resolves when every change seen so far has been applied. */
  settled(): Promise<void>;
  /** Renew now (tests; normally timer-driven). */
  renewNow(): Promise<void>;
  /** Full lease resync now (tests; normally after watch trouble and periodically). */
  resyncNow(): Promise<void>;
  /** Resolves after stop(); rejects on a fatal error. */
  readonly done: Promise<void>;
  /**
   * Stop watching and renewing, remove routes, stop the VTEP. `release` (default
   * true: an explicit leave) deletes the lease; without it the lease stays until
   * its TTL, so a restart keeps the subnet.
   */
  stop(opts?: { release?: boolean }): Promise<void>;
}

/** Validate the options; an Error naming the option, or undefined. */
export function validateFlannelOptions(o: FlannelControlOptions): Error | undefined {
  if (typeof o.local !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(o.local)) return new TypeError(`--local must be this host's underlay IPv4 address, got ${JSON.stringify(o.local)}`);
  const ttl = o.leaseTtlSeconds ?? FLANNEL_DEFAULTS.leaseTtlSeconds;
  if (!Number.isInteger(ttl) || ttl < MIN_LEASE_TTL_SECONDS || ttl > MAX_LEASE_TTL_SECONDS) {
    return new TypeError(
      `--lease-ttl must be a whole number of seconds between ${MIN_LEASE_TTL_SECONDS} and ${MAX_LEASE_TTL_SECONDS} (24d: the renewal timer cannot hold longer), got ${JSON.stringify(o.leaseTtlSeconds)}`,
    );
  }
  const prefix = o.prefix ?? FLANNEL_DEFAULTS.prefix;
  if (!prefix.startsWith('/')) return new TypeError(`--etcd-prefix must start with '/', got ${JSON.stringify(prefix)}`);
  if (o.resyncIntervalMs !== undefined && (!Number.isInteger(o.resyncIntervalMs) || o.resyncIntervalMs < 0 || o.resyncIntervalMs > 2 ** 31 - 1)) {
    return new TypeError(`resyncIntervalMs must be a whole number of milliseconds between 0 and 2147483647, got ${JSON.stringify(o.resyncIntervalMs)}`);
  }
  return undefined;
}

/** The IPv4 addresses of the etcd endpoints (literals as they are, names resolved; failures skipped). */
async function endpointAddresses(endpoints: string[] | undefined): Promise<string[]> {
  const out = new Set<string>();
  for (const e of endpoints ?? []) {
    let host: string;
    try {
      host = new URL(e).hostname.replace(/^\[|\]$/g, '');
    } catch {
      continue;
    }
    try {
      if (parseAddress(host).family === 4) out.add(host);
      continue;
    } catch {
      // a name
    }
    try {
      for (const a of await lookup(host, { all: true, family: 4 })) out.add(a.address);
    } catch {
      // unresolvable now: nothing to protect
    }
  }
  return [...out];
}

/** This host's underlay prefixes: the addresses of the device holding `local`, as networks. */
async function underlayPrefixes(dev: string, t: routes.HostTarget): Promise<Cidr[]> {
  const addrs = await routes.addressesOfDevice(dev, t);
  return addrs
    .filter((a) => a.family === 4)
    .map((a) => {
      const v = parseAddress(a.local).value;
      return { family: 4 as const, base: v & prefixMask(4, a.prefixlen), len: a.prefixlen };
    });
}

/** Start the control plane; resolves once the lease is held and the VTEP configured. */
export async function startFlannelControl(opts: FlannelControlOptions, makeVtep: MakeVtep): Promise<FlannelControl> {
  const bad = validateFlannelOptions(opts);
  if (bad) throw bad;
  const log = opts.log ?? ((m: string) => process.stderr.write(`vxtap flannel: ${m}\n`));
  const clock = opts.clock ?? realClock;
  const prefix = opts.prefix ?? FLANNEL_DEFAULTS.prefix;
  const ttl = opts.leaseTtlSeconds ?? FLANNEL_DEFAULTS.leaseTtlSeconds;
  const subnetFile = opts.subnetFile ?? DEFAULT_SUBNET_FILE;
  const target: routes.HostTarget = { netns: opts.netns };
  const ownsClient = !opts.client && !opts.registry;
  let client: Etcd3 | undefined;
  let reg: LeaseRegistry;
  if (opts.registry) reg = opts.registry;
  else {
    client = opts.client ?? createEtcdClient(opts);
    reg = new EtcdLeaseRegistry(client, prefix);
  }
  const health = new EtcdHealth(log);
  let stopped = false;
  const startupDeadline = opts.startupTimeoutMs !== undefined ? clock.now() + opts.startupTimeoutMs : undefined;
  let vtep: ControlledVtep | undefined;
  let keeper: LeaseKeeper | undefined;
  let watcher: LeaseWatcher | undefined;
  try {
    const config = await retrying('read network config', () => reg.getConfig(), { clock, health, stopped: () => stopped, deadlineMs: startupDeadline });
    if (config.enableIPv6)
      throw new NetworkConfigError('EnableIPv6', 'the IPv6 overlay is not implemented by vxtap yet (leases with IPv6 parts are read, but this host can only join with EnableIPv6 false)');
    const range = config.ipv4;
    log(`network config: ${describeNetworkConfig(config)}`);

    const under = await routes.deviceOfAddress(opts.local, target);
    if (!under) throw new TypeError(`--local ${opts.local} is not an address of this host${opts.netns ? ` (namespace ${opts.netns})` : ''}`);
    const underlay = await underlayPrefixes(under.dev, target);
    const etcdAddresses = await endpointAddresses(opts.endpoints);
    const mtu = under.mtu - 50;
    vtep = await makeVtep({ vni: config.backend.vni, port: config.backend.port, mtu, local: opts.local, network: formatCidr(range.network) });
    const dp = vtep;

    // The value carries the VTEP's current MAC; adopting our previous lease rewrites it.
    const vtepMac = dp.tapMac.toLowerCase();
    const attrs: LeaseAttrs = { publicIP: opts.local, publicIPv6: null, backendType: 'vxlan', vxlan: { vni: config.backend.vni, vtepMac } };
    const value = encodeLeaseValue(attrs);

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
      rejectDone(err);
      opts.onFatal?.(err);
    };

    // ---- lease ------------------------------------------------------------
    const reserved: Cidr[] = [...underlay, ...etcdAddresses.map((a) => ({ family: 4 as const, base: parseAddress(a).value, len: 32 }))];
    const k = new LeaseKeeper({
      registry: reg,
      clock,
      health,
      range,
      local: opts.local,
      value,
      ttlSeconds: ttl,
      previous: await readPreviousSubnet(subnetFile),
      subnetFile,
      reserved,
      random: opts.random,
      log,
      onFatal: fatal,
    });
    keeper = k;
    const own = await k.acquire(startupDeadline);
    const subnetText = formatCidr(own.subnet);
    const gateway = gatewayOf(own.subnet);
    log(`lease ${own.key}: subnet ${subnetText}, PublicIP ${opts.local}, VtepMAC ${vtepMac}, TTL ${ttl}s`);

    // ---- local device and subnet.env ----------------------------------
    // One `ip` process for both, overlapped with the lease listing and watch below
    // (routes are applied once the device is up: onlink routes need it). After a
    // restart this is the time the host's subnet is dark.
    const deviceReady = (async () => {
      const errs = await routes.ipBatch([`addr replace ${gateway}/32 dev ${dp.tapName}`, `link set ${dp.tapName} up`], target);
      const bad = errs.find((e) => e !== undefined);
      if (bad) throw new Error(`configuring ${dp.tapName}: ${bad}`);
      await writeSubnetEnv(subnetFile, renderSubnetEnv(config, own.subnet, dp.mtu, opts.ipMasq ?? false));
    })();
    deviceReady.catch(() => undefined);

    // ---- screen and apply -------------------------------------------------
    const screen: ScreenContext = { range, vni: config.backend.vni, own: { key: own.key, subnet: own.subnet, publicIP: opts.local, vtepMac }, underlay, etcdAddresses };
    const applier = new OverlayApplier(dp, kernelOverlayHost(dp.tapName, target));
    const limiter = new LogLimiter(log, () => clock.now());
    const refusedNow = new Map<string, RefusedLease & { sig: string }>();
    const refusalsTotal: Partial<Record<RefusalReason, number>> = {};
    let applyErrors = 0;
    let dirty = false;
    let applying: Promise<void> | undefined;
    let retryApply: TimerHandle | undefined;
    const w = new LeaseWatcher({
      registry: reg,
      clock,
      health,
      log,
      resyncIntervalMs: opts.resyncIntervalMs ?? DEFAULT_RESYNC_INTERVAL_MS,
      onChange: () => scheduleApply(),
      onDelete: (key) => {
        if (key === own.key && !stopped) k.onOwnDeleted();
      },
    });
    watcher = w;
    function noteRefusals(refused: RefusedLease[]): void {
      const keys = new Set<string>();
      for (const r of refused) {
        keys.add(r.key);
        const sig = `${r.reason}@${r.modRevision ?? ''}`;
        if (refusedNow.get(r.key)?.sig === sig) continue;
        refusedNow.set(r.key, { ...r, sig });
        refusalsTotal[r.reason] = (refusalsTotal[r.reason] ?? 0) + 1;
        limiter.write(`refusing lease ${r.key} (${r.reason}): ${r.detail}`);
      }
      for (const key of [...refusedNow.keys()]) if (!keys.has(key)) refusedNow.delete(key);
    }
    function scheduleApply(): void {
      dirty = true;
      if (applying) return;
      applying = runApply();
      applying.catch(() => undefined); // only a failed device set-up rejects; start-up reports it
    }
    async function runApply(): Promise<void> {
      try {
        await deviceReady;
        while (dirty && !stopped) {
          dirty = false;
          const { remotes, refused } = desiredRemotes(w.records.values(), screen);
          noteRefusals(refused);
          const change = await applier.apply(remotes);
          for (const r of change.added) log(`peer ${r.key}: ${formatCidr(r.subnet)} via ${r.gateway} (VtepMAC ${r.vtepMac}) at ${r.publicIP}`);
          for (const r of change.removed) if (!remotes.some((x) => x.key === r.key)) log(`peer ${r.key} gone: removed route, neighbour and forwarding entry`);
          if (change.added.length || change.removed.length) opts.onApplied?.({ added: change.added, removed: change.removed, atMs: clock.now() });
          if (change.failed.length) {
            applyErrors += change.failed.length;
            for (const f of change.failed) limiter.write(`programming peer ${f.remote.key} (${formatCidr(f.remote.subnet)} via ${f.remote.publicIP}) failed: ${f.error.message}; retrying in 1 s`);
            retryApply?.cancel();
            retryApply = clock.setTimer(1000, () => {
              if (applier.pending.length) scheduleApply();
            });
          }
        }
      } finally {
        applying = undefined;
      }
    }

    await Promise.all([deviceReady, w.start(startupDeadline)]);
    k.start();
    await applying;

    const control: FlannelControl = {
      config,
      subnet: subnetText,
      key: own.key,
      gateway,
      vtepMac,
      vtep: dp,
      done,
      stats: () => {
        const leasesRefused: Partial<Record<RefusalReason, number>> = {};
        for (const r of refusedNow.values()) leasesRefused[r.reason] = (leasesRefused[r.reason] ?? 0) + 1;
        return {
          etcd: health.state,
          ...k.stats,
          watchResyncs: w.stats.resyncs,
          applyErrors,
          remotes: applier.current.length,
          pendingRemotes: applier.pending.length,
          ignored: refusedNow.size,
          leasesRefused,
          refusalsTotal: { ...refusalsTotal },
          watch: { ...w.stats },
        };
      },
      remotes: () => applier.current,
      refused: () => [...refusedNow.values()].map(({ sig: _sig, ...r }) => r),
      async settled() {
        while (applying || dirty) await (applying ?? clock.sleep(1));
      },
      renewNow: () => k.renewNow(),
      resyncNow: () => w.resyncNow(),
      async stop(o = {}) {
        if (stopped) return;
        stopped = true;
        retryApply?.cancel();
        await w.stop();
        if (o.release ?? true) await k.release();
        else await k.stop();
        await applying?.catch(() => undefined);
        await applier.clear().catch((e: unknown) => log(`removing routes failed: ${(e as Error).message}`));
        await routes.addressDel(dp.tapName, `${gateway}/32`, target).catch(() => undefined);
        await dp.stop().catch((e: unknown) => log(`stopping the VTEP failed: ${(e as Error).message}`));
        if (ownsClient) client?.close();
        resolveDone();
      },
    };
    return control;
  } catch (e) {
    stopped = true;
    await watcher?.stop().catch(() => undefined);
    await keeper?.stop().catch(() => undefined);
    if (vtep) await vtep.stop().catch(() => undefined);
    if (ownsClient) client?.close();
    throw e;
  }
}
