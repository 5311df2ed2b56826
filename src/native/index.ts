/**
 * The typed face of the native addon (`native/src/*.cc`).
 *
 * Design note: the addon does only what TypeScript cannot do: the TUNSETIFF and
 * interface ioctls, batched syscalls (read/write loops on a TAP queue,
 * recvmmsg/sendmmsg on UDP sockets), poll/eventfd for a worker thread that has no
 * event loop, and byte loops over whole batches (checksums). Every function is
 * synchronous and never allocates per frame. Policy, tables and parsing live in
 * TypeScript.
 *
 * Batch shape (one vocabulary everywhere): the caller owns one slab (`bufs`) and
 * describes each frame by `offsets[i]` and `sizes[i]`. Receive calls fill
 * `sizes` (and `addrs`/`gso`) for slots `0..count-1` and return `count`; send
 * calls take `count` entries and return how many were consumed. Offsets need not
 * be increasing, and two entries may point at the same bytes (head-end
 * replication sends one frame to many peers without a copy).
 *
 * Errors: a failing syscall throws an Error with `.code` ('EPERM'), `.errno`
 * (positive number) and `.syscall` ('ioctl(TUNSETIFF)'). EAGAIN on a batch call is
 * not an error: the call returns what it did so far. A per-message failure in a
 * send batch (e.g. EMSGSIZE for one oversized datagram) is reported in
 * `errs[i]` and the batch goes on.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/**
 * Address record layout (ADDR_LEN bytes): [0] family (4 or 6), [1] 0,
 * [2..3] UDP port big-endian, [4..19] address (IPv4 in [4..7], rest zero).
 */
export const ADDR_FAMILY = 0;
export const ADDR_PORT = 2;
export const ADDR_IP = 4;

// Shared with C++ through native/limits.json (one source; see limits.ts).
export { TX_OFFLOAD, RX_OFFLOAD, TX_TUNNEL, RX_TUNNEL } from './limits.js';
export { ADDR_LEN, MAX_BATCH, TNL_VNET_HDR_LEN, TUNNEL_HEADROOM, TUNNEL_TEMPLATE_STRIDE, UDP_GSO_MAX_SEGMENTS, UDP_MAX_PAYLOAD, VNET_HDR_LEN, LIMITS } from './limits.js';
import type { LimitName } from './limits.js';

/** TUNSETOFFLOAD bit of Linux 6.17+: UDP-tunnel GSO. */
export const TUN_F_UDP_TUNNEL_GSO = 0x080;

/** TUNSETOFFLOAD flags (linux/if_tun.h). */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_UFO = 0x10;
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;
/**
 * Offloads of the uplink TAP (--uplink-bridge): TSO and USO super-frames, plain
 * and inside a UDP tunnel, come to us whole. A kernel that refuses them (before
 * 6.17) cannot take tunnel-GSO writes either.
 */
export const UPLINK_OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6 | TUN_F_UDP_TUNNEL_GSO;

/** poll() event bits. */
export const POLLIN = 0x001;
export const POLLOUT = 0x004;

export interface TapOpenOptions {
  /** IFF_MULTI_QUEUE: open the same name again for more queues. */
  multiQueue?: boolean;
  /** IFF_VNET_HDR: every read and write carries a 10-byte virtio_net_hdr first. */
  vnetHdr?: boolean;
}

export interface TapHandle {
  fd: number;
  /** The name the kernel gave (a pattern like 'vxtap%d' is expanded). */
  name: string;
}

/** IP_MTU_DISCOVER / IPV6_MTU_DISCOVER mode of a UDP socket. */
export type PmtuMode = 'do' | 'dont' | 'want' | 'probe';

export interface UdpOpenOptions {
  /** Local address to bind ('0.0.0.0', '::', or a unicast address). */
  address: string;
  /** Local port; 0 picks an ephemeral port. */
  port: number;
  /** SO_REUSEPORT before bind. */
  reusePort?: boolean;
  /** SO_RCVBUF / SO_SNDBUF in bytes (SO_*BUFFORCE is tried first as root). */
  rcvbuf?: number;
  sndbuf?: number;
  /** UDP_GRO: coalesced datagrams arrive with their segment size in `gso`. */
  gro?: boolean;
  /** Outer don't-fragment behaviour. */
  pmtu?: PmtuMode;
  /** IPV6_V6ONLY for '::' sockets (default true). */
  v6only?: boolean;
}

