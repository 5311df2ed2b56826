// Fuzz target "checksum": the sum kernels (Sum64, SumBulk, CopySum64, Fold16)
// against the textbook RFC 1071 loop, and CompleteFrameChecksum (the kernel of
// completeChecksums: CHECKSUM_PARTIAL TCP/UDP checksums finished in place). See
// README.md, "Fuzzing".
//
// Input: u8 misalignment (low 4 bits) and options (bit 4: make the frame's L4
// field partial first), u16 prefix length, then the bytes (summed, and taken as
// one Ethernet frame).
//
// Invariants on every input:
// - no read or write outside the exact-size source and destination buffers, at
//   any alignment and length (the SSE2 bulk loop and the tails);
// - Fold16(Sum64) equals the reference sum (byte-swapped: memory order) for the
//   whole buffer and for a prefix; CopySum64 copies exactly and sums the same;
// - CompleteFrameChecksum returns true exactly when the harness's own parse
//   (Ethernet, up to two VLAN tags, IPv4 without fragments or IPv6 with
//   hop-by-hop/routing/destination/AH headers, TCP or UDP with its own length)
//   finds an L4 field holding the folded pseudo-header sum; then the checksum
//   verifies with the reference and no other byte changed; else nothing changed.
#include <cstring>

#include "../src/csum.h"
#include "harness.h"

namespace {

using fuzz::Get16;

uint16_t Swap(uint16_t v) { return static_cast<uint16_t>(v >> 8 | v << 8); }

void CheckSums(const uint8_t* src, size_t n) {
  const uint16_t want = Swap(fuzz::RefFold(fuzz::RefAdd(0, src, n)));
  CHECK(vxtap::Fold16(vxtap::Sum64(src, n)) == want);
  CHECK(vxtap::Fold16(vxtap::SumBulk(src, n)) == want);
  fuzz::Exact<uint8_t> dst(n);
  CHECK(vxtap::Fold16(vxtap::CopySum64(dst.data, src, n)) == want);
  CHECK(fuzz::Same(dst.data, src, n));
}

/** Where the harness expects CompleteFrameChecksum to act: the L3/L4 offsets, protocol and L4 length. */
struct Target {
  size_t l3 = 0, l4 = 0;
  uint32_t l4len = 0;
  int ipv = 0;
  uint8_t proto = 0;
};

bool FindTarget(const uint8_t* p, size_t len, Target* t) {
  size_t at = 12;
  uint16_t type = 0;
  for (int tags = 0;; tags++) {
    if (at + 2 > len) return false;
    type = Get16(p + at);
    if ((type == 0x8100 || type == 0x88a8) && tags < 2) {
      at += 4;
      continue;
    }
    at += 2;
    break;
  }
  t->l3 = at;
  size_t end;
  if (type == 0x0800) {
    if (at + 20 > len || p[at] >> 4 != 4) return false;
    const size_t ihl = (p[at] & 15) * 4u, total = Get16(p + at + 2);
    if (ihl < 20 || total < ihl || at + total > len || (p[at + 6] & 0x3f) || p[at + 7]) return false;
    t->ipv = 4;
    t->proto = p[at + 9];
    t->l4 = at + ihl;
    end = at + total;
  } else if (type == 0x86dd) {
    if (at + 40 > len || p[at] >> 4 != 6) return false;
    end = at + 40 + Get16(p + at + 4);
    if (end == at + 40 || end > len) return false;
    uint8_t next = p[at + 6];
    size_t pos = at + 40;
    for (int hops = 0; hops < 8; hops++) {
      if (next != 0 && next != 43 && next != 60 && next != 51) break;
      if (pos + 8 > end) return false;
      const size_t hlen = next == 51 ? (p[pos + 1] + 2u) * 4 : (p[pos + 1] + 1u) * 8;
      next = p[pos];
      pos += hlen;
      if (pos > end) return false;
    }
    t->ipv = 6;
    t->proto = next;
    t->l4 = pos;
  } else {
    return false;
  }
  if (t->proto != 6 && t->proto != 17) return false;
  size_t l4len = end - t->l4;
  if (t->proto == 17 && l4len >= 8) {
    const size_t ulen = Get16(p + t->l4 + 4);
    if (ulen < 8 || ulen > l4len) return false;
    l4len = ulen;
  }
  if (l4len < (t->proto == 6 ? 20u : 8u)) return false;
  t->l4len = static_cast<uint32_t>(l4len);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader in{data, size};
  const uint8_t opts = in.U8();
  const size_t misalign = opts & 15;
  const size_t prefix = in.U16();
  const std::vector<uint8_t> bytes = in.Bytes(in.n);

  // Sums at a chosen misalignment: the buffer is allocated exactly, the data start misalign bytes in.
  {
    fuzz::Exact<uint8_t> buf(misalign + bytes.size());
    if (!bytes.empty()) std::memcpy(buf.data + misalign, bytes.data(), bytes.size());
    CheckSums(buf.data + misalign, bytes.size());
    CheckSums(buf.data + misalign, prefix < bytes.size() ? prefix : bytes.size());
  }

  // CompleteFrameChecksum on the bytes as one frame.
  fuzz::Exact<uint8_t> frame(bytes.size());
  if (!bytes.empty()) std::memcpy(frame.data, bytes.data(), bytes.size());
  Target t;
  if ((opts & 0x10) && FindTarget(frame.data, frame.n, &t)) {
    // seed the field as a CHECKSUM_PARTIAL sender does, so the completion path runs often
    fuzz::Set16(frame.data + t.l4 + (t.proto == 6 ? 16 : 6),
                fuzz::RefFold(fuzz::RefPseudo(frame.data + t.l3, t.ipv, t.proto, t.l4len)));
  }
  std::vector<uint8_t> before(frame.data, frame.data + frame.n);
  const bool found = FindTarget(frame.data, frame.n, &t);
  const size_t field = found ? t.l4 + (t.proto == 6 ? 16 : 6) : 0;
  const bool partial = found && fuzz::RefL4Partial(frame.data + t.l3, t.ipv, t.proto, frame.data + t.l4, t.l4len);
  const bool done = vxtap::CompleteFrameChecksum(frame.data, frame.n);
  CHECK(done == partial);
  for (size_t i = 0; i < frame.n; i++) CHECK(frame.data[i] == before[i] || (done && (i == field || i == field + 1)));
  if (done) {
    CHECK(fuzz::RefFold(fuzz::RefAdd(fuzz::RefPseudo(frame.data + t.l3, t.ipv, t.proto, t.l4len), frame.data + t.l4,
                                     t.l4len)) == 0xffff);
    if (t.proto == 17) CHECK(Get16(frame.data + field) != 0);  // 0 would mean "no checksum"
  }
  return 0;
}
