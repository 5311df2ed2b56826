/**
 * iperf3 (3.x, `-J` JSON output): argument builders and parsers for TCP bulk and
 * paced UDP trials. Parsers are pure and tested on output captured on this
 * machine (test/fixtures/iperf3/).
 */

/** A failed iperf3 run ("error" in its JSON, or unparsable output). */
export class IperfError extends Error {
  constructor(
    message: string,
    readonly raw?: unknown,
  ) {
    super(message);
    this.name = 'IperfError';
  }
}

/** TCP bulk result. */
export interface TcpResult {
  /** Goodput at the receiver, bits/s. */
  receivedBps: number;
  /** Sender side, bits/s. */
  sentBps: number;
  /** TCP retransmits reported by the sender (often spurious on veth: reordering, not loss). */
  retransmits: number;
  seconds: number;
  streams: number;
  /** iperf3's own CPU figures (percent of one CPU), when present. */
  cpuHostPercent: number | null;
  cpuRemotePercent: number | null;
  /** Sender-side bits/s of each reporting interval (normally 1 s), for drift and slow-start checks. */
  intervalBps: number[];
}

/** UDP trial result. */
export interface UdpResult {
  /** Datagrams sent. */
  txPackets: number;
  /** Datagrams received (server count minus its lost count). */
  rxPackets: number;
  /** Lost datagrams as the server counted them (sequence gaps). */
  lostPackets: number;
  seconds: number;
  /** Payload bits/s at the sender. */
  sentBps: number;
  jitterMs: number | null;
  /** UDP payload per datagram (bytes). */
  payloadBytes: number;
}

type Json = Record<string, unknown>;

function obj(v: unknown, field: string): Json {
  if (!v || typeof v !== 'object') throw new IperfError(`iperf3 JSON: missing object ${field}`);
  return v as Json;
}

function num(o: Json, key: string, field: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new IperfError(`iperf3 JSON: ${field}.${key} is not a number`);
  return v;
}

/** Parse text into iperf3 JSON; throws IperfError when the run reported an error. */
export function parseIperfJson(text: string): Json {
  let data: Json;
  try {
    data = JSON.parse(text) as Json;
  } catch {
    throw new IperfError(`iperf3 output is not JSON: ${text.slice(0, 200)}`);
  }
  if (typeof data.error === 'string') throw new IperfError(`iperf3: ${data.error}`, data);
  return data;
}

/** Parse a TCP run (`iperf3 -c ... -J [-P N]`). */
export function parseIperfTcp(text: string): TcpResult {
  const data = parseIperfJson(text);
  const end = obj(data.end, 'end');
  const sent = obj(end.sum_sent, 'end.sum_sent');
  const recv = obj(end.sum_received, 'end.sum_received');
  const start = data.start && typeof data.start === 'object' ? (data.start as Json) : {};
  const ts = start.test_start && typeof start.test_start === 'object' ? (start.test_start as Json) : {};
  const cpu = end.cpu_utilization_percent && typeof end.cpu_utilization_percent === 'object' ? (end.cpu_utilization_percent as Json) : {};
  return {
    receivedBps: num(recv, 'bits_per_second', 'end.sum_received'),
    sentBps: num(sent, 'bits_per_second', 'end.sum_sent'),
    retransmits: typeof sent.retransmits === 'number' ? sent.retransmits : 0,
    seconds: num(recv, 'seconds', 'end.sum_received'),
    streams: typeof ts.num_streams === 'number' ? ts.num_streams : 1,
    cpuHostPercent: typeof cpu.host_total === 'number' ? cpu.host_total : null,
    cpuRemotePercent: typeof cpu.remote_total === 'number' ? cpu.remote_total : null,
    intervalBps: Array.isArray(data.intervals)
      ? (data.intervals as (Json | null)[]).map((i) =>
          i && typeof i.sum === 'object' && i.sum && typeof (i.sum as Json).bits_per_second === 'number' ? ((i.sum as Json).bits_per_second as number) : 0,
        )
      : [],
  };
}

