/** `vxtap stats`: print a running instance's counters and tables as JSON. */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { statsSocketPath, DEFAULTS } from '../config.js';
import { fetchStatus } from '../dataplane/vtep.js';

/** Register `vxtap stats`. */
export function register(program: Command): void {
  program
    .command('stats')
    .description("Print a running VTEP's statistics (JSON on stdout).")
    .addOption(new Option('--name <name>', `instance (TAP) name (default ${DEFAULTS.name})`).env('VXTAP_NAME'))
    .addOption(new Option('--stats-socket <path>', 'control socket (default /run/vxtap/NAME.sock, or /run/vxtap/netns-INODE/NAME.sock outside the host network namespace)').env('VXTAP_STATS_SOCKET'))
    .addOption(new Option('--prometheus', 'print Prometheus text format instead of JSON'))
    .addOption(new Option('--fdb', 'print only the forwarding table'))
    .action(async (opts: { name?: string; statsSocket?: string; prometheus?: boolean; fdb?: boolean }) => {
      const sock = statsSocketPath({ name: opts.name ?? DEFAULTS.name, statsSocket: opts.statsSocket });
      if (!existsSync(sock)) {
        process.stderr.write(`vxtap stats: no running instance at ${sock}\n`);
        process.exit(1);
      }
      try {
        const body = await fetchStatus(sock, opts.prometheus ? 'metrics' : opts.fdb ? 'fdb' : 'stats');
        process.stdout.write(opts.prometheus ? body : JSON.stringify(JSON.parse(body), null, 2) + '\n');
      } catch (err) {
        process.stderr.write(`vxtap stats: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}
