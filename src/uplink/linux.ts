/** The Linux uplink port: a queue of the uplink TAP (vnet header size 24, UDP-tunnel GSO offloads). */
import { TNL_VNET_HDR_LEN, UPLINK_OFFLOADS, native } from '../native/index.js';
import { LinuxTapQueue } from '../tap/linux.js';
import type { UplinkPort } from './index.js';

export class LinuxUplinkPort extends LinuxTapQueue implements UplinkPort {
  /** `fd`: a queue of the uplink TAP, already set up (TUNSETVNETHDRSZ 24, UPLINK_OFFLOADS). */
  constructor(
    fd: number,
    readonly receives: boolean,
    owned = false,
  ) {
    super(fd, TNL_VNET_HDR_LEN, owned);
  }

  /**
   * Open a queue of uplink TAP `name` in the calling thread's namespace: vnet
   * header size 24 and the UDP-tunnel GSO offloads (Linux 6.17+; throws EINVAL
   * on an older kernel). The port owns its fd.
   */
  static openPort(name: string, options: { multiQueue?: boolean; receives?: boolean } = {}): { port: LinuxUplinkPort; name: string } {
    const { queue, name: got } = LinuxTapQueue.open(name, { multiQueue: options.multiQueue, vnetHdrLen: TNL_VNET_HDR_LEN });
    try {
      native().tapSetOffload(queue.fd, UPLINK_OFFLOADS);
    } catch (err) {
      queue.close();
      throw err;
    }
    return { port: new LinuxUplinkPort(queue.fd, options.receives ?? false, true), name: got };
  }
}
