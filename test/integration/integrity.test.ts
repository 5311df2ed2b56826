/**
 * Integrity (issue 8, item 7): a TCP segment larger than the TAP MTU whose
 * checksum is wrong must never reach the application. A fake VTEP in the peer's
 * namespace (test/helpers/fake-vtep.mjs) opens a TCP connection to a server
 * behind a real vxtap host and sends 4000-byte segments in single VXLAN
 * datagrams (as kernel VXLAN with TSO can); one of them is corrupted after its
 * checksum was computed and then sent again intact. The server must receive
 * exactly the pattern: the corrupted copy is dropped (by the kernel, which
 * checks it because vxtap did not mark it verified), the intact one delivered.
 *
 * The other side of the rule: segments whose checksum the sender left partial
 * (CHECKSUM_PARTIAL, what kernel VXLAN with TSO sends) are still handed over as
 * GSO, so the vxtap host forwards them into a routed namespace whose MTU is the
 * overlay's (a plain frame above it would be dropped at that hop).
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
setTimeout(() => { process.stdout.write(JSON.stringify({ bytes: -1, timeout: true }) + '\\n'); process.exit(1); }, 20000);
`;

describe('integrity of oversize frames', () => {
  const scope = new HostScope('vxqi');
  let a: Host;
  let b: Host;
  let c: string;
  let va: RunningVtep;

  beforeAll(async () => {
    [a, b] = await twoHosts(scope);
    va = await startVxtap(scope, a, ['--peer', b.underlay, '--address', '198.19.0.1/24', '--vni', '42']);
    // the fake VTEP's overlay host: a fixed MAC, so A needs no ARP answer
    await run(['ip', 'neigh', 'replace', '198.19.0.2', 'lladdr', '02:00:00:00:00:bb', 'dev', va.name, 'nud', 'permanent'], { netns: a.ns });
    // a namespace routed behind A (a container network), MTU as the overlay's
    const t = a.ns.slice(-4);
    c = await scope.netns(`c${t}`);
    await scope.veth({ name: `qr${t}`, netns: a.ns }, { name: `qe${t}`, netns: c }, 1450);
    await scope.addr(a.ns, `qr${t}`, '198.19.100.1/24');
    await scope.addr(c, `qe${t}`, '198.19.100.2/24');
    await run(['ip', 'route', 'add', 'default', 'via', '198.19.100.1'], { netns: c });
    await run(['sysctl', '-qw', 'net.ipv4.ip_forward=1'], { netns: a.ns });
  }, 60_000);
  afterAll(() => scope.cleanup());

  /** Run the fake VTEP's TCP client against a server at `addr` in `ns`; returns what each side saw. */
  async function transfer(ns: string, addr: string, port: number, opts: Record<string, unknown>) {
    const st = await va.status();
    expect(st.offload).toBe(true); // the path that hands oversize frames over as GSO
    const server = scope.spawn(['node', '-e', SERVER, addr, String(port)], { netns: ns });
    let out = '';
    server.stdout?.on('data', (d: Buffer | string) => (out += d.toString()));
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
      dstIp: addr,
      dstPort: port,
      segment: 4000, // > TAP MTU 1450: one whole frame per datagram
      segments: 3,
      ...opts,
    };
    const sent = JSON.parse(await output(['node', FAKE_VTEP, 'tcp-corrupt', JSON.stringify(spec)], { netns: b.ns, timeoutMs: 30_000 }));
    const deadline = Date.now() + 25_000;
    while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return { sent, got: JSON.parse(out) };
  }

  it('delivers no corrupted byte of a corrupted oversize TCP segment', async () => {
    const { sent, got } = await transfer(a.ns, '198.19.0.1', 5001, {});
    expect(sent).toEqual({ sent: 12000, corrupted: 256, segment: 4000, partial: false });
    // every byte arrived once and none of them corrupted
    expect(got).toEqual({ bytes: 12000, mismatches: 0, firstMismatch: -1 });
  }, 60_000);

  it('still hands partial-checksum oversize segments over as GSO, so they cross a forwarding hop', async () => {
    const { sent, got } = await transfer(c, '198.19.100.2', 5002, { partial: true, corrupt: false });
    expect(sent).toEqual({ sent: 12000, corrupted: 0, segment: 4000, partial: true });
    expect(got).toEqual({ bytes: 12000, mismatches: 0, firstMismatch: -1 });
  }, 60_000);
});