/** Parse a UDP run (`iperf3 -c ... -u -J`): the client's JSON carries the server's counts. */
export function parseIperfUdp(text: string): UdpResult {
  const data = parseIperfJson(text);
  const end = obj(data.end, 'end');
  const sent = obj(end.sum_sent ?? end.sum, 'end.sum_sent');
  // iperf 3.12 reports the receiver in sum_received; older versions only in sum.
  const recv = obj(end.sum_received ?? end.sum, 'end.sum_received');
  const start = data.start && typeof data.start === 'object' ? (data.start as Json) : {};
  const ts = start.test_start && typeof start.test_start === 'object' ? (start.test_start as Json) : {};
  const txPackets = num(sent, 'packets', 'end.sum_sent');
  const serverPackets = num(recv, 'packets', 'end.sum_received');
  const lost = Math.max(0, num(recv, 'lost_packets', 'end.sum_received'));
  return {
    txPackets,
    rxPackets: Math.max(0, Math.min(txPackets, serverPackets - lost)),
    lostPackets: lost,
    seconds: num(sent, 'seconds', 'end.sum_sent'),
    sentBps: num(sent, 'bits_per_second', 'end.sum_sent'),
    jitterMs: typeof recv.jitter_ms === 'number' ? recv.jitter_ms : null,
    payloadBytes: typeof ts.blksize === 'number' ? ts.blksize : 0,
  };
}

/** IPv4 + UDP header bytes. */
export const IPV4_UDP_HLEN = 28;
/** Ethernet header (14) + FCS (4): RFC 2544 frame sizes include the FCS. */
export const ETH_HLEN_FCS = 18;
/** Smallest UDP payload iperf3 accepts for its sequence number and timestamp. */
export const IPERF_MIN_UDP_PAYLOAD = 16;

/** UDP payload bytes for an RFC 2544 inner frame size (frame - 14 Ethernet - 4 FCS - 20 IP - 8 UDP). */
export function udpPayloadForFrame(frameBytes: number): number {
  return Math.max(IPERF_MIN_UDP_PAYLOAD, frameBytes - ETH_HLEN_FCS - IPV4_UDP_HLEN);
}

/** Inner IPv4 packet size for an RFC 2544 frame size. */
export function ipPacketForFrame(frameBytes: number): number {
  return frameBytes - ETH_HLEN_FCS;
}

/** argv of a TCP bulk client. */
export function tcpClientArgv(o: { server: string; port: number; seconds: number; streams: number; omitSeconds?: number; bitrate?: string }): string[] {
  const argv = ['iperf3', '-c', o.server, '-p', String(o.port), '-t', String(Math.max(1, Math.round(o.seconds))), '-P', String(o.streams), '-J', '--connect-timeout', '3000'];
  if (o.omitSeconds) argv.push('-O', String(o.omitSeconds));
  if (o.bitrate) argv.push('-b', o.bitrate);
  return argv;
}

/** Socket buffer for UDP trials (iperf3 -w); capped by net.core.rmem_max / wmem_max. */
export const UDP_SOCKET_BUFFER = '2M';

/**
 * argv of a paced UDP trial: `packets` datagrams of `payload` bytes at `pps`
 * (iperf3 paces by payload bit rate; `-k` bounds the count so trials can be shorter than 1 s).
 * The socket buffers are raised to `UDP_SOCKET_BUFFER` (iperf3 applies `-w` on both ends): with the
 * default 208 KiB the receiving iperf3, descheduled for a moment on a 2-core machine, drops
 * thousands of datagrams at 100 kpps on a bare veth, loss that belongs to the tool, not the dataplane.
 */
export function udpClientArgv(o: { server: string; port: number; pps: number; payload: number; packets: number }): string[] {
  const bitrate = Math.max(1, Math.round(o.pps * o.payload * 8));
  return [
    'iperf3',
    '-c',
    o.server,
    '-p',
    String(o.port),
    '-u',
    '-l',
    String(o.payload),
    '-b',
    String(bitrate),
    '-k',
    String(Math.max(1, Math.round(o.packets))),
    '-w',
    UDP_SOCKET_BUFFER,
    '-J',
    '--connect-timeout',
    '3000',
  ];
}
