// txTunnel: wrap vnet_hdr TAP frames (TSO super-frames included) whole in outer
// Ethernet/IPv4/UDP/VXLAN headers for a write to an "uplink" TAP that is a port
// of the underlay bridge, with the UDP-tunnel GSO virtio header of Linux 6.17+
// (struct virtio_net_hdr_v1_hash_tunnel, 24 bytes; the TAP's vnet header size
// must be set to 24). The kernel then carries each super-frame as one skb and
// segments it only where a device needs it (a physical NIC, or never over veth),
// so vxtap neither segments nor checksums the payload.
//
// The outer headers are written in the 64 bytes in front of each frame's 10-byte
// vnet header (headroom the caller reserved), so nothing is copied. Pure C++:
// the Node-API glue (argument checks) is tunnel_napi.cc.
#include "tunnel.h"

#include <cstring>

#include "csum.h"
#include "frame.h"

namespace vxtap {
namespace {

constexpr size_t kHeadroom = kTunnelHeadroom;
constexpr size_t kTemplate = kTunnelTemplate;
static_assert(kHeadroom == kTnlVnetLen + kOuterLen - kVnetHdrLen, "the outer headers end at the vnet header's end");
constexpr uint8_t kGsoUdpTunnelV4 = 0x20;

/** The tunnel header is virtio 1.x: little-endian whatever the host. */
inline uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline void PutLe16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

/**
 * Outer DF for dfMode 2 ("inherit"): the inner IPv4 DF bit; other frames count as
 * DF set only when IPv6, as Linux does (and as the engine's socket path does).
 */
bool InnerDf(const uint8_t* e, size_t len) {
  size_t l3;
  uint16_t et;
  if (!EthernetL3(e, len, &l3, &et)) return false;
  if (et == kEthIPv4) return l3 + 20 <= len && (e[l3 + 6] & 0x40) != 0;
  return et == kEthIPv6;
}

/**
 * Wire packets a GSO frame with `data` bytes behind its headers makes: at least
 * one, since a frame no longer than one segment is sent as it is (Linux's
 * virtio_net_hdr_to_skb drops the GSO type then); the fuzzer found a
 * header-only super-frame counted as 0 packets, which also gave the next frame
 * the same outer IPv4 ID.
 */
inline uint32_t WirePackets(size_t data, size_t gsoSize) {
  return data <= gsoSize ? 1 : static_cast<uint32_t>((data + gsoSize - 1) / gsoSize);
}

/** The outer source (IPv4 header at ip, UDP at udp) as an address record (src/native/index.ts). */
inline void PutSourceRecord(uint8_t* rec, const uint8_t* ip, const uint8_t* udp) {
  std::memset(rec, 0, kAddrLen);
  rec[0] = 4;
  rec[2] = udp[0];
  rec[3] = udp[1];
  std::memcpy(rec + 4, ip + 12, 4);
}

}  // namespace

TxTunnelResult TxTunnelFrames(const TxTunnelBatch& b) {
  uint32_t emitted = 0, segments = 0, refused = 0;
  uint32_t id = b.ipId;
  for (uint32_t i = 0; i < b.count; i++) {
    if (b.sel[i] < 0) continue;
    uint8_t* v = b.bufs + b.offsets[i];
    const size_t len = b.sizes[i];
    if (len < kVnetHdrLen + 14) {
      b.sel[i] = -1;  // the socket path counts it
      refused++;
      continue;
    }
    const uint8_t* e = v + kVnetHdrLen;
    const size_t elen = len - kVnetHdrLen;
    VnetHdr vh;
    std::memcpy(&vh, v, kVnetHdrLen);
    const uint8_t flags = vh.flags, gsoType = vh.gsoType;
    const uint16_t gsoSize = vh.gsoSize, csumStart = vh.csumStart, csumOffset = vh.csumOffset;
    const uint8_t inner = static_cast<uint8_t>(gsoType & ~kGsoEcn);
    Layout f;
    const bool parsed = ParseL4(e, elen, true, &f);
    const size_t l3 = parsed ? f.l3 : 14, hdrs = f.l4 + f.l4hdr;
    // DATA_VALID (2) only says the inner checksum is complete: nothing to pass on.
    bool ok = kOuterLen - 14 + elen <= 65535 && (flags & ~(kNeedsCsum | 0x02)) == 0;
    if (ok && gsoType != 0) {
      // GSO: only TCP/USO (no UFO), matching the headers (TCPV4 on IPv4, TCPV6 on IPv6,
      // as txOffload requires; the fuzzer found TCPV4 on IPv6 wrapped), the checksum at
      // the inner L4 header; each outer segment must fit the underlay unfragmented.
      const bool tcp = inner == kGsoTcpV4 || inner == kGsoTcpV6;
      ok = parsed && (tcp || inner == kGsoUdpL4) && f.proto == (tcp ? kProtoTcp : kProtoUdp) &&
           (!tcp || f.ipv == (inner == kGsoTcpV4 ? 4 : 6)) && gsoSize > 0 && (flags & kNeedsCsum) &&
           csumStart == f.l4 && kOuterLen - 14 + hdrs + gsoSize <= b.maxOuterIp;
    } else if (ok) {
      ok = kOuterLen - 14 + elen <= b.maxOuterIp;  // else: the socket path fragments it
    }
    if (ok && (flags & kNeedsCsum)) ok = static_cast<size_t>(csumStart) + csumOffset + 2 <= elen;
    if (!ok) {
      b.sel[i] = -1;  // leave it to the socket path (fragmentation, drop counting)
      refused++;
      continue;
    }
    uint8_t* h = v - kHeadroom;  // the 24-byte tunnel vnet header, then the outer headers
    uint32_t n = 1;              // wire packets this frame becomes
    std::memset(h, 0, kTnlVnetLen);
    h[0] = flags & kNeedsCsum;
    if (gsoType != 0) {
      h[1] = static_cast<uint8_t>(gsoType | kGsoUdpTunnelV4);
      PutLe16(h + 2, static_cast<uint32_t>(kOuterLen + hdrs));
      PutLe16(h + 4, gsoSize);
      n = WirePackets(elen - hdrs, gsoSize);
    }
    segments += n;
    if (flags & kNeedsCsum) {
      PutLe16(h + 6, static_cast<uint32_t>(csumStart + kOuterLen));
      PutLe16(h + 8, csumOffset);
    }
    PutLe16(h + 20, 14 + 20);                                // outer_th_offset: the outer UDP header
    PutLe16(h + 22, static_cast<uint32_t>(kOuterLen + l3));  // inner_nh_offset: the inner IP header
    uint8_t* o = h + kTnlVnetLen;
    std::memcpy(o, b.templates + static_cast<size_t>(b.sel[i]) * kTemplate, kOuterLen);
    uint8_t* ip = o + 14;
    Put16(ip + 2, static_cast<uint32_t>(kOuterLen - 14 + elen));
    const bool df = b.dfMode == 1 || (b.dfMode == 2 && InnerDf(e, elen));
    // a fresh IPv4 ID per wire packet (RFC 6864: needed where DF is clear); the
    // kernel counts up from this one across a super-frame's segments
    Put16(ip + 4, id & 0xffff);
    id += n;
    ip[6] = df ? 0x40 : 0;
    ip[7] = 0;
    ip[10] = 0;
    ip[11] = 0;
    const uint16_t c = static_cast<uint16_t>(~Fold16(Sum64(ip, 20)));
    std::memcpy(ip + 10, &c, 2);
    uint8_t* udp = ip + 20;
    Put16(udp, b.srcPort[i]);
    Put16(udp + 4, static_cast<uint32_t>(kOuterLen - 34 + elen));
    udp[6] = 0;
    udp[7] = 0;  // no outer UDP checksum, as Linux VXLAN sends by default over IPv4
    b.outOffsets[emitted] = b.offsets[i] - static_cast<uint32_t>(kHeadroom);
    b.outSizes[emitted] = static_cast<uint32_t>(len + kHeadroom);
    emitted++;
  }
  TxTunnelResult r;
  r.emitted = emitted;
  r.segments = segments;
  r.refused = refused;
  r.nextIpId = id;
  return r;
}

RxTunnelResult RxTunnelFrames(const RxTunnelBatch& b) {
  const uint8_t want[3] = {static_cast<uint8_t>(b.vni >> 16), static_cast<uint8_t>(b.vni >> 8),
                           static_cast<uint8_t>(b.vni)};
  RxTunnelResult r;
  for (uint32_t i = 0; i < b.count; i++) {
    uint8_t* v = b.bufs + b.offsets[i];
    const size_t len = b.sizes[i];
    if (len < kTnlVnetLen + 14 + 20 + 8) {  // too short for outer IPv4/UDP: not VXLAN at all
      r.ignored++;
      continue;
    }
    const uint8_t flags = v[0], gsoType = v[1];
    const uint16_t hdrLen = Le16(v + 2), gsoSize = Le16(v + 4), csumStart = Le16(v + 6), csumOffset = Le16(v + 8);
    const uint8_t* e = v + kTnlVnetLen;
    const size_t elen = len - kTnlVnetLen;
    const uint8_t* ip = e + 14;
    const size_t ihl = static_cast<size_t>(ip[0] & 0x0f) * 4;
    const size_t tot = Be16(ip + 2);
    // not IPv4/UDP to our port (not a fragment): nothing the steering rule sends us
    // (the bridge may still send a multicast our way): ignored, not a VXLAN drop
    if (Be16(e + 12) != kEthIPv4 || (ip[0] >> 4) != 4 || ihl < 20 || ip[9] != 17 || (Be16(ip + 6) & 0x3fff) != 0 ||
        14 + ihl + 8 > elen || Be16(ip + ihl + 2) != b.port) {
      r.ignored++;
      continue;
    }
    // the lengths consistent, the outer IPv4 header checksum right
    const uint8_t* udp = ip + ihl;
    if (tot < ihl + 8 + 8 + 14 || 14 + tot > elen || Be16(udp + 4) < 8 + 8 + 14 || Be16(udp + 4) > tot - ihl ||
        Fold16(Sum64(ip, ihl)) != 0xffff) {
      r.malformed++;
      continue;
    }
    if (gsoType == kGsoUdpL4) {
      // a UDP GSO run of VXLAN datagrams (a socket-path sender): left whole for
      // rxOffload, which splits it by gso_size and checks each VXLAN header
      if (gsoSize == 0) {
        r.malformed++;
        continue;
      }
      PutSourceRecord(b.usoAddrs + static_cast<size_t>(r.uso) * kAddrLen, ip, udp);
      b.usoOffsets[r.uso] = static_cast<uint32_t>(udp + 8 - b.bufs);
      b.usoSizes[r.uso] = static_cast<uint32_t>(ip + tot - (udp + 8));
      b.usoGso[r.uso] = gsoSize;
      r.uso++;
      b.order[r.kept + r.uso - 1] = 1;  // arrival order of frames (0) and runs (1)
      continue;
    }
    const uint8_t* vx = udp + 8;
    if (vx[0] != 0x08 || vx[1] != 0 || vx[2] != 0 || vx[3] != 0 || vx[7] != 0) {
      r.badFlags++;
      continue;
    }
    if (std::memcmp(vx + 4, want, 3) != 0) {
      r.wrongVni++;
      continue;
    }
    const size_t inner = static_cast<size_t>(vx + 8 - e);  // offset of the inner Ethernet header in the frame
    const size_t innerLen = 14 + tot - inner;
    // the inner frame's virtio_net_hdr: the tunnel's offsets moved to the inner frame
    uint8_t nflags = 0, ngso = 0;
    uint16_t nhdr = 0, ngs = 0, ncs = 0, nco = 0;
    const bool innerCsum = (flags & kNeedsCsum) && csumStart >= inner + 14 && csumStart + csumOffset + 2u <= 14 + tot;
    if (gsoType != 0) {
      const uint8_t innerType = static_cast<uint8_t>(gsoType & ~(kGsoUdpTunnelV4 | 0x40 | kGsoEcn));
      if ((gsoType & kGsoUdpTunnelV4) == 0 || !innerCsum || gsoSize == 0 ||
          (innerType != kGsoTcpV4 && innerType != kGsoTcpV6 && innerType != kGsoUdpL4)) {
        r.malformed++;
        continue;
      }
      ngso = static_cast<uint8_t>(gsoType & ~(kGsoUdpTunnelV4 | 0x40));
      nhdr = static_cast<uint16_t>(hdrLen > inner ? hdrLen - inner : 0);
      ngs = gsoSize;
      const size_t data = innerLen > nhdr ? innerLen - nhdr : 0;
      r.segments += WirePackets(data, gsoSize);
      r.supers++;
    } else {
      r.segments++;
    }
    if (innerCsum) {
      // a partial checksum on the outer UDP header only is dropped with it: the inner one is complete
      nflags = kNeedsCsum;
      ncs = static_cast<uint16_t>(csumStart - inner);
      nco = csumOffset;
    }
    PutSourceRecord(b.addrs + static_cast<size_t>(r.kept) * kAddrLen, ip, udp);
    uint8_t* nv = v + kTnlVnetLen + inner - kVnetHdrLen;  // over the UDP checksum and the VXLAN header, read already
    const VnetHdr nh{nflags, ngso, nhdr, ngs, ncs, nco};
    std::memcpy(nv, &nh, kVnetHdrLen);
    b.frameOffsets[r.kept] = static_cast<uint32_t>(nv - b.bufs);
    b.frameSizes[r.kept] = static_cast<uint32_t>(kVnetHdrLen + innerLen);
    b.order[r.kept + r.uso] = 0;
    r.kept++;
  }
  return r;
}

}  // namespace vxtap