/** Opaque handles of bound kernel descriptors (an external the addon tags with its type). */
export type TxOffloadHandle = { readonly __brand: 'txOffload' };
export type RxOffloadHandle = { readonly __brand: 'rxOffload' };
export type TxTunnelHandle = { readonly __brand: 'txTunnel' };
export type RxTunnelHandle = { readonly __brand: 'rxTunnel' };

/** txOffload's arrays and fixed parameters (see txOffload). */
export interface TxOffloadDesc {
  bufs: Uint8Array;
  offsets: Uint32Array;
  sizes: Uint32Array;
  /** The 8-byte VXLAN header to prefix. */
  vxlan: Uint8Array;
  /** At most 65507. */
  maxMsgBytes: number;
  out: Uint8Array;
  outOffset: number;
  msgBuf: Uint8Array;
  msgOffsets: Uint32Array;
  msgSizes: Uint32Array;
  msgGso: Uint16Array;
  msgFrame: Uint32Array;
  /** TX_OFFLOAD.LENGTH elements. */
  result: Uint32Array;
  /** Optional, per input frame: its flow hash (src/wire/flowhash.ts's function), computed while parsing it. */
  frameHash?: Uint32Array;
  /** Optional, per input frame: 1 when its DF bit is set (IPv6: 1; not IP: 0). */
  frameDf?: Uint8Array;
}

/** rxOffload's arrays and fixed parameters (see rxOffload). */
export interface RxOffloadDesc {
  bufs: Uint8Array;
  offsets: Uint32Array;
  sizes: Uint32Array;
  gso: Uint16Array;
  ok: Uint8Array;
  vni: number;
  out: Uint8Array;
  outOffset: number;
  frameOffsets: Uint32Array;
  frameSizes: Uint32Array;
  learnSrc?: Uint32Array;
  /** RX_OFFLOAD.LENGTH elements. */
  result: Uint32Array;
}

/** txTunnel's arrays and fixed parameters (see txTunnel). */
export interface TxTunnelDesc {
  bufs: Uint8Array;
  offsets: Uint32Array;
  sizes: Uint32Array;
  sel: Int32Array;
  srcPort: Uint16Array;
  dfMode: number;
  maxOuterIp: number;
  outOffsets: Uint32Array;
  outSizes: Uint32Array;
  /** TX_TUNNEL.LENGTH elements; seed NEXT_IP_ID. */
  result: Uint32Array;
}

/** rxTunnel's arrays and fixed parameters (see rxTunnel). */
export interface RxTunnelDesc {
  bufs: Uint8Array;
  offsets: Uint32Array;
  sizes: Uint32Array;
  vni: number;
  port: number;
  addrs: Uint8Array;
  frameOffsets: Uint32Array;
  frameSizes: Uint32Array;
  usoOffsets: Uint32Array;
  usoSizes: Uint32Array;
  usoGso: Uint16Array;
  usoAddrs: Uint8Array;
  order: Uint8Array;
  /** RX_TUNNEL.LENGTH elements. */
  result: Uint32Array;
}

export interface NativeAddon {
  /** The shared limits as compiled into the addon (from native/limits.json). */
  readonly limits: Readonly<Record<LimitName, number>>;
  /** The result views' slot indices as compiled: views.RX_OFFLOAD.NO_ROOM. */
  readonly views: Readonly<Record<string, Readonly<Record<string, number>>>>;
  // --- TAP and interfaces -------------------------------------------------
  /** open('/dev/net/tun') + TUNSETIFF(IFF_TAP|IFF_NO_PI[...]), O_NONBLOCK|O_CLOEXEC. */
  tapOpen(name: string, options?: TapOpenOptions): TapHandle;
  /** TUNSETOFFLOAD with TUN_F_* flags; throws (EINVAL) if the kernel refuses a flag. */
  tapSetOffload(fd: number, flags: number): void;
  /** TUNSETVNETHDRSZ. */
  tapSetVnetHdrSize(fd: number, size: number): void;
  /** SIOCSIFMTU / SIOCGIFMTU on the named interface (in the caller's netns). */
  ifSetMtu(name: string, mtu: number): void;
  ifGetMtu(name: string): number;
  /** SIOCSIFHWADDR / SIOCGIFHWADDR; mac is 6 bytes. */
  ifSetMac(name: string, mac: Uint8Array): void;
  ifGetMac(name: string): Uint8Array;
  /** SIOCSIFFLAGS: set or clear IFF_UP. */
  ifSetUp(name: string, up: boolean): void;
  /** if_nametoindex; 0 if absent. */
  ifIndex(name: string): number;

