// Fuzz target "coalesce": RxOffloadDatagrams (rxOffload: UDP GRO datagrams ->
// VXLAN checked -> inner TCP segments re-coalesced into vnet_hdr GSO
// super-frames for a TAP write). See README.md, "Fuzzing".
//
// Input: u24 vni, u8 out-capacity selector, u8 frame-capacity selector, u8
// outOffset, u8 options (bit 0: learnSrc; bit 1: fix inner checksums first, bit
// 2: as partial ones), then datagrams as
// [u16 length][u16 gso][u8 ok][bytes].
//
// Invariants on every input:
// - nothing read or written outside each datagram (poisoned gaps), `out` or the
//   frame arrays (exact size);
// - every segment is counted once: the harness splits the datagrams itself and
//   its short / bad-flags / wrong-VNI counts equal drops[], the rest equal
//   segmentsIn, and segmentsIn = segments in the output frames + noRoom;
// - output frames back to back from outOffset, adding up to outBytes; learnSrc
//   points at ok datagrams, in order; superFrames = frames with a GSO type;
// - a super-frame: vnet header consistent with its headers (type, hdr_len,
//   csum_start/offset, gso_size below the payload), IP lengths exact, IPv4
//   header checksum correct, TCP checksum field = the folded pseudo-header sum;
//   a single frame marked NEEDS_CSUM really holds a partial checksum;
// - when nothing was dropped for room, the output is matched segment by segment
//   against the input: single frames byte for byte; every segment folded into a
//   super-frame was a verified TCP segment (full checksum correct by the
//   reference, or partial), ACK without SYN/RST/URG/CWR/ECE, IPv4 without options
//   and with a correct header checksum, the same flow headers, seq continuing by
//   gso_size, full-size but the last, no PSH/FIN but on the last, IPv4 ids all
//   equal or consecutive, its payload bytes in place.
#include <cstring>

#include "../src/offload.h"
#include "harness.h"

namespace {

using fuzz::Get16;
using fuzz::Get32;
using fuzz::RefLayout;

constexpr size_t kVnet = 10;

struct Segment {
  uint32_t src;
  const uint8_t* p;  // the inner Ethernet frame (in the harness's copy of the input)
  size_t len;
};

/** Header bytes a segment may differ in from the super-frame's first (offsets from Ethernet). */
bool MayDiffer(const RefLayout& f, size_t i) {
  const size_t l3 = f.l3, l4 = f.l4;
  if (f.ipv == 4 && (i == l3 + 2 || i == l3 + 3 || i == l3 + 4 || i == l3 + 5 || i == l3 + 10 || i == l3 + 11))
    return true;
  if (f.ipv == 6 && (i == l3 + 4 || i == l3 + 5)) return true;
  // seq; flags; checksum; urgent pointer (meaningless without URG, which never coalesces)
  return (i >= l4 + 4 && i < l4 + 8) || i == l4 + 13 || (i >= l4 + 16 && i < l4 + 20);
}

/** The frame is TCP that the contract lets coalesce (flags, verified checksums, IPv4 without options). */
bool Coalescable(const Segment& s, RefLayout* f) {
  if (!fuzz::RefParse(s.p, s.len, false, f) || f->proto != 6) return false;
  const uint8_t* ip = s.p + f->l3;
  const uint8_t* l4 = s.p + f->l4;
  const uint32_t l4len = static_cast<uint32_t>(f->end - f->l4);
  const uint8_t flags = l4[13];
  if ((flags & 0x10) == 0 || (flags & (0x02 | 0x04 | 0x20 | 0x40 | 0x80)) != 0) return false;
  if (f->end - f->l4 - f->l4hdr == 0) return false;
  if (f->ipv == 4 && (f->l4 - f->l3 != 20 || !fuzz::RefIpv4HeaderOk(ip, 20))) return false;
  return fuzz::RefL4Ok(ip, f->ipv, 6, l4, l4len) || fuzz::RefL4Partial(ip, f->ipv, 6, l4, l4len);
}

/** A single (not coalesced) output frame marked NEEDS_CSUM must hold a partial TCP/UDP checksum. */
void CheckPartialSingle(const uint8_t* v, const uint8_t* e, size_t len) {
  RefLayout f;
  CHECK(fuzz::RefParse(e, len, false, &f));
  const uint16_t cs = static_cast<uint16_t>(v[6] | v[7] << 8), co = static_cast<uint16_t>(v[8] | v[9] << 8);
  CHECK(cs == f.l4 && co == (f.proto == 6 ? 16 : 6));
  uint32_t l4len = static_cast<uint32_t>(f.end - f.l4);
  if (f.proto == 17) {
    const uint32_t ulen = Get16(e + f.l4 + 4);
    CHECK(ulen >= 8 && ulen <= l4len);
    l4len = ulen;
  }
  CHECK(fuzz::RefL4Partial(e + f.l3, f.ipv, f.proto, e + f.l4, l4len));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader in{data, size};
  const uint32_t vni = in.U24();
  const uint8_t outSel = in.U8(), frameSel = in.U8();
  const size_t outOffset = in.U8();
  const uint8_t options = in.U8();
  const bool learn = options & 1;
  // bit 1: make the inner checksums right (bit 2: partial) before the run, so that
  // mutated segments still pass verification and reach the coalescing logic
  const bool fix = options & 2, partial = options & 4;
  std::vector<std::vector<uint8_t>> dgrams;
  std::vector<uint16_t> gsoIn;
  std::vector<uint8_t> okIn;
  while (!in.Empty() && dgrams.size() < 64) {
    const uint16_t len = in.U16();
    gsoIn.push_back(in.U16());
    okIn.push_back(in.U8() & 1);
    dgrams.push_back(in.Bytes(len));
  }
  const uint32_t count = static_cast<uint32_t>(dgrams.size());

  // The harness's own split and VXLAN check.
  uint32_t nShort = 0, nFlags = 0, nVni = 0;
  std::vector<Segment> valid;
  size_t needBytes = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (!okIn[i]) continue;
    auto& d = dgrams[i];
    if (d.empty()) {
      nShort++;
      continue;
    }
    const size_t step = gsoIn[i] ? gsoIn[i] : d.size();
    for (size_t pos = 0; pos < d.size(); pos += step) {
      const size_t seg = d.size() - pos < step ? d.size() - pos : step;
      uint8_t* p = d.data() + pos;
      if (fix && seg > 8) fuzz::FixChecksums(p + 8, seg - 8, partial);
      if (seg < 8 + 14) {
        nShort++;
      } else if (p[0] != 0x08 || p[1] || p[2] || p[3] || p[7]) {
        nFlags++;
      } else if ((static_cast<uint32_t>(p[4]) << 16 | p[5] << 8 | p[6]) != vni) {
        nVni++;
      } else {
        valid.push_back(Segment{i, p + 8, seg - 8});
        needBytes += kVnet + seg - 8;
      }
    }
  }
  const size_t outLen = outOffset + (outSel < 192 ? needBytes + outSel : (outSel - 192) * 97u);
  const size_t frameCap = frameSel < 192 ? valid.size() + frameSel % 4 : frameSel - 192u;

