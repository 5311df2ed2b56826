/**
 * The uplink: a TAP port on the bridge that holds the underlay address
 * (`--uplink-bridge`), through which whole TSO super-frames leave wrapped in
 * outer Ethernet/IPv4/UDP/VXLAN headers with the 24-byte UDP-tunnel GSO virtio
 * header, and through which steered VXLAN for us arrives whole.
 *
 * Design note. To the worker the port is a `FrameQueue` (src/tap) whose frames
 * carry a TNL_VNET_HDR_LEN-byte virtio header, plus whether it receives (the
 * nftables steering is in place). What makes the uplink path is policy and
 * header work, which stay out of here: which frames take it (the engine's
 * `selectTunnel`), wrapping and unwrapping (the addon's txTunnel/rxTunnel
 * kernels), and the ordering rules (the pipeline's uplink stage: socket-path
 * runs and uplink runs of one TAP batch go out in batch order; the uplink is
 * read before the socket, so a flow's large segments come before its small
 * tail). The Linux port is a TAP queue (`linux.ts`); the fake is an in-memory
 * queue (`fake.ts`) whose writes take places in a shared trace, so the ordering
 * rules are tested without root.
 */
import type { FrameQueue } from '../tap/index.js';

/** One worker's queue of the uplink TAP. */
export interface UplinkPort extends FrameQueue {
  /** VXLAN for us is steered to the port (else receive stays on the UDP socket). */
  readonly receives: boolean;
}

export { LinuxUplinkPort } from './linux.js';
export { FakeUplink } from './fake.js';
