/** The Linux UDP transport: a receive socket and sender sockets driven by the addon's recvmmsg/sendmmsg batches. */
import { native, type NativeAddon } from '../native/index.js';
import type { Transport } from './index.js';

export class LinuxUdpTransport implements Transport {
  private readonly addon: NativeAddon = native();
  readonly senders: Int32Array;
  readonly sendersNoDf: Int32Array;
  private closed = false;

  /**
   * `rxFd`: the receive socket; `txFds` (and `txFdsNoDf`): sender sockets by
   * source-port index. With `owned`, close() closes them all.
   */
  constructor(
    readonly rxFd: number,
    txFds: readonly number[],
    txFdsNoDf: readonly number[] = [],
    private readonly owned = false,
  ) {
    this.senders = Int32Array.from(txFds);
    this.sendersNoDf = Int32Array.from(txFdsNoDf);
  }

  get pollFd(): number {
    return this.rxFd;
  }

  recv(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, slotLen: number, max: number, addrs: Uint8Array, gso: Uint16Array): number {
    return this.addon.recvBatch(this.rxFd, bufs, offsets, sizes, slotLen, max, addrs, gso);
  }

  send(socks: Int32Array, bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number, addrs: Uint8Array, gso: Uint16Array, errs: Int32Array): number {
    return this.addon.sendBatch(socks, bufs, offsets, sizes, count, addrs, gso, errs);
  }

  close(): void {
    if (this.closed || !this.owned) return;
    this.closed = true;
    const fds = new Set([this.rxFd, ...this.senders, ...this.sendersNoDf]);
    for (const fd of fds) this.addon.close(fd);
  }
}
