/** MAC addresses: parsing, formatting and the 48-bit numeric form used as a table key. */

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** True for 'aa:bb:cc:dd:ee:ff' (any case). */
export function isMacString(s: string): boolean {
  return MAC_RE.test(s);
}

/** Parse 'aa:bb:cc:dd:ee:ff' into 6 bytes; throws TypeError naming the value. */
export function parseMac(s: string): Uint8Array {
  if (!isMacString(s)) throw new TypeError(`invalid MAC address '${s}' (want aa:bb:cc:dd:ee:ff)`);
  return Uint8Array.from(s.split(':').map((h) => parseInt(h, 16)));
}

/** Format 6 bytes at `off` as 'aa:bb:cc:dd:ee:ff'. */
export function formatMac(b: Uint8Array, off = 0): string {
  const parts: string[] = [];
  for (let i = 0; i < 6; i++) parts.push(b[off + i].toString(16).padStart(2, '0'));
  return parts.join(':');
}

/** The top 16 bits of the MAC at `off`, as an integer. */
export function macHi(b: Uint8Array, off: number): number {
  return (b[off] << 8) | b[off + 1];
}

/** The low 32 bits of the MAC at `off`, as a signed 32-bit integer. */
export function macLo(b: Uint8Array, off: number): number {
  return (b[off + 2] << 24) | (b[off + 3] << 16) | (b[off + 4] << 8) | b[off + 5];
}

/** Group (multicast or broadcast) bit of the MAC at `off`. */
export function isGroupMac(b: Uint8Array, off: number): boolean {
  return (b[off] & 1) === 1;
}

/** A random locally administered unicast MAC (02:xx:...). */
export function randomMac(): Uint8Array {
  const m = new Uint8Array(6);
  for (let i = 0; i < 6; i++) m[i] = Math.floor(Math.random() * 256);
  m[0] = (m[0] & 0xfc) | 0x02;
  return m;
}
