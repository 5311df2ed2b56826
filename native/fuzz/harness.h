// Shared pieces of the libFuzzer harnesses for the byte kernels (see README.md,
// "Fuzzing"): an input reader, a slab whose frames are fenced by poisoned bytes,
// exact-size output arrays, and slow reference implementations of the Internet
// checksum and of the Ethernet/IP/TCP-UDP parse that the kernels' results are
// checked against. Nothing here shares code with native/src: a reference that
// reused the kernel's own parser or sum could not catch its mistakes.
//
// Every invariant failure goes through CHECK, which prints the condition and
// calls abort(), so libFuzzer records the input as a crash.
#pragma once

#include <sanitizer/asan_interface.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace fuzz {

/** Reads the fuzzer's bytes front to back; past the end everything reads as 0. */
struct Reader {
  const uint8_t* p;
  size_t n;
  uint8_t U8() {
    if (n == 0) return 0;
    n--;
    return *p++;
  }
  uint16_t U16() {
    const uint16_t lo = U8();
    return static_cast<uint16_t>(lo | (U8() << 8));
  }
  uint32_t U24() { return U16() | (static_cast<uint32_t>(U8()) << 16); }
  /** Up to `want` bytes (fewer when the input runs out). */
  std::vector<uint8_t> Bytes(size_t want) {
    const size_t k = want < n ? want : n;
    std::vector<uint8_t> v(p, p + k);
    p += k;
    n -= k;
    return v;
  }
  bool Empty() const { return n == 0; }
};

/** A heap array of exactly n elements: ASan reports any access past its end. */
template <typename T>
struct Exact {
  T* data;
  size_t n;
  explicit Exact(size_t count) : data(static_cast<T*>(std::malloc(count ? count * sizeof(T) : 1))), n(count) {
    std::memset(data, 0xa5, count * sizeof(T));  // junk, not zeros: unwritten slots show
  }
  ~Exact() { std::free(data); }
  Exact(const Exact&) = delete;
  Exact& operator=(const Exact&) = delete;
};

/**
 * One allocation holding frames at 8-byte-aligned offsets, each preceded by
 * `headroom` writable bytes and followed by poisoned bytes up to the next one,
 * and the allocation ends exactly at the last frame's end. A read or write
 * outside [offset - headroom, offset + size) of every frame is an ASan report
 * (shadow granules are 8 bytes; a granule may be addressable in its first k
 * bytes only, which is why spans start aligned and end exactly).
 */
struct Slab {
  uint8_t* base = nullptr;
  size_t len = 0;
  std::vector<uint32_t> offsets, sizes;
  std::vector<std::vector<uint8_t>> original;  // the bytes as placed, to compare with afterwards

  Slab(const std::vector<std::vector<uint8_t>>& frames, size_t headroom) {
    constexpr size_t kGap = 16;
    size_t pos = 0;
    for (const auto& f : frames) {
      pos = (pos + 7) & ~static_cast<size_t>(7);
      offsets.push_back(static_cast<uint32_t>(pos + headroom));
      sizes.push_back(static_cast<uint32_t>(f.size()));
      pos += headroom + f.size() + kGap;
    }
    len = frames.empty() ? 1 : offsets.back() + sizes.back();
    base = static_cast<uint8_t*>(std::malloc(len));
    std::memset(base, 0xa5, len);
    for (size_t i = 0; i < frames.size(); i++) {
      if (!frames[i].empty()) std::memcpy(base + offsets[i], frames[i].data(), frames[i].size());
      // poison from this span's end to the next span's start
      const size_t end = offsets[i] + sizes[i];
      const size_t next = i + 1 < frames.size() ? offsets[i + 1] - headroom : len;
      if (next > end) ASAN_POISON_MEMORY_REGION(base + end, next - end);
    }
    original = frames;
  }
  ~Slab() {
    ASAN_UNPOISON_MEMORY_REGION(base, len);
    std::free(base);
  }
  Slab(const Slab&) = delete;
  Slab& operator=(const Slab&) = delete;
  /** Frame i as it is now. */
  const uint8_t* At(size_t i) const { return base + offsets[i]; }
};

// --- reference Internet checksum (RFC 1071, the textbook loop) ----------------

/** Big-endian 16-bit words from p[0..n), a trailing odd byte padded with zero, added in 32 bits. */
inline uint32_t RefAdd(uint32_t acc, const uint8_t* p, size_t n) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) acc += static_cast<uint32_t>(p[n - 1] << 8);
  while (acc > 0xffffu * 16) acc = (acc & 0xffff) + (acc >> 16);  // keep headroom for more adds
  return acc;
}
inline uint16_t RefFold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(acc);
}
inline uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 |
         p[3];
}
inline void Set16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

/** True when the IPv4 header at ip (ihl bytes) has a correct checksum. */
inline bool RefIpv4HeaderOk(const uint8_t* ip, size_t ihl) { return RefFold(RefAdd(0, ip, ihl)) == 0xffff; }

/** The pseudo-header sum for an L4 segment of l4len bytes (not folded). */
inline uint32_t RefPseudo(const uint8_t* ip, int ipv, uint8_t proto, uint32_t l4len) {
  uint32_t acc = ipv == 4 ? RefAdd(0, ip + 12, 8) : RefAdd(0, ip + 8, 32);
  acc += proto;
  acc += l4len >> 16;
  acc += l4len & 0xffff;
  return acc;
}