  // --- UDP ---------------------------------------------------------------
  /** socket(AF_INET|AF_INET6, SOCK_DGRAM|SOCK_NONBLOCK|SOCK_CLOEXEC) + options + bind. */
  udpOpen(options: UdpOpenOptions): number;
  /** getsockname: the bound port. */
  udpLocalPort(fd: number): number;

  // --- batches -----------------------------------------------------------
  /**
   * read() frames from a TAP queue until EAGAIN or `max` frames: frame i lands at
   * bufs[offsets[i]] with at most `slotLen` bytes; sizes[i] is its length.
   * Returns the count (0 when nothing was ready).
   */
  readBatch(fd: number, bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, slotLen: number, max: number): number;
  /**
   * write() frames 0..count-1 to a TAP queue, one write per frame. errs[i] is 0 or
   * the errno of a frame the kernel refused (the batch goes on). Stops at EAGAIN.
   * Returns the number of frames consumed (written or refused).
   */
  writeBatch(fd: number, bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number, errs: Int32Array): number;
  /**
   * recvmmsg(MSG_DONTWAIT) up to `max` datagrams. Slot i: bytes at
   * bufs[offsets[i]] (at most slotLen), sizes[i], the source in addrs[i*ADDR_LEN..],
   * and gso[i] = the UDP_GRO segment size (0 when not coalesced). A datagram
   * longer than slotLen is reported with sizes[i] = slotLen + 1 (MSG_TRUNC) so the
   * caller drops it. Returns the count.
   */
  recvBatch(fd: number, bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, slotLen: number, max: number, addrs: Uint8Array, gso: Uint16Array): number;
  /**
   * Send entries 0..count-1: entry i goes out of socket fds[i] to addrs[i*ADDR_LEN..],
   * with UDP_SEGMENT gso[i] when gso[i] > 0. Consecutive entries with the same fd
   * share one sendmmsg. errs[i] is 0 or the errno of a refused datagram (the batch
   * goes on). Stops at EAGAIN. Returns the number consumed.
   */
  sendBatch(fds: Int32Array, bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number, addrs: Uint8Array, gso: Uint16Array, errs: Int32Array): number;

  // --- byte kernels ---------------------------------------------------------
  /**
   * For each Ethernet frame (IPv4 or IPv6, optional 802.1Q tag, TCP or UDP, not a
   * fragment): when the L4 checksum field holds only the folded pseudo-header sum
   * (CHECKSUM_PARTIAL from a kernel sender with tx offload), compute the full
   * checksum in place. Returns how many frames were completed.
   */
  completeChecksums(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number): number;
  /** Internet checksum (RFC 1071) of bufs[offset..offset+length), folded, not complemented, plus `seed`. */
  checksum(bufs: Uint8Array, offset: number, length: number, seed: number): number;

