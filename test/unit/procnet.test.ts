import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { foreignSharers, parseProcNetUdp, udpSockets } from '../../src/host/procnet.js';

// Lines as Linux 6.x prints them (addresses in the kernel's byte order, hex).
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  101: 014D12C6:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41001 2 0000000000000000 0
  102: 014D12C6:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41002 2 0000000000000000 0
  103: 014D12C6:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 52000 2 0000000000000000 0
  104: 024D12C6:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 52001 2 0000000000000000 0
  105: 00000000:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 52002 2 0000000000000000 0
  106: 014D12C6:C000 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41003 2 0000000000000000 0
`;
const UDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  201: 000080FE00000000FF0000000100A8C0:12B5 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 60000 2 0000000000000000 0
`;

describe('/proc/net/udp', () => {
  it('reads each socket’s binding, port and inode; skips the header and broken lines', () => {
    const e = parseProcNetUdp(`${UDP}garbage line\n  107: nothex:zz 0 0\n`);
    expect(e).toHaveLength(6);
    expect(e[0]).toEqual({ local: '014D12C6:12B5', port: 4789, inode: 41001 });
    expect(e[5].port).toBe(0xc000);
    expect(parseProcNetUdp(UDP6)).toEqual([{ local: '000080FE00000000FF0000000100A8C0:12B5', port: 4789, inode: 60000 }]);
    expect(parseProcNetUdp('')).toEqual([]);
  });

  it('finds another owner’s sockets on our exact binding only (not other addresses, not the wildcard, not other ports)', () => {
    const e = parseProcNetUdp(UDP);
    expect(foreignSharers(e, new Set([41001, 41002, 41003])).map((x) => x.inode)).toEqual([52000]);
    expect(foreignSharers(e, new Set([41001, 41002, 52000, 41003]))).toEqual([]);
    // inodes of ours that the table does not list (another namespace) are no binding
    expect(foreignSharers(e, new Set([99999]))).toEqual([]);
  });

  it('lists a socket this process bound, under the inode fstat gives for its descriptor', async () => {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    try {
      // dgram keeps the descriptor private; its port finds the entry, the inode must be a socket's
      const port = s.address().port;
      const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
      const mine = udpSockets().filter((x) => x.local === local);
      expect(mine).toHaveLength(1);
      expect(mine[0].port).toBe(port);
      expect(mine[0].inode).toBeGreaterThan(0);
    } finally {
      s.close();
    }
  });
});
