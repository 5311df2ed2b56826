// The header parser shared by the offload and uplink kernels (see frame.h).
#include "frame.h"

#include "csum.h"

namespace vxtap {

bool ParseL4(const uint8_t* p, size_t len, bool zeroLenIsFrame, Layout* f) {
  size_t l3;
  uint16_t et;
  if (!EthernetL3(p, len, &l3, &et)) return false;
  if (et == kEthIPv4) {
    if (l3 + 20 > len || (p[l3] >> 4) != 4) return false;
    const size_t ihl = static_cast<size_t>(p[l3] & 0x0f) * 4;
    size_t tot = Be16(p + l3 + 2);
    if (tot == 0 && zeroLenIsFrame) tot = len - l3;
    if (ihl < 20 || tot < ihl || l3 + tot > len) return false;
    if (Be16(p + l3 + 6) & 0x3fff) return false;  // MF or a fragment offset
    f->ipv = 4;
    f->proto = p[l3 + 9];
    f->l4 = l3 + ihl;
    f->end = l3 + tot;
  } else if (et == kEthIPv6) {
    if (l3 + 40 > len || (p[l3] >> 4) != 6) return false;
    size_t plen = Be16(p + l3 + 4);
    if (plen == 0 && zeroLenIsFrame) plen = len - l3 - 40;
    if (plen == 0 || l3 + 40 + plen > len) return false;
    f->ipv = 6;
    f->proto = p[l3 + 6];
    f->l4 = l3 + 40;
    f->end = l3 + 40 + plen;
  } else {
    return false;
  }
  f->l3 = l3;
  if (f->proto == kProtoTcp) {
    if (f->l4 + 20 > f->end) return false;
    const size_t doff = static_cast<size_t>(p[f->l4 + 12] >> 4) * 4;
    if (doff < 20 || f->l4 + doff > f->end) return false;
    f->l4hdr = doff;
  } else if (f->proto == kProtoUdp) {
    if (f->l4 + 8 > f->end) return false;
    f->l4hdr = 8;
  } else {
    return false;
  }
  return true;
}

}  // namespace vxtap

namespace vxtap {
namespace {

inline uint32_t Mix(uint32_t h, uint32_t v) { return (h ^ v) * 0x01000193u; }
inline bool HasPorts(uint8_t proto) { return proto == 6 || proto == 17 || proto == 132; }

}  // namespace

// The same function as flowHash in src/wire/flowhash.ts (FNV-1a style mixing over
// 16-bit words and bytes, murmur3's fmix32 at the end); test/unit/native-offload
// checks the two agree on random frames.
uint32_t FlowHash(const uint8_t* p, size_t len) {
  uint32_t h = 0x811c9dc5u;
  if (len < 14) return h;
  for (size_t i = 0; i < 12; i += 2) h = Mix(h, static_cast<uint32_t>(p[i] << 8 | p[i + 1]));
  size_t l3 = 14;
  uint32_t type = static_cast<uint32_t>(p[12] << 8 | p[13]);
  if (type == 0x8100 && len >= 18) {
    h = Mix(h, static_cast<uint32_t>(p[14] << 8 | p[15]) & 0x0fff);
    type = static_cast<uint32_t>(p[16] << 8 | p[17]);
    l3 += 4;
  }
  h = Mix(h, type);
  if (type == 0x0800 && l3 + 20 <= len) {
    const size_t ihl = static_cast<size_t>(p[l3] & 0x0f) * 4;
    const uint8_t proto = p[l3 + 9];
    for (size_t i = 12; i < 20; i++) h = Mix(h, p[l3 + i]);
    h = Mix(h, proto);
    const uint32_t fragOff = static_cast<uint32_t>((p[l3 + 6] & 0x1f) << 8 | p[l3 + 7]);
    const size_t l4 = l3 + ihl;
    if (fragOff == 0 && HasPorts(proto) && l4 + 4 <= len) {
      h = Mix(h, static_cast<uint32_t>(p[l4] << 8 | p[l4 + 1]));
      h = Mix(h, static_cast<uint32_t>(p[l4 + 2] << 8 | p[l4 + 3]));
    }
  } else if (type == 0x86dd && l3 + 40 <= len) {
    const uint8_t proto = p[l3 + 6];
    for (size_t i = 8; i < 40; i++) h = Mix(h, p[l3 + i]);
    h = Mix(h, proto);
    const size_t l4 = l3 + 40;
    if (HasPorts(proto) && l4 + 4 <= len) {
      h = Mix(h, static_cast<uint32_t>(p[l4] << 8 | p[l4 + 1]));
      h = Mix(h, static_cast<uint32_t>(p[l4 + 2] << 8 | p[l4 + 3]));
    }
  }
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

bool FrameDf(const uint8_t* p, size_t len) {
  if (len < 14) return false;
  size_t l3 = 14;
  uint32_t type = static_cast<uint32_t>(p[12] << 8 | p[13]);
  if (type == 0x8100 && len >= 18) {
    type = static_cast<uint32_t>(p[16] << 8 | p[17]);
    l3 += 4;
  }
  if (type != 0x0800) return type == 0x86dd;
  if (l3 + 20 > len) return false;
  return (p[l3 + 6] & 0x40) != 0;
}

}  // namespace vxtap
