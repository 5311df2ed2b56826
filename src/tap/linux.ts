/** The Linux TAP queue: a non-blocking TAP fd driven by the addon's batch calls. */
import { native, type NativeAddon } from '../native/index.js';
import type { FrameQueue } from './index.js';

/** One TAP queue fd (opened by the supervisor with IFF_TAP|IFF_NO_PI[|IFF_VNET_HDR]). */
export class LinuxTapQueue implements FrameQueue {
  private readonly addon: NativeAddon = native();
  private closed = false;

  /** `fd`: the queue; `vnetHdrLen`: 0 (plain), 10 (IFF_VNET_HDR) or the size set with TUNSETVNETHDRSZ. */
  constructor(
    readonly fd: number,
    readonly vnetHdrLen = 0,
    private readonly owned = false,
  ) {}

  /**
   * Open a TAP queue (`name`; a pattern like 'tap%d' is expanded) in the calling
   * thread's network namespace. The returned queue owns its fd.
   */
  static open(name: string, options: { multiQueue?: boolean; vnetHdrLen?: number } = {}): { queue: LinuxTapQueue; name: string } {
    const addon = native();
    const hdr = options.vnetHdrLen ?? 0;
    const h = addon.tapOpen(name, { multiQueue: options.multiQueue ?? false, vnetHdr: hdr > 0 });
    try {
      if (hdr > 0 && hdr !== 10) addon.tapSetVnetHdrSize(h.fd, hdr);
    } catch (err) {
      addon.close(h.fd);
      throw err;
    }
    return { queue: new LinuxTapQueue(h.fd, hdr, true), name: h.name };
  }

  get pollFd(): number {
    return this.fd;
  }

  read(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, slotLen: number, max: number): number {
    return this.addon.readBatch(this.fd, bufs, offsets, sizes, slotLen, max);
  }

  write(bufs: Uint8Array, offsets: Uint32Array, sizes: Uint32Array, count: number, errs: Int32Array): number {
    return this.addon.writeBatch(this.fd, bufs, offsets, sizes, count, errs);
  }

  close(): void {
    if (this.closed || !this.owned) return;
    this.closed = true;
    this.addon.close(this.fd);
  }
}
