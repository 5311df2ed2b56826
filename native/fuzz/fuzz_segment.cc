// Fuzz target "segment": ParseL4 and TxOffloadFrames (txOffload: TSO/USO
// super-frames from a vnet_hdr TAP -> VXLAN-wrapped wire segments grouped for
// UDP GSO). See README.md, "Fuzzing".
//
// Input: u16 maxMsg, u8 out-capacity selector, u8 msg-capacity selector, u8
// outOffset, 8 bytes of VXLAN header, then frames as [u16 length][bytes], each
// [virtio_net_hdr 10][Ethernet frame].
//
// Invariants on every input:
// - ParseL4 agrees with the harness's own parser (RefParse) in both modes;
// - nothing read or written outside each frame (poisoned gaps), `out` (exact
//   size) or the msg* arrays (exact size);
// - every frame is either emitted or counted in `dropped`, exactly as a model of
//   the contract (parse, gso type, maxMsg, room in out and msg*) says;
// - the messages of an emitted frame are contiguous, in frame order, <= maxMsg,
//   at most 64 segments each, equal-size segments but the last, gso 0 iff one
//   segment; the bytes of `out` used add up to result.outBytes;
// - every segment: the VXLAN header, headers as the super-frame's except the
//   rewritten fields, IPv4 header checksum and TCP/UDP checksum correct
//   (recomputed by the reference), length fields exact, seq advancing by mss,
//   FIN/PSH only on the last, CWR only on the first, payload bytes in order;
// - in-place frames: only the VXLAN header and a NEEDS_CSUM field written, the
//   field as the reference computes it; frames segmented or dropped unchanged.
#include <cstring>

#include "../src/frame.h"
#include "../src/offload.h"
#include "harness.h"

