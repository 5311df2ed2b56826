/**
 * `vxtap down`: remove what a killed instance (SIGKILL, OOM, power cut of the
 * process) may have left in this network namespace: its control socket file and
 * a plain nftables steering table (`vxtap_NAME`) that would steer VXLAN to an
 * uplink TAP that no longer exists. A running instance is left alone (stop it
 * with SIGTERM; it cleans up itself). The TAP devices need nothing: the kernel
 * removes them with the last open file. `vxtap up` does the same at start.
 */
import { Command, Option } from 'commander';
import { lstatSync, unlinkSync } from 'node:fs';
import { statsSocketPath, DEFAULTS } from '../config.js';
import { socketAlive } from '../dataplane/control-socket.js';
import { steeringTableName } from '../dataplane/plan.js';
import { haveCommand, run } from '../host/exec.js';

/** Register `vxtap down`. */
export function register(program: Command): void {
  program
    .command('down')
    .description('Remove what a killed instance left in this network namespace (stale control socket, nftables steering table).')
    .addOption(new Option('--name <name>', `instance (TAP) name (default ${DEFAULTS.name})`).env('VXTAP_NAME'))
    .addOption(new Option('--stats-socket <path>', 'control socket (default: as vxtap up computes it)').env('VXTAP_STATS_SOCKET'))
    .action(async (opts: { name?: string; statsSocket?: string }) => {
      const name = opts.name ?? DEFAULTS.name;
      const sock = statsSocketPath({ name, statsSocket: opts.statsSocket });
      let isSocket = false;
      try {
        const st = lstatSync(sock);
        if (!st.isSocket()) {
          process.stderr.write(`vxtap down: ${sock} is not a socket; leaving it alone\n`);
          process.exit(1);
        }
        isSocket = true;
      } catch {
        /* nothing there */
      }
      if (isSocket && (await socketAlive(sock))) {
        process.stderr.write(`vxtap down: an instance is running at ${sock}; stop it with SIGTERM (it cleans up after itself)\n`);
        process.exit(1);
      }
      const removed: string[] = [];
      if (isSocket) {
        unlinkSync(sock);
        removed.push(`socket ${sock}`);
      }
      if (await haveCommand('nft')) {
        const table = steeringTableName(name);
        const r = await run(['nft', 'delete', 'table', 'netdev', table], { allowFail: true });
        if (r.code === 0) removed.push(`nftables table netdev ${table}`);
      }
      process.stderr.write(removed.length ? `vxtap down: removed ${removed.join(', ')}\n` : `vxtap down: nothing left by ${name}\n`);
    });
}