  // --- offload kernels (vnet_hdr TAP <-> UDP GSO/GRO) ----------------------
  /**
   * Transmit side of the offload path. Input: frames read from a vnet_hdr TAP,
   * frame i = [virtio_net_hdr (10)][Ethernet frame] at bufs[offsets[i]], sizes[i]
   * bytes in all (the Ethernet frame starts at offsets[i] + 10; the 10 header
   * bytes are ours to overwrite once read).
   *
   * For each input frame:
   * - gso_type NONE: if NEEDS_CSUM, finish the checksum at csum_start/csum_offset
   *   in place; write the 8-byte VXLAN header `vxlan` at offsets[i] + 2 (just in
   *   front of the Ethernet frame) and emit one message pointing there (in place,
   *   no copy), gso 0.
   * - gso_type TCPV4 / TCPV6 (ECN bit allowed): segment the super-frame into
   *   gso_size-payload TCP segments with correct IPv4 total length, id (+1 per
   *   segment), header checksum / IPv6 payload length, TCP seq, flags (FIN/PSH only
   *   on the last, CWR only on the first) and full TCP checksums; each segment is
   *   [vxlan 8][eth][ip][tcp][payload], laid out back to back in `out` from
   *   outOffset on. Segments are grouped into messages for UDP GSO: at most
   *   64 segments and at most `maxMsgBytes` (<= 65507) bytes per message; every
   *   segment of a message has the same size except possibly the last; the
   *   message's gso = segment size (0 when it holds a single segment).
   * - gso_type UDP_L4 (USO): same as TCP with UDP headers (length + checksum per
   *   segment); other gso types: dropped (msgFrame not emitted, counted in
   *   result[1]).
   *
   * Output messages 0..n-1: msgBuf[k] = 0 (in place in bufs) or 1 (in out),
   * msgOffsets[k], msgSizes[k], msgGso[k], msgFrame[k] = index of the input frame.
   * Returns n. The result view (TX_OFFLOAD): OUT_BYTES = bytes of `out` used
   * (from outOffset on), DROPPED = frames dropped (bad header / unsupported gso /
   * out or msg* arrays full / a segment longer than maxMsgBytes), SEGMENTS =
   * inner frames emitted (segments plus in-place frames). The msg* arrays'
   * common length bounds n; a frame that does not fit is dropped whole (never
   * partly emitted).
   *
   * The arrays are bound once (`txOffloadBind`); a call takes the handle and
   * `count` (frames 0..count-1 of desc.offsets/desc.sizes).
   */
  txOffload(handle: TxOffloadHandle, count: number): number;
  /** Check and hold a txOffload descriptor (every array, once); throws naming the property ('desc.out'). */
  txOffloadBind(desc: TxOffloadDesc): TxOffloadHandle;
  /**
   * Receive side of the offload path. Input: datagrams from a UDP_GRO socket,
   * datagram i at bufs[offsets[i]], sizes[i] bytes, gso[i] = segment size (0 = a
   * single VXLAN datagram). Each segment must be a VXLAN datagram for `vni`
   * (flags exactly 0x08, reserved zero, length >= 8 + 14); bad ones are counted in
   * the DROP_* slots of the result view and skipped. Only
   * datagrams with ok[i] != 0 are processed (the caller checked the source).
   *
   * The inner frames are written to `out` as vnet_hdr TAP frames
   * [virtio_net_hdr 10][Ethernet frame], back to back from outOffset, described
   * by frameOffsets/frameSizes (the vnet header included). Consecutive inner
   * TCP segments (IPv4 without options/fragments, or IPv6 without extension
   * headers) of one flow are coalesced into one super-frame when: same MACs,
   * addresses, ports, ACK, window and TCP options bytes; seq continues exactly;
   * all but the last carry exactly the same payload size (the gso_size); no
   * SYN/FIN/RST/URG/CWR/ECE on a non-final segment (PSH ends a super-frame); total
   * <= 65535 - Ethernet header bytes; IPv4 ids consecutive or all equal; checksum
   * verified (full checksum correct, or partial = equals the pseudo-header sum).
   * A super-frame gets vnet_hdr {flags NEEDS_CSUM, gso_type TCPV4/TCPV6,
   * hdr_len, gso_size, csum_start, csum_offset}, IP total length and header
   * checksum rewritten and the TCP checksum field seeded with the folded
   * pseudo-header sum. A frame not coalesced is copied with a zero vnet_hdr,
   * except that a TCP/UDP frame whose checksum is partial gets NEEDS_CSUM (no
   * checksum computed). Source MACs of inner frames are not looked at here.
   * Also required for coalescing (as Linux GRO does): ACK set, payload > 0, a valid
   * IPv4 header checksum, and the same IPv4 TOS/DF/TTL or IPv6 traffic class/flow
   * label/hop limit.
   * Returns the number of TAP frames. The result view (RX_OFFLOAD), set, not
   * accumulated, per call: OUT_BYTES = bytes of `out` used (from outOffset on),
   * SEGMENTS_IN = inner segments in, SUPER_FRAMES = super-frames built, NO_ROOM =
   * inner segments dropped because `out` or the frame arrays were full,
   * DROP_SHORT / DROP_BAD_FLAGS / DROP_WRONG_VNI = bad VXLAN segments.
   * learnSrc (optional: may be undefined): for each output frame k, learnSrc[k] =
   * index i of the input datagram it came from (of its first segment).
   *
   * The arrays are bound once (`rxOffloadBind`); a call takes the handle and
   * `count` (datagrams 0..count-1).
   */
  rxOffload(handle: RxOffloadHandle, count: number): number;
  /** Check and hold an rxOffload descriptor (every array, once); throws naming the property. */
  rxOffloadBind(desc: RxOffloadDesc): RxOffloadHandle;
  /**
   * Uplink transmit (UDP-tunnel GSO): wrap vnet_hdr TAP frames whole, TSO
   * super-frames included, in outer Ethernet/IPv4/UDP/VXLAN headers for one write
   * each to an uplink TAP whose vnet header size is TNL_VNET_HDR_LEN (24): the
   * kernel segments them only where a device needs it. Frame i (its 10-byte
   * virtio_net_hdr at bufs[offsets[i]], sizes[i] bytes with it) is wrapped when
   * sel[i] >= 0, using the 50-byte outer header template at
   * templates[sel[i] * TUNNEL_TEMPLATE_STRIDE] (Ethernet dst/src/type, IPv4 with
   * addresses, TTL and protocol, UDP with the destination port, VXLAN); the IP
   * length, DF (dfMode 0 unset, 1 set, 2 from the inner IPv4 header) and
   * checksum, the UDP source port (srcPort[i]) and length are filled in, the UDP
   * checksum is 0. Every offsets[i] needs TUNNEL_HEADROOM (64) bytes of headroom,
   * which are overwritten. A frame the kernel could not carry whole (an outer
   * packet or segment above maxOuterIp bytes, UFO, a bad vnet header) gets
   * sel[i] = -1 and is left for the socket path. Output k: outOffsets[k],
   * outSizes[k] (the tunnel header included). Returns the count. The result view
   * (TX_TUNNEL): SEGMENTS = wire packets they make, REFUSED = frames handed back
   * with sel -1, NEXT_IP_ID = the next outer IPv4 ID, read and advanced: each
   * wire packet takes one (the kernel numbers a super-frame's segments on from
   * its first).
   *
   * The arrays are bound once (`txTunnelBind`); a call takes the handle, `count`
   * and the current `templates` (rebuilt when the peers change).
   */
  txTunnel(handle: TxTunnelHandle, count: number, templates: Uint8Array): number;
  /** Check and hold a txTunnel descriptor (every array, once); throws naming the property. */
  txTunnelBind(desc: TxTunnelDesc): TxTunnelHandle;
  /**
   * Uplink receive: frames read from the uplink TAP (24-byte tunnel virtio header,
   * then outer Ethernet/IPv4/UDP/VXLAN, UDP-tunnel GSO super-frames included), frame
   * i at bufs[offsets[i]], sizes[i] bytes. Each must be IPv4 (no fragment), UDP to
   * `port`, VXLAN with flags exactly 0x08, reserved zero and `vni`; others are
   * counted in DROP_MALFORMED (lengths), DROP_BAD_FLAGS, DROP_WRONG_VNI. A good
   * frame becomes, in place, a 10-byte virtio_net_hdr (its GSO type, header length
   * and checksum offsets moved to the inner frame) followed by the inner Ethernet
   * frame: output k at frameOffsets[k], frameSizes[k] bytes, with the outer source
   * as an address record at addrs[k * ADDR_LEN] (port = the UDP source port).
   * Returns the count; SEGMENTS = wire packets they stand for, SUPER_FRAMES =
   * super-frames among them. A UDP GSO run of VXLAN datagrams (gso_type UDP_L4:
   * from a socket-path sender) is left whole for rxOffload: its UDP payload at
   * usoOffsets[j], usoSizes[j] bytes, segment size usoGso[j], source record at
   * usoAddrs[j * ADDR_LEN]; USO_RUNS = how many. order[0..k+runs) gives the
   * arrival order: 0 = the next frame, 1 = the next run. Frames that are not
   * IPv4/UDP to `port` at all are skipped and counted in IGNORED; a bad outer
   * IPv4 header checksum counts as malformed. The result view (RX_TUNNEL):
   * SEGMENTS, SUPER_FRAMES, USO_RUNS, IGNORED, DROP_MALFORMED, DROP_BAD_FLAGS,
   * DROP_WRONG_VNI.
   *
   * The arrays are bound once (`rxTunnelBind`); a call takes the handle and `count`.
   */
  rxTunnel(handle: RxTunnelHandle, count: number): number;
  /** Check and hold an rxTunnel descriptor (every array, once); throws naming the property. */
  rxTunnelBind(desc: RxTunnelDesc): RxTunnelHandle;

