/**
 * Integrity (issue 8, item 7): a TCP segment larger than the TAP MTU whose
 * checksum is wrong must never reach the application. A fake VTEP in the peer's
 * namespace (test/helpers/fake-vtep.mjs) opens a TCP connection to a server
 * behind a real vxtap host and sends 4000-byte segments in single VXLAN
 * datagrams (as kernel VXLAN with TSO can); one of them is corrupted after its
 * checksum was computed and then sent again intact. The server must receive
 * exactly the pattern: the corrupted copy is dropped (by the kernel, which
 * checks it because vxtap did not mark it verified), the intact one delivered.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostScope, REPO, twoHosts, startVxtap, type Host, type RunningVtep } from '../helpers/vxtap.js';
import { output, run } from '../../src/host/exec.js';

const FAKE_VTEP = path.join(REPO, 'test/helpers/fake-vtep.mjs');

/** Accepts one connection and prints {bytes, mismatches, firstMismatch} against the fake VTEP's pattern. */
const SERVER = `
const net = require('node:net');
const [addr, port] = process.argv.slice(1);
const srv = net.createServer((c) => {
  let n = 0, bad = 0, first = -1;
  c.on('data', (d) => {
    for (let i = 0; i < d.length; i++, n++) if (d[i] !== ((n * 7 + 3) & 0xff)) { bad++; if (first < 0) first = n; }
  });
  const done = () => { process.stdout.write(JSON.stringify({ bytes: n, mismatches: bad, firstMismatch: first }) + '\\n'); process.exit(0); };
  c.on('end', done);
  c.on('error', done);
});
srv.listen(Number(port), addr, () => process.stderr.write('listening\\n'));
setTimeout(() => { process.stdout.write(JSON.stringify({ timeout: true }) + '\\n'); process.exit(1); }, 30000);
`;

describe('integrity of oversize frames', () => {
  const scope = new HostScope('vxqi');
  let a: Host;
  let b: Host;
  let va: RunningVtep;

  beforeAll(async () => {
    [a, b] = await twoHosts(scope);
    va = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/24', '--vni', '42']);
    // the fake VTEP's overlay host: a fixed MAC, so A needs no ARP answer
    await run(['ip', 'neigh', 'replace', '198.19.0.2', 'lladdr', '02:00:00:00:00:bb', 'dev', va.name, 'nud', 'permanent'], { netns: a.ns });
  }, 60_000);
  afterAll(() => scope.cleanup());

  it('delivers no corrupted byte of a corrupted oversize TCP segment', async () => {
    const st = await va.status();
    expect(st.offload).toBe(true); // the path that hands oversize frames over as GSO
    const server = scope.spawn(['node', '-e', SERVER, '198.19.0.1', '5001'], { netns: a.ns });
    let out = '';
    server.stdout?.on('data', (d) => (out += d));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('server did not start')), 10_000);
      server.stderr?.on('data', (d) => {
        if (String(d).includes('listening')) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    const spec = {
      bind: b.underlay,
      bindPort: 4789, // vxtap sends the SYN-ACK to the VXLAN port
      remote: a.underlay,
      vni: 42,
      dstMac: st.mac,
      srcMac: '02:00:00:00:00:bb',
      srcIp: '198.19.0.2',
      dstIp: '198.19.0.1',
      dstPort: 5001,
      segment: 4000, // > TAP MTU 1450: one whole frame per datagram
      segments: 3,
    };
    const sent = JSON.parse(await output(['node', FAKE_VTEP, 'tcp-corrupt', JSON.stringify(spec)], { netns: b.ns, timeoutMs: 30_000 }));
    expect(sent).toEqual({ sent: 12000, corrupted: 256, segment: 4000 });
    const deadline = Date.now() + 10_000;
    while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const got = JSON.parse(out);
    // every byte arrived once and none of them corrupted
    expect(got).toEqual({ bytes: 12000, mismatches: 0, firstMismatch: -1 });
  }, 60_000);
});
