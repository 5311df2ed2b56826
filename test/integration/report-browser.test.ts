/**
 * report.html in a real browser: Debian's headless Chromium, started inside a
 * network namespace this test creates (prefix vxrb, nothing but a loopback
 * that stays down), driven by playwright-core over the DevTools pipe. Each
 * report is opened from disk with every non-file request aborted and
 * recorded: the test fails on any such request, on console or page errors, on
 * a chart without data, and on horizontal scrolling at 1280 px. Screenshots
 * are kept under test-artifacts/report/ (VXTAP_REPORT_ARTIFACTS overrides).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserUnavailableReason, launchIsolated, type IsolatedBrowser } from '../../bench/report/browser.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const main = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const fixtures = path.join(repo, 'test', 'fixtures');
const current = path.join(fixtures, 'report', 'v1-current.json');
const older = path.join(fixtures, 'bench', 'golden-result.json');
const withMeasures = path.join(fixtures, 'report-measures', 'result.json');
const skipReason = browserUnavailableReason() ?? (existsSync(main) ? null : 'needs a build (npx tsc -p tsconfig.json)');
const artifacts = process.env.VXTAP_REPORT_ARTIFACTS ?? path.join(repo, 'test-artifacts', 'report');
const ns = `vxrb${process.pid % 100000}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vxrb-'));

function cli(args: string[]): string {
  return execFileSync(process.execPath, [main, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * The little of the DOM that the page-side function in `facts()` uses. The
 * project compiles without lib "dom" (it runs on Node), so the one function
 * that runs in the browser declares what it touches here, in this module only.
 */
interface PageElement {
  textContent: string | null;
  scrollWidth: number;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>;
  getBoundingClientRect(): { width: number };
}
declare const document: PageElement & { documentElement: PageElement; getElementById(id: string): PageElement | null };

/** What the page says about itself. */
interface PageFacts {
  charts: { id: string; points: number; svgMarks: number; rows: number; widthPx: number; hoverTitles: number }[];
  noData: string[];
  scrollWidth: number;
  embeddedRunIds: string[];
  brokenAnchors: string[];
  scripts: number;
  externalRefs: string[];
}

async function facts(b: IsolatedBrowser, file: string, shot: string): Promise<{ f: PageFacts; log: import('../../bench/report/browser.js').PageLog }> {
  const { page, log } = await b.open(file, 1280, 900);
  try {
    const f = await page.evaluate(() => {
      const data = document.getElementById('vxtap-result')?.textContent ?? 'null';
      const parsed = JSON.parse(data) as { runId?: string } | { runId: string }[] | null;
      return {
        charts: [...document.querySelectorAll('figure.chart')].map((fig) => ({
          id: fig.getAttribute('data-chart') ?? '',
          points: Number(fig.getAttribute('data-points')),
          svgMarks: fig.querySelectorAll('svg path, svg rect, svg circle').length,
          rows: fig.querySelectorAll('details table tbody tr').length,
          widthPx: fig.querySelector('svg')?.getBoundingClientRect().width ?? 0,
          hoverTitles: fig.querySelectorAll('svg title').length,
        })),
        noData: [...document.querySelectorAll('[data-nodata]')].map((e) => e.getAttribute('data-nodata') ?? ''),
        scrollWidth: document.documentElement.scrollWidth,
        embeddedRunIds: Array.isArray(parsed) ? parsed.map((x) => x.runId) : parsed?.runId ? [parsed.runId] : [],
        brokenAnchors: [...document.querySelectorAll('nav a')].map((a) => a.getAttribute('href') ?? '').filter((h) => !document.querySelector(h)),
        scripts: document.querySelectorAll('script:not([type="application/json"])').length,
        externalRefs: [...document.querySelectorAll('[src], link[href], image')].map((e) => e.getAttribute('src') ?? e.getAttribute('href') ?? '').filter((u) => !u.startsWith('data:')),
      };
    });
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, `${shot}-top.png`) });
    await page.screenshot({ path: path.join(artifacts, `${shot}-full.png`), fullPage: true });
    return { f, log };
  } finally {
    await page.context().close();
  }
}

function expectClean(log: import('../../bench/report/browser.js').PageLog, f: PageFacts): void {
  expect(log.blockedRequests, 'requests that left the page').toEqual([]);
  expect(log.consoleErrors, 'console errors').toEqual([]);
  expect(log.pageErrors, 'page errors').toEqual([]);
  expect(f.scripts, 'executable scripts').toBe(0);
  expect(f.externalRefs, 'external references').toEqual([]);
  expect(f.brokenAnchors, 'nav links without a target').toEqual([]);
  expect(f.scrollWidth, 'horizontal scrolling at 1280 px').toBeLessThanOrEqual(1280);
  for (const c of f.charts) {
    expect(c.points, `${c.id}: data points`).toBeGreaterThan(0);
    expect(c.svgMarks, `${c.id}: SVG marks`).toBeGreaterThan(c.points > 0 ? 5 : 0);
    expect(c.rows, `${c.id}: rows in its numbers table`).toBeGreaterThan(0);
    expect(c.hoverTitles, `${c.id}: values on hover`).toBeGreaterThan(0);
    expect(c.widthPx, `${c.id}: drawn width at 1280 px`).toBeGreaterThanOrEqual(500); // two charts a row, each legible
  }
}