  fuzz::Slab slab(dgrams, 0);
  fuzz::Exact<uint16_t> gso(count);
  fuzz::Exact<uint8_t> ok(count);
  for (uint32_t i = 0; i < count; i++) gso.data[i] = gsoIn[i], ok.data[i] = okIn[i];
  fuzz::Exact<uint8_t> out(outLen);
  fuzz::Exact<uint32_t> frameOffsets(frameCap), frameSizes(frameCap), learnSrc(frameCap);
  const vxtap::RxOffloadBatch b{slab.base,
                                slab.offsets.data(),
                                slab.sizes.data(),
                                gso.data,
                                ok.data,
                                count,
                                vni,
                                out.data,
                                outLen,
                                outOffset,
                                frameOffsets.data,
                                frameSizes.data,
                                learn ? learnSrc.data : nullptr,
                                frameCap};
  const vxtap::RxOffloadResult r = vxtap::RxOffloadDatagrams(b);

  for (uint32_t i = 0; i < count; i++) CHECK(fuzz::Same(slab.At(i), dgrams[i].data(), dgrams[i].size()));  // read-only
  CHECK(r.dropShort == nShort && r.dropBadFlags == nFlags && r.dropWrongVni == nVni);
  CHECK(r.segmentsIn == valid.size());
  CHECK(r.frames <= frameCap && r.outBytes <= outLen - outOffset);

