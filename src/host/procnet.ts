/**
 * The UDP sockets of the current network namespace, from /proc/net/udp and
 * /proc/net/udp6: which sockets share a local address and port. `vxtap up` uses
 * it to find another process in its receive port's SO_REUSEPORT group, which
 * the kernel allows silently (same user) and which would take a share of the
 * VTEP's datagrams.
 */
import { readFileSync } from 'node:fs';

/** One bound UDP socket: its local address and port as /proc prints them (hex) and its inode. */
export interface UdpSocketEntry {
  /** `ADDR:PORT` in /proc's hex notation, e.g. `0100A8C0:12B5`; equal strings mean the same binding. */
  local: string;
  /** Local port. */
  port: number;
  /** Socket inode (what fstat gives for the descriptor). */
  inode: number;
}

/**
 * Parse the text of /proc/net/udp or /proc/net/udp6: the header line and lines
 * that do not have the expected columns are skipped.
 */
export function parseProcNetUdp(text: string): UdpSocketEntry[] {
  const out: UdpSocketEntry[] = [];
  for (const line of text.split('\n')) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^\d+:$/.test(f[0])) continue;
    const m = /^([0-9A-Fa-f]+):([0-9A-Fa-f]{4})$/.exec(f[1]);
    const inode = Number(f[9]);
    if (!m || !Number.isSafeInteger(inode)) continue;
    out.push({ local: f[1].toUpperCase(), port: parseInt(m[2], 16), inode });
  }
  return out;
}

/** The UDP sockets (IPv4 and IPv6) of this process's network namespace; a table that cannot be read counts as empty. */
export function udpSockets(): UdpSocketEntry[] {
  const out: UdpSocketEntry[] = [];
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    try {
      out.push(...parseProcNetUdp(readFileSync(file, 'utf8')));
    } catch {
      /* no IPv6 in this kernel, or no /proc */
    }
  }
  return out;
}

/**
 * Sockets bound to the same local address and port as one of `own` (inodes of
 * our descriptors) that are not ours: members of our SO_REUSEPORT group held by
 * someone else. `own` inodes missing from the table are ignored.
 */
export function foreignSharers(entries: readonly UdpSocketEntry[], own: ReadonlySet<number>): UdpSocketEntry[] {
  const bindings = new Set(entries.filter((e) => own.has(e.inode)).map((e) => e.local));
  return entries.filter((e) => bindings.has(e.local) && !own.has(e.inode));
}
