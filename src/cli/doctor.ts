import type { Command } from 'commander';

/** Placeholder: replaced by the real 'doctor' subcommand. */
export function register(program: Command): void {
  program.command('doctor').description('(not yet implemented)').action(() => {
    process.stderr.write('vxtap doctor: not yet implemented\n');
    process.exit(1);
  });
}
