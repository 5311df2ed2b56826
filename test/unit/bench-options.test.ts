import { describe, expect, it } from 'vitest';
import { parseModeSpec } from '../../bench/modes.js';
import { validateOptions, type BenchOptions } from '../../bench/run.js';
import { netemArgs } from '../../bench/topology.js';
import { estimateModeRoundSeconds, PROFILES } from '../../bench/profile.js';

const base: BenchOptions = { profile: 'default', modes: ['bare'], mtu: 1500, netem: {}, outDir: '/tmp/x', pin: 'cross', progress: false, argv: [] };

describe('bench options', () => {
  it('parses mode specs with vxtap sub-variants', () => {
    expect(parseModeSpec('bare')).toEqual({ id: 'bare', kind: 'bare', params: {} });
    expect(parseModeSpec('vxtap:workers=2,mtu=1400')).toEqual({ id: 'vxtap:workers=2,mtu=1400', kind: 'vxtap', params: { workers: '2', mtu: '1400' } });
    expect(() => parseModeSpec('wireguard')).toThrow(/unknown mode "wireguard"/);
    expect(() => parseModeSpec('bare:x=1')).toThrow(/takes no parameters/);
    expect(() => parseModeSpec('vxtap:workers')).toThrow(/bad parameter/);
  });

  it('validates each field with a message naming it', () => {
    expect(validateOptions(base)).toBeNull();
    expect(validateOptions({ ...base, mtu: 100 })?.message).toMatch(/--mtu/);
    expect(validateOptions({ ...base, rounds: 0 })?.message).toMatch(/--rounds/);
    expect(validateOptions({ ...base, modes: [] })?.message).toMatch(/--modes/);
    expect(validateOptions({ ...base, modes: ['bare', 'bare'] })?.message).toMatch(/twice/);
    expect(validateOptions({ ...base, netem: { delay: '2 ms' } })?.message).toMatch(/--delay/);
    expect(validateOptions({ ...base, netem: { loss: '0.1' } })?.message).toMatch(/--loss/);
    expect(validateOptions({ ...base, netem: { rate: 'fast' } })?.message).toMatch(/--rate/);
    expect(validateOptions({ ...base, pin: 'x' as never })?.message).toMatch(/--pin/);
  });

  it('builds netem arguments only when asked', () => {
    expect(netemArgs({})).toBeNull();
    expect(netemArgs({ delay: '2ms', loss: '0.1%', rate: '1gbit' })).toEqual(['delay', '2ms', 'loss', '0.1%', 'rate', '1gbit']);
  });

  it('profiles fit their time budgets on paper (5 modes, ~1-3 s setup each)', () => {
    const total = (p: keyof typeof PROFILES) => {
      const pr = PROFILES[p];
      return 5 * (estimateModeRoundSeconds(pr, true) + 2) + 5 * (pr.rounds - 1) * (estimateModeRoundSeconds(pr, false) + 2);
    };
    expect(total('quick')).toBeLessThan(90);
    expect(total('default')).toBeLessThan(600);
    expect(PROFILES.full.udpTrialSeconds).toBe(60);
    expect(PROFILES.full.udpFrameSizes).toEqual([64, 128, 256, 512, 1024, 1280, 1518]);
  });
});
