/** A minimal pcap (libpcap file format) reader for VXLAN captures in tests. */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import type { HostScope } from '../../src/host/netns.js';

/** One captured VXLAN-over-IPv4 datagram, decoded. */
export interface VxlanPacket {
  outerSrc: string;
  outerDst: string;
  outerDf: boolean;
  outerFragment: boolean;
  srcPort: number;
  dstPort: number;
  flags: number;
  reserved24: number;
  vni: number;
  reserved8: number;
  innerEtherType: number;
  innerProto?: number;
  innerSrcPort?: number;
  innerDstPort?: number;
}

/** Read Ethernet frames from a pcap file. */
export function readPcap(file: string): Buffer[] {
  const b = readFileSync(file);
  if (b.length < 24) return [];
  const le = b.readUInt32LE(0) === 0xa1b2c3d4;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  if (u32(20) !== 1) throw new Error(`linktype ${u32(20)} is not Ethernet`);
  const frames: Buffer[] = [];
  for (let o = 24; o + 16 <= b.length;) {
    const incl = u32(o + 8);
    frames.push(b.subarray(o + 16, o + 16 + incl));
    o += 16 + incl;
  }
  return frames;
}

const ip4 = (b: Buffer, o: number) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;

/** Decode the VXLAN datagrams (UDP to `port`) among captured frames. */
export function vxlanPackets(frames: Buffer[], port: number): VxlanPacket[] {
  const out: VxlanPacket[] = [];
  for (const f of frames) {
    if (f.length < 14 + 20 + 8 + 8 + 14 || f.readUInt16BE(12) !== 0x0800) continue;
    const ip = 14;
    const ihl = (f[ip] & 0x0f) * 4;
    if (f[ip + 9] !== 17) continue;
    const fragField = f.readUInt16BE(ip + 6);
    const udp = ip + ihl;
    const dstPort = f.readUInt16BE(udp + 2);
    if (dstPort !== port) continue;
    const vx = udp + 8;
    const inner = vx + 8;
    const p: VxlanPacket = {
      outerSrc: ip4(f, ip + 12),
      outerDst: ip4(f, ip + 16),
      outerDf: (fragField & 0x4000) !== 0,
      outerFragment: (fragField & 0x3fff) !== 0,
      srcPort: f.readUInt16BE(udp),
      dstPort,
      flags: f[vx],
      reserved24: f.readUIntBE(vx + 1, 3),
      vni: f.readUIntBE(vx + 4, 3),
      reserved8: f[vx + 7],
      innerEtherType: f.readUInt16BE(inner + 12),
    };
    if (p.innerEtherType === 0x0800 && f.length >= inner + 14 + 20 + 4) {
      const iip = inner + 14;
      p.innerProto = f[iip + 9];
      const l4 = iip + (f[iip] & 0x0f) * 4;
      if (p.innerProto === 6 || p.innerProto === 17) {
        p.innerSrcPort = f.readUInt16BE(l4);
        p.innerDstPort = f.readUInt16BE(l4 + 2);
      }
    }
    out.push(p);
  }
  return out;
}

/**
 * Start tcpdump on `dev` in `netns` writing the first 128 bytes of each frame
 * matching `filter` to `file`; resolves once it listens (stop it with exec's stop()).
 */
export async function startCapture(scope: HostScope, netns: string, dev: string, file: string, filter: string): Promise<ChildProcess> {
  const dump = scope.spawn(['tcpdump', '-i', dev, '-U', '--immediate-mode', '-n', '-s', '128', '-c', '20000', '-w', file, filter], { netns });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('tcpdump did not start')), 10_000);
    dump.stderr?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  return dump;
}

/**
 * Expect RFC 7348 of every captured packet: flags exactly I (0x08), reserved bits
 * zero, the VNI, a source port in [portMin, portMax], no outer IP fragments.
 */
export function checkRfc7348(pkts: VxlanPacket[], want: { vni: number; portMin: number; portMax: number }): void {
  for (const p of pkts) {
    expect(p.flags).toBe(0x08);
    expect(p.reserved24).toBe(0);
    expect(p.reserved8).toBe(0);
    expect(p.vni).toBe(want.vni);
    expect(p.srcPort).toBeGreaterThanOrEqual(want.portMin);
    expect(p.srcPort).toBeLessThanOrEqual(want.portMax);
    expect(p.outerFragment).toBe(false);
  }
}