namespace {

using fuzz::Get16;
using fuzz::Get32;
using fuzz::RefLayout;

constexpr size_t kVnet = 10;

struct Vnet {
  uint8_t flags, gsoType;
  uint16_t hdrLen, gsoSize, csumStart, csumOffset;
};
Vnet ReadVnet(const uint8_t* v) {  // host order (little-endian here), as on a TAP without TUNSETVNETBE
  auto le = [&](size_t o) { return static_cast<uint16_t>(v[o] | v[o + 1] << 8); };
  return Vnet{v[0], v[1], le(2), le(4), le(6), le(8)};
}

void CheckParseAgrees(const std::vector<uint8_t>& frame) {
  if (frame.size() < kVnet) return;
  const uint8_t* e = frame.data() + kVnet;
  const size_t len = frame.size() - kVnet;
  for (bool zero : {false, true}) {
    vxtap::Layout f;
    RefLayout r;
    const bool a = vxtap::ParseL4(e, len, zero, &f);
    const bool b = fuzz::RefParse(e, len, zero, &r);
    CHECK(a == b);
    if (a) {
      CHECK(f.l3 == r.l3 && f.l4 == r.l4 && f.l4hdr == r.l4hdr && f.end == r.end);
      CHECK(f.ipv == r.ipv && f.proto == r.proto);
    }
  }
}

/** What the contract says one frame becomes, room in out and msg* aside. */
struct Plan {
  bool ok = false;
  bool gso = false;
  RefLayout f;
  size_t mss = 0, hdrs = 0, payload = 0, nseg = 0, segFull = 0, perMsg = 0, nMsg = 0, bytes = 0;
  size_t csumEnd = 0;  // in-place NEEDS_CSUM: where the checksum's coverage ends
};

Plan PlanFrame(const std::vector<uint8_t>& frame, size_t maxMsg) {
  Plan p;
  if (frame.size() < kVnet + 14) return p;
  const Vnet h = ReadVnet(frame.data());
  const uint8_t* e = frame.data() + kVnet;
  const size_t elen = frame.size() - kVnet;
  if (h.gsoType == 0) {
    p.nMsg = 1;
    if (8 + elen > maxMsg) return p;
    if (h.flags & 1) {
      RefLayout f;
      p.csumEnd = fuzz::RefParse(e, elen, false, &f) && f.l4 == h.csumStart ? f.end : elen;
      if ((h.csumOffset & 1) || size_t{h.csumStart} + h.csumOffset + 2 > p.csumEnd) return p;
    }
    p.ok = true;
    return p;
  }
  const uint8_t type = h.gsoType & 0x7f;
  if (!(type == 1 || type == 4 || h.gsoType == 5)) return p;
  p.gso = true;
  if (!fuzz::RefParse(e, elen, true, &p.f)) return p;
  const bool tcp = type != 5;
  if (tcp ? (p.f.proto != 6 || p.f.ipv != (type == 1 ? 4 : 6)) : p.f.proto != 17) return p;
  if (h.gsoSize == 0) return p;
  p.mss = h.gsoSize;
  p.hdrs = p.f.l4 + p.f.l4hdr;
  p.payload = p.f.end - p.hdrs;
  p.nseg = p.payload == 0 ? 1 : (p.payload + p.mss - 1) / p.mss;
  p.segFull = 8 + p.hdrs + (p.payload < p.mss ? p.payload : p.mss);
  if (p.segFull > maxMsg) return p;
  p.perMsg = maxMsg / p.segFull < 64 ? maxMsg / p.segFull : 64;
  p.nMsg = (p.nseg + p.perMsg - 1) / p.perMsg;
  p.bytes = p.nseg * (8 + p.hdrs) + p.payload;
  p.ok = true;
  return p;
}

/** Bytes a segment may differ from its super-frame in (offsets from the Ethernet header). */
bool Rewritten(const RefLayout& f, bool tcp, size_t i) {
  const size_t l3 = f.l3, l4 = f.l4;
  if (f.ipv == 4 && (i == l3 + 2 || i == l3 + 3 || i == l3 + 4 || i == l3 + 5 || i == l3 + 10 || i == l3 + 11))
    return true;
  if (f.ipv == 6 && (i == l3 + 4 || i == l3 + 5)) return true;
  if (tcp) return (i >= l4 + 4 && i < l4 + 8) || i == l4 + 13 || i == l4 + 16 || i == l4 + 17;
  return i >= l4 + 4 && i < l4 + 8;
}

void CheckSegment(const uint8_t* seg, size_t segLen, const uint8_t* vxlan, const uint8_t* e, const Plan& p, size_t k) {
  CHECK(std::memcmp(seg, vxlan, 8) == 0);
  const uint8_t* o = seg + 8;
  const size_t olen = segLen - 8;
  const bool tcp = p.f.proto == 6;
  RefLayout g;
  CHECK(fuzz::RefParse(o, olen, false, &g));
  CHECK(g.l3 == p.f.l3 && g.l4 == p.f.l4 && g.l4hdr == p.f.l4hdr && g.ipv == p.f.ipv && g.proto == p.f.proto);
  CHECK(g.end == olen);  // the IP length covers the segment exactly
  for (size_t i = 0; i < p.hdrs; i++) CHECK(o[i] == e[i] || Rewritten(p.f, tcp, i));
  const uint8_t* ip = o + g.l3;
  const uint8_t* l4 = o + g.l4;
  const uint32_t l4len = static_cast<uint32_t>(olen - g.l4);
  if (g.ipv == 4) {
    CHECK(fuzz::RefIpv4HeaderOk(ip, g.l4 - g.l3));
    CHECK(Get16(ip + 4) == static_cast<uint16_t>(Get16(e + p.f.l3 + 4) + k));
  }
  CHECK(fuzz::RefL4Ok(ip, g.ipv, g.proto, l4, l4len));
  if (tcp) {
    CHECK(Get32(l4 + 4) == static_cast<uint32_t>(Get32(e + p.f.l4 + 4) + k * p.mss));
    uint8_t want = e[p.f.l4 + 13];
    if (k + 1 < p.nseg) want &= static_cast<uint8_t>(~0x09);  // FIN, PSH only on the last
    if (k > 0) want &= static_cast<uint8_t>(~0x80);           // CWR only on the first
    CHECK(l4[13] == want);
  } else {
    CHECK(Get16(l4 + 4) == l4len);
  }
  const size_t chunk = olen - p.hdrs;
  CHECK(chunk == (p.payload - k * p.mss < p.mss ? p.payload - k * p.mss : p.mss));
  CHECK(std::memcmp(o + p.hdrs, e + p.hdrs + k * p.mss, chunk) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader in{data, size};
  size_t maxMsg = in.U16();
  if (maxMsg == 0 || maxMsg > vxtap::kUdpMaxPayload) maxMsg = vxtap::kUdpMaxPayload;
  const uint8_t outSel = in.U8(), msgSel = in.U8();
  const size_t outOffset = in.U8();
  uint8_t vxlan[8];
  for (auto& b : vxlan) b = in.U8();
  const auto frames = fuzz::ReadFrames(in, 64);
  for (const auto& f : frames) CheckParseAgrees(f);

  std::vector<Plan> plans;
  size_t needBytes = 0, needMsgs = 0;
  for (const auto& f : frames) {
    plans.push_back(PlanFrame(f, maxMsg));
    if (plans.back().ok) needBytes += plans.back().bytes, needMsgs += plans.back().nMsg;
  }
  // Room: mostly enough for everything, sometimes short, so "no room" is exercised.
  const size_t outLen = outOffset + (outSel < 192 ? needBytes + outSel : (outSel - 192) * 97u);
  const size_t msgCap = msgSel < 192 ? needMsgs + msgSel % 4 : msgSel - 192u;

  fuzz::Slab slab(frames, 0);
  fuzz::Exact<uint8_t> out(outLen), msgBuf(msgCap);
  fuzz::Exact<uint32_t> msgOffsets(msgCap), msgSizes(msgCap), msgFrame(msgCap);
  fuzz::Exact<uint16_t> msgGso(msgCap);
  // per-frame metadata (flow hash, DF): exactly one element per frame, so a write
  // past them is reported
  fuzz::Exact<uint32_t> frameHash(frames.size());
  fuzz::Exact<uint8_t> frameDf(frames.size());
  for (size_t i = 0; i < frames.size(); i++) frameDf.data[i] = 2;
  const vxtap::TxOffloadBatch b{slab.base,
                                slab.offsets.data(),
                                slab.sizes.data(),
                                static_cast<uint32_t>(frames.size()),
                                vxlan,
                                maxMsg,
                                out.data,
                                outLen,
                                outOffset,
                                msgBuf.data,
                                msgOffsets.data,
                                msgSizes.data,
                                msgGso.data,
                                msgFrame.data,
                                msgCap,
                                frameHash.data,
                                frameDf.data};
  const vxtap::TxOffloadResult r = vxtap::TxOffloadFrames(b);
  // every frame long enough to hold a vnet and an Ethernet header got its DF bit
  for (size_t i = 0; i < frames.size(); i++) {
    if (slab.sizes[i] >= vxtap::kVnetHdrLen + 14) CHECK(frameDf.data[i] <= 1);
  }

  CHECK(r.msgs <= msgCap);
  CHECK(r.outBytes <= outLen - outOffset);
  size_t pos = outOffset, k = 0, usedMsgs = 0, accepted = 0, segments = 0;
  for (size_t i = 0; i < frames.size(); i++) {
    const Plan& p = plans[i];
    const uint8_t* now = slab.At(i);
    const auto& orig = frames[i];
    const bool fits = p.ok && (p.gso ? p.bytes <= outLen - pos && p.nMsg <= msgCap - usedMsgs : usedMsgs < msgCap);
    const bool emitted = k < r.msgs && msgFrame.data[k] == i;
    CHECK(emitted == fits);  // emitted exactly when the contract says it fits; else counted as dropped
    if (!emitted) {
      CHECK(fuzz::Same(now, orig.data(), orig.size()));
      continue;
    }
    accepted++;
    const uint8_t* e = orig.data() + kVnet;
    const size_t elen = orig.size() - kVnet;
    if (!p.gso) {
      CHECK(msgBuf.data[k] == 0 && msgOffsets.data[k] == slab.offsets[i] + 2 && msgSizes.data[k] == 8 + elen &&
            msgGso.data[k] == 0);
      CHECK(std::memcmp(now, orig.data(), 2) == 0 && std::memcmp(now + 2, vxlan, 8) == 0);
      const Vnet h = ReadVnet(orig.data());
      const bool hasField = (h.flags & 1) != 0;
      const size_t field = h.csumStart + size_t{h.csumOffset};
      for (size_t j = 0; j < elen; j++) CHECK(now[kVnet + j] == e[j] || (hasField && (j == field || j == field + 1)));
      if (h.flags & 1) {
        // skb_checksum_help: the complement of the sum from csum_start to the end, seed included
        uint16_t c = static_cast<uint16_t>(~fuzz::RefFold(fuzz::RefAdd(0, e + h.csumStart, p.csumEnd - h.csumStart)));
        if (c == 0) c = 0xffff;
        CHECK(Get16(now + kVnet + field) == c);
        RefLayout f;
        if (fuzz::RefParse(e, elen, false, &f) && f.l4 == h.csumStart && h.csumOffset == (f.proto == 6 ? 16 : 6) &&
            fuzz::RefL4Partial(e + f.l3, f.ipv, f.proto, e + f.l4, static_cast<uint32_t>(f.end - f.l4)) &&
            (f.proto == 6 || Get16(e + f.l4 + 4) == f.end - f.l4)) {
          // a real CHECKSUM_PARTIAL packet: finishing it must give a valid checksum
          CHECK(fuzz::RefL4Ok(now + kVnet + f.l3, f.ipv, f.proto, now + kVnet + f.l4,
                              static_cast<uint32_t>(f.end - f.l4)));
        }
      }
      segments++;
      usedMsgs++;
      k++;
      continue;
    }
    CHECK(fuzz::Same(now, orig.data(), orig.size()));  // segmented from, never written
    // Walk the segments through the frame's messages.
    size_t seg = 0;
    for (size_t m = 0; m < p.nMsg; m++, k++) {
      CHECK(k < r.msgs && msgFrame.data[k] == i && msgBuf.data[k] == 1 && msgOffsets.data[k] == pos);
      CHECK(msgSizes.data[k] <= maxMsg);
      const size_t gso = msgGso.data[k];
      size_t at = 0, inMsg = 0;
      while (at < msgSizes.data[k]) {
        CHECK(seg < p.nseg);
        const size_t chunk = p.payload - seg * p.mss < p.mss ? p.payload - seg * p.mss : p.mss;
        const size_t segLen = 8 + p.hdrs + chunk;
        CHECK(at + segLen <= msgSizes.data[k]);
        if (at + segLen < msgSizes.data[k]) CHECK(gso == segLen);  // all but a message's last are gso bytes
        if (inMsg > 0) CHECK(segLen <= gso);
        CheckSegment(out.data + pos + at, segLen, vxlan, e, p, seg);
        at += segLen;
        seg++;
        inMsg++;
      }
      CHECK(inMsg >= 1 && inMsg <= 64 && (gso == 0) == (inMsg == 1));
      pos += msgSizes.data[k];
      usedMsgs++;
    }
    CHECK(seg == p.nseg);
    segments += seg;
  }
  CHECK(k == r.msgs);                            // no message for a frame that does not exist
  CHECK(accepted + r.dropped == frames.size());  // every frame emitted or dropped
  CHECK(pos - outOffset == r.outBytes);          // out used back to back, nothing else
  CHECK(segments == r.segments);
  return 0;
}
