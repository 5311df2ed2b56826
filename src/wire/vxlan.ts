/**
 * VXLAN header codec (RFC 7348 section 5).
 *
 *   0                   1                   2                   3
 *  |R|R|R|R|I|R|R|R|            Reserved                           |
 *  |                VXLAN Network Identifier (VNI) |   Reserved    |
 *
 * Encapsulation writes the 8 bytes in the headroom in front of the inner frame.
 * Decapsulation is as strict as Linux's vxlan_rcv: the I flag must be set and
 * every reserved bit clear, otherwise the packet is dropped ("bad-flags").
 */

/** Bytes of the VXLAN header. */
export const VXLAN_HLEN = 8;
/** The I flag (valid VNI), first byte. */
export const VXLAN_FLAG_I = 0x08;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) bytes. */
export const ENCAP_OVERHEAD_V4 = 50;
/** Outer IPv6 (40) + UDP (8) + VXLAN (8) + inner Ethernet (14) bytes. */
export const ENCAP_OVERHEAD_V6 = 70;
/** IANA-assigned VXLAN port. */
export const VXLAN_PORT_IANA = 4789;
/** Linux's (and flannel's) default VXLAN port. */
export const VXLAN_PORT_LINUX = 8472;
/** Largest VNI (24 bits). */
export const VNI_MAX = 0xffffff;
/** Smallest inner frame accepted: an Ethernet header. */
export const ETH_HLEN = 14;

/** Why a received datagram was not delivered. */
export type DecapDrop = 'short' | 'bad-flags' | 'wrong-vni';

/** Write the VXLAN header for `vni` at bufs[off..off+8). */
export function writeVxlanHeader(bufs: Uint8Array, off: number, vni: number): void {
  bufs[off] = VXLAN_FLAG_I;
  bufs[off + 1] = 0;
  bufs[off + 2] = 0;
  bufs[off + 3] = 0;
  bufs[off + 4] = (vni >>> 16) & 0xff;
  bufs[off + 5] = (vni >>> 8) & 0xff;
  bufs[off + 6] = vni & 0xff;
  bufs[off + 7] = 0;
}

/**
 * Check a VXLAN datagram of `len` bytes at `off`. Returns null when it carries an
 * inner Ethernet frame for `vni`, else the drop reason.
 */
export function checkVxlan(bufs: Uint8Array, off: number, len: number, vni: number): DecapDrop | null {
  if (len < VXLAN_HLEN + ETH_HLEN) return 'short';
  if (bufs[off] !== VXLAN_FLAG_I || bufs[off + 1] !== 0 || bufs[off + 2] !== 0 || bufs[off + 3] !== 0 || bufs[off + 7] !== 0) {
    return 'bad-flags';
  }
  if (((bufs[off + 4] << 16) | (bufs[off + 5] << 8) | bufs[off + 6]) !== vni) return 'wrong-vni';
  return null;
}

/** The VNI of the header at `off` (no checks). */
export function readVni(bufs: Uint8Array, off: number): number {
  return (bufs[off + 4] << 16) | (bufs[off + 5] << 8) | bufs[off + 6];
}
