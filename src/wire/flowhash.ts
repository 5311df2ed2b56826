/**
 * Flow hash of an inner Ethernet frame and the UDP source port it selects
 * (RFC 7348 section 5: "it is recommended that the UDP source port number be
 * calculated using a hash of fields from the inner packet"), so that underlay
 * ECMP and RSS spread flows while each flow keeps one path (no reordering).
 *
 * Fields: inner MACs, EtherType, and for IPv4/IPv6 the addresses, protocol and,
 * for TCP/UDP/SCTP first fragments, the ports. The mapping to a port uses a
 * multiply-shift like Linux's udp_flow_src_port: min + (hash * span) >> 32.
 */

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;

function mix(h: number, v: number): number {
  h ^= v;
  h = Math.imul(h, 0x01000193);
  return h;
}

function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 132;
}

/**
 * 32-bit flow hash (unsigned) of the frame of `len` bytes at `off`.
 * Frames too short for a field simply hash fewer fields.
 */
export function flowHash(b: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5 | 0;
  if (len < 14) return h >>> 0;
  // MAC addresses as 3 16-bit words each
  for (let i = 0; i < 12; i += 2) h = mix(h, (b[off + i] << 8) | b[off + i + 1]);
  let l3 = off + 14;
  let type = (b[off + 12] << 8) | b[off + 13];
  if (type === ETHERTYPE_VLAN && len >= 18) {
    h = mix(h, ((b[off + 14] << 8) | b[off + 15]) & 0x0fff);
    type = (b[off + 16] << 8) | b[off + 17];
    l3 += 4;
  }
  h = mix(h, type);
  const end = off + len;
  if (type === ETHERTYPE_IPV4 && l3 + 20 <= end) {
    const ihl = (b[l3] & 0x0f) * 4;
    const proto = b[l3 + 9];
    for (let i = 12; i < 20; i++) h = mix(h, b[l3 + i]);
    h = mix(h, proto);
    const fragOff = ((b[l3 + 6] & 0x1f) << 8) | b[l3 + 7];
    const l4 = l3 + ihl;
    if (fragOff === 0 && hasPorts(proto) && l4 + 4 <= end) {
      h = mix(h, (b[l4] << 8) | b[l4 + 1]);
      h = mix(h, (b[l4 + 2] << 8) | b[l4 + 3]);
    }
  } else if (type === ETHERTYPE_IPV6 && l3 + 40 <= end) {
    const proto = b[l3 + 6];
    for (let i = 8; i < 40; i++) h = mix(h, b[l3 + i]);
    h = mix(h, proto);
    const l4 = l3 + 40;
    if (hasPorts(proto) && l4 + 4 <= end) {
      h = mix(h, (b[l4] << 8) | b[l4 + 1]);
      h = mix(h, (b[l4 + 2] << 8) | b[l4 + 3]);
    }
  }
  // final avalanche (murmur3 fmix32)
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Index in [0, span) for a 32-bit hash: (hash * span) >> 32, exact in doubles. */
export function hashToIndex(hash: number, span: number): number {
  return Math.floor((hash * span) / 4294967296);
}

/** The UDP source port for `hash` in the inclusive range [min, max]. */
export function sourcePort(hash: number, min: number, max: number): number {
  return min + hashToIndex(hash, max - min + 1);
}