  // --- waiting ------------------------------------------------------------
  /**
   * poll() on fds with the given events (POLLIN/POLLOUT); revents[i] receives the
   * result. Returns the number of ready fds (0 on timeout; EINTR returns 0).
   * timeoutMs -1 blocks.
   */
  poll(fds: Int32Array, events: Int16Array, revents: Int16Array, timeoutMs: number): number;
  /** eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC). */
  eventfdOpen(): number;
  /** Add 1 to the eventfd (wakes a poller). */
  eventfdSignal(fd: number): void;
  /** Read and reset the counter; returns its value (0 if it was 0). */
  eventfdDrain(fd: number): number;
  /** close(fd). */
  close(fd: number): void;

  // --- CPU-local workers --------------------------------------------------------
  /** sched_setaffinity of the calling thread to this one CPU. */
  threadPinCpu(cpu: number): void;
  /** sched_getcpu(): the CPU the calling thread runs on. */
  threadCpu(): number;
  /**
   * TUNSETSTEERINGEBPF on a TAP (any queue's fd): a socket filter returning the
   * sending CPU's id, so a frame goes to queue (CPU mod queues). Used on the
   * uplink TAP, whose frames come from the receive path; not on the local TAP,
   * where it split TCP flows over workers.
   */
  tapSteerByCpu(fd: number): void;
  /**
   * SO_ATTACH_REUSEPORT_CBPF on a reuseport group member: a datagram goes to the
   * member (receiving CPU mod `members`), members counted in bind order.
   */
  udpSteerByCpu(fd: number, members: number): void;

