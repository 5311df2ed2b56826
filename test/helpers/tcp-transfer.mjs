#!/usr/bin/env node
// A bounded TCP transfer with an end-to-end checksum, for the dataplane tests.
//   server HOST PORT          accept one connection, print {"bytes","sha256"} when it closes
//   client HOST PORT BYTES    send BYTES of deterministic pseudo-random data, print the same
// Both sides exit by themselves (the server after one connection or 120 s).
import net from 'node:net';
import { createHash } from 'node:crypto';

const [mode, host, portStr, bytesStr] = process.argv.slice(2);
const port = Number(portStr);
const deadline = setTimeout(() => {
  process.stderr.write('tcp-transfer: timeout\n');
  process.exit(3);
}, 120_000);

if (mode === 'server') {
  const server = net.createServer((sock) => {
    const hash = createHash('sha256');
    let bytes = 0;
    sock.on('data', (d) => {
      hash.update(d);
      bytes += d.length;
    });
    sock.on('end', () => {
      process.stdout.write(JSON.stringify({ bytes, sha256: hash.digest('hex') }) + '\n');
      sock.end();
      server.close();
      clearTimeout(deadline);
    });
  });
  server.listen(port, host, () => process.stderr.write('listening\n'));
} else if (mode === 'client') {
  const total = Number(bytesStr);
  const chunk = Buffer.alloc(1 << 16);
  let x = 0x12345678;
  const hash = createHash('sha256');
  let sent = 0;
  const sock = net.connect(port, host, () => {
    const pump = () => {
      while (sent < total) {
        for (let i = 0; i < chunk.length; i += 4) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          chunk.writeInt32LE(x | 0, i);
        }
        const n = Math.min(chunk.length, total - sent);
        const piece = chunk.subarray(0, n);
        hash.update(piece);
        sent += n;
        if (!sock.write(Buffer.from(piece))) {
          sock.once('drain', pump);
          return;
        }
      }
      sock.end();
    };
    pump();
  });
  sock.on('close', () => {
    process.stdout.write(JSON.stringify({ bytes: sent, sha256: hash.digest('hex') }) + '\n');
    clearTimeout(deadline);
  });
  sock.on('error', (e) => {
    process.stderr.write(`tcp-transfer: ${e.message}\n`);
    process.exit(2);
  });
} else {
  process.stderr.write('usage: tcp-transfer.mjs server HOST PORT | client HOST PORT BYTES\n');
  process.exit(2);
}
