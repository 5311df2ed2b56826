import type { Command } from 'commander';

/** Placeholder: replaced by the real 'bench' subcommand. */
export function register(program: Command): void {
  program.command('bench').description('(not yet implemented)').action(() => {
    process.stderr.write('vxtap bench: not yet implemented\n');
    process.exit(1);
  });
}
