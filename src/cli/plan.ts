/**
 * `vxtap plan RESULT.json --target RATE [--pps RATE] [--hosts N] [--cores N]
 * [--headroom PCT] [--json]`: the capacity plan from a bench result (bench/plan.ts).
 * Markdown to stdout by default, JSON with --json. Bad input (not a result,
 * an unknown schema version, a bad flag) is one line on stderr and exit 2.
 */
import { Command, Option } from 'commander';
import { planCapacity, parsePlanFlags, PlanInputError, renderPlanMarkdown, type PlanFlags } from '../../bench/plan.js';
import { loadResult, ResultInputError } from '../../bench/report/migrate.js';

/**
 * Plan flags with their environment mirrors under `envPrefix`. `plan` and
 * `report` spell them --target --pps --hosts --cores --headroom; `bench`
 * (where --hosts names SSH hosts) spells them --target --target-pps
 * --target-hosts --target-cores --target-headroom.
 */
export function addPlanOptions(cmd: Command, envPrefix: string, style: 'plan' | 'bench'): Command {
  const flag = (name: string) => (style === 'bench' && name !== 'target' ? `target-${name}` : name);
  const envName = (name: string) => `${envPrefix}_${flag(name).toUpperCase().replace(/-/g, '_')}`;
  return cmd
    .addOption(new Option('--target <rate>', `bulk rate each host must carry, e.g. 10gbit, 500mbit${style === 'bench' ? ' (adds the capacity plan to report.html)' : ''}`).env(envName('target')))
    .addOption(new Option(`--${flag('pps')} <rate>`, 'small-packet rate each host must carry too, e.g. 1mpps, 500kpps').env(envName('pps')))
    .addOption(new Option(`--${flag('hosts')} <n>`, 'hosts in the cluster (totals = per host x N)').env(envName('hosts')))
    .addOption(new Option(`--${flag('cores')} <n>`, 'cores per host (the plan shows what is left for the workload)').env(envName('cores')))
    .addOption(new Option(`--${flag('headroom')} <percent>`, 'capacity kept in reserve: plan for target x (1 + PCT/100)').env(envName('headroom')));
}

/** The plan flags of parsed options in `style`'s spelling, or null when none was given. */
export function planFlagsOf(o: Record<string, unknown>, style: 'plan' | 'bench' = 'plan'): PlanFlags | null {
  const f: PlanFlags = {};
  for (const k of ['target', 'pps', 'hosts', 'cores', 'headroom'] as const) {
    const v = style === 'bench' && k !== 'target' ? o[`target${k[0].toUpperCase()}${k.slice(1)}`] : o[k];
    if (typeof v === 'string') f[k] = v;
  }
  return Object.keys(f).length ? f : null;
}

/** Print a CLI input error and exit 2; rethrow anything else. */
export function exitOnInputError(cmd: string, err: unknown): never {
  if (err instanceof ResultInputError || err instanceof PlanInputError) {
    process.stderr.write(`vxtap ${cmd}: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

/** Register `plan` on the program. */
export function register(program: Command): void {
  const cmd = program
    .command('plan')
    .description('Capacity plan from a bench result: which overlays carry RATE per host, and at what cost in cores.')
    .argument('<result>', 'result.json of a vxtap bench run');
  addPlanOptions(cmd, 'VXTAP_PLAN', 'plan')
    .addOption(new Option('--json', 'print the plan as JSON').env('VXTAP_PLAN_JSON'))
    .addHelpText(
      'after',
      `
Per mode: whether the target is within what the run measured ("not shown by this run" otherwise;
never extrapolated), cores at the target from measured CPU-s per Gbit and per Mpkt (dataplane and
kernel apart, steal shown), cores left of --cores, latency added over bare, inner MTU, cluster totals.
Exit status: 0, 2 bad input.`,
    )
    .action((file: string, o: Record<string, unknown>) => {
      try {
        const flags = planFlagsOf(o) ?? {};
        const req = parsePlanFlags(flags);
        const plan = planCapacity(loadResult(file), req);
        process.stdout.write(o.json ? `${JSON.stringify(plan, null, 2)}\n` : renderPlanMarkdown(plan));
      } catch (err) {
        exitOnInputError('plan', err);
      }
    });
}