  // --- namespaces (tests and tools; not on the packet path) -----------------
  /**
   * setns(CLONE_NEWNET) of the calling thread to the namespace at `path`
   * ('/run/netns/NAME'): sockets and TAPs opened afterwards live there. Returns
   * an fd of the namespace the thread was in (for netnsEnterFd; close it after).
   */
  netnsEnter(path: string): number;
  /** setns(CLONE_NEWNET) to the namespace fd `fd` (from netnsEnter). */
  netnsEnterFd(fd: number): void;
}

/** Error thrown by the addon. */
export interface NativeError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));

let cached: NativeAddon | undefined;

/** Load the addon (built by `npm install` into native/build/Release). */
export function native(): NativeAddon {
  if (!cached) {
    const candidates = [
      path.resolve(here, '../../native/build/Release/vxtap_native.node'),
      path.resolve(here, '../../../native/build/Release/vxtap_native.node'),
    ];
    let lastErr: unknown;
    for (const file of candidates) {
      try {
        cached = require(file) as NativeAddon;
        break;
      } catch (err) {
        lastErr = err;
      }
    }
    if (!cached) {
      throw new Error(`vxtap native addon not built (run 'npm install'): ${lastErr instanceof Error ? lastErr.message : String(lastErr)}`);
    }
  }
  return cached;
}

/** True when `err` is an addon error with the given code. */
export function isErrno(err: unknown, code: string): err is NativeError {
  return typeof err === 'object' && err !== null && (err as NativeError).code === code;
}
