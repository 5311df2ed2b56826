// Internet checksum kernels (RFC 1071). Sums are computed over memory in the
// machine's byte order, which the ones' complement sum allows (RFC 1071 section
// 2(B)); results are converted to network order only where JS sees them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vxtap {

/**
 * Ones' complement sum of p[0..n) as 16-bit words in memory order, returned as a
 * 64-bit value congruent to it modulo 0xffff (fold it with Fold16; it is 0 only
 * when every byte is). The bulk runs out of line (SumBulk, SSE2 where there is
 * one) so that its accumulators stay in registers whatever the caller's register
 * pressure: inlined into the offload kernels, a 128-bit accumulator version
 * spilled to the stack and ran ~3x slower.
 */
uint64_t SumBulk(const uint8_t* p, size_t n);

/**
 * Copy src[0..n) to dst and return its sum as Sum64 does, reading each byte once
 * (the kernel's csum_partial_copy idea). dst and src must not overlap.
 */
uint64_t CopySum64(uint8_t* dst, const uint8_t* src, size_t n);

/** Add two partial sums with end-around carry. */
inline uint64_t Add64(uint64_t a, uint64_t b) {
  uint64_t s = a + b;
  return s + (s < b);
}

inline uint64_t Sum64(const uint8_t* p, size_t n) {
  if (n >= 64) return SumBulk(p, n);
  uint64_t s = 0;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    s = Add64(s, w);
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t w = 0;  // zero padding keeps every byte at its word parity
    std::memcpy(&w, p, n);
    s = Add64(s, w);
  }
  return s;
}

/** Fold a 64-bit partial sum to 16 bits (never 0 unless the sum is 0). */
inline uint16_t Fold16(uint64_t s) {
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  s = (s & 0xffffu) + (s >> 16);
  return static_cast<uint16_t>(s);
}

/** A 16-bit network-order value as it sits in memory, read as a machine word. */
inline uint16_t Mem16(uint16_t hostValue) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return __builtin_bswap16(hostValue);
#else
  return hostValue;
#endif
}

/** Big-endian 16-bit read. */
inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

/** EtherTypes the frame parsers know. */
constexpr uint16_t kEthIPv4 = 0x0800;
constexpr uint16_t kEthIPv6 = 0x86dd;
constexpr uint16_t kEthVlan = 0x8100;
constexpr uint16_t kEthQinQ = 0x88a8;

/**
 * Walk an Ethernet header with up to two 802.1Q/802.1ad tags. Sets *l3 to the
 * offset of the network header and *et to its EtherType; false when the frame is
 * too short for its tags (or for an Ethernet header).
 */
inline bool EthernetL3(const uint8_t* p, size_t len, size_t* l3, uint16_t* et) {
  if (len < 14) return false;
  size_t etOff = 12;
  uint16_t t = Be16(p + etOff);
  for (int tags = 0; (t == kEthVlan || t == kEthQinQ) && tags < 2; tags++) {
    if (etOff + 6 > len) return false;
    etOff += 4;
    t = Be16(p + etOff);
  }
  *l3 = etOff + 2;
  *et = t;
  return true;
}

/**
 * Finish CHECKSUM_PARTIAL TCP/UDP checksums in one Ethernet frame (see
 * completeChecksums in src/native/index.ts). Returns true when it wrote one.
 */
bool CompleteFrameChecksum(uint8_t* p, size_t len);

}  // namespace vxtap
