/**
 * Internet checksum (RFC 1071) in TypeScript: the reference the native kernels are
 * tested against, and the helper for header-sized sums off the hot path.
 */

/** One's-complement sum of bytes [off, off+len), folded to 16 bits, plus `seed`. Not complemented. */
export function onesSum(b: Uint8Array, off: number, len: number, seed = 0): number {
  let sum = seed;
  let i = 0;
  for (; i + 1 < len; i += 2) sum += (b[off + i] << 8) | b[off + i + 1];
  if (i < len) sum += b[off + i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 65536);
  return sum;
}

/** The checksum field value: the complement of the folded sum. */
export function checksumField(sum: number): number {
  return ~sum & 0xffff;
}

/** IPv4 pseudo-header sum for an L4 segment of `l4len` bytes. */
export function pseudoSumV4(b: Uint8Array, ipOff: number, proto: number, l4len: number): number {
  return onesSum(b, ipOff + 12, 8, proto + l4len);
}

/** IPv6 pseudo-header sum for an L4 segment of `l4len` bytes. */
export function pseudoSumV6(b: Uint8Array, ipOff: number, proto: number, l4len: number): number {
  return onesSum(b, ipOff + 8, 32, proto + (l4len >>> 16) + (l4len & 0xffff));
}
