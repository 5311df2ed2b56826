/**
 * Each frame is parsed once: txOffload hands the engine each frame's flow hash
 * and DF bit (frameHash/frameDf) instead of the engine reading the headers
 * again. The C++ hash must be the same function as src/wire/flowhash.ts (the
 * source port a flow gets may not depend on which side computed it): checked on
 * random frames of every shape the hash distinguishes.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { native, TX_OFFLOAD, VNET_HDR_LEN } from '../../src/native/index.js';
import { flowHash } from '../../src/wire/flowhash.js';

/** The DF rule of the engine's socket path: IPv4 DF bit, IPv6 always, anything else never. */
function refDf(f: Uint8Array): number {
  let l3 = 14;
  let type = (f[12] << 8) | f[13];
  if (type === 0x8100 && f.length >= 18) {
    type = (f[16] << 8) | f[17];
    l3 += 4;
  }
  if (type !== 0x0800) return type === 0x86dd ? 1 : 0;
  if (l3 + 20 > f.length) return 0;
  return (f[l3 + 6] & 0x40) !== 0 ? 1 : 0;
}

const frameArb = fc
  .record({
    type: fc.constantFrom(0x0800, 0x86dd, 0x8100, 0x0806, 0x88b5),
    inner: fc.constantFrom(0x0800, 0x86dd, 0x0806),
    proto: fc.constantFrom(6, 17, 132, 1, 47),
    ihl: fc.integer({ min: 0, max: 15 }),
    frag: fc.integer({ min: 0, max: 0xffff }),
    body: fc.uint8Array({ minLength: 0, maxLength: 120 }),
  })
  .map(({ type, inner, proto, ihl, frag, body }) => {
    const f = new Uint8Array(14 + body.length);
    f.set(body, 14);
    for (let i = 0; i < 12; i++) f[i] = (body[i % Math.max(1, body.length)] ?? i) ^ (i * 37);
    f[12] = type >> 8;
    f[13] = type & 0xff;
    let l3 = 14;
    if (type === 0x8100 && f.length >= 18) {
      f[16] = inner >> 8;
      f[17] = inner & 0xff;
      l3 = 18;
    }
    const t = type === 0x8100 ? inner : type;
    if (t === 0x0800 && l3 + 20 <= f.length) {
      f[l3] = 0x40 | ihl;
      f[l3 + 6] = frag >> 8;
      f[l3 + 7] = frag & 0xff;
      f[l3 + 9] = proto;
    } else if (t === 0x86dd && l3 + 40 <= f.length) {
      f[l3 + 6] = proto;
    }
    return f;
  });

describe("txOffload hands over each frame's flow hash and DF bit", () => {
  const addon = native();
  it("equal to flowHash and the engine's DF rule on random frames", () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 16 }), (frames) => {
        const n = frames.length;
        const stride = 256;
        const bufs = new Uint8Array(stride * n);
        const offsets = Uint32Array.from(frames.map((_, i) => i * stride + 16));
        const sizes = Uint32Array.from(frames.map((f) => VNET_HDR_LEN + f.length));
        frames.forEach((f, i) => bufs.set(f, offsets[i] + VNET_HDR_LEN)); // zero vnet header: gso NONE
        const frameHash = new Uint32Array(n);
        const frameDf = new Uint8Array(n).fill(7);
        const cap = 64;
        const h = addon.txOffloadBind({
          bufs,
          offsets,
          sizes,
          vxlan: new Uint8Array(8),
          maxMsgBytes: 65507,
          out: new Uint8Array(4096),
          outOffset: 0,
          msgBuf: new Uint8Array(cap),
          msgOffsets: new Uint32Array(cap),
          msgSizes: new Uint32Array(cap),
          msgGso: new Uint16Array(cap),
          msgFrame: new Uint32Array(cap),
          result: new Uint32Array(TX_OFFLOAD.LENGTH),
          frameHash,
          frameDf,
        });
        addon.txOffload(h, n);
        frames.forEach((f, i) => {
          expect(frameHash[i]).toBe(flowHash(f, 0, f.length));
          expect(frameDf[i]).toBe(refDf(f));
        });
      }),
      { numRuns: 300 },
    );
  });

  it('refuses meta arrays shorter than the frames they describe', () => {
    const d = {
      bufs: new Uint8Array(256),
      offsets: new Uint32Array(2),
      sizes: new Uint32Array(2),
      vxlan: new Uint8Array(8),
      maxMsgBytes: 65507,
      out: new Uint8Array(64),
      outOffset: 0,
      msgBuf: new Uint8Array(4),
      msgOffsets: new Uint32Array(4),
      msgSizes: new Uint32Array(4),
      msgGso: new Uint16Array(4),
      msgFrame: new Uint32Array(4),
      result: new Uint32Array(TX_OFFLOAD.LENGTH),
      frameHash: new Uint32Array(1),
      frameDf: new Uint8Array(2),
    };
    expect(() => addon.txOffload(addon.txOffloadBind(d), 2)).toThrow(/frameHash/);
    expect(() => addon.txOffloadBind({ ...d, frameDf: new Uint16Array(2) as unknown as Uint8Array })).toThrow(/desc\.frameDf/);
  });
});
