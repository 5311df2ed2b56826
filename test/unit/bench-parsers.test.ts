import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IperfError, parseIperfTcp, parseIperfUdp, udpClientArgv, udpPayloadForFrame, ipPacketForFrame, tcpClientArgv } from '../../bench/iperf.js';
import { counterDelta, cpuDelta, parseNstat, parsePidStat, parseProcStat } from '../../src/host/procstat.js';
import { classifyProbe, parseCaptureTimes } from '../../bench/mtu.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const fx = (p: string) => readFileSync(path.join(fixtures, p), 'utf8');

describe('iperf3 JSON (captured with iperf 3.12 on this machine)', () => {
  it('parses a 1-stream TCP run', () => {
    const r = parseIperfTcp(fx('iperf3/tcp-1stream.json'));
    expect(r.streams).toBe(1);
    expect(r.receivedBps).toBeGreaterThan(1e9);
    expect(r.sentBps).toBeGreaterThanOrEqual(r.receivedBps * 0.99);
    expect(r.retransmits).toBe(6879);
    expect(r.seconds).toBeCloseTo(1, 1);
    expect(r.cpuHostPercent).toBeGreaterThan(0);
    expect(r.intervalBps.length).toBeGreaterThanOrEqual(1);
    expect(r.intervalBps[0]).toBeGreaterThan(1e9);
  });

  it('parses a 4-stream TCP run', () => {
    const r = parseIperfTcp(fx('iperf3/tcp-4streams.json'));
    expect(r.streams).toBe(4);
    expect(r.receivedBps).toBeGreaterThan(1e9);
  });

  it('parses a paced UDP run with a packet count (64 B frames: 18 B payload)', () => {
    const r = parseIperfUdp(fx('iperf3/udp-64frame.json'));
    expect(r.txPackets).toBe(50000);
    expect(r.rxPackets).toBe(50000);
    expect(r.lostPackets).toBe(0);
    expect(r.payloadBytes).toBe(18);
  });

  it('counts received datagrams as server packets minus lost ones', () => {
    const r = parseIperfUdp(fx('iperf3/udp-1518frame.json'));
    expect(r.txPackets).toBe(167974);
    expect(r.lostPackets).toBe(8979);
    expect(r.rxPackets).toBe(167961 - 8979);
    expect(r.payloadBytes).toBe(1472);
  });

  it('turns an iperf3 error into IperfError with its message', () => {
    expect(() => parseIperfTcp(fx('iperf3/error-noroute.json'))).toThrow(IperfError);
    expect(() => parseIperfTcp(fx('iperf3/error-noroute.json'))).toThrow(/Connection timed out/);
    expect(() => parseIperfTcp('not json')).toThrow(/not JSON/);
    expect(() => parseIperfTcp('{"end": {}}')).toThrow(/end.sum_sent/);
  });

  it('derives UDP payloads from RFC 2544 frame sizes', () => {
    expect(udpPayloadForFrame(64)).toBe(18);
    expect(udpPayloadForFrame(1518)).toBe(1472);
    expect(ipPacketForFrame(1518)).toBe(1500);
    const argv = udpClientArgv({ server: '198.19.0.2', port: 5202, pps: 100000, payload: 18, packets: 30000 });
    expect(argv).toContain('-u');
    expect(argv[argv.indexOf('-b') + 1]).toBe(String(100000 * 18 * 8));
    expect(argv[argv.indexOf('-k') + 1]).toBe('30000');
    expect(tcpClientArgv({ server: 'x', port: 1, seconds: 0.4, streams: 4 })).toContain('1');
  });
});

describe('/proc/stat and /proc/<pid>/stat', () => {
  it('parses the captured /proc/stat', () => {
    const s = parseProcStat(fx('proc/stat.txt'));
    expect(s.cpus.length).toBe(2);
    expect(s.total.user).toBe(13209);
    expect(s.total.softirq).toBe(11928);
    expect(s.total.steal).toBe(198);
  });

  it('computes CPU deltas in seconds with busy = total - idle - iowait', () => {
    const a = parseProcStat('cpu  100 0 50 1000 10 0 20 5 0 0\n').total;
    const b = parseProcStat('cpu  200 0 150 1100 10 0 70 15 0 0\n').total;
    const d = cpuDelta(a, b);
    expect(d.userSeconds).toBe(1);
    expect(d.systemSeconds).toBe(1);
    expect(d.softirqSeconds).toBe(0.5);
    expect(d.stealSeconds).toBe(0.1);
    expect(d.idleSeconds).toBe(1);
    expect(d.totalSeconds).toBeCloseTo(3.6);
    expect(d.busySeconds).toBeCloseTo(2.6);
  });

  it('rejects a /proc/stat without the aggregate line', () => {
    expect(() => parseProcStat('cpu0 1 2 3\n')).toThrow(/aggregate/);
  });

  it('parses /proc/<pid>/stat, also with spaces and parentheses in comm', () => {
    const s = parsePidStat(fx('proc/pid-stat.txt'));
    expect(s.comm).toBe('cat');
    expect(s.ppid).toBe(8214);
    expect(s.startTicks).toBe(77348);
    const odd = parsePidStat('42 (a (b) c) S 1 42 42 0 -1 0 0 0 0 0 77 33 0 0 20 0 3 0 1 0 0');
    expect(odd.comm).toBe('a (b) c');
    expect(odd.utime).toBe(77);
    expect(odd.stime).toBe(33);
    expect(odd.numThreads).toBe(3);
    expect(odd.startTicks).toBe(1);
  });
});

describe('nstat', () => {
  it('parses JSON and text output to the same counters', () => {
    const j = parseNstat(fx('proc/nstat.json'));
    const t = parseNstat(fx('proc/nstat.txt'));
    expect(j.IpFragCreates).toBe(0);
    expect(j.IcmpInDestUnreachs).toBe(3);
    for (const k of ['IpInReceives', 'IpFragCreates', 'IpReasmOKs', 'IcmpInDestUnreachs']) expect(t[k]).toBe(j[k]);
  });

  it('computes counter deltas', () => {
    expect(counterDelta({ A: 1, B: 5 }, { A: 4, B: 5, C: 2 })).toEqual({ A: 3, B: 0, C: 2 });
  });
});

describe('MTU probe classification', () => {
  const base = { ipBytes: 1500, df: true, replied: true, localError: null, icmpUnreachReceived: 0, fragNeededReported: false, fragCreatesA: 0, fragCreatesB: 0, reassembled: 0, underlayFragments: 0 };
  it('classifies each kind of evidence', () => {
    expect(classifyProbe(base, true)).toBe('whole');
    expect(classifyProbe({ ...base, replied: false }, true)).toBe('dropped');
    expect(classifyProbe({ ...base, replied: false, localError: 'message too long, mtu=1450' }, true)).toBe('refused-locally');
    expect(classifyProbe({ ...base, fragCreatesA: 2, reassembled: 1 }, true)).toBe('inner-fragmented');
    expect(classifyProbe({ ...base, fragCreatesA: 2 }, false)).toBe('underlay-fragmented');
    expect(classifyProbe({ ...base, fragCreatesA: 2, underlayFragments: 4 }, true)).toBe('underlay-fragmented');
  });

  it('reads tcpdump -tt timestamps', () => {
    const t = parseCaptureTimes('1764604800.123456 IP 198.18.0.1 > 198.18.0.2: ip-proto-17\nnoise\n1764604800.5 IP x\n');
    expect(t).toEqual([1764604800123.456, 1764604800500]);
  });
});
