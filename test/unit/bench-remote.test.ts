/**
 * Pure parts of `vxtap bench --hosts`: the protocol's line splitter (checked
 * against splitting the whole text at once, under random chunking), frame
 * parsing, host destinations, shell quoting, overlay addresses, option
 * validation and the build comparison.
 */
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildMismatch, describeBuild, LineSplitter, parseFrame, type BuildId } from '../../bench/remote/protocol.js';
import { agentCommand, parseHostDest, shQuote } from '../../bench/remote/ssh.js';
import { overlayAddresses, validateRemoteOptions, REMOTE_DEFAULTS, type RemoteOptions } from '../../bench/remote/pair.js';

describe('LineSplitter', () => {
  it('gives the same lines as splitting the whole text, however the text is chunked', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom('a', 'b', '{', '}', '"', ' ', '\n') }), { maxLength: 20 }), fc.array(fc.nat(30), { maxLength: 20 }), (parts, cuts) => {
        const text = parts.join('');
        const s = new LineSplitter();
        const got: string[] = [];
        let at = 0;
        for (const c of cuts) {
          got.push(...s.push(text.slice(at, at + c)));
          at += c;
        }
        got.push(...s.push(`${text.slice(at)}\n`));
        const want = `${text}\n`
          .split('\n')
          .slice(0, -1)
          .filter((l) => l.trim().length > 0);
        expect(got).toEqual(want);
      }),
    );
  });

  it('refuses a line longer than its bound instead of growing without end', () => {
    const s = new LineSplitter(10);
    expect(() => s.push('x'.repeat(11))).toThrow(/longer than 10 bytes/);
  });
});

describe('parseFrame', () => {
  it('takes a JSON object and names what is wrong otherwise', () => {
    expect(parseFrame('{"id":1,"op":"clock"}')).toEqual({ id: 1, op: 'clock' });
    expect(() => parseFrame('nope')).toThrow(/not JSON/);
    expect(() => parseFrame('[1]')).toThrow(/not an object/);
    expect(() => parseFrame('null')).toThrow(/not an object/);
  });
});

describe('parseHostDest', () => {
  it.each([
    ['local', { local: true, dest: 'local', port: null }],
    ['kvm1', { local: false, dest: 'kvm1', port: null }],
    ['root@kvm1', { local: false, dest: 'root@kvm1', port: null }],
    ['root@kvm1:2222', { local: false, dest: 'root@kvm1', port: 2222 }],
    ['10.0.0.2:22', { local: false, dest: '10.0.0.2', port: 22 }],
  ])('%s', (text, want) => {
    expect(parseHostDest(text)).toMatchObject(want);
  });

  it.each(['', '-oProxyCommand=x', 'a b', 'kvm1:0', 'kvm1:70000'])('refuses %j', (text) => {
    expect(() => parseHostDest(text)).toThrow(/--hosts/);
  });
});

describe('shQuote', () => {
  it('round-trips any string through sh', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 30 }).filter((s) => !s.includes('\0')),
        (s) => {
          const r = spawnSync('sh', ['-c', `printf '%s' ${shQuote(s)}`], { encoding: 'utf8' });
          expect(r.stdout).toBe(s);
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('agentCommand', () => {
  it('tries the checkout before the deploy cache, and the cache first with --deploy', () => {
    const plain = agentCommand('/usr/bin/node', '/opt/vx tap/dist/src/cli/agent.js', 'bundle', false);
    const deployed = agentCommand('/usr/bin/node', '/opt/vx tap/dist/src/cli/agent.js', 'bundle', true);
    expect(plain.indexOf("'/opt/vx tap/dist/src/cli/agent.js'")).toBeLessThan(plain.indexOf('$D/dist/src/cli/agent.js'));
    expect(deployed.indexOf('$D/dist/src/cli/agent.js')).toBeLessThan(deployed.indexOf("'/opt/vx tap/dist/src/cli/agent.js'"));
    expect(plain).toMatch(/sudo -n/);
    expect(spawnSync('sh', ['-n', '-c', plain]).status).toBe(0); // valid shell
  });
});

describe('overlayAddresses', () => {
  it('gives .1 and .2 of the network, whatever host bits the CIDR carries', () => {
    expect(overlayAddresses('198.19.0.0/16')).toEqual({ a: '198.19.0.1', b: '198.19.0.2', prefix: 16 });
    expect(overlayAddresses('198.19.7.99/24')).toEqual({ a: '198.19.7.1', b: '198.19.7.2', prefix: 24 });
  });
});

describe('validateRemoteOptions', () => {
  const ok: RemoteOptions = { hosts: ['a', 'b'], ssh: { options: [] }, overlay: REMOTE_DEFAULTS.overlay, vni: 42, port: 4789, leaseMs: 30_000 };
  it('accepts good options', () => expect(validateRemoteOptions(ok)).toBeNull());
  it.each([
    [{ hosts: ['a'] }, /--hosts must name two hosts/],
    [{ hosts: ['a', 'a'] }, /different hosts/],
    [{ underlay: ['10.0.0.1'] }, /--underlay/],
    [{ underlay: ['10.0.0.1', 'x'] }, /--underlay/],
    [{ overlay: '198.19.0.0' }, /--overlay/],
    [{ overlay: '198.19.0.0/31' }, /--overlay/],
    [{ vni: 0 }, /--vni/],
    [{ port: 65536 }, /--port/],
    [{ dataDev: ['eth1'] }, /--data-dev/],
    [{ dataDev: ['eth1', 'a b'] }, /--data-dev/],
  ])('refuses %j', (patch, re) => {
    expect(validateRemoteOptions({ ...ok, ...(patch as Partial<RemoteOptions>) })?.message).toMatch(re);
  });
});

describe('build comparison', () => {
  const b: BuildId = { version: '0.1.0', commit: 'a'.repeat(40), nodeAbi: '115', addon: '0123456789abcdef' };
  it('names every part that differs', () => {
    expect(buildMismatch(b, b)).toBeNull();
    expect(buildMismatch(b, { ...b, commit: 'f'.repeat(40), addon: null })).toBe('differs in commit, native addon');
    expect(describeBuild({ ...b, addon: null })).toBe('0.1.0 (commit aaaaaaaaaaaa, node ABI 115, addon not built)');
  });
});
