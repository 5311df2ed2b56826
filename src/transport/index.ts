/**
 * The UDP transport: the sockets a worker receives VXLAN on and sends it from,
 * seen as one batch receiver and sender of datagrams.
 *
 * Design note. A worker receives on one socket (SO_REUSEPORT shares the VXLAN
 * port between workers) and sends from a pool of sockets, one per UDP source
 * port (RFC 7348 §5: the source port carries the inner flow's hash, so ECMP/RSS
 * can spread flows); with `--df inherit` a second pool without DF. The engine
 * picks a sender per datagram (`senders[portIndex]`) and the transport sends a
 * whole batch, grouping equal senders into one sendmmsg. The Linux
 * implementation (`linux.ts`) drives the addon's recvBatch/sendBatch (with UDP
 * GSO and GRO); the fake (`fake.ts`, after wireguard-go's conn/bindtest) joins
 * transports on an in-memory network. test/unit/devices.test.ts runs the same
 * suite over both.
 *
 * Batch shape: the caller owns the slab. Receive fills sizes[i], the source
 * address record at addrs[i * ADDR_LEN] and gso[i] (the segment size of a
 * GRO-coalesced datagram, 0 when single) for slots 0..n-1. Send takes entries
 * 0..count-1: from senders handle socks[i] to the record at addrs[i * ADDR_LEN],
 * gso[i] > 0 asking for UDP GSO (segments of gso[i] bytes, the last shorter).
 */

/** One worker's UDP sockets. */
export interface Transport {
  /**
   * Receive up to `max` datagrams without blocking (see the batch shape). A
   * datagram longer than `slotLen` is reported as slotLen + 1 (drop it).
   */
  recv(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, slotLen: number, max: number, addrs: Uint8Array, gso: Uint16Array): number;
  /**
   * Send entries 0..count-1 (at most MAX_BATCH). errs[i] = 0 or the errno of a
   * refused datagram (EMSGSIZE above the path MTU with DF); the batch goes on.
   * Stops early only when the socket buffer is full; returns how many were consumed.
   */
  send(socks: Int32Array, bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number, addrs: Uint8Array, gso: Uint16Array, errs: Int32Array): number;
  /** Sender handles by source-port index (with DF as configured). */
  readonly senders: Int32Array;
  /** With --df inherit: senders without DF, same indices (else empty). */
  readonly sendersNoDf: Int32Array;
  /** Polls readable when `recv` would return datagrams; -1 when there is none (fakes). */
  readonly pollFd: number;
  /** Release the sockets (idempotent). */
  close(): void;
}

export { LinuxUdpTransport } from './linux.js';
export { FakeNetwork, FakeUdpTransport, type FakeUdpOptions, type FakeDatagram } from './fake.js';
