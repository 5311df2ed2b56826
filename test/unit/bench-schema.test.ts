import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { derive, type BenchResult } from '../../bench/result.js';
import { renderSummaryMarkdown, renderTerminalSummary } from '../../bench/summary.js';
import { validate, validateResult } from '../../bench/validate.js';
import { percentilesOf } from '../../bench/rr.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'bench');
// A real --quick result of all five modes from this machine.
const golden = (): BenchResult => JSON.parse(readFileSync(path.join(fixtures, 'golden-result.json'), 'utf8')) as BenchResult;

describe('result schema', () => {
  it('accepts a real result', () => {
    expect(validateResult(golden())).toEqual([]);
  });

  it('names the path of a violation', () => {
    const r = golden() as unknown as Record<string, unknown>;
    (r.samples as Record<string, unknown>[])[0].round = 0;
    delete r.runId;
    const errs = validateResult(r);
    expect(errs).toContain('$: missing required property "runId"');
    expect(errs.some((e) => e.startsWith('$.samples[0].round: 0 < minimum 1'))).toBe(true);
    expect(validateResult({ ...golden(), schemaVersion: 2 })).toContain('$.schemaVersion: expected 1');
  });

  it('validator handles types, enums, anyOf, $ref and additionalProperties', () => {
    const schema = {
      $defs: { pos: { type: 'integer', minimum: 1 } },
      type: 'object',
      required: ['a'],
      additionalProperties: false,
      properties: { a: { $ref: '#/$defs/pos' }, b: { enum: ['x', 'y'] }, c: { anyOf: [{ type: 'null' }, { type: 'string', pattern: '^v' }] } },
    };
    expect(validate({ a: 2, b: 'x', c: null }, schema)).toEqual([]);
    expect(validate({ a: 2, c: 'vv' }, schema)).toEqual([]);
    expect(validate({ a: 1.5 }, schema)[0]).toMatch(/expected integer/);
    expect(validate({ a: 1, b: 'z' }, schema)[0]).toMatch(/one of/);
    expect(validate({ a: 1, c: 'w' }, schema)[0]).toMatch(/anyOf/);
    expect(validate({ a: 1, d: 1 }, schema)[0]).toMatch(/unexpected property "d"/);
  });
});

describe('derived figures and rendering', () => {
  it('re-deriving from the raw samples reproduces the stored derived block', () => {
    const r = golden();
    expect(JSON.parse(JSON.stringify(derive(r)))).toEqual(r.derived);
  });

  it('every available mode has throughput and a latency histogram', () => {
    const r = golden();
    for (const m of r.modes.filter((x) => x.available)) {
      const s = r.samples.find((x) => x.mode === m.id)!;
      expect(s.tcp1!.receivedBps).toBeGreaterThan(0);
      const p = percentilesOf(s.latencyIdle!.histogram);
      expect(p.count).toBe(s.latencyIdle!.percentiles.count);
      expect(p.p50Us).toBeGreaterThan(0);
    }
  });

  it('renders summary.md from the JSON exactly as the golden file', () => {
    expect(renderSummaryMarkdown(golden())).toBe(readFileSync(path.join(fixtures, 'golden-summary.md'), 'utf8'));
  });

  it('records the TCP congestion control: valid in the schema, named in summary.md (older results without it render as before)', () => {
    const r = golden();
    if (!r.environment) throw new Error('golden result has an environment');
    r.environment.tcpCongestionControl = 'bbr';
    expect(validateResult(r)).toEqual([]);
    expect(renderSummaryMarkdown(r)).toContain('TCP congestion control bbr, baseline steal');
    expect(renderSummaryMarkdown(golden())).not.toContain('congestion');
  });

  it('summary has one table per measurement and the claims table', () => {
    const md = renderSummaryMarkdown(golden());
    for (const h of ['## Modes', '## TCP throughput', '## UDP NDR/PDR', '## Latency idle', '## Latency loaded', '## CPU', '## MTU and fragmentation', '## Claims']) expect(md).toContain(h);
    expect(md).toMatch(/\| ovs-gre \|/);
    const claims = md.slice(md.indexOf('## Claims'));
    expect(claims).toMatch(/1542/);
    expect(claims).toMatch(/\| (held|not held|n\/a) \|/);
  });

  it('the terminal summary lists every mode and claim', () => {
    const r = golden();
    const t = renderTerminalSummary(r, '/x');
    for (const m of r.modes) expect(t).toContain(m.id);
    expect(t.match(/^claim \[/gm)?.length).toBe(r.derived.claims.length);
  });

  it('ratios to bare are round-by-round medians', () => {
    const r = golden();
    const kv = r.derived.byMode['kernel-vxlan'].tcp1Gbps;
    const bare = r.derived.byMode.bare.tcp1Gbps;
    const perRound = kv.perRound.map((v, i) => v! / bare.perRound[i]!).sort((a, b) => a - b);
    expect(kv.ratioToBare!.median).toBeCloseTo(perRound[Math.floor(perRound.length / 2)], 9);
    expect(kv.ratioToBare!.n).toBe(3);
    expect(bare.ratioToBare!.median).toBe(1);
  });
});
