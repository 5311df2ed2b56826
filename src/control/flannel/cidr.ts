/**
 * IPv4/IPv6 prefixes as bigints: the arithmetic that subnet allocation, lease
 * keys and route programming share. Pure code, no I/O.
 */
import ipaddr from 'ipaddr.js';

/** Address family. */
export type Family = 4 | 6;

/** A prefix: `base` is the network address as an integer, `len` the prefix length. */
export interface Cidr {
  family: Family;
  base: bigint;
  len: number;
}

/** Number of address bits for a family. */
export function familyBits(family: Family): number {
  return family === 4 ? 32 : 128;
}

/** Parse a bare address ('198.19.5.0', '2001:2::1') into family and integer. */
export function parseAddress(text: string): { family: Family; value: bigint } {
  if (typeof text !== 'string' || !ipaddr.isValid(text)) throw new TypeError(`not an IP address: ${JSON.stringify(text)}`);
  // ipaddr.isValid accepts shorthand like '10.1' (inet_aton); insist on the dotted quad.
  if (!text.includes(':') && !/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) throw new TypeError(`not a dotted-quad IPv4 address: ${JSON.stringify(text)}`);
  const addr = ipaddr.parse(text);
  const bytes = addr.toByteArray();
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return { family: addr.kind() === 'ipv4' ? 4 : 6, value };
}

/** Format an integer address of `family` as text (IPv6 in RFC 5952 short form). */
export function formatAddress(family: Family, value: bigint): string {
  const n = familyBits(family) / 8;
  const bytes = new Array<number>(n);
  let v = value;
  for (let i = n - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

/** Mask with the top `len` bits set. */
export function prefixMask(family: Family, len: number): bigint {
  const bits = BigInt(familyBits(family));
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(len))) - 1n);
}

/** Number of addresses in a prefix of length `len`. */
export function prefixSize(family: Family, len: number): bigint {
  return 1n << BigInt(familyBits(family) - len);
}

/**
 * Parse 'a.b.c.d/len' or 'x::/len'. With `strict` (the default) host bits must be
 * zero, as flannel's Network must be a network address.
 */
export function parseCidr(text: string, strict = true): Cidr {
  if (typeof text !== 'string') throw new TypeError(`not a CIDR: ${JSON.stringify(text)}`);
  const slash = text.indexOf('/');
  if (slash < 0) throw new TypeError(`not a CIDR (missing /len): ${JSON.stringify(text)}`);
  const { family, value } = parseAddress(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) throw new TypeError(`bad prefix length in ${JSON.stringify(text)}`);
  const len = Number(lenText);
  if (len > familyBits(family)) throw new TypeError(`prefix length ${len} too long for IPv${family} in ${JSON.stringify(text)}`);
  const base = value & prefixMask(family, len);
  if (strict && base !== value) throw new TypeError(`${text} has host bits set (network address is ${formatAddress(family, base)}/${len})`);
  return { family, base, len };
}

/** 'a.b.c.d/len'. */
export function formatCidr(c: Cidr): string {
  return `${formatAddress(c.family, c.base)}/${c.len}`;
}

/** True when `addr` (same family) lies inside `c`. */
export function cidrContains(c: Cidr, family: Family, addr: bigint): boolean {
  return family === c.family && (addr & prefixMask(c.family, c.len)) === c.base;
}

/** True when the two prefixes share at least one address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const len = Math.min(a.len, b.len);
  const m = prefixMask(a.family, len);
  return (a.base & m) === (b.base & m);
}

/** Equality of two prefixes. */
export function cidrEquals(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.base === b.base && a.len === b.len;
}
