/**
 * `vxtap`: the command line. Each subcommand lives in its own module and
 * registers itself on the program. Machine output (JSON) goes to stdout; human
 * output and progress to stderr. A usage or configuration error exits with 2.
 */
import { Command, CommanderError } from 'commander';

/**
 * The subcommands' modules, loaded on demand: `vxtap up` loads only its own
 * (the bench and the etcd client cost ~0.5-1 s of start-up on a busy machine),
 * so a VTEP restarted by its service manager forwards sooner. Help and unknown
 * commands load them all.
 */
const SUBCOMMANDS: Record<string, () => Promise<{ register: (program: Command) => void }>> = {
  up: () => import('./up.js'),
  stats: () => import('./stats.js'),
  bench: () => import('./bench.js'),
  doctor: () => import('./doctor.js'),
  down: () => import('./down.js'),
  leave: () => import('./leave.js'),
  agent: () => import('./agent.js'),
  report: () => import('./report.js'),
  plan: () => import('./plan.js'),
  cni: () => import('./cni.js'),
};

// Output is never worth the work in progress: a reader that goes away (`vxtap bench | head`,
// a closed terminal) makes the next write fail with EPIPE, which without a listener is an
// uncaught exception that ends the process before its clean-up (a bench left a namespace
// behind that way). With the listeners, writes to a closed stream are dropped and the
// command finishes (a bench keeps measuring and cleans up; its results are in files).
// Any other write error (a full disk, EIO) still makes the exit status 1: the output is incomplete.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') process.exitCode = 1;
  });
}

const program = new Command('vxtap')
  .description('A userspace VXLAN tunnel endpoint (VTEP) and an overlay-network benchmark harness.')
  .version('0.1.0')
  .showHelpAfterError()
  .enablePositionalOptions() // a sub-command's flags are its own (`bench compare ... --json` vs `bench --json`)
  .exitOverride();

const wanted = process.argv[2];
for (const name of wanted && wanted in SUBCOMMANDS ? [wanted] : Object.keys(SUBCOMMANDS)) (await SUBCOMMANDS[name]()).register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? 0 : 2);
  }
  process.stderr.write(`vxtap: ${(err as Error).message}\n`);
  process.exit(1);
}
