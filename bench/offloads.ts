/**
 * Underlay offload variants (`vxtap bench --underlay-offloads full|no-tunnel-tso`).
 *
 * Kernel VXLAN over veth is nearly free for TCP because the underlay device
 * advertises UDP-tunnel segmentation: a 64 KiB inner TSO frame crosses the
 * tunnel whole. Many NICs and virtual NICs (virtio-net before UDP-tunnel GSO,
 * older hardware) segment plain UDP (USO) but not tunnels; there the kernel
 * segments the tunnel in software while a userspace VTEP's UDP GSO still
 * crosses whole. `no-tunnel-tso` emulates such an underlay by turning
 * `tx-udp_tnl-segmentation` and `tx-udp_tnl-csum-segmentation` off on both
 * underlay ends (`ethtool -K`), USO (`tx-udp-segmentation`) left on.
 *
 * - Namespace pair: applied to each fresh veth pair after it is created (it
 *   dies with the mode-round's namespaces).
 * - --hosts: applied once to each host's underlay device for the whole run
 *   and restored at the end. The restore commands (each changed feature back
 *   to its state before the run) are registered with the host's agent before
 *   the change, so the agent restores them by itself when the run ends, is
 *   interrupted, the controller dies (stdin closes) or its lease runs out.
 *   Features already off, or fixed (`[fixed]`), are left alone and reported.
 *
 * The offload state of each host's underlay device (the segmentation and GRO
 * features below) is recorded in `environment.underlayOffloads` for both kinds of run.
 */
import type { BenchHost } from './host.js';
import type { RemoteHost } from './remote/client.js';
import type { BenchResult, Claim, Derived } from './result.js';
import { medianOf, perRoundOf } from './contention.js';

/** The underlay offload variants. */
export const UNDERLAY_OFFLOADS = ['full', 'no-tunnel-tso'] as const;
/** An underlay offload variant. */
export type UnderlayOffloads = (typeof UNDERLAY_OFFLOADS)[number];

/** The features `no-tunnel-tso` turns off (ethtool -K names). */
export const TUNNEL_TSO_FEATURES = ['tx-udp_tnl-segmentation', 'tx-udp_tnl-csum-segmentation'] as const;

/** The features recorded per host: tunnel and UDP segmentation, TSO/GSO, GRO. */
export const RECORDED_FEATURES = [
  'tx-udp_tnl-segmentation',
  'tx-udp_tnl-csum-segmentation',
  'tx-udp-segmentation',
  'tx-gso-partial',
  'tx-tcp-segmentation',
  'generic-segmentation-offload',
  'generic-receive-offload',
  'rx-gro-hw',
  'rx-gro-list',
  'rx-udp-gro-forwarding',
  'rx-udp_tunnel-port-offload',
  'tx-checksumming',
] as const;

/** One feature as `ethtool -k` shows it. */
export interface FeatureState {
  on: boolean;
  /** `[fixed]`: the driver does not let it change. */
  fixed: boolean;
}

/** Offload state of one host's underlay device. */
export interface HostOffloads {
  label: string;
  dev: string;
  /** RECORDED_FEATURES as found after the variant was applied ("on", "off", "on [fixed]", "off [fixed]"); a missing feature is absent. */
  features: Record<string, string>;
  /** Features this run turned off (restored at the end on --hosts). */
  changed: string[];
  /** Features `no-tunnel-tso` wanted off that could not be changed (fixed on), if any. */
  unchangeable: string[];
}

/** The record kept in `environment.underlayOffloads`. */
export interface UnderlayOffloadRecord {
  variant: UnderlayOffloads;
  hosts: HostOffloads[];
}

/** Validate the option value; returns an Error naming the option, or null. */
export function validateUnderlayOffloads(v: unknown): Error | null {
  return (UNDERLAY_OFFLOADS as readonly unknown[]).includes(v) ? null : new TypeError(`--underlay-offloads must be ${UNDERLAY_OFFLOADS.join(' or ')} (got "${String(v)}")`);
}

/** Parse `ethtool -k DEV` output into feature states (pure). */
export function parseEthtoolFeatures(text: string): Partial<Record<string, FeatureState>> {
  const out: Partial<Record<string, FeatureState>> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z0-9_-]+):\s+(on|off)\b/.exec(line);
    if (m) out[m[1]] = { on: m[2] === 'on', fixed: /\[fixed\]/.test(line) };
  }
  return out;
}

/** The recorded subset, as text ("on", "off [fixed]"). */
export function recordedFeatures(all: Partial<Record<string, FeatureState>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of RECORDED_FEATURES) {
    const s = all[f];
    if (s) out[f] = `${s.on ? 'on' : 'off'}${s.fixed ? ' [fixed]' : ''}`;
  }
  return out;
}

/** The `ethtool -K` argv that turns `features` on or off on `dev`. */
export function ethtoolSetArgv(dev: string, features: readonly string[], on: boolean): string[] {
  return ['ethtool', '-K', dev, ...features.flatMap((f) => [f, on ? 'on' : 'off'])];
}

