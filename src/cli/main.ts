/**
 * `vxtap`: the command line. Each subcommand lives in its own module and
 * registers itself on the program. Machine output (JSON) goes to stdout; human
 * output and progress to stderr. A usage or configuration error exits with 2.
 */
import { Command, CommanderError } from 'commander';
import { register as registerUp } from './up.js';
import { register as registerStats } from './stats.js';
import { register as registerBench } from './bench.js';
import { register as registerDoctor } from './doctor.js';
import { register as registerDown } from './down.js';
import { register as registerAgent } from './agent.js';

const program = new Command('vxtap')
  .description('A userspace VXLAN tunnel endpoint (VTEP) and an overlay-network benchmark harness.')
  .version('0.1.0')
  .showHelpAfterError()
  .enablePositionalOptions() // a sub-command's flags are its own (`bench compare ... --json` vs `bench --json`)
  .exitOverride();

registerUp(program);
registerStats(program);
registerBench(program);
registerDoctor(program);
registerDown(program);
registerAgent(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? 0 : 2);
  }
  process.stderr.write(`vxtap: ${(err as Error).message}\n`);
  process.exit(1);
}
