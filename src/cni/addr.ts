/**
 * IPv4/IPv6 prefixes for the CNI plugin, without ipaddr.js: a runtime starts the
 * plugin once per pod, and loading ipaddr.js (through src/control/flannel/cidr.ts)
 * cost ~60 ms of a ~200 ms start here. Same representation and results as
 * cidr.ts for the forms subnet.env uses (dotted quads, RFC 4291 text with one
 * `::` and an optional dotted-quad tail), which test/unit/cni.test.ts checks
 * against it on random input; other spellings (leading zeros, zones) are refused.
 * Pure code, no I/O.
 */

/** A prefix: `base` is the network address as an integer, `len` the prefix length. */
export interface Prefix {
  family: 4 | 6;
  base: bigint;
  len: number;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseV4(s: string): bigint | undefined {
  const m = V4.exec(s);
  if (!m) return undefined;
  let v = 0n;
  for (const part of m.slice(1)) {
    if ((part.length > 1 && part.startsWith('0')) || Number(part) > 255) return undefined;
    v = (v << 8n) | BigInt(part);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (text: string): bigint[] | undefined => {
    if (text === '') return [];
    const out: bigint[] = [];
    const parts = text.split(':');
    for (const [i, p] of parts.entries()) {
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4(p);
        if (v4 === undefined) return undefined;
        out.push(v4 >> 16n, v4 & 0xffffn);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(BigInt(`0x${p}`));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  const n = head.length + tail.length;
  if (halves.length === 2 ? n > 7 : n !== 8) return undefined;
  const all = [...head, ...new Array<bigint>(8 - n).fill(0n), ...tail];
  return all.reduce((v, g) => (v << 16n) | g, 0n);
}

/** Parse an address; undefined when it is not a plain IPv4 or IPv6 address. */
export function parseIp(s: string): { family: 4 | 6; value: bigint } | undefined {
  const v4 = parseV4(s);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = s.includes(':') ? parseV6(s) : undefined;
  return v6 === undefined ? undefined : { family: 6, value: v6 };
}

/** Format an address (IPv6 in RFC 5952 form: lower case, the longest run of two or more zero groups as `::`). */
export function formatIp(family: 4 | 6, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((sh) => String((value >> sh) & 0xffn)).join('.');
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(g) : `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/**
 * Parse 'addr/len'. With `strict` host bits must be zero; otherwise they are
 * cleared (`198.19.5.1/24` -> 198.19.5.0/24). Throws a TypeError saying why.
 */
export function parsePrefix(text: string, strict: boolean): Prefix {
  const slash = text.indexOf('/');
  if (slash < 0) throw new TypeError(`not a CIDR (missing /len): ${JSON.stringify(text)}`);
  const ip = parseIp(text.slice(0, slash));
  if (!ip) throw new TypeError(`not an IP address: ${JSON.stringify(text.slice(0, slash))}`);
  const lenText = text.slice(slash + 1);
  const bits = ip.family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits) throw new TypeError(`bad prefix length in ${JSON.stringify(text)}`);
  const len = Number(lenText);
  const host = (1n << BigInt(bits - len)) - 1n;
  const base = ip.value & ~host;
  if (strict && base !== ip.value) throw new TypeError(`${text} has host bits set (network address is ${formatIp(ip.family, base)}/${len})`);
  return { family: ip.family, base, len };
}

/** 'addr/len'. */
export function formatPrefix(p: Prefix): string {
  return `${formatIp(p.family, p.base)}/${p.len}`;
}

/** True when `inner` lies inside `outer`. */
export function prefixWithin(inner: Prefix, outer: Prefix): boolean {
  if (inner.family !== outer.family || inner.len < outer.len) return false;
  const shift = BigInt((inner.family === 4 ? 32 : 128) - outer.len);
  return inner.base >> shift === outer.base >> shift;
}

/** KEY=VALUE lines, as src/control/flannel/subnet-env.ts parseSubnetEnv reads them. */
export function parseEnvLines(text: string): Partial<Record<string, string>> {
  const out: Partial<Record<string, string>> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2].trim();
  }
  return out;
}
