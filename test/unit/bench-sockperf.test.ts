/**
 * sockperf as the bench's latency tool (bench/sockperf.ts): its argv, the
 * parsing of a real sockperf 3.7 run, and the client's JSON line, which must
 * carry the same HDR histogram rr.js prints. The fixtures are verbatim output
 * of a real short run over loopback in a scratch namespace on this machine:
 *
 *   sockperf server --tcp -i 127.0.0.1 -p 11503
 *   sockperf ping-pong --tcp -i 127.0.0.1 -p 11503 -t 1 -m 14 --mps 20 --full-rtt --full-log small.csv
 *
 * (--mps 20 keeps the log to 11 round trips; the bench runs unpaced.)
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { percentilesOf } from '../../bench/rr.js';
import type { BenchHost } from '../../bench/host.js';
import { latencyPort, PORTS, ServerSet } from '../../bench/measure.js';
import type { ActiveMode } from '../../bench/modes.js';
import { latencyToolsMissing, validateOptions, type BenchOptions } from '../../bench/run.js';
import type { Topology } from '../../bench/topology.js';
import {
  parseSockperfFullLog,
  parseSockperfSummary,
  SOCKPERF_SERVER_READY,
  sockperfClientArgv,
  sockperfClientOutput,
  sockperfMissing,
  sockperfRunSeconds,
  sockperfServerArgv,
} from '../../bench/sockperf.js';

/** The client's stdout and stderr together, as the wrapper reads them. */
const SUMMARY = `sockperf: \u001b[2;35m== version #3.7-no.git == \u001b[0m
sockperf[CLIENT] send on:sockperf: using recvfrom() to block on socket(s)

[ 0] IP = 127.0.0.1       PORT = 11503 # TCP
sockperf: Warmup stage (sending a few dummy messages)...
sockperf: Starting test...
sockperf: Test end (interrupted by timer)
sockperf: Test ended
sockperf: [Total Run] RunTime=1.003 sec; Warm up time=400 msec; SentMessages=21; ReceivedMessages=20
sockperf: ========= Printing statistics for Server No: 0
sockperf: [Valid Duration] RunTime=0.492 sec; SentMessages=11; ReceivedMessages=11
sockperf: \u001b[2;35m====> avg-rtt=3126.859 (std-dev=9260.439)\u001b[0m
sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
sockperf: Summary: Round trip is 3126.859 usec
sockperf: \u001b[2;35mTotal 11 observations\u001b[0m; each percentile contains 0.11 observations
sockperf: ---> <MAX> observation = 30964.730
sockperf: ---> percentile 99.999 = 30964.730
sockperf: ---> percentile 99.990 = 30964.730
sockperf: ---> percentile 99.900 = 30964.730
sockperf: ---> percentile 99.000 = 30964.730
sockperf: ---> percentile 90.000 = 2488.657
sockperf: ---> percentile 75.000 =  114.046
sockperf: ---> percentile 50.000 =  104.367
sockperf: ---> percentile 25.000 =   98.166
sockperf: ---> <MIN> observation =   93.877
`;

