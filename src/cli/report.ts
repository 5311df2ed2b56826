/**
 * `vxtap report RESULT.json [MORE.json ...] [--out FILE] [plan flags]`: render
 * report.html for a result of any schema version (migrated on read), or, for
 * several results, the comparison page (side by side, and a trend when the
 * runs form a history). One result: written beside it as report.html unless
 * --out says otherwise (`--out -` = stdout). The plan flags add the capacity
 * plan; without them a plan stored by `vxtap bench --target` is used.
 */
import { Command, Option } from 'commander';
import path from 'node:path';
import { writeFileAtomic } from '../../bench/state.js';
import { parsePlanFlags, PlanInputError } from '../../bench/plan.js';
import { renderComparisonHtml } from '../../bench/report/compare.js';
import { loadResult } from '../../bench/report/migrate.js';
import { renderReportFor } from '../../bench/report/write.js';
import { addPlanOptions, exitOnInputError, planFlagsOf } from './plan.js';

/** Register `report` on the program. */
export function register(program: Command): void {
  const cmd = program
    .command('report')
    .description('Render report.html from a bench result (any schema version), or compare several results.')
    .argument('<results...>', 'result.json files; two or more give the comparison page')
    .addOption(new Option('--out <file>', 'output file ("-" = stdout; default: report.html beside a single result, comparison.html for several)').env('VXTAP_REPORT_OUT'));
  addPlanOptions(cmd, 'VXTAP_REPORT', 'plan')
    .addHelpText('after', '\nThe page is one self-contained file (SVG charts, no scripts, no network). Exit status: 0, 2 bad input.')
    .action((files: string[], o: Record<string, unknown>) => {
      let html: string;
      try {
        const flags = planFlagsOf(o);
        if (flags) parsePlanFlags(flags); // validate before reading anything
        const results = files.map((f) => loadResult(f));
        if (results.length === 1) html = renderReportFor(results[0], flags ?? undefined);
        else {
          if (flags) throw new PlanInputError('--target and the other plan flags apply to one result, not a comparison');
          html = renderComparisonHtml(results, { sources: files });
        }
      } catch (err) {
        exitOnInputError('report', err);
      }
      const out = typeof o.out === 'string' ? o.out : files.length === 1 ? path.join(path.dirname(files[0]), 'report.html') : 'comparison.html';
      if (out === '-') process.stdout.write(html);
      else {
        writeFileAtomic(path.resolve(out), html);
        process.stderr.write(`${out} (${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB)\n`);
      }
    });
}
