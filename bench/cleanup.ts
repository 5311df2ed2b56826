/**
 * `vxtap bench --cleanup`: remove whatever killed bench runs left behind —
 * processes recorded in the state directory, every `vxb*` network namespace
 * (with the processes inside it), `vxb*` links in the root namespace, and the
 * OVS databases and run directories under the state directory. Reports what
 * it removed. A run whose bench process is still alive is left alone unless
 * `force` is set.
 */
import { rmSync } from 'node:fs';
import { output, run } from '../src/host/exec.js';
import { pidAlive as alive, pidCmdline as cmdline } from '../src/host/procstat.js';
import { deleteNetns, listNetns } from '../src/host/netns.js';
import { killAndWait } from '../src/host/ovs.js';
import { removeLeftoverGroups } from './placement.js';
import { BENCH_PREFIX, listRunStates, removeStaleLocalBenchLock, stateDir } from './state.js';

/** What a cleanup removed. */
export interface CleanupReport {
  processes: string[];
  namespaces: string[];
  links: string[];
  dirs: string[];
  /** Files removed: a killed local run's lock (a live run's stays, even with `force`). */
  files: string[];
  skippedRuns: string[];
}

/** Remove leftovers of bench runs. */
export async function cleanupBench(opts: { force?: boolean } = {}): Promise<CleanupReport> {
  const report: CleanupReport = { processes: [], namespaces: [], links: [], dirs: [], files: [], skippedRuns: [] };
  const protectedNs = new Set<string>();
  for (const { file, data } of listRunStates()) {
    if (data.pid !== process.pid && alive(data.pid) && !opts.force) {
      report.skippedRuns.push(`${data.runId} (bench pid ${data.pid} still running; use --force)`);
      for (const ns of data.namespaces) protectedNs.add(ns);
      continue;
    }
    for (const p of data.processes) {
      const cl = cmdline(p.pid);
      // Only a pid whose command line still matches what was started (pids get reused).
      if (cl && p.argv.length && cl.includes(p.argv[0].split('/').pop() ?? '\0')) {
        await killAndWait(p.pid, 2000);
        report.processes.push(`${p.pid} ${cl.slice(0, 120)}`);
      }
    }
    for (const d of data.dirs) {
      rmSync(d, { recursive: true, force: true });
      report.dirs.push(d);
    }
    rmSync(file, { force: true });
    rmSync(file.replace(/\.json$/, ''), { recursive: true, force: true });
  }
  for (const ns of await listNetns()) {
    if (!ns.startsWith(BENCH_PREFIX) || protectedNs.has(ns)) continue;
    const pids = (await output(['ip', 'netns', 'pids', ns], { allowFail: true })).split(/\s+/).filter(Boolean);
    for (const pid of pids) report.processes.push(`${pid} ${cmdline(Number(pid))?.slice(0, 120) ?? ''} (in ${ns})`);
    await deleteNetns(ns);
    report.namespaces.push(ns);
  }
  const links = await output(['ip', '-o', 'link', 'show'], { allowFail: true });
  for (const line of links.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m && m[1].startsWith(BENCH_PREFIX)) {
      await run(['ip', 'link', 'del', m[1]], { allowFail: true });
      report.links.push(m[1]);
    }
  }
  // Stray bench processes in the root namespace (e.g. OVS daemons whose pid was not yet recorded).
  const ps = await output(['ps', '-eo', 'pid=,args='], { allowFail: true });
  for (const line of ps.split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    if (m[2].includes(stateDir() + '/') && /ovs|iperf3|tcpdump|rr\.js/.test(m[2])) {
      await killAndWait(pid, 2000);
      report.processes.push(`${pid} ${m[2].slice(0, 120)}`);
    }
  }
  // Empty CPU groups of killed runs (placement.ts); a live run's group holds its processes and stays.
  report.dirs.push(...removeLeftoverGroups());
  // A killed local run's lock (the next run replaces it anyway; clean-up leaves nothing).
  report.files.push(...removeStaleLocalBenchLock());
  return report;
}

/** Human lines for a cleanup report. */
export function formatCleanupReport(r: CleanupReport): string {
  const lines: string[] = [];
  for (const p of r.processes) lines.push(`killed process ${p}`);
  for (const n of r.namespaces) lines.push(`deleted namespace ${n}`);
  for (const l of r.links) lines.push(`deleted link ${l}`);
  for (const d of r.dirs) lines.push(`removed directory ${d}`);
  for (const f of r.files) lines.push(`removed file ${f}`);
  for (const s of r.skippedRuns) lines.push(`skipped run ${s}`);
  if (lines.length === 0) lines.push('nothing to clean up');
  return `${lines.join('\n')}\n`;
}