/** The --full-log file of the same run. */
const FULL_LOG = `------------------------------
test was performed using the following parameters: --mps=20 --burst=1 --reply-every=1 --msg-size=14 --time=1 --full-rtt
------------------------------
sockperf: [Total Run] RunTime=1.003 sec; Warm up time=400 msec; SentMessages=21; ReceivedMessages=20
sockperf: ========= Printing statistics for Server No: 0
sockperf: [Valid Duration] RunTime=0.492 sec; SentMessages=11; ReceivedMessages=11
sockperf: \u001b[2;35m====> avg-rtt=3126.859 (std-dev=9260.439)\u001b[0m
sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
sockperf: \u001b[2;35mTotal 11 observations\u001b[0m; each percentile contains 0.11 observations
sockperf: ---> <MAX> observation = 30964.730
sockperf: ---> percentile 99.999 = 30964.730
sockperf: ---> percentile 99.990 = 30964.730
sockperf: ---> percentile 99.900 = 30964.730
sockperf: ---> percentile 99.000 = 30964.730
sockperf: ---> percentile 90.000 = 2488.657
sockperf: ---> percentile 75.000 =  114.046
sockperf: ---> percentile 50.000 =  104.367
sockperf: ---> percentile 25.000 =   98.166
sockperf: ---> <MIN> observation =   93.877
------------------------------
packet, txTime(sec), rxTime(sec), rtt(usec)
0, 2.411832004, 2.411930170, 98.166
1, 2.454670473, 2.454769882, 99.409
2, 2.503334717, 2.534299447, 30964.730
3, 2.567296530, 2.567394416, 97.886
4, 2.603334528, 2.605823186, 2488.658
5, 2.661617806, 2.661731853, 114.047
6, 2.703858292, 2.703961678, 103.386
7, 2.759846270, 2.759959514, 113.244
8, 2.803335022, 2.803439390, 104.368
9, 2.860005032, 2.860122715, 117.683
10, 2.903334512, 2.903428390, 93.878
------------------------------
`;

/** The server's output up to the point it waits for clients. */
const SERVER_OUT = `sockperf: \u001b[2;35m== version #3.7-no.git == \u001b[0m
sockperf: [SERVER] listen on:
[ 0] IP = 127.0.0.1       PORT = 11503 # TCP
sockperf: Warmup stage (sending a few dummy messages)...
sockperf: [tid 15072] using recvfrom() to block on socket(s)
`;

/** A client that found no server. */
const REFUSED = `sockperf: \u001b[2;35m== version #3.7-no.git == \u001b[0m
sockperf: ERROR: Can\`t connect socket (errno=111 Connection refused)
`;

/** The RTT column of FULL_LOG, microseconds. */
const RTTS_US = [98.166, 99.409, 30964.73, 97.886, 2488.658, 114.047, 103.386, 113.244, 104.368, 117.683, 93.878];

describe('sockperf latency tool: commands', () => {
  it('runs the server bound to the overlay address over TCP, and the client with round trips and a full log', () => {
    expect(sockperfServerArgv('198.19.0.2', 7000)).toEqual(['sockperf', 'server', '--tcp', '-i', '198.19.0.2', '-p', '7000']);
    expect(sockperfClientArgv({ host: '198.19.0.2', port: 7000, seconds: 2, fullLog: '/tmp/x/full-log.csv' })).toEqual([
      'sockperf',
      'ping-pong',
      '--tcp',
      '-i',
      '198.19.0.2',
      '-p',
      '7000',
      '-t',
      '3',
      '-m',
      '14',
      '--full-rtt',
      '--full-log',
      '/tmp/x/full-log.csv',
    ]);
  });

  it('asks sockperf for whole seconds covering at least the measured window (400 ms warm-up + 50 ms left out)', () => {
    expect([0.2, 0.5, 0.55, 0.56, 1, 2, 10].map(sockperfRunSeconds)).toEqual([1, 1, 1, 2, 2, 3, 11]);
    fc.assert(
      fc.property(fc.double({ min: 0.01, max: 3600, noNaN: true }), (s) => {
        const t = sockperfRunSeconds(s);
        return Number.isInteger(t) && t - 0.45 >= s - 1e-6 && t - 1 - 0.45 < s;
      }),
    );
  });

  it('sees the server ready once it blocks on its socket, not before', () => {
    expect(SOCKPERF_SERVER_READY.test(SERVER_OUT)).toBe(true);
    expect(SOCKPERF_SERVER_READY.test(SERVER_OUT.split('\n').slice(0, 4).join('\n'))).toBe(false);
  });

  it('names the host and the fix when sockperf is missing', async () => {
    const host = (code: number) => ({ label: 'B', exec: () => Promise.resolve({ code }) });
    expect(await sockperfMissing(host(0))).toBeNull();
    expect(await sockperfMissing(host(1))).toBe('host B: sockperf not installed (apt-get install sockperf)');
  });
});

