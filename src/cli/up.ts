import type { Command } from 'commander';

/** Placeholder: replaced by the real 'up' subcommand. */
export function register(program: Command): void {
  program.command('up').description('(not yet implemented)').action(() => {
    process.stderr.write('vxtap up: not yet implemented\n');
    process.exit(1);
  });
}
