/**
 * Malformed packets at the VXLAN port while a ping runs: the ping loses nothing,
 * every bad packet is dropped and counted by reason, the process lives on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostScope, twoHosts, startVxtap, ping, type Host, type RunningVtep } from '../helpers/vxtap.js';
import { run } from '../../src/host/exec.js';
import { named, skipReason } from '../helpers/requires.js';

const skip = skipReason({ root: true, tun: true, build: true, commands: ['ip', 'ping'] });

const SENDER = `
const dgram = require('node:dgram');
const [bind, dst, port, spec] = process.argv.slice(1);
const list = JSON.parse(spec);
const s = dgram.createSocket('udp4');
s.bind({ address: bind, port: 0 }, async () => {
  for (const [hex, n] of list) {
    const buf = Buffer.from(hex, 'hex');
    for (let i = 0; i < n; i++) {
      await new Promise((r) => s.send(buf, Number(port), dst, r));
      if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
    }
  }
  s.close();
});
`;

describe.skipIf(skip !== null)(named('malformed packets', skip), () => {
  const scope = new HostScope('vxtm');
  let a: Host;
  let b: Host;
  let va: RunningVtep;

  beforeAll(async () => {
    [a, b] = await twoHosts(scope);
    va = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/16', '--vni', '42']);
    await startVxtap(scope, b, ['--peer', a.underlay, '--address', '198.19.0.2/16', '--vni', '42']);
    // a second address on host B that is not a peer
    await run(['ip', 'addr', 'add', '198.18.0.9/24', 'dev', b.dev], { netns: b.ns });
  });
  afterAll(() => scope.cleanup());

  it('drops and counts each kind without losing a ping', async () => {
    const eth = 'ffffffffffff' + '020000000009' + '0800' + '00'.repeat(46);
    const spec = [
      ['0800', 200], // short
      ['0c000000' + '00002a00' + eth, 200], // bad flags (extra flag bit)
      ['08000001' + '00002a00' + eth, 200], // reserved bits set
      ['08000000' + '00002b00' + eth, 200], // wrong VNI 43
      ['08000000' + '00002a00' + 'ffff', 200], // VXLAN header, inner frame too short
      ['', 50], // empty datagram
    ];
    const pinger = ping(a.ns, '198.19.0.2', 40, 0.05);
    await new Promise((r) => setTimeout(r, 300));
    await run(['node', '-e', SENDER, b.underlay, a.underlay, '4789', JSON.stringify(spec)], { netns: b.ns, timeoutMs: 30_000 });
    await run(['node', '-e', SENDER, '198.18.0.9', a.underlay, '4789', JSON.stringify([['08000000' + '00002a00' + eth, 100]])], { netns: b.ns, timeoutMs: 30_000 });
    const p = await pinger;
    expect(p.loss).toBe(0);
    const st = await va.status();
    expect(st.drops.short).toBe(450);
    expect(st.drops.bad_flags).toBe(400);
    expect(st.drops.wrong_vni).toBe(200);
    expect(st.drops.unknown_peer).toBe(100);
    expect(va.child.exitCode).toBeNull();
    expect((await ping(a.ns, '198.19.0.2', 3, 0.1)).loss).toBe(0);
  });
});
