/**
 * The report as a run writes it: report.html beside result.json, with the
 * capacity plan when the run was given --target (options.plan).
 */
import path from 'node:path';
import { writeFileAtomic } from '../state.js';
import type { BenchResult } from '../result.js';
import { parsePlanFlags, planCapacity, storedPlanFlags, type PlanFlags } from '../plan.js';
import { renderReportHtml } from './html.js';

/** Render report.html for `r`, with the plan for `flags` (default: the flags stored in the result). */
export function renderReportFor(r: BenchResult, flags: PlanFlags | null = storedPlanFlags(r)): string {
  const plan = flags ? planCapacity(r, parsePlanFlags(flags)) : null;
  return renderReportHtml(r, { plan });
}

/** Write `<dir>/report.html`; returns its path and size in bytes. */
export function writeReportHtml(dir: string, r: BenchResult): { file: string; bytes: number } {
  const html = renderReportFor(r);
  const file = path.join(dir, 'report.html');
  writeFileAtomic(file, html);
  return { file, bytes: Buffer.byteLength(html) };
}