describe('sockperf latency tool: parsing a real run', () => {
  it('reads every round trip of the full log, in order, and the span of the measured window', () => {
    const log = parseSockperfFullLog(FULL_LOG);
    expect(log.rttsUs).toEqual(RTTS_US);
    expect(log.firstTxSeconds).toBe(2.411832004);
    expect(log.lastRxSeconds).toBe(2.90342839);
  });

  it('refuses text that is not a full log', () => {
    expect(() => parseSockperfFullLog(SUMMARY)).toThrow(/no "packet, txTime\(sec\)/);
  });

  it('reads the summary through its colour escapes', () => {
    const s = parseSockperfSummary(SUMMARY);
    expect(s).toEqual({
      validSeconds: 0.492,
      validSent: 11,
      validReceived: 11,
      percentilesUs: {
        '99.999': 30964.73,
        '99.990': 30964.73,
        '99.900': 30964.73,
        '99.000': 30964.73,
        '90.000': 2488.657,
        '75.000': 114.046,
        '50.000': 104.367,
        '25.000': 98.166,
        max: 30964.73,
        min: 93.877,
      },
      avgUs: 3126.859,
      error: null,
    });
    expect(parseSockperfSummary(REFUSED).error).toBe('Can`t connect socket (errno=111 Connection refused)');
  });
});

describe('sockperf latency tool: the client line', () => {
  it('builds the rr histogram from the log: same count, whole microseconds, percentiles agreeing with sockperf to 1 us', () => {
    const out = sockperfClientOutput(FULL_LOG, SUMMARY, 0);
    expect(out.error).toBeUndefined();
    expect(out.count).toBe(11);
    expect(out.seconds).toBe(0.492);
    expect(out.transactionsPerSecond).toBeCloseTo(11 / 0.492, 9);
    const p = percentilesOf(out.histogram);
    expect(p.count).toBe(11);
    expect(p.minUs).toBe(94);
    const printed = parseSockperfSummary(SUMMARY).percentilesUs;
    // HDR with 3 significant digits: within 0.1% (and the rounding to whole microseconds).
    for (const [ours, theirs] of [
      [p.p50Us, printed['50.000']],
      [p.p90Us, printed['90.000']],
      [p.maxUs, printed.max],
    ])
      expect(Math.abs(ours - theirs)).toBeLessThanOrEqual(theirs * 0.001 + 1);
    expect(p.meanUs).toBeCloseTo(RTTS_US.reduce((a, b) => a + Math.round(b), 0) / 11, 0);
  });

  it('says when the log and the summary disagree, and keeps what the log holds', () => {
    const cut = FULL_LOG.split('\n')
      .filter((l) => !/^(9|10), /.test(l))
      .join('\n');
    const out = sockperfClientOutput(cut, SUMMARY, 0);
    expect(out.count).toBe(9);
    expect(out.error).toBe('sockperf full log holds 9 round trips, its summary 11');
  });

  it('falls back to the log span for the rate when the summary lacks the measured window', () => {
    const out = sockperfClientOutput(FULL_LOG, '', 0);
    expect(out.count).toBe(11);
    expect(out.seconds).toBeCloseTo(2.90342839 - 2.411832004, 9);
  });

  it('reports sockperf own error with no round trips when it could not connect', () => {
    const out = sockperfClientOutput(null, REFUSED, 0);
    expect(out.count).toBe(0);
    expect(out.transactionsPerSecond).toBe(0);
    expect(out.error).toBe('Can`t connect socket (errno=111 Connection refused)');
    expect(percentilesOf(out.histogram).count).toBe(0);
  });

  it('names the exit status and the last words when sockperf printed neither an error nor a log', () => {
    const out = sockperfClientOutput(null, 'sockperf: something odd\n', 137);
    expect(out.error).toBe('sockperf measured no round trips (exit 137): sockperf: something odd');
  });
});

describe('sockperf latency tool: servers on host B (ServerSet)', () => {
  /** A fake host B whose servers announce themselves as the real ones do. */
  function hostB() {
    const spawned: { argv: string[]; out: string }[] = [];
    const b = {
      label: 'B',
      where: 'fake',
      spawn(argv: string[]) {
        const p = { argv, out: argv.includes('sockperf') ? SERVER_OUT : argv[0] === 'iperf3' ? 'Server listening on 5201 (test #1)\n' : 'ready\n' };
        spawned.push(p);
        return { pid: spawned.length, argv, stdout: () => p.out, stderr: () => '', exited: new Promise(() => undefined), done: () => false, stop: () => Promise.resolve() };
      },
    } as unknown as BenchHost;
    return { spawned, topo: { b } as unknown as Topology };
  }

  it('starts the sockperf server pinned on its own port, beside rr when both tools run', async () => {
    const { spawned, topo } = hostB();
    const servers = new ServerSet({ topo, mode: { addrB: '198.19.0.2' } as ActiveMode, pin: 'cross', repoRoot: '/repo', latencyTool: 'sockperf', latencyTools: ['sockperf', 'rr'] });
    await servers.start();
    expect(spawned.map((p) => p.argv)).toContainEqual(['taskset', '-c', '1', 'sockperf', 'server', '--tcp', '-i', '198.19.0.2', '-p', String(PORTS.sockperf)]);
    expect(spawned.some((p) => p.argv.includes('/repo/dist/bench/rr.js') && p.argv.includes(String(PORTS.rr)))).toBe(true);
    expect(latencyPort('sockperf')).not.toBe(latencyPort('rr'));
    await servers.ready(PORTS.sockperf, 100);
  });

  it('waits for the sockperf server until it blocks on its socket', async () => {
    const { spawned, topo } = hostB();
    const servers = new ServerSet({ topo, mode: { addrB: '198.19.0.2' } as ActiveMode, pin: 'none', repoRoot: '/repo', latencyTool: 'sockperf' });
    const starting = servers.start();
    await new Promise((r) => setTimeout(r, 10));
    const sp = spawned.find((p) => p.argv[0] === 'sockperf');
    expect(sp?.argv).toEqual(['sockperf', 'server', '--tcp', '-i', '198.19.0.2', '-p', String(PORTS.sockperf)]);
    expect(spawned.some((p) => p.argv.includes('/repo/dist/bench/rr.js'))).toBe(false);
    await starting;
    sp!.out = SERVER_OUT.split('\n').slice(0, 4).join('\n');
    await expect(servers.ready(PORTS.sockperf, 100)).rejects.toThrow(/latency server \(sockperf\) not listening within 100 ms/);
  });
});

describe('--latency-tool (validateOptions)', () => {
  const base: BenchOptions = { profile: 'default', modes: ['bare'], mtu: 1500, netem: {}, outDir: '/tmp/x', pin: 'cross', progress: false, argv: [] };

  it('takes rr, sockperf, both in either order, or nothing (= rr)', () => {
    for (const latencyTools of [undefined, ['rr'], ['sockperf'], ['rr', 'sockperf'], ['sockperf', 'rr']] as const)
      expect(validateOptions({ ...base, latencyTools: latencyTools && [...latencyTools] })).toBeNull();
  });

  it('refuses an unknown tool, an empty list and a tool listed twice, naming the option', () => {
    expect(validateOptions({ ...base, latencyTools: ['netperf' as never] })?.message).toBe('--latency-tool must be rr or sockperf, or both as rr,sockperf (got "netperf")');
    expect(validateOptions({ ...base, latencyTools: [] })?.message).toMatch(/^--latency-tool must be/);
    expect(validateOptions({ ...base, latencyTools: ['rr', 'rr'] })?.message).toBe('--latency-tool lists a tool twice');
  });

  it('checks the hosts only when sockperf is asked for', async () => {
    expect(await latencyToolsMissing({ latencyTools: ['rr'] })).toEqual([]);
    expect(await latencyToolsMissing({})).toEqual([]);
  });
});
