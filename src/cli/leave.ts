/**
 * `vxtap leave`: the explicit leave of an etcd-mode host. The running instance
 * releases its subnet lease (the other hosts drop its routes at once), removes
 * its routes and stops. A signal or a crash keeps the lease instead, so that a
 * restart keeps the subnet, as flanneld does.
 */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { statsSocketPath, DEFAULTS } from '../config.js';
import { socketAlive } from '../dataplane/control-socket.js';

function postLeave(sock: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, path: '/leave', method: 'POST', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${sock} within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Register `vxtap leave`. */
export function register(program: Command): void {
  program
    .command('leave')
    .description('Release the subnet lease of the running etcd-mode instance and stop it (a signal keeps the lease for the next start).')
    .addOption(new Option('--name <name>', `instance (TAP) name (default ${DEFAULTS.name})`).env('VXTAP_NAME'))
    .addOption(new Option('--stats-socket <path>', 'control socket (default: as vxtap up computes it)').env('VXTAP_STATS_SOCKET'))
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the instance to stop').default('30').env('VXTAP_LEAVE_TIMEOUT'))
    .action(async (opts: { name?: string; statsSocket?: string; timeout: string }) => {
      const timeoutS = Number(opts.timeout);
      if (!Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > 3600) {
        process.stderr.write(`vxtap leave: invalid configuration: --timeout must be a number of seconds between 0 and 3600, got "${opts.timeout}"\n`);
        process.exit(2);
      }
      const sock = statsSocketPath({ name: opts.name ?? DEFAULTS.name, statsSocket: opts.statsSocket });
      if (!existsSync(sock) || !(await socketAlive(sock))) {
        process.stderr.write(`vxtap leave: no running instance at ${sock}\n`);
        process.exit(1);
      }
      const t0 = Date.now();
      let answer: { status: number; body: string };
      try {
        answer = await postLeave(sock);
      } catch (err) {
        process.stderr.write(`vxtap leave: ${(err as Error).message}\n`);
        process.exit(1);
      }
      if (answer.status !== 202) {
        process.stderr.write(`vxtap leave: ${answer.body.trim() || `status ${answer.status}`}\n`);
        process.exit(1);
      }
      while (Date.now() - t0 < timeoutS * 1000) {
        if (!existsSync(sock) || !(await socketAlive(sock))) {
          process.stdout.write(JSON.stringify({ left: true, socket: sock, ms: Date.now() - t0 }) + '\n');
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      process.stderr.write(`vxtap leave: the instance at ${sock} asked to leave but still runs after ${timeoutS} s\n`);
      process.exit(1);
    });
}
