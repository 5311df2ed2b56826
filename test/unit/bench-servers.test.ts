import { describe, expect, it } from 'vitest';
import type { BenchHost, BenchProcess } from '../../bench/host.js';
import { PORTS, ServerSet } from '../../bench/measure.js';
import type { ActiveMode } from '../../bench/modes.js';
import type { Topology } from '../../bench/topology.js';

/** A server process whose output and exit the test scripts. */
class ScriptedProcess implements BenchProcess {
  out = '';
  err = '';
  private finished = false;
  private resolveExit!: (s: { code: number | null; signal: NodeJS.Signals | null }) => void;
  readonly exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => (this.resolveExit = r));
  constructor(
    readonly pid: number,
    readonly argv: string[],
  ) {}
  stdout(): string {
    return this.out;
  }
  stderr(): string {
    return this.err;
  }
  done(): boolean {
    return this.finished;
  }
  exit(code: number, err = ''): void {
    this.err += err;
    this.finished = true;
    this.resolveExit({ code, signal: null });
  }
  async stop(): Promise<void> {
    if (!this.finished) this.exit(0);
  }
}

function setUp() {
  const spawned: ScriptedProcess[] = [];
  const b = {
    label: 'B',
    where: 'fake',
    spawn(argv: string[]) {
      const p = new ScriptedProcess(spawned.length + 1, argv);
      // every server announces itself at once, as iperf3 --forceflush and the latency server do
      p.out = argv[0] === 'iperf3' ? 'Server listening on 5201 (test #1)\n' : 'ready\n';
      spawned.push(p);
      return p;
    },
  } as unknown as BenchHost;
  const ctx = { topo: { b } as unknown as Topology, mode: { addrB: '198.19.0.2' } as ActiveMode, pin: 'none' as const, repoRoot: '/repo' };
  return { spawned, servers: new ServerSet(ctx) };
}

describe('bench servers (ServerSet)', () => {
  it('starts one iperf3 server per port and the latency server, bounded by --rcv-timeout', async () => {
    const { spawned, servers } = setUp();
    await servers.start();
    expect(spawned.map((p) => (p.argv[0] === 'iperf3' ? p.argv[p.argv.length - 1] : 'rr'))).toEqual([String(PORTS.tcp), String(PORTS.udp), String(PORTS.load), 'rr']);
    expect(spawned[0].argv).toContain('--rcv-timeout');
    expect(servers.events).toEqual([]);
  });

  it('waits while a server is between tests (accepted a client, not yet listening again)', async () => {
    const { spawned, servers } = setUp();
    await servers.start();
    spawned[0].out += 'Accepted connection from 198.19.0.1, port 40000\n';
    let ready = false;
    const p = servers.ready(PORTS.tcp).then(() => (ready = true));
    await new Promise((r) => setTimeout(r, 80));
    expect(ready).toBe(false);
    spawned[0].out += 'Server listening on 5201 (test #2)\n';
    await p;
    expect(ready).toBe(true);
  });

  it('restarts a server that exited and records why, once per call', async () => {
    const { spawned, servers } = setUp();
    await servers.start();
    spawned[1].out += 'Accepted connection from 198.19.0.1, port 40000\n';
    spawned[1].exit(1, 'iperf3: error - unable to start listener for connections: Cannot assign requested address\niperf3: exiting\n');
    await servers.ready(PORTS.udp);
    expect(spawned).toHaveLength(5);
    expect(servers.events).toHaveLength(1);
    expect(servers.events[0]).toMatch(/iperf3 server :5202 exited \(status 1\).*Cannot assign requested address.*restarted/);
  });

  it('gives up with the reason when the restarted server dies as well', async () => {
    const { spawned, servers } = setUp();
    await servers.start();
    spawned[0].out += 'Accepted connection\n';
    spawned[0].exit(1, 'gone');
    const origSpawn = (servers as unknown as { ctx: { topo: { b: { spawn: (a: string[]) => ScriptedProcess } } } }).ctx.topo.b.spawn;
    (servers as unknown as { ctx: { topo: { b: { spawn: (a: string[]) => ScriptedProcess } } } }).ctx.topo.b.spawn = (argv: string[]) => {
      const p = origSpawn(argv);
      p.out = '';
      p.exit(1, 'unable to start listener');
      return p;
    };
    await expect(servers.ready(PORTS.tcp)).rejects.toThrow(/iperf3 server :5201 exited \(status 1\): unable to start listener/);
  });

  it('says which server did not come up in time', async () => {
    const { spawned, servers } = setUp();
    await servers.start();
    spawned[3].out = '';
    await expect(servers.ready(PORTS.rr, 100)).rejects.toThrow(/latency server not listening within 100 ms/);
  });
});