  size_t pos = outOffset, segsOut = 0, supers = 0, next = 0;  // next: the next valid segment to match
  const bool exact = r.noRoom == 0;
  for (size_t k = 0; k < r.frames; k++) {
    CHECK(frameOffsets.data[k] == pos && frameSizes.data[k] >= kVnet + 14 && frameSizes.data[k] <= outLen - pos);
    const uint8_t* v = out.data + pos;
    const uint8_t* e = v + kVnet;
    const size_t len = frameSizes.data[k] - kVnet;
    pos += frameSizes.data[k];
    if (learn) {
      CHECK(learnSrc.data[k] < count && ok.data[learnSrc.data[k]]);
      if (k > 0) CHECK(learnSrc.data[k] >= learnSrc.data[k - 1]);
    }
    const uint8_t vflags = v[0], vtype = v[1];
    const uint16_t hdrLen = static_cast<uint16_t>(v[2] | v[3] << 8), gsoSize = static_cast<uint16_t>(v[4] | v[5] << 8);
    CHECK(vflags == 0 || vflags == 1);
    if (vtype == 0) {
      CHECK(hdrLen == 0 && gsoSize == 0);
      if (vflags) {
        CheckPartialSingle(v, e, len);
      } else {
        for (int j = 6; j < 10; j++) CHECK(v[j] == 0);
      }
      segsOut++;
      if (exact) {
        CHECK(next < valid.size());
        const Segment& s = valid[next++];
        RefLayout f;
        // copied whole, or (a TCP coalescing candidate) up to the end of its IP packet
        CHECK(len == s.len || (Coalescable(s, &f) && len == f.end));
        CHECK(std::memcmp(e, s.p, len) == 0);
        if (learn) CHECK(learnSrc.data[k] == s.src);
      }
      continue;
    }
    // a super-frame
    supers++;
    RefLayout f;
    CHECK(vflags == 1 && fuzz::RefParse(e, len, false, &f) && f.proto == 6);
    CHECK(vtype == (f.ipv == 4 ? 1 : 4));
    const uint16_t cs = static_cast<uint16_t>(v[6] | v[7] << 8), co = static_cast<uint16_t>(v[8] | v[9] << 8);
    const size_t hdrs = f.l4 + f.l4hdr;
    CHECK(hdrLen == hdrs && cs == f.l4 && co == 16 && f.end == len && len <= 65535);
    const size_t payload = len - hdrs;
    CHECK(gsoSize > 0 && payload > gsoSize);  // at least two segments
    if (f.ipv == 4) CHECK(f.l4 - f.l3 == 20 && fuzz::RefIpv4HeaderOk(e + f.l3, 20));
    const uint32_t l4len = static_cast<uint32_t>(len - f.l4);
    CHECK(Get16(e + f.l4 + 16) == fuzz::RefFold(fuzz::RefPseudo(e + f.l3, f.ipv, 6, l4len)));
    const size_t nseg = (payload + gsoSize - 1) / gsoSize;
    segsOut += nseg;
    if (!exact) continue;
    CHECK(next + nseg <= valid.size());
    if (learn) CHECK(learnSrc.data[k] == valid[next].src);
    const Segment& s0 = valid[next];
    RefLayout f0;
    CHECK(Coalescable(s0, &f0));
    CHECK(f0.l3 == f.l3 && f0.l4 == f.l4 && f0.l4hdr == f.l4hdr && f0.ipv == f.ipv);
    const uint32_t seq0 = Get32(s0.p + f0.l4 + 4);
    const uint16_t id0 = f.ipv == 4 ? Get16(s0.p + f0.l3 + 4) : 0;
    bool idsEqual = true, idsUp = true;
    uint8_t lastFlags = 0;
    for (size_t j = 0; j < nseg; j++) {
      const Segment& s = valid[next + j];
      RefLayout g;
      CHECK(Coalescable(s, &g));  // verified, and allowed to coalesce
      CHECK(g.l3 == f.l3 && g.l4 == f.l4 && g.l4hdr == f.l4hdr && g.ipv == f.ipv);
      for (size_t i = 0; i < hdrs; i++) {
        if (s.p[i] != s0.p[i] && !MayDiffer(f, i)) {
          std::fprintf(stderr, "segment %zu of a super-frame differs from the first at byte %zu (l3 %zu, l4 %zu)\n", j,
                       i, f.l3, f.l4);
        }
        CHECK(s.p[i] == s0.p[i] || MayDiffer(f, i));  // one flow
      }
      const size_t pl = g.end - hdrs;
      CHECK(j + 1 < nseg ? pl == gsoSize : pl <= gsoSize);
      CHECK(Get32(s.p + g.l4 + 4) == static_cast<uint32_t>(seq0 + j * gsoSize));
      const uint8_t fl = s.p[g.l4 + 13];
      if (j + 1 < nseg) CHECK((fl & 0x09) == 0);  // PSH/FIN end a super-frame
      CHECK((fl & ~0x09) == (s0.p[g.l4 + 13] & ~0x09));
      lastFlags = fl;
      if (f.ipv == 4) {
        const uint16_t id = Get16(s.p + g.l3 + 4);
        idsEqual = idsEqual && id == id0;
        idsUp = idsUp && id == static_cast<uint16_t>(id0 + j);
      }
      CHECK(std::memcmp(e + hdrs + j * gsoSize, s.p + hdrs, pl) == 0);
    }
    CHECK(idsEqual || idsUp);
    // the super-frame's headers: the first segment's, lengths, checksums and the last's PSH/FIN aside
    for (size_t i = 0; i < hdrs; i++) CHECK(e[i] == s0.p[i] || MayDiffer(f, i));
    CHECK(e[f.l4 + 13] == ((s0.p[f.l4 + 13] & ~0x09) | (lastFlags & 0x09)));
    next += nseg;
  }
  CHECK(pos - outOffset == r.outBytes);
  CHECK(supers == r.superFrames);
  CHECK(segsOut + r.noRoom == r.segmentsIn);
  if (exact) CHECK(next == valid.size());
  return 0;
}
