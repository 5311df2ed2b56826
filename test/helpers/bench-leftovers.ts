/**
 * What a prefixed bench run (VXTAP_BENCH_PREFIX) left on this machine: its
 * namespaces and links, and processes matching `processes`. With `owned:
 * 'env'` a process counts only when it inherited the prefix (so another
 * bench's load generators, running beside the test, are not its leftovers);
 * with 'any' every match counts (for daemons such as redis-server, which
 * rewrite their environment and are matched by address instead).
 */
import { readFileSync } from 'node:fs';
import { output } from '../../src/host/exec.js';
import { listNetns } from '../../src/host/netns.js';

export async function benchLeftovers(prefix: string, processes: RegExp, owned: 'env' | 'any' = 'env'): Promise<string[]> {
  const found: string[] = [];
  for (const ns of await listNetns()) if (ns.startsWith(prefix)) found.push(`namespace ${ns}`);
  for (const line of (await output(['ip', '-o', 'link', 'show'])).split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)/.exec(line);
    if (m?.[1].startsWith(prefix)) found.push(`link ${m[1]}`);
  }
  for (const line of (await output(['ps', '-eo', 'pid=,args='])).split('\n')) {
    if (!processes.test(line)) continue;
    if (owned === 'env') {
      const [pid] = line.trim().split(/\s+/);
      let environ: string;
      try {
        environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      } catch {
        continue; // gone
      }
      if (!environ.split('\0').includes(`VXTAP_BENCH_PREFIX=${prefix}`)) continue;
    }
    found.push(`process ${line.trim()}`);
  }
  return found;
}
