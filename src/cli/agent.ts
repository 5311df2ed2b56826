/**
 * `vxtap agent --stdio`: the bench agent on a bench host (see
 * bench/remote/agent.ts). Started by `vxtap bench --hosts` through SSH; speaks
 * line-delimited JSON on stdin/stdout, logs nothing to stdout.
 */
import { Command, Option } from 'commander';
import { Agent } from '../../bench/remote/agent.js';
import { repoRoot } from '../../bench/run.js';

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
      new Agent(process.stdin, process.stdout, repoRoot());
    });
}
