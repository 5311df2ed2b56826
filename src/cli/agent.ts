/**
 * `vxtap agent --stdio`: the bench agent on a bench host (see
 * bench/remote/agent.ts). Started by `vxtap bench --hosts` through SSH; speaks
 * line-delimited JSON on stdin/stdout, logs nothing to stdout.
 *
 * The controller starts this file directly (`node dist/src/cli/agent.js
 * --stdio`): one start per host connection, so it skips loading the rest of
 * the CLI (report rendering, etcd client), which takes seconds on a busy host.
 */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from '../../bench/remote/agent.js';

/** The checkout or bundle this file belongs to (the directory above dist/ holding package.json). */
function rootOfThisBuild(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

/** Serve the protocol on this process's stdio until the controller is gone. */
export function startAgent(): void {
  new Agent(process.stdin, process.stdout, rootOfThisBuild());
}

/** Register `vxtap agent`. */
export function register(program: Command): void {
  program
    .command('agent')
    .description('Bench agent for `vxtap bench --hosts` (started by the controller over SSH; not for interactive use).')
    .addOption(new Option('--stdio', 'speak the bench protocol on stdin/stdout (required)'))
    .action((opts: { stdio?: boolean }) => {
      if (!opts.stdio) {
        process.stderr.write('vxtap agent: --stdio is required (the agent only speaks over stdin/stdout)\n');
        process.exit(2);
      }
      startAgent();
    });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  if (!process.argv.includes('--stdio')) {
    process.stderr.write('vxtap agent: --stdio is required (the agent only speaks over stdin/stdout)\n');
    process.exit(2);
  }
  startAgent();
}
