// Frame-level pieces shared by the offload kernels (offload.cc) and the uplink
// kernels (tunnel.cc): the virtio_net_hdr, big-endian field access, and the one
// parser of Ethernet/IP/TCP-UDP headers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vxtap_limits.h"  // generated from native/limits.json: kVnetHdrLen, kAddrLen, ...

namespace vxtap {

constexpr size_t kEthLen = 14;

constexpr uint8_t kNeedsCsum = 0x01;
constexpr uint8_t kGsoNone = 0;
constexpr uint8_t kGsoTcpV4 = 1;
constexpr uint8_t kGsoTcpV6 = 4;
constexpr uint8_t kGsoUdpL4 = 5;
constexpr uint8_t kGsoEcn = 0x80;

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

/** virtio_net_hdr in host order (no padding: 2 x u8 + 4 x u16). */
struct VnetHdr {
  uint8_t flags;
  uint8_t gsoType;
  uint16_t hdrLen;
  uint16_t gsoSize;
  uint16_t csumStart;
  uint16_t csumOffset;
};
static_assert(sizeof(VnetHdr) == kVnetHdrLen, "virtio_net_hdr is 10 bytes");

inline uint32_t Be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
inline void Put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
/** Where the headers of one Ethernet frame are (offsets from the frame start). */
struct Layout {
  size_t l3 = 0;     // IP header
  size_t l4 = 0;     // TCP/UDP header
  size_t l4hdr = 0;  // TCP/UDP header length (TCP data offset * 4, or 8)
  size_t end = 0;    // end of the IP packet (trailing padding excluded)
  uint8_t ipv = 0;   // 4 or 6
  uint8_t proto = 0;
};

/**
 * Parse Ethernet (up to two 802.1Q/802.1ad tags), IPv4 (options allowed, not a
 * fragment) or IPv6 (no extension headers), then TCP or UDP. With
 * `zeroLenIsFrame`, an IP length of 0 (BIG TCP) means "to the end of the frame".
 * Returns false when the frame is not such a packet or any length is inconsistent.
 */
bool ParseL4(const uint8_t* p, size_t len, bool zeroLenIsFrame, Layout* f);

/**
 * The inner flow's 32-bit hash (MACs, EtherType, one VLAN tag's ID, IP addresses
 * and protocol, TCP/UDP/SCTP ports of a first fragment), the same function as
 * flowHash in src/wire/flowhash.ts: what picks the UDP source port.
 */
uint32_t FlowHash(const uint8_t* p, size_t len);
/** The frame's IPv4 DF bit (IPv6: true, other EtherTypes: false), for --df inherit. */
bool FrameDf(const uint8_t* p, size_t len);

}  // namespace vxtap
