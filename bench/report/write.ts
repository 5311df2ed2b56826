/**
 * The report as a run writes it: report.html beside result.json, with the
 * capacity plan when the run was given --target (options.plan); and the
 * history views (`--history DIR`): a "History" section in one run's report,
 * or the page of a whole history directory.
 */
import path from 'node:path';
import { writeFileAtomic } from '../state.js';
import type { BenchResult } from '../result.js';
import { analyzeHistory, loadHistoryDir } from '../history.js';
import { parsePlanFlags, planCapacity, storedPlanFlags, type PlanFlags } from '../plan.js';
import { COMPARE_KEYS, historySectionHtml, renderHistoryHtml } from './compare.js';
import { renderReportHtml, type ReportOptions } from './html.js';

/** Render report.html for `r`, with the plan for `flags` (default: the flags stored in the result) and any extra sections (a CI comparison, the history). */
export function renderReportFor(r: BenchResult, flags: PlanFlags | null = storedPlanFlags(r), extraSections: NonNullable<ReportOptions['extraSections']> = []): string {
  const plan = flags ? planCapacity(r, parsePlanFlags(flags)) : null;
  return renderReportHtml(r, { plan, extraSections });
}

/** Write `<dir>/report.html`; returns its path and size in bytes. */
export function writeReportHtml(dir: string, r: BenchResult): { file: string; bytes: number } {
  const html = renderReportFor(r);
  const file = path.join(dir, 'report.html');
  writeFileAtomic(file, html);
  return { file, bytes: Buffer.byteLength(html) };
}

/**
 * The "History" section of `r`'s report: the trend of `r`'s environment group
 * over the results under `dir`, `r` included, with change points drawn and
 * listed (`metrics`: the keys charted, default COMPARE_KEYS). An empty `dir`
 * is a history of `r` alone (the first CI run); a missing `dir` or a file that
 * is not a readable result throws ResultInputError naming the path.
 */
export function historySectionFor(dir: string, r: BenchResult, metrics: readonly string[] = COMPARE_KEYS): { id: string; title: string; html: string } {
  const { entries, skipped } = loadHistoryDir(dir, { allowEmpty: true });
  return historySectionHtml(entries, r, { metrics, source: dir, skipped });
}

/** The page of the history under `dir` (every environment group's trend and change points); ResultInputError names a bad path. */
export function renderHistoryPageFor(dir: string, metrics: readonly string[] = COMPARE_KEYS): string {
  const { entries, skipped } = loadHistoryDir(dir);
  return renderHistoryHtml(analyzeHistory(entries, { metrics: [...metrics] }, skipped), { metrics, source: dir });
}
