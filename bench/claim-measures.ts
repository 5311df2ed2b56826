/**
 * `--measure LIST`: what a bench run measures per mode. `standard` is the
 * usual set (TCP, UDP NDR/PDR, latency, and the MTU sweep in round 1); the
 * claim measurements are opt-in because they cost more than the default
 * run's ten minutes allow:
 *
 * - `mtu-mismatch` (`mtu-mismatch.ts`): bounded TCP transfers with the
 *   endpoints forced to the underlay MTU, PMTUD on and off, small and large
 *   messages; with `--endpoints pod` pod to pod, the pods at the underlay MTU
 *   and the hosts' overlay devices as the mode sets them. Local topology only
 *   (it changes the sending hosts' sysctls).
 * - `redis` (`redis.ts`): redis-benchmark against redis-server through the
 *   mode, idle, under a background flow and, where netem exists, with added RTT.
 *
 * Both run in round 1 only (like the MTU sweep), after the standard set.
 * Default `standard`; the full profile adds both; `--measure
 * mtu-mismatch,redis` measures only those (plus mode set-up), which is what
 * the integration test uses to stay short.
 */
import path from 'node:path';
import type { ModeRoundSample } from './result.js';
import type { MeasureContext } from './measure.js';
import { PORTS } from './measure.js';
import { measureMtuMismatch, MTU_MISMATCH_PLANS } from './mtu-mismatch.js';
import { measureRedis, REDIS_PLANS } from './redis.js';
import { podsBehind } from './pods.js';
import { netemUnavailableReason } from './topology.js';

/** The measurement sets --measure accepts. */
export const MEASURES = ['standard', 'tcp', 'udp', 'latency', 'mtu', 'mtu-mismatch', 'redis'] as const;
/** The parts of `standard`; a list may name some of them alone (`--measure tcp,latency`: what CI gates on, in a third of the time). */
export const STANDARD_PARTS = ['tcp', 'udp', 'latency', 'mtu'] as const;
export type StandardPart = (typeof STANDARD_PARTS)[number];

/** Whether a --measure list measures one part of the standard set. */
export function measuresPart(list: readonly string[], part: StandardPart): boolean {
  return list.includes('standard') || list.includes(part);
}
/** One measurement set. */
export type Measure = (typeof MEASURES)[number];

/** The default of each profile (full adds the claim measurements). */
export function defaultMeasures(profile: 'quick' | 'default' | 'full'): Measure[] {
  return profile === 'full' ? ['standard', 'mtu-mismatch', 'redis'] : ['standard'];
}

/**
 * Parse "standard,redis" (also "all"); throws a TypeError naming --measure.
 * Order follows MEASURES; duplicates are refused.
 */
export function parseMeasureList(text: string): Measure[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((p) => p === '')) throw new TypeError(`--measure must be a comma-separated list of ${MEASURES.join(', ')} or all (got "${text}")`);
  if (parts.length === 1 && parts[0] === 'all') return ['standard', 'mtu-mismatch', 'redis'];
  for (const p of parts) {
    if (!(MEASURES as readonly string[]).includes(p)) throw new TypeError(`--measure: unknown measurement "${p}" (known: ${MEASURES.join(', ')}, all)`);
  }
  if (new Set(parts).size !== parts.length) throw new TypeError('--measure lists a measurement twice');
  if (parts.includes('standard') && parts.some((p) => (STANDARD_PARTS as readonly string[]).includes(p))) throw new TypeError('--measure: standard already includes tcp, udp, latency and mtu');
  return MEASURES.filter((m) => parts.includes(m));
}

/** Check a parsed list (BenchOptions.measure); an Error naming --measure, or null. */
export function validateMeasures(list: readonly string[]): Error | null {
  try {
    parseMeasureList(list.join(','));
    return null;
  } catch (err) {
    return err as Error;
  }
}

/** Why `measures` cannot run with --hosts, or null. */
export function measuresRemoteError(measures: readonly Measure[]): Error | null {
  if (measures.includes('mtu-mismatch'))
    return new TypeError("--measure mtu-mismatch cannot run with --hosts: it changes the hosts' net.ipv4.ip_no_pmtu_disc and interface MTUs (run it on the namespace pair)");
  return null;
}

let netemProbe: Promise<string | null> | null = null;

/** Whether netem works here (probed once per process, as the CLI probes it for --delay). */
function netemReason(): Promise<string | null> {
  netemProbe ??= netemUnavailableReason(['delay', '1ms']).catch((e: unknown) => `probe failed: ${(e as Error).message}`);
  return netemProbe;
}

function pinPrefix(pin: MeasureContext['pin'], side: 'client' | 'server'): string[] {
  if (pin === 'none') return [];
  return ['taskset', '-c', String(pin === 'same' || side === 'client' ? 0 : 1)];
}

/** What a mode-round passes to the claim measurements. */
export interface ClaimRoundContext {
  ctx: MeasureContext;
  measures: readonly Measure[];
  /** The mode-round's work directory (under the run's state directory). */
  workDir: string;
  /** The run's --delay and the root qdisc realising the run's impairments, if any. */
  userDelay: string | null;
  qdisc: string[] | null;
  /** Runs one step, recording its error in the sample (run.ts's `step`). */
  step: <T>(name: string, fn: () => Promise<T>) => Promise<T | null>;
}

/** Run the requested claim measurements of one mode-round into `sample`. */
export async function measureClaimsRound(sample: ModeRoundSample, c: ClaimRoundContext): Promise<void> {
  const { ctx } = c;
  const plan = ctx.profile.name;
  // --endpoints pod (pods.ts): ctx's hosts are then the pods, whose namespaces hold neither the overlay device nor the underlay.
  const inPods = Boolean((sample as { pods?: unknown }).pods);
  if (c.measures.includes('mtu-mismatch')) {
    // Pod to pod: the pods forced to the underlay MTU, the hosts behind them keep the overlay's (mtu-mismatch.ts).
    const behind = podsBehind(ctx.topo);
    const pods = behind ? { hosts: behind.hosts, mtu: behind.pods.mtu, setMtu: (mtu: number) => behind.pods.setMtu(mtu) } : null;
    const skip = inPods && !pods ? 'with --endpoints pod but no pods behind the measured topology' : null;
    sample.mtuMismatch = await c.step('mtu mismatch', () => measureMtuMismatch(ctx.topo, ctx.mode, MTU_MISMATCH_PLANS[plan], ctx.repoRoot, skip, pods));
  }
  if (c.measures.includes('redis')) {
    const netemUnavailable = ctx.topo.remote ? null : await netemReason();
    const loadBps = sample.tcp1 ? sample.tcp1.receivedBps * 0.5 : 0;
    const serverPin = pinPrefix(ctx.pin, 'server');
    sample.redis = await c.step('redis', () =>
      measureRedis({
        topo: ctx.topo,
        mode: ctx.mode,
        plan: REDIS_PLANS[plan],
        workDir: ctx.topo.remote ? ctx.topo.remote.b.workDir : path.join(c.workDir, 'redis'),
        netemUnavailable,
        userDelay: c.userDelay,
        noSweep: inPods ? 'with --endpoints pod the delay sweep is not run (the underlay devices are outside the pods)' : null,
        baseQdisc: c.qdisc,
        loadPort: PORTS.load,
        loadBps,
        loadReady: () => ctx.servers.ready(PORTS.load),
        pinClient: pinPrefix(ctx.pin, 'client'),
        serverCpu: serverPin.length ? serverPin[2] : null,
        aborted: ctx.aborted,
      }),
    );
  }
}
