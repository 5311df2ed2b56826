import type { Command } from 'commander';

/** Placeholder: replaced by the real 'stats' subcommand. */
export function register(program: Command): void {
  program.command('stats').description('(not yet implemented)').action(() => {
    process.stderr.write('vxtap stats: not yet implemented\n');
    process.exit(1);
  });
}