/** What to change for `variant`: the features that are on and not fixed, and those fixed on. */
export function planChange(variant: UnderlayOffloads, current: Partial<Record<string, FeatureState>>): { change: string[]; unchangeable: string[] } {
  if (variant === 'full') return { change: [], unchangeable: [] };
  const change = TUNNEL_TSO_FEATURES.filter((f) => current[f]?.on === true && !current[f].fixed);
  const unchangeable = TUNNEL_TSO_FEATURES.filter((f) => current[f]?.on === true && current[f].fixed);
  return { change, unchangeable };
}

async function readFeatures(host: BenchHost, dev: string): Promise<Partial<Record<string, FeatureState>>> {
  const r = await host.exec(['ethtool', '-k', dev], { allowFail: true, timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`host ${host.label}: ethtool -k ${dev} failed: ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
  return parseEthtoolFeatures(r.stdout);
}

/**
 * Apply `variant` to one host's underlay device and read back its state. With
 * `agent` (a --hosts host) the restore command is registered before the change.
 */
export async function applyUnderlayOffloads(host: BenchHost, dev: string, variant: UnderlayOffloads, agent?: RemoteHost): Promise<HostOffloads> {
  const before = await readFeatures(host, dev);
  const { change, unchangeable } = planChange(variant, before);
  if (change.length) {
    if (agent) await agent.track({ restore: [ethtoolSetArgv(dev, change, true)] });
    const r = await host.exec(ethtoolSetArgv(dev, change, false), { allowFail: true, timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`host ${host.label}: ${ethtoolSetArgv(dev, change, false).join(' ')} failed: ${(r.stderr || r.stdout).trim().slice(0, 200)}`);
  }
  const after = await readFeatures(host, dev);
  const still = change.filter((f) => after[f]?.on);
  if (still.length) throw new Error(`host ${host.label}: ${still.join(', ')} still on after ethtool -K ${dev}`);
  return { label: host.label, dev, features: recordedFeatures(after), changed: change, unchangeable };
}

/** Undo what applyUnderlayOffloads changed on a --hosts host (and drop the agent's restore entry). Never throws. */
export async function restoreUnderlayOffloads(agent: RemoteHost, rec: HostOffloads): Promise<void> {
  if (!rec.changed.length) return;
  const argv = ethtoolSetArgv(rec.dev, rec.changed, true);
  const r = await agent.exec(argv, { allowFail: true, timeoutMs: 10_000 }).catch(() => null);
  // Only forget the restore when it worked; otherwise the agent tries again at its clean-up.
  if (r && r.code === 0) await agent.untrack({ restore: [argv] });
}

/** Round-by-round ratio `mode / kernel-vxlan` on `key` (TCP 1 stream by default), null where missing. */
export function ratioToKvPerRound(byMode: Derived['byMode'], modeId: string, kvId: string, key = 'tcp1Gbps'): (number | null)[] {
  const b = perRoundOf(byMode, kvId, key);
  return perRoundOf(byMode, modeId, key).map((x, i) => {
    const y = b.at(i);
    return x !== null && y !== null && y !== undefined && y > 0 ? x / y : null;
  });
}

/** The plain (not contended) mode of `kind` that ran, if any. */
function plainOf(r: Pick<BenchResult, 'modes'>, kind: string): string | null {
  return r.modes.find((m) => m.kind === kind && m.available && !m.variant)?.id ?? null;
}

/** The row "vxtap is ahead of kernel VXLAN where the underlay has no tunnel TSO" (only with --underlay-offloads no-tunnel-tso). */
export function offloadClaims(r: Pick<BenchResult, 'modes' | 'samples' | 'options'>, byMode: Derived['byMode']): Claim[] {
  if (r.options.underlayOffloads !== 'no-tunnel-tso') return [];
  const tap = plainOf(r, 'vxtap');
  const kv = plainOf(r, 'kernel-vxlan');
  const ratio1 = tap && kv ? medianOf(ratioToKvPerRound(byMode, tap, kv)) : null;
  const ratioN = tap && kv ? medianOf(ratioToKvPerRound(byMode, tap, kv, 'tcpNGbps')) : null;
  const g = (id: string | null, key: string) => (id ? medianOf(perRoundOf(byMode, id, key)) : null);
  const f = (v: number | null, d = 2) => (v === null ? 'n/a' : v.toFixed(d));
  return [
    {
      id: 'no-tunnel-tso-vxtap-ahead',
      claim: 'vxtap is ahead of kernel VXLAN where the underlay has no tunnel TSO',
      measured:
        tap && kv
          ? `${tap} ${f(g(tap, 'tcp1Gbps'))} vs kernel-vxlan ${f(g(kv, 'tcp1Gbps'))} Gbit/s TCP 1 stream (${f(ratio1)}x), ${f(g(tap, 'tcpNGbps'))} vs ${f(g(kv, 'tcpNGbps'))} N streams (${f(ratioN)}x)`
          : 'vxtap or kernel-vxlan not measured',
      verdict: ratio1 === null ? 'n/a' : ratio1 > 1 ? 'held' : 'not held',
      detail: `underlay ends with ${TUNNEL_TSO_FEATURES.join(' and ')} off (USO on), as a NIC without UDP-tunnel segmentation; held if the round-by-round median TCP 1-stream ratio vxtap / kernel-vxlan is above 1 (issue 12 measured 1.2-1.5x here)`,
    },
  ];
}