/** True when the TCP/UDP segment l4[0..l4len) has a correct full checksum. */
inline bool RefL4Ok(const uint8_t* ip, int ipv, uint8_t proto, const uint8_t* l4, uint32_t l4len) {
  if (proto == 17 && Get16(l4 + 6) == 0) return false;  // "no checksum" is not a verified checksum
  return RefFold(RefAdd(RefPseudo(ip, ipv, proto, l4len), l4, l4len)) == 0xffff;
}

/** True when the L4 checksum field (at l4 + fieldOff) holds only the folded pseudo-header sum. */
inline bool RefL4Partial(const uint8_t* ip, int ipv, uint8_t proto, const uint8_t* l4, uint32_t l4len) {
  const size_t fieldOff = proto == 6 ? 16 : 6;
  return Get16(l4 + fieldOff) == RefFold(RefPseudo(ip, ipv, proto, l4len));
}

// --- reference header parse ---------------------------------------------------

struct RefLayout {
  size_t l3 = 0, l4 = 0, l4hdr = 0, end = 0;
  int ipv = 0;
  uint8_t proto = 0;
};

/**
 * Ethernet, at most two VLAN tags (0x8100 or 0x88a8), then IPv4 (any IHL >= 5,
 * no fragment) or IPv6 (no extension header), then TCP (data offset >= 5) or
 * UDP, all lengths inside the frame. An IP length of 0 means "up to the frame's
 * end" when zeroLenIsFrame (IPv6: and that length must not be 0).
 */
inline bool RefParse(const uint8_t* p, size_t len, bool zeroLenIsFrame, RefLayout* r) {
  size_t at = 12;
  int tags = 0;
  while (true) {
    if (at + 2 > len) return false;
    const uint16_t t = Get16(p + at);
    if ((t == 0x8100 || t == 0x88a8) && tags < 2) {
      tags++;
      at += 4;
      continue;
    }
    at += 2;
    if (t == 0x0800) {
      r->ipv = 4;
    } else if (t == 0x86dd) {
      r->ipv = 6;
    } else {
      return false;
    }
    break;
  }
  r->l3 = at;
  if (r->ipv == 4) {
    if (len < at + 20 || p[at] >> 4 != 4 || (p[at] & 15) < 5) return false;
    const size_t ihl = (p[at] & 15) * 4u;
    size_t total = Get16(p + at + 2);
    if (total == 0 && zeroLenIsFrame) total = len - at;
    if (total < ihl || at + total > len) return false;
    if ((p[at + 6] & 0x3f) != 0 || p[at + 7] != 0) return false;  // MF or offset
    r->proto = p[at + 9];
    r->l4 = at + ihl;
    r->end = at + total;
  } else {
    if (len < at + 40 || p[at] >> 4 != 6) return false;
    size_t payload = Get16(p + at + 4);
    if (payload == 0 && zeroLenIsFrame) payload = len - at - 40;
    if (payload == 0 || at + 40 + payload > len) return false;
    r->proto = p[at + 6];
    r->l4 = at + 40;
    r->end = at + 40 + payload;
  }
  if (r->proto == 6) {
    if (r->end < r->l4 + 20) return false;
    r->l4hdr = (p[r->l4 + 12] >> 4) * 4u;
    return r->l4hdr >= 20 && r->l4 + r->l4hdr <= r->end;
  }
  if (r->proto == 17) {
    r->l4hdr = 8;
    return r->end >= r->l4 + 8;
  }
  return false;
}

/**
 * Make the IPv4 header checksum and the TCP/UDP checksum of an Ethernet frame
 * right (or, with `partial`, set the L4 field to the folded pseudo-header sum, as
 * a CHECKSUM_PARTIAL sender leaves it), so that mutated frames still get past
 * checksum verification and reach the code behind it. Frames RefParse refuses
 * are left alone.
 */
inline void FixChecksums(uint8_t* p, size_t len, bool partial) {
  RefLayout f;
  if (!RefParse(p, len, false, &f)) return;
  uint8_t* ip = p + f.l3;
  if (f.ipv == 4) {
    const size_t ihl = f.l4 - f.l3;
    Set16(ip + 10, 0);
    Set16(ip + 10, static_cast<uint16_t>(~RefFold(RefAdd(0, ip, ihl))));
  }
  uint8_t* l4 = p + f.l4;
  uint32_t l4len = static_cast<uint32_t>(f.end - f.l4);
  const size_t field = f.proto == 6 ? 16 : 6;
  if (f.proto == 17) Set16(l4 + 4, l4len);
  const uint32_t pseudo = RefPseudo(ip, f.ipv, f.proto, l4len);
  if (partial) {
    Set16(l4 + field, RefFold(pseudo));
    return;
  }
  Set16(l4 + field, 0);
  uint16_t c = static_cast<uint16_t>(~RefFold(RefAdd(pseudo, l4, l4len)));
  if (f.proto == 17 && c == 0) c = 0xffff;
  Set16(l4 + field, c);
}

/** memcmp that accepts empty (maybe null) spans. */
inline bool Same(const void* a, const void* b, size_t n) { return n == 0 || std::memcmp(a, b, n) == 0; }

/** Read frames as [u16 length][bytes] records until the input ends (at most maxFrames). */
inline std::vector<std::vector<uint8_t>> ReadFrames(Reader& in, size_t maxFrames) {
  std::vector<std::vector<uint8_t>> frames;
  while (!in.Empty() && frames.size() < maxFrames) frames.push_back(in.Bytes(in.U16()));
  return frames;
}

}  // namespace fuzz
