// Checksum kernels (pure C++, no Node-API: the glue is csum_napi.cc): the bulk
// sums, and CompleteFrameChecksum which finishes the CHECKSUM_PARTIAL checksums a
// kernel sender with tx offload leaves behind (the L4 field holds only the folded
// pseudo-header sum; see FIELD-NOTES "Interop trap").
#include "csum.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace vxtap {

// The bulk kernels. With SSE2 (every x86-64), 16 bytes at a time: the four
// 32-bit words of each load are widened into 64-bit lanes and added with no
// carries to track (2^32 additions fit); a 1448-byte copy-and-sum takes ~40-60
// ns here against ~90-100 for the scalar add/adc version, and ~30-40 for memcpy
// alone. 32-bit words in memory order are congruent to the 16-bit ones modulo
// 0xffff, which is all that Fold16 and Add64 need. Elsewhere, the same with one
// scalar accumulator.
namespace {

/** Sum p[0..n), copying it to dst on the way when kCopy (one body for both kernels). */
template <bool kCopy>
inline uint64_t SumMaybeCopy(uint8_t* dst, const uint8_t* p, size_t n) {
#if defined(__SSE2__)
  const __m128i z = _mm_setzero_si128();
  __m128i a0 = z, a1 = z, a2 = z, a3 = z;
  while (n >= 32) {
    const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
    if (kCopy) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), v0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16), v1);
      dst += 32;
    }
    a0 = _mm_add_epi64(a0, _mm_unpacklo_epi32(v0, z));
    a1 = _mm_add_epi64(a1, _mm_unpackhi_epi32(v0, z));
    a2 = _mm_add_epi64(a2, _mm_unpacklo_epi32(v1, z));
    a3 = _mm_add_epi64(a3, _mm_unpackhi_epi32(v1, z));
    p += 32;
    n -= 32;
  }
  const __m128i a = _mm_add_epi64(_mm_add_epi64(a0, a1), _mm_add_epi64(a2, a3));
  uint64_t lanes[2];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(lanes), a);
  uint64_t s = lanes[0] + lanes[1];  // each lane < 2^48 for any n < 2^50 bytes: no overflow
#else
  uint64_t s = 0;
#endif
  // The rest (everything without SSE2): 32-bit words into one 64-bit accumulator
  // (no carries below 2^32 words).
  while (n >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    if (kCopy) {
      std::memcpy(dst, &w, 4);
      dst += 4;
    }
    s += w;
    p += 4;
    n -= 4;
  }
  if (n) {
    uint32_t w = 0;  // zero padding keeps every byte at its word parity
    std::memcpy(&w, p, n);
    if (kCopy) std::memcpy(dst, &w, n);
    s += w;
  }
  return s;
}

}  // namespace

__attribute__((noinline)) uint64_t SumBulk(const uint8_t* p, size_t n) { return SumMaybeCopy<false>(nullptr, p, n); }

__attribute__((noinline)) uint64_t CopySum64(uint8_t* dst, const uint8_t* src, size_t n) {
  return SumMaybeCopy<true>(dst, src, n);
}

namespace {

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

/**
 * Finish the L4 checksum at p[l4..l4+l4len) when its field equals the folded
 * pseudo-header sum `pseudo` (a memory-order partial sum).
 */
inline bool FinishL4(uint8_t* p, size_t l4, size_t l4len, uint8_t proto, uint64_t pseudo) {
  size_t field;
  if (proto == kProtoTcp) {
    if (l4len < 20) return false;
    field = l4 + 16;
  } else {
    if (l4len < 8) return false;
    field = l4 + 6;
  }
  uint16_t stored;
  std::memcpy(&stored, p + field, 2);
  if (stored != Fold16(pseudo)) return false;
  // The field already holds the pseudo-header sum, so summing the segment
  // including it gives pseudo + data, as the kernel's skb_checksum_help does.
  uint16_t csum = static_cast<uint16_t>(~Fold16(Sum64(p + l4, l4len)));
  if (proto == kProtoUdp && csum == 0) csum = 0xffff;  // RFC 768: 0 means "no checksum"
  std::memcpy(p + field, &csum, 2);
  return true;
}

}  // namespace

bool CompleteFrameChecksum(uint8_t* p, size_t len) {
  size_t l3;
  uint16_t et;
  if (!EthernetL3(p, len, &l3, &et)) return false;
  if (et == kEthIPv4) {
    if (l3 + 20 > len || (p[l3] >> 4) != 4) return false;
    const size_t ihl = static_cast<size_t>(p[l3] & 0x0f) * 4;
    const size_t tot = Be16(p + l3 + 2);
    if (ihl < 20 || tot < ihl || l3 + tot > len) return false;
    if (Be16(p + l3 + 6) & 0x3fff) return false;  // MF or a fragment offset
    const uint8_t proto = p[l3 + 9];
    if (proto != kProtoTcp && proto != kProtoUdp) return false;
    const size_t l4 = l3 + ihl;
    size_t l4len = tot - ihl;
    if (proto == kProtoUdp && l4len >= 8) {
      const size_t ulen = Be16(p + l4 + 4);
      if (ulen < 8 || ulen > l4len) return false;
      l4len = ulen;
    }
    uint64_t pseudo = Sum64(p + l3 + 12, 8);  // source and destination address
    pseudo = Add64(pseudo, Mem16(proto));
    pseudo = Add64(pseudo, Mem16(static_cast<uint16_t>(l4len)));
    return FinishL4(p, l4, l4len, proto, pseudo);
  }
  if (et == kEthIPv6) {
    if (l3 + 40 > len || (p[l3] >> 4) != 6) return false;
    const size_t plen = Be16(p + l3 + 4);
    const size_t end = l3 + 40 + plen;
    if (plen == 0 || end > len) return false;  // jumbograms are not handled
    uint8_t nh = p[l3 + 6];
    size_t pos = l3 + 40;
    // Skip hop-by-hop (0), routing (43), destination options (60) and AH (51).
    for (int hops = 0; hops < 8 && (nh == 0 || nh == 43 || nh == 60 || nh == 51); hops++) {
      if (pos + 8 > end) return false;
      const size_t hlen =
          nh == 51 ? (static_cast<size_t>(p[pos + 1]) + 2) * 4 : (static_cast<size_t>(p[pos + 1]) + 1) * 8;
      nh = p[pos];
      pos += hlen;
      if (pos > end) return false;
    }
    if (nh != kProtoTcp && nh != kProtoUdp) return false;  // includes fragments (44)
    size_t l4len = end - pos;
    if (nh == kProtoUdp && l4len >= 8) {
      const size_t ulen = Be16(p + pos + 4);
      if (ulen < 8 || ulen > l4len) return false;
      l4len = ulen;
    }
    uint64_t pseudo = Sum64(p + l3 + 8, 32);  // source and destination address
    pseudo = Add64(pseudo, Mem16(static_cast<uint16_t>(l4len >> 16)));
    pseudo = Add64(pseudo, Mem16(static_cast<uint16_t>(l4len & 0xffff)));
    pseudo = Add64(pseudo, Mem16(nh));
    return FinishL4(p, pos, l4len, nh, pseudo);
  }
  return false;
}

}  // namespace vxtap
