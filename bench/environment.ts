/**
 * The context a result embeds: kernel, CPU, virtualisation, baseline steal,
 * tool versions and the vxtap git commit, so that a figure is never read
 * without knowing what machine produced it.
 */
import type { CpuPlacement } from './placement.js';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { run } from '../src/host/exec.js';
import { cpuDelta, readProcStat } from '../src/host/procstat.js';
import { ovsKernelModulePresent, ovsVersion } from '../src/host/ovs.js';
import type { UnderlayOffloadRecord } from './offloads.js';

/** The environment block of a result. */
export interface Environment {
  hostname: string;
  kernel: string;
  os: string | null;
  cpuModel: string | null;
  cpuCount: number;
  memoryBytes: number;
  /** systemd-detect-virt --vm (e.g. "kvm", "none"). */
  virtualization: string | null;
  /** systemd-detect-virt --container (e.g. "docker", "none"). */
  container: string | null;
  kvm: boolean;
  /** Share of CPU time stolen by the hypervisor over a short idle sample (0..1). */
  baselineStealRatio: number | null;
  /** Machine busy share during that sample (0..1): something else running skews figures. */
  baselineBusyRatio: number | null;
  tools: Record<string, string | null>;
  git: { commit: string | null; dirty: boolean | null };
  ovsKernelModule: boolean;
  /**
   * net.ipv4.tcp_congestion_control: what every TCP socket of the run gets (iperf3,
   * sockperf and redis keep the default; the bench's namespaces inherit it). BBR
   * paces and CUBIC does not, so TCP figures are comparable only at the same one.
   * Absent in older results.
   */
  tcpCongestionControl?: string | null;
  /** --underlay-offloads: each host's underlay device offload state during the run (offloads.ts); filled by the run. */
  underlayOffloads?: UnderlayOffloadRecord;
  /** --cpu-priority: the cgroup the run measured in (placement.ts); filled by the run, absent in older results. */
  cpuPlacement?: CpuPlacement;
}

async function firstLine(argv: string[]): Promise<string | null> {
  const r = await run(argv, { allowFail: true, timeoutMs: 10_000 });
  const text = (r.stdout || r.stderr).trim();
  return r.code === 0 || text ? text.split('\n')[0].trim() || null : null;
}

/** Collect the environment (takes about `sampleMs` for the steal baseline). */
export async function collectEnvironment(repoRoot: string, sampleMs = 1000): Promise<Environment> {
  const s0 = await readProcStat();
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const virt = (await run(['systemd-detect-virt', '--vm'], { allowFail: true })).stdout.trim() || null;
  const container = (await run(['systemd-detect-virt', '--container'], { allowFail: true })).stdout.trim() || null;
  const tools: Record<string, string | null> = {
    node: process.version,
    iperf3: await firstLine(['iperf3', '--version']),
    iproute2: await firstLine(['ip', '-V']),
    tcpdump: await firstLine(['tcpdump', '--version']),
    ping: await firstLine(['ping', '-V']),
    ethtool: await firstLine(['ethtool', '--version']),
    ovs: await ovsVersion(),
  };
  const commit = (await run(['git', '-C', repoRoot, 'rev-parse', 'HEAD'], { allowFail: true })).stdout.trim() || null;
  const status = await run(['git', '-C', repoRoot, 'status', '--porcelain'], { allowFail: true });
  const cc = (await readFile('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').catch(() => '')).trim() || null;
  await new Promise((r) => setTimeout(r, Math.max(0, sampleMs - 0)));
  const s1 = await readProcStat();
  const d = cpuDelta(s0.total, s1.total);
  const hasKvmFlag = /hypervisor/.test(cpuinfo);
  return {
    hostname: os.hostname(),
    kernel: os.release(),
    os: /PRETTY_NAME="([^"]*)"/.exec(osRelease)?.[1] ?? null,
    cpuModel: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? null,
    cpuCount: os.cpus().length,
    memoryBytes: os.totalmem(),
    virtualization: virt,
    container,
    kvm: virt === 'kvm' || (hasKvmFlag && /KVM/i.test(virt ?? '')),
    baselineStealRatio: d.totalSeconds > 0 ? d.stealSeconds / d.totalSeconds : null,
    baselineBusyRatio: d.totalSeconds > 0 ? d.busySeconds / d.totalSeconds : null,
    tools,
    git: { commit, dirty: status.code === 0 ? status.stdout.trim().length > 0 : null },
    ovsKernelModule: ovsKernelModulePresent(),
    tcpCongestionControl: cc,
  };
}
