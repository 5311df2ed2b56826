/**
 * The numbers the addon and TypeScript share (batch limit, header lengths,
 * headroom), read from `native/limits.json`, their one source: the addon's build
 * turns the same file into a C++ header (`native/gen-limits.mjs`), and
 * test/unit/native-limits.test.ts checks that the built addon's `limits` export
 * equals what is read here. Edit the JSON, never a copy.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The names in native/limits.json. */
export const LIMIT_NAMES = [
  'MAX_BATCH',
  'ADDR_LEN',
  'VNET_HDR_LEN',
  'TNL_VNET_HDR_LEN',
  'TUNNEL_HEADROOM',
  'TUNNEL_TEMPLATE_STRIDE',
  'VXLAN_HLEN',
  'UDP_MAX_PAYLOAD',
  'UDP_GSO_MAX_SEGMENTS',
] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

/** The result views in native/limits.json: slot names in slot order. */
export const VIEW_SLOTS = {
  TX_OFFLOAD: ['OUT_BYTES', 'DROPPED', 'SEGMENTS'],
  RX_OFFLOAD: ['OUT_BYTES', 'SEGMENTS_IN', 'SUPER_FRAMES', 'NO_ROOM', 'DROP_SHORT', 'DROP_BAD_FLAGS', 'DROP_WRONG_VNI'],
  TX_TUNNEL: ['SEGMENTS', 'REFUSED', 'NEXT_IP_ID'],
  RX_TUNNEL: ['SEGMENTS', 'SUPER_FRAMES', 'USO_RUNS', 'IGNORED', 'DROP_MALFORMED', 'DROP_BAD_FLAGS', 'DROP_WRONG_VNI'],
} as const;
export type ViewName = keyof typeof VIEW_SLOTS;
/** A result view's slot indices by name, and LENGTH (the Uint32Array's length). */
export type View<K extends ViewName> = Readonly<Record<(typeof VIEW_SLOTS)[K][number] | 'LENGTH', number>>;

const here = path.dirname(fileURLToPath(import.meta.url));

interface LimitsFile {
  limits: { name: string; value: number }[];
  views: { name: string; slots: string[] }[];
}

/** Read native/limits.json (from src/native or dist/src/native). */
function readFile(): LimitsFile {
  const candidates = [path.resolve(here, '../../native/limits.json'), path.resolve(here, '../../../native/limits.json')];
  let text: string | undefined;
  for (const file of candidates) {
    try {
      text = readFileSync(file, 'utf8');
      break;
    } catch {
      // next candidate
    }
  }
  if (text === undefined) throw new Error(`native/limits.json not found (looked in ${candidates.join(', ')})`);
  return JSON.parse(text) as LimitsFile;
}

const FILE = readFile();

/** Check and index the limits. */
function load(): Readonly<Record<LimitName, number>> {
  const parsed = FILE;
  const out = {} as Record<LimitName, number>;
  for (const name of LIMIT_NAMES) {
    const e = parsed.limits.find((l) => l.name === name);
    if (!e || !Number.isInteger(e.value) || e.value <= 0) throw new Error(`native/limits.json: ${name} missing or not a positive integer`);
    out[name] = e.value;
  }
  return Object.freeze(out);
}

/** Every shared limit by name. */
export const LIMITS = load();

/** View `name`'s slot indices, checked against the names TypeScript expects (same slots, same order). */
function view<K extends ViewName>(name: K): View<K> {
  const v = FILE.views.find((x) => x.name === name);
  const want: readonly string[] = VIEW_SLOTS[name];
  if (!v || v.slots.join(',') !== want.join(',')) throw new Error(`native/limits.json: view ${name} must have the slots ${want.join(', ')}`);
  const out: Record<string, number> = { LENGTH: want.length };
  want.forEach((slot, i) => (out[slot] = i));
  return Object.freeze(out);
}

/** txOffload's result view. */
export const TX_OFFLOAD = view('TX_OFFLOAD');
/** rxOffload's result view (set, not accumulated, per call). */
export const RX_OFFLOAD = view('RX_OFFLOAD');
/** txTunnel's result view; NEXT_IP_ID is read and advanced by each call. */
export const TX_TUNNEL = view('TX_TUNNEL');
/** rxTunnel's result view. */
export const RX_TUNNEL = view('RX_TUNNEL');

/** Largest count/max of any batch call (UIO_MAXIOV, sendmmsg's own limit). */
export const MAX_BATCH = LIMITS.MAX_BATCH;
/** Bytes per address record in `addrs` arrays. */
export const ADDR_LEN = LIMITS.ADDR_LEN;
/** virtio_net_hdr size used on vnet_hdr TAPs (without num_buffers). */
export const VNET_HDR_LEN = LIMITS.VNET_HDR_LEN;
/** virtio_net_hdr_v1_hash_tunnel: the uplink TAP's vnet header size (TUNSETVNETHDRSZ). */
export const TNL_VNET_HDR_LEN = LIMITS.TNL_VNET_HDR_LEN;
/** Bytes txTunnel needs in front of each frame's vnet header. */
export const TUNNEL_HEADROOM = LIMITS.TUNNEL_HEADROOM;
/** Bytes per peer in txTunnel's template array (50 used). */
export const TUNNEL_TEMPLATE_STRIDE = LIMITS.TUNNEL_TEMPLATE_STRIDE;
/** VXLAN header bytes (RFC 7348). */
export const VXLAN_HLEN = LIMITS.VXLAN_HLEN;
/** Largest IPv4 UDP payload, and so the largest UDP GSO message. */
export const UDP_MAX_PAYLOAD = LIMITS.UDP_MAX_PAYLOAD;
/** Segments per UDP GSO message. */
export const UDP_GSO_MAX_SEGMENTS = LIMITS.UDP_GSO_MAX_SEGMENTS;
