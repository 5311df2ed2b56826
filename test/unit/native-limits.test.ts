/**
 * The numbers C++ and TypeScript share come from native/limits.json: the built
 * addon exports what it was compiled with, and it must equal what TypeScript
 * read. And the bug that a hand-copied limit hid: with --no-offload, --batch at
 * its maximum and three flood peers, every send batch the plain path hands the
 * addon stays within the addon's batch limit (it used to reach batch x 3 entries,
 * and sendBatch threw, ending the worker).
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { LIMITS, LIMIT_NAMES, MAX_BATCH, RX_OFFLOAD, RX_TUNNEL, TX_OFFLOAD, TX_TUNNEL, VIEW_SLOTS } from '../../src/native/limits.js';
import { native } from '../../src/native/index.js';
import { MAX_BATCH as CONFIG_MAX_BATCH, validateConfig, DEFAULTS } from '../../src/config.js';
import { VXLAN_HLEN } from '../../src/wire/vxlan.js';
import { Engine, type PeerInfo } from '../../src/dataplane/engine.js';
import { newBatch } from '../../src/dataplane/batch.js';
import { Fdb, MAX_PEERS } from '../../src/dataplane/fdb.js';
import { C, COUNTERS, PEER_STRIDE } from '../../src/dataplane/stats.js';
import { sendBatchCapacity } from '../../src/dataplane/sizing.js';
import { Accounting } from '../../src/dataplane/accounting.js';
import type { Batch } from '../../src/dataplane/batch.js';
import { addrRecord } from '../../src/wire/addr.js';
import { parseMac } from '../../src/wire/mac.js';

describe('shared limits: one source', () => {
  it('the built addon was compiled with the values TypeScript reads from native/limits.json', () => {
    const json = JSON.parse(readFileSync(new URL('../../native/limits.json', import.meta.url), 'utf8')) as { limits: { name: string; value: number }[] };
    expect(json.limits.map((l) => l.name).sort()).toEqual([...LIMIT_NAMES].sort());
    expect({ ...native().limits }).toEqual({ ...LIMITS });
  });

  it("the built addon names the result views' slots as TypeScript does", () => {
    const views = { TX_OFFLOAD, RX_OFFLOAD, TX_TUNNEL, RX_TUNNEL };
    for (const [name, slots] of Object.entries(VIEW_SLOTS)) {
      const compiled = native().views[name];
      const ts = views[name as keyof typeof views] as Record<string, number>;
      expect(Object.keys(compiled)).toEqual([...slots]);
      slots.forEach((slot, i) => {
        expect(compiled[slot]).toBe(i);
        expect(ts[slot]).toBe(i);
      });
      expect(ts.LENGTH).toBe(slots.length);
    }
  });

  it('the config and the wire codec use the same numbers', () => {
    expect(CONFIG_MAX_BATCH).toBe(LIMITS.MAX_BATCH);
    expect(VXLAN_HLEN).toBe(LIMITS.VXLAN_HLEN);
  });

  it('the addon refuses one entry more than MAX_BATCH, so the limit is real', () => {
    const n = MAX_BATCH + 1;
    expect(() =>
      native().sendBatch(new Int32Array(n), new Uint8Array(64), new Uint32Array(n), new Uint32Array(n), n, new Uint8Array(n * LIMITS.ADDR_LEN), new Uint16Array(n), new Int32Array(n)),
    ).toThrow(RangeError);
  });
});

describe('plain path: send batches within the addon limit (--no-offload --batch max, three flood peers)', () => {
  const addon = native();
  const fds: number[] = [];
  afterAll(() => {
    for (const fd of fds) addon.close(fd);
  });
  const open = (): number => {
    const fd = addon.udpOpen({ address: '127.0.0.1', port: 0 });
    fds.push(fd);
    return fd;
  };

  it.each([1, 64, 341, 342, 512, CONFIG_MAX_BATCH])('batch %i: every broadcast frame reaches all three peers through sendBatch', (B) => {
    expect(validateConfig({ ...DEFAULTS, local: '127.0.0.1', batchSize: B, offload: false })).toBeNull();
    // three receivers on loopback stand for the peers; one sender socket
    const peers: PeerInfo[] = [0, 1, 2].map((i) => ({ index: i, record: addrRecord('127.0.0.1', addon.udpLocalPort(open())), flood: true }));
    const txFd = open();
    const counters = new Float64Array(COUNTERS.length);
    const stride = 128;
    const bufs = new Uint8Array(stride * B);
    const offsets = new Uint32Array(B);
    const sizes = new Uint32Array(B);
    for (let i = 0; i < B; i++) {
      offsets[i] = i * stride + VXLAN_HLEN;
      sizes[i] = 60;
      bufs.fill(0xff, offsets[i], offsets[i] + 6); // broadcast
      bufs.set(parseMac('02:00:00:00:00:01'), offsets[i] + 6);
      bufs[offsets[i] + 12] = 0x08;
    }
    // as the worker's plain path: the engine fills a batch of sendBatchCapacity(B)
    // entries and flushes it through the addon when full; then the rest is sent
    const acct = new Accounting(counters, new Float64Array(MAX_PEERS * PEER_STRIDE));
    const send = (tx: Batch): void => {
      const consumed = addon.sendBatch(tx.socks, bufs, tx.offsets, tx.sizes, tx.count, tx.addrs, tx.gso, tx.errs);
      acct.sent(tx, consumed);
    };
    const engine = new Engine({
      vni: 7,
      fdb: new Fdb(64),
      counters,
      peerCounters: new Float64Array(MAX_PEERS * PEER_STRIDE),
      txFds: Int32Array.of(txFd),
      learning: false,
      acceptUnknownPeers: false,
      ownMac: parseMac('02:00:00:00:00:aa'),
      maxUnfragmentedPayload: 1472,
      rxSlotLen: 2048,
      post: () => {},
      flush: send,
      now: () => 0,
    });
    engine.setPeers(peers);
    const tx = newBatch(sendBatchCapacity(B));
    engine.encap(bufs, offsets, sizes, B, tx);
    send(tx);
    expect(counters[C.tx_packets] + counters[C.drop_tx_error]).toBe(3 * B);
    expect(counters[C.tx_flood_packets]).toBe(3 * B);
  });

  it('the capacity never exceeds MAX_BATCH for any batch size the config accepts', () => {
    for (let b = 1; b <= CONFIG_MAX_BATCH; b++) expect(sendBatchCapacity(b)).toBeLessThanOrEqual(MAX_BATCH);
  });
});
