/**
 * Underlay addresses in the addon's 20-byte record form (see src/native/index.ts:
 * [0] family, [2..3] port big-endian, [4..19] address), built once per peer so the
 * packet path only copies them, and the numeric keys used to look a source up.
 */
import ipaddr from 'ipaddr.js';
import { ADDR_LEN, ADDR_FAMILY, ADDR_IP, ADDR_PORT } from '../native/index.js';

/** Build the record for `address`:`port`. Throws TypeError for an invalid address. */
export function addrRecord(address: string, port: number): Uint8Array {
  if (!ipaddr.isValid(address)) throw new TypeError(`invalid IP address '${address}'`);
  const parsed = ipaddr.parse(address);
  const rec = new Uint8Array(ADDR_LEN);
  rec[ADDR_PORT] = (port >>> 8) & 0xff;
  rec[ADDR_PORT + 1] = port & 0xff;
  if (parsed.kind() === 'ipv4') {
    rec[ADDR_FAMILY] = 4;
    rec.set(parsed.toByteArray(), ADDR_IP);
  } else {
    const v6 = parsed as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) {
      rec[ADDR_FAMILY] = 4;
      rec.set(v6.toIPv4Address().toByteArray(), ADDR_IP);
    } else {
      rec[ADDR_FAMILY] = 6;
      rec.set(v6.toByteArray(), ADDR_IP);
    }
  }
  return rec;
}

/** The address of the record at `recs[off..]` as a string ('198.18.0.1', '2001:2::1'). */
export function recordAddress(recs: Uint8Array, off: number): string {
  if (recs[off + ADDR_FAMILY] === 4) {
    return `${recs[off + ADDR_IP]}.${recs[off + ADDR_IP + 1]}.${recs[off + ADDR_IP + 2]}.${recs[off + ADDR_IP + 3]}`;
  }
  return ipaddr.fromByteArray(Array.from(recs.subarray(off + ADDR_IP, off + ADDR_IP + 16))).toString();
}

/** The port of the record at `off`. */
export function recordPort(recs: Uint8Array, off: number): number {
  return (recs[off + ADDR_PORT] << 8) | recs[off + ADDR_PORT + 1];
}

/**
 * A numeric key for the address (not the port) of the record at `off`: exact for
 * IPv4 (the 32-bit address), a 32-bit hash for IPv6 (callers compare bytes on a hit).
 */
export function recordKey(recs: Uint8Array, off: number): number {
  const a = off + ADDR_IP;
  if (recs[off + ADDR_FAMILY] === 4) {
    return ((recs[a] << 24) | (recs[a + 1] << 16) | (recs[a + 2] << 8) | recs[a + 3]) >>> 0;
  }
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < 16; i++) h = Math.imul(h ^ recs[a + i], 0x01000193);
  // IPv6 keys live above 2^32 so they never equal an IPv4 key
  return (h >>> 0) + 4294967296;
}

/** True when the addresses (family and bytes, not ports) of two records are equal. */
export function sameAddress(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  if (a[aOff] !== b[bOff]) return false;
  const n = a[aOff] === 4 ? 4 : 16;
  for (let i = 0; i < n; i++) if (a[aOff + ADDR_IP + i] !== b[bOff + ADDR_IP + i]) return false;
  return true;
}

/** Normalise an address string (IPv6 compressed form, IPv4-mapped to IPv4). */
export function normalizeAddress(address: string): string {
  const rec = addrRecord(address, 0);
  return recordAddress(rec, 0);
}

/** 4 or 6. */
export function addressFamily(address: string): 4 | 6 {
  return addrRecord(address, 0)[ADDR_FAMILY] === 4 ? 4 : 6;
}
