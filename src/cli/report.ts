/**
 * `vxtap report RESULT.json [MORE.json ...] [--out FILE] [--history DIR] [plan flags]`:
 * render report.html for a result of any schema version (migrated on read),
 * or, for several results, the comparison page (side by side, and a trend
 * with change points when the runs form a history). One result: written
 * beside it as report.html unless --out says otherwise (`--out -` = stdout).
 * The plan flags add the capacity plan; without them a plan stored by `vxtap
 * bench --target` is used. `--history DIR` alone renders the history page of
 * DIR (every environment group's trend, change points marked and listed;
 * history.html); with one RESULT it adds a "History" section to its report.
 */
import { Command, Option } from 'commander';
import path from 'node:path';
import { writeFileAtomic } from '../../bench/state.js';
import { parsePlanFlags, PlanInputError } from '../../bench/plan.js';
import { renderComparisonHtml } from '../../bench/report/compare.js';
import { loadResult, ResultInputError } from '../../bench/report/migrate.js';
import { historySectionFor, renderHistoryPageFor, renderReportFor } from '../../bench/report/write.js';
import { addPlanOptions, exitOnInputError, planFlagsOf } from './plan.js';

/** Register `report` on the program. */
export function register(program: Command): void {
  const cmd = program
    .command('report')
    .description('Render report.html from a bench result (any schema version), compare several results, or draw a history of results with its change points.')
    .argument('[results...]', 'result.json files; two or more give the comparison page')
    .addOption(
      new Option('--out <file>', 'output file ("-" = stdout; default: report.html beside a single result, comparison.html for several, history.html for --history alone)').env('VXTAP_REPORT_OUT'),
    )
    .addOption(
      new Option(
        '--history <dir>',
        'directory of results (searched recursively for result.json): alone, the trend of each environment group with its change points; with one result, a History section in its report',
      ).env('VXTAP_REPORT_HISTORY'),
    );
  addPlanOptions(cmd, 'VXTAP_REPORT', 'plan')
    .addHelpText(
      'after',
      `
The page is one self-contained file (SVG charts, no scripts, no network).
--history: change points per mode and metric by E-divisive means, as vxtap bench
history finds them, marked on each trend chart and listed per environment group
(the run where the level changed, median before -> after, better or worse).
Exit status: 0, 2 bad input (a result that cannot be read; a history directory
that is missing, holds no result.json, or holds a file that is not a result).`,
    )
    .action((files: string[], o: Record<string, unknown>) => {
      const history = typeof o.history === 'string' ? o.history : null;
      let html: string;
      try {
        const flags = planFlagsOf(o);
        if (flags) parsePlanFlags(flags); // validate before reading anything
        if (files.length === 0 && history === null) throw new ResultInputError('give one or more result.json files, or --history DIR');
        if (history !== null && files.length > 1) throw new ResultInputError(`--history ${history} takes one result (a History section in its report) or none (the history page), not ${files.length}`);
        if (files.length === 0 && history !== null) {
          if (flags) throw new PlanInputError('--target and the other plan flags apply to one result, not a history');
          html = renderHistoryPageFor(history);
        } else {
          const results = files.map((f) => loadResult(f));
          if (results.length === 1) html = renderReportFor(results[0], flags ?? undefined, history !== null ? [historySectionFor(history, results[0])] : []);
          else {
            if (flags) throw new PlanInputError('--target and the other plan flags apply to one result, not a comparison');
            html = renderComparisonHtml(results, { sources: files });
          }
        }
      } catch (err) {
        exitOnInputError('report', err);
      }
      const out = typeof o.out === 'string' ? o.out : files.length === 1 ? path.join(path.dirname(files[0]), 'report.html') : files.length === 0 ? 'history.html' : 'comparison.html';
      if (out === '-') process.stdout.write(html);
      else {
        writeFileAtomic(path.resolve(out), html);
        process.stderr.write(`${out} (${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB)\n`);
      }
    });
}