describe.skipIf(skipReason !== null)(`report.html in headless Chromium${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let b: IsolatedBrowser;
  beforeAll(async () => {
    b = await launchIsolated(ns);
  }, 90_000);
  afterAll(async () => {
    await (b as IsolatedBrowser | undefined)?.close(); // undefined when the launch failed
    rmSync(tmp, { recursive: true, force: true });
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(ns);
  });

  it('the browser has no network: only a loopback, down', () => {
    const links = execFileSync('ip', ['netns', 'exec', ns, 'ip', '-o', 'link'], { encoding: 'utf8' }).trim().split('\n');
    expect(links).toHaveLength(1);
    expect(links[0]).toMatch(/: lo: .*state DOWN/);
  });

  it('a page that reaches for the network is caught (the check itself works)', async () => {
    const file = path.join(tmp, 'leaky.html');
    writeFileSync(file, '<!doctype html><title>leaky</title><img src="http://198.18.0.9/pixel.png"><script>console.error("boom")</script>');
    const { page, log } = await b.open(file);
    await page.context().close();
    expect(log.blockedRequests).toEqual(['http://198.18.0.9/pixel.png']);
    expect(log.consoleErrors.length).toBeGreaterThan(0);
  });

  it('a current result with a plan: every chart drawn, nothing fetched, no errors, fits 1280 px', async () => {
    const file = path.join(tmp, 'current.html');
    cli(['report', current, '--out', file]); // the plan comes from the result's options.plan (bench --target)
    const { f, log } = await facts(b, file, 'current');
    expectClean(log, f);
    expect(f.charts.map((c) => c.id).sort()).toEqual(
      ['cpu-tcp1', 'cpu-tcpN', 'intervals-tcp1', 'intervals-tcpN', 'latency-idle', 'latency-loaded', 'pps-ndr', 'pps-pdr', 'tcp-tcp1Gbps', 'tcp-tcpNGbps'].sort(),
    );
    expect(f.noData).toEqual([]);
    expect(f.embeddedRunIds).toEqual([JSON.parse(readFileSync(current, 'utf8')).runId]);
    const html = readFileSync(file, 'utf8');
    expect(html).toContain('id="plan"');
    expect(html).toContain('not shown by this run');
  });

  it('an older version-1 result (no iperf3 intervals): charts drawn, the missing series says so', async () => {
    const file = path.join(tmp, 'older.html');
    cli(['report', older, '--out', file]);
    const { f, log } = await facts(b, file, 'older');
    expectClean(log, f);
    expect(f.charts.length).toBe(8);
    expect(f.noData.sort()).toEqual(['intervals-tcp1', 'intervals-tcpN']);
  });

  it('a result with the claim measures: "What containers see" drawn, stalled transfers marked, no errors', async () => {
    const file = path.join(tmp, 'measures.html');
    cli(['report', withMeasures, '--out', file]);
    const { f, log } = await facts(b, file, 'measures');
    expectClean(log, f);
    expect(f.charts.map((c) => c.id)).toEqual(expect.arrayContaining(['redis-rps', 'redis-rtt', 'contention-tcp1']));
    expect(f.noData).toEqual([]);
    expect(readFileSync(file, 'utf8')).toMatch(/<a href="#containers">[\s\S]*data-outcome="stalls">stalled</);
  });

  it('an incomplete run renders with its reasons', async () => {
    const r = JSON.parse(readFileSync(current, 'utf8'));
    r.status = 'incomplete';
    r.incompleteReasons = ['round 2 vxtap: setup: vxtap up not ready within 20000 ms'];
    r.samples = r.samples.filter((s: { round: number; mode: string }) => !(s.round >= 2 && s.mode === 'vxtap'));
    const src = path.join(tmp, 'incomplete.json');
    writeFileSync(src, JSON.stringify(r));
    const file = path.join(tmp, 'incomplete.html');
    cli(['report', src, '--out', file]);
    const { f, log } = await facts(b, file, 'incomplete');
    expectClean(log, f);
    expect(readFileSync(file, 'utf8')).toContain('vxtap up not ready');
  });

  it('three runs of one machine: side by side and a trend', async () => {
    const srcs = [0, 1, 2].map((i) => {
      const r = JSON.parse(readFileSync(current, 'utf8'));
      r.runId = `history-${i}`;
      r.startedAt = `2026-12-0${i + 1}T10:00:00.000Z`;
      const p = path.join(tmp, `h${i}.json`);
      writeFileSync(p, JSON.stringify(r));
      return p;
    });
    const file = path.join(tmp, 'compare.html');
    cli(['report', ...srcs, '--out', file]);
    const { f, log } = await facts(b, file, 'comparison');
    expectClean(log, f);
    expect(f.charts.filter((c) => c.id.startsWith('compare-')).length).toBeGreaterThanOrEqual(5);
    expect(f.charts.filter((c) => c.id.startsWith('trend-')).length).toBeGreaterThanOrEqual(5);
    expect(f.embeddedRunIds).toEqual(['history-0', 'history-1', 'history-2']);
  });
});
