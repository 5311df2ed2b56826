/**
 * report.html's "What containers see" section (bench/report/measures.ts):
 * rendered from a result with the opt-in claim measures (--measure
 * mtu-mismatch,redis, --contention, --underlay-offloads), its tables carry
 * the result's figures, stalled transfers stand out, text from the result is
 * escaped, and a run without any of the measures has neither the section nor
 * its nav link. The fixture is synthetic (see its make-result.mjs).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { medianOf, overheadGrowthPerRound } from '../../bench/contention.js';
import { renderReportHtml } from '../../bench/report/html.js';
import { fmtNum } from '../../bench/report/data.js';
import { hasContainerMeasures, measuresSection, OUTCOME_LABEL, runSetupLine } from '../../bench/report/measures.js';
import { loadResult } from '../../bench/report/migrate.js';
import type { BenchResult } from '../../bench/result.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const withMeasures = path.join(repo, 'test', 'fixtures', 'report-measures', 'result.json');
const current = path.join(repo, 'test', 'fixtures', 'report', 'v1-current.json');
const older = path.join(repo, 'test', 'fixtures', 'bench', 'golden-result.json');
const fixture = loadResult(withMeasures);
const COLORS = {};

/** Text of an HTML fragment (tags dropped, the entities esc() writes decoded). */
function text(html: string): string {
  return html
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

/** Header and rows (cell HTML) of the table with class `cls` in `html`. */
function table(html: string, cls: string): { head: string[]; rows: string[][] } {
  const t = new RegExp(`<table class="${cls}">([\\s\\S]*?)</table>`).exec(html)?.[1];
  if (!t) throw new Error(`no table.${cls}`);
  const head = [...(/<thead>([\s\S]*?)<\/thead>/.exec(t)?.[1] ?? '').matchAll(/<th>([\s\S]*?)<\/th>/g)].map((m) => text(m[1]));
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(t)?.[1] ?? '';
  const rows = [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((tr) => [...tr[1].matchAll(/<td>([\s\S]*?)<\/td>/g)].map((m) => m[1]));
  return { head, rows };
}

/** Rows as objects keyed by header text (cell text). */
function records(html: string, cls: string): Record<string, string>[] {
  const { head, rows } = table(html, cls);
  return rows.map((r) => Object.fromEntries(head.map((h, i) => [h, text(r[i] ?? '')])));
}

/** The section of a full page, or null. */
function sectionOf(html: string): string | null {
  return /<section id="containers">[\s\S]*?<\/section>/.exec(html)?.[0] ?? null;
}

function clone(r: BenchResult): BenchResult {
  return structuredClone(r);
}

/** Drop each measurement family from a copy of the fixture. */
function without(r: BenchResult, drop: { mtu?: boolean; redis?: boolean; contention?: boolean }): BenchResult {
  const c = clone(r);
  for (const s of c.samples) {
    if (drop.mtu) delete s.mtuMismatch;
    if (drop.redis) delete s.redis;
  }
  if (drop.contention) {
    c.options.contention = null;
    c.modes = c.modes.filter((m) => !m.variant);
    c.samples = c.samples.filter((s) => !s.contention);
  }
  return c;
}

describe('the claim-measures fixture', () => {
  it('is a valid version-1 result with every measure (the reader checks the schema)', () => {
    expect(fixture.options.measure).toEqual(['standard', 'mtu-mismatch', 'redis']);
    expect(fixture.options.contention?.pct).toBe(50);
    expect(fixture.samples.filter((s) => s.mtuMismatch).length).toBe(5);
    expect(fixture.samples.filter((s) => s.redis).length).toBe(5);
    expect(fixture.derived.claims.map((c) => c.id)).toContain('contention-overhead-grows:vxtap');
  });
});

describe('report.html with claim measures', () => {
  const html = renderReportHtml(fixture);
  const section = sectionOf(html) ?? '';

  it('has the section between the MTU sweep and the claims, a nav link to it, and stays a self-contained page under 1 MB', () => {
    expect(section).not.toBe('');
    expect(html).toContain('<a href="#containers">Containers</a>');
    expect(html.indexOf('<a href="#mtu">')).toBeLessThan(html.indexOf('<a href="#containers">'));
    expect(html.indexOf('<section id="mtu">')).toBeLessThan(html.indexOf('<section id="containers">'));
    expect(html.indexOf('<section id="containers">')).toBeLessThan(html.indexOf('<section id="claims">'));
    expect(section).toContain('<h2>What containers see</h2>');
    expect(html).not.toMatch(/<script(?![^>]*type="application\/json")/);
    expect(html).not.toMatch(/data-points="0"/);
    expect(Buffer.byteLength(html)).toBeLessThan(1_000_000);
  });

  it('notes the endpoints, the underlay offloads and the contention next to the title', () => {
    const note = text(/<p class="muted" data-run-setup>([\s\S]*?)<\/p>/.exec(section)?.[1] ?? '');
    expect(note).toBe(runSetupLine(fixture));
    expect(note).toMatch(/^Endpoints: host to host/);
    expect(note).toContain('Underlay offloads: no-tunnel-tso');
    expect(note).toContain('A vxbka1b4au: tunnel TSO off, USO on, GRO on');
    expect(note).toContain('CPU contention: 50%');
    const pods = clone(fixture);
    pods.options.endpoints = 'pod';
    pods.options.underlayOffloads = 'full';
    delete pods.environment?.underlayOffloads;
    pods.samples[0].pods = { attach: 'bridge', mtu: 1450, hosts: [] };
    expect(runSetupLine(pods)).toMatch(/^Endpoints: pod to pod \(.*pod MTU 1450\)\. Underlay offloads: full\./);
  });

  it('MTU mismatch: one row per transfer with its outcome, time, goodput and retransmits; stalls marked', () => {
    const rows = records(section, 'mismatch');
    const cells = table(section, 'mismatch').rows;
    const expected = fixture.samples.filter((s) => s.round === 1 && s.mtuMismatch).flatMap((s) => (s.mtuMismatch?.transfers ?? []).map((t) => ({ mode: s.mode, t })));
    expect(rows).toHaveLength(expected.length);
    let mode = '';
    for (const [i, { mode: m, t }] of expected.entries()) {
      const row = rows[i];
      mode = row.mode || mode; // the mode is written on its first row only
      expect(mode).toBe(m);
      expect(row.PMTUD).toBe(t.pmtud);
      expect(row.outcome.startsWith(OUTCOME_LABEL[t.outcome])).toBe(true);
      expect(cells[i][4]).toContain(`class="mm mm-${t.outcome}"`);
      expect(row.retransmits).toBe(String(t.evidence.retransSegsA));
      if (t.outcome === 'completes' || t.outcome === 'fragments') {
        expect(row.seconds).toBe(t.seconds?.toFixed(3));
        expect(row['goodput Mbit/s']).toBe(fmtNum((t.goodputBps ?? 0) / 1e6));
      } else {
        expect(row['goodput Mbit/s']).toBe('—');
        expect(row.seconds).toMatch(/no ACK for 2\.5 s/);
      }
    }
    const stalled = expected.filter((x) => x.t.outcome === 'stalls');
    expect(stalled.map((x) => x.mode)).toEqual(['ovs-gre', 'ovs-gre', 'ovs-vxlan', 'ovs-vxlan']);
    expect(section.match(/data-outcome="stalls">stalled</g)).toHaveLength(stalled.length);
    expect(text(section)).toContain('Black hole in ovs-gre, ovs-vxlan: at least one transfer stalled.');
    expect(text(section)).toMatch(/A container whose interface keeps the underlay's 1500 B MTU/);
    expect(rows.find((r) => r.mode === 'kernel-vxlan')?.['inner MTU → forced (by)']).toBe('1450 → 1500 (route)');
  });

  it('redis: a row per run with GET/SET requests/s and percentiles; the requests/s and RTT-sweep charts', () => {
    const rows = records(section, 'redis');
    const runs = fixture.samples.filter((s) => s.round === 1 && s.redis).flatMap((s) => (s.redis?.runs ?? []).map((run) => ({ mode: s.mode, run })));
    expect(rows).toHaveLength(runs.length);
    for (const [i, { mode, run }] of runs.entries()) {
      expect(rows[i].mode).toBe(mode);
      expect(rows[i]['GET req/s']).toBe(fmtNum(run.get?.rps));
      expect(rows[i]['SET req/s']).toBe(fmtNum(run.set?.rps));
      const get = run.get;
      if (!get) throw new Error(`${mode} ${run.condition}: no GET line in the fixture`);
      expect(rows[i]['GET p50 / p95 / p99 (ms)']).toBe([get.p50Ms, get.p95Ms, get.p99Ms].map((v) => v.toFixed(3)).join(' / '));
    }
    expect(rows.filter((r) => r.mode === 'vxtap').map((r) => r.condition)).toEqual(['idle', 'under load', '+1 ms RTT', '+2 ms RTT', '+3 ms RTT', '+5 ms RTT']);
    expect(rows.find((r) => r.mode === 'bare' && r.condition === 'idle')?.['GET vs bare idle']).toBe('100%');
    // 5 modes x GET/SET x idle/loaded bars; 5 modes x (idle + 4 delays) points
    expect(section).toMatch(/<figure class="chart" id="chart-redis-rps" data-chart="redis-rps" data-points="20">/);
    expect(section).toMatch(/<figure class="chart" id="chart-redis-rtt" data-chart="redis-rtt" data-points="25">/);
  });

  it('redis without the RTT sweep says why instead of drawing it', () => {
    const r = clone(fixture);
    for (const s of r.samples) {
      if (!s.redis) continue;
      s.redis.runs = s.redis.runs.filter((x) => x.condition !== 'delayed');
      s.redis.sweepSkipped = 'no netem on this kernel (Error: Specified qdisc kind is unknown.): no added-RTT sweep; undelayed figures with the measured RTT';
    }
    const html = measuresSection(r, COLORS);
    expect(html).not.toContain('chart-redis-rtt');
    expect(html).toMatch(/<p class="nodata" data-nodata="redis-rtt">No added-RTT sweep: no netem on this kernel/);
    expect(records(html, 'redis')).toHaveLength(10);
  });

  it('redis that failed before any run: the reason per mode, no empty table or chart', () => {
    const r = without(fixture, { mtu: true, contention: true });
    for (const s of r.samples) {
      if (!s.redis) continue;
      s.redis.runs = [];
      s.redis.skipped = 'host B has no redis-server (apt-get install redis-server)';
    }
    const html = measuresSection(r, COLORS);
    expect(html).toContain('id="containers-redis"');
    expect(html).not.toContain('<table');
    expect(html).not.toContain('<figure');
    expect(html).not.toContain('data-nodata');
    expect(text(html)).toContain('vxtap: host B has no redis-server (apt-get install redis-server)');
  });

  it('contention: per mode plain vs contended throughput and the growth of the deficit to bare', () => {
    const rows = records(section, 'contention');
    expect(rows.map((r) => r.mode)).toEqual(['bare', 'kernel-vxlan', 'ovs-gre', 'ovs-vxlan', 'vxtap']);
    const by = fixture.derived.byMode;
    for (const row of rows) {
      expect(row['TCP 1 stream plain (Gbit/s)']).toBe(fmtNum(by[row.mode].tcp1Gbps.summary.median));
      expect(row['under 50% CPU']).toBe(fmtNum(by[`${row.mode}@cpu50`].tcp1Gbps.summary.median));
    }
    const growth = medianOf(overheadGrowthPerRound(by, 'vxtap', 'bare', 50)) ?? NaN;
    const vx = rows.find((r) => r.mode === 'vxtap');
    expect(vx?.['deficit growth']).toContain(`+${(growth * 100).toFixed(1)} points`);
    expect(section).toMatch(/<span class="v-worse">\+\d+\.\d points<\/span>/);
    expect(rows[0]['deficit growth']).toBe('—');
    expect(section).toMatch(/<figure class="chart" id="chart-contention-tcp1" data-chart="contention-tcp1" data-points="10">/);
  });

  it('text from the result is escaped in every part', () => {
    const r = clone(fixture);
    const evil = '</td></table><img src=x onerror=alert(1)><script>alert(2)</script>';
    const s = r.samples.find((x) => x.mode === 'ovs-gre' && x.mtuMismatch);
    if (!s?.mtuMismatch || !s.redis) throw new Error('fixture lacks ovs-gre measures');
    s.mtuMismatch.transfers[1].error = evil;
    s.redis.runs[0].error = evil;
    s.redis.sweepSkipped = evil;
    if (r.options.contention) r.options.contention.method = evil;
    const v = r.samples.find((x) => x.mtuMismatch && x.mode === 'vxtap');
    if (v?.mtuMismatch) v.mtuMismatch.skipped = evil;
    const html = measuresSection(r, COLORS);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<script');
    expect(html).not.toContain('</table><img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(text(html)).toContain(`not measured: ${evil}`);
  });
});

describe('a run without claim measures', () => {
  it('has no section and no nav link (the checked-in results of earlier runs)', () => {
    for (const file of [current, older]) {
      const html = renderReportHtml(loadResult(file));
      expect(sectionOf(html), file).toBeNull();
      expect(html).not.toContain('href="#containers"');
      expect(html).not.toContain('data-run-setup');
    }
  });
  it('--endpoints pod or --underlay-offloads alone add no section (they change how the run was made, not what it measured)', () => {
    const r = without(fixture, { mtu: true, redis: true, contention: true });
    r.options.endpoints = 'pod';
    expect(hasContainerMeasures(r)).toBe(false);
    expect(measuresSection(r, COLORS)).toBe('');
  });
  it('each measurement alone gives the section with only its part', () => {
    const parts = { mtu: 'containers-mtu', redis: 'containers-redis', contention: 'containers-contention' } as const;
    for (const keep of Object.keys(parts) as (keyof typeof parts)[]) {
      const r = without(fixture, { mtu: keep !== 'mtu', redis: keep !== 'redis', contention: keep !== 'contention' });
      const html = measuresSection(r, COLORS);
      expect(html, keep).toMatch(/^<section id="containers">/);
      for (const [k, id] of Object.entries(parts)) expect(html.includes(`id="${id}"`), `${keep}: ${k}`).toBe(k === keep);
    }
  });
});
