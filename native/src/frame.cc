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
