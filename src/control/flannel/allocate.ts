/**
 * Choosing a free subnet. Pure: the caller passes the leases it saw and a random
 * source; the etcd transaction (registry.ts) makes the choice safe when several
 * hosts pick at once: a loser sees its compare fail and picks again.
 *
 * Unlike flannel (which picks among the first 100 free subnets from SubnetMin),
 * the pick is uniform over all free subnets, so hosts starting together rarely
 * collide in the first place.
 */
import { type Cidr, cidrOverlaps, prefixSize } from './cidr.js';
import type { FamilyRange } from './config.js';

/** Number of subnets between SubnetMin and SubnetMax inclusive. */
export function subnetCount(range: FamilyRange): bigint {
  const size = prefixSize(range.network.family, range.subnetLen);
  return (range.subnetMax - range.subnetMin) / size + 1n;
}

/** The i-th subnet of the range (0-based). */
export function nthSubnet(range: FamilyRange, i: bigint): Cidr {
  const size = prefixSize(range.network.family, range.subnetLen);
  return { family: range.network.family, base: range.subnetMin + i * size, len: range.subnetLen };
}

/** True when `c` is an allocatable subnet of `range` (aligned, right length, within min..max). */
export function inRange(range: FamilyRange, c: Cidr): boolean {
  if (c.family !== range.network.family || c.len !== range.subnetLen) return false;
  if (c.base < range.subnetMin || c.base > range.subnetMax) return false;
  return (c.base - range.subnetMin) % prefixSize(c.family, c.len) === 0n;
}

/** Above this many subnets, sample instead of enumerating. */
const ENUMERATE_LIMIT = 1n << 16n;
const RANDOM_PROBES = 4096;

function randomBelow(n: bigint, random: () => number): bigint {
  if (n <= BigInt(Number.MAX_SAFE_INTEGER)) return BigInt(Math.floor(random() * Number(n)));
  // Compose 48-bit chunks for huge IPv6 ranges.
  let v = 0n;
  let bits = 0n;
  while (1n << bits < n) {
    v = (v << 48n) | BigInt(Math.floor(random() * 2 ** 48));
    bits += 48n;
  }
  return v % n;
}

/**
 * Pick a subnet of `range` that overlaps none of `taken`, uniformly at random;
 * undefined when the range is full.
 */
export function pickFreeSubnet(range: FamilyRange, taken: Cidr[], random: () => number = Math.random): Cidr | undefined {
  const n = subnetCount(range);
  const relevant = taken.filter((t) => t.family === range.network.family && cidrOverlaps(t, range.network));
  const isFree = (c: Cidr) => !relevant.some((t) => cidrOverlaps(t, c));
  if (n <= ENUMERATE_LIMIT) {
    const free: Cidr[] = [];
    for (let i = 0n; i < n; i++) {
      const c = nthSubnet(range, i);
      if (isFree(c)) free.push(c);
    }
    if (free.length === 0) return undefined;
    return free[Math.floor(random() * free.length)];
  }
  for (let probe = 0; probe < RANDOM_PROBES; probe++) {
    const c = nthSubnet(range, randomBelow(n, random));
    if (isFree(c)) return c;
  }
  // Nearly full huge range (only reachable with absurd lease counts): scan upward.
  for (let i = 0n; i < n && i < ENUMERATE_LIMIT * 16n; i++) {
    const c = nthSubnet(range, i);
    if (isFree(c)) return c;
  }
  return undefined;
}

/**
 * The subnets a new lease must avoid: every record whose key names an
 * allocatable subnet of `range` (decodable or not: its key exists, so a create
 * there would fail), plus `reserved` (this host's underlay prefixes, etcd
 * addresses). Keys that are not allocatable subnets (a hostile `0.0.0.0-0`, a
 * /16 inside the network) are ignored: every host refuses to program them, and
 * counting them would make the whole range look full.
 */
export function takenSubnets(records: Iterable<{ subnet?: Cidr }>, range: FamilyRange, reserved: Cidr[] = []): Cidr[] {
  const taken: Cidr[] = [];
  for (const r of records) if (r.subnet && inRange(range, r.subnet)) taken.push(r.subnet);
  for (const c of reserved) if (c.family === range.network.family && cidrOverlaps(c, range.network)) taken.push(c);
  return taken;
}
