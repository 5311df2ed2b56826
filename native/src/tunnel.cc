// txTunnel: wrap vnet_hdr TAP frames (TSO super-frames included) whole in outer
// Ethernet/IPv4/UDP/VXLAN headers for a write to an "uplink" TAP that is a port
// of the underlay bridge, with the UDP-tunnel GSO virtio header of Linux 6.17+
// (struct virtio_net_hdr_v1_hash_tunnel, 24 bytes; the TAP's vnet header size
// must be set to 24). The kernel then carries each super-frame as one skb and
// segments it only where a device needs it (a physical NIC, or never over veth),
// so vxtap neither segments nor checksums the payload.
//
// The outer headers are written in the 64 bytes in front of each frame's 10-byte
// vnet header (headroom the caller reserved), so nothing is copied.
#include "tunnel.h"

#include <cstring>

#include "common.h"
#include "csum.h"
#include "frame.h"

namespace vxtap {
namespace {

constexpr size_t kTnlVnetLen = 24;   // virtio_net_hdr_v1_hash_tunnel
constexpr size_t kOuterLen = 50;     // Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
constexpr size_t kHeadroom = kTnlVnetLen + kOuterLen - kVnetHdrLen;  // 64
constexpr size_t kTemplate = 64;     // template stride (50 bytes used)
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

/** The outer source (IPv4 header at ip, UDP at udp) as an address record (src/native/index.ts). */
inline void PutSourceRecord(uint8_t* rec, const uint8_t* ip, const uint8_t* udp) {
  std::memset(rec, 0, kAddrLen);
  rec[0] = 4;
  rec[2] = udp[0];
  rec[3] = udp[1];
  std::memcpy(rec + 4, ip + 12, 4);
}

}  // namespace

napi_value TxTunnel(napi_env env, napi_callback_info info) {
  WideArgs a(env, info);
  View<uint8_t> bufs, templates;
  View<uint32_t> offsets, sizes, outOffsets, outSizes, result, ipId;
  View<int32_t> sel;
  View<uint16_t> srcPort;
  uint32_t count;
  int64_t dfMode, maxOuterIp;
  if (!GetU8(env, a.argv[0], "bufs", &bufs) || !GetU32(env, a.argv[1], "offsets", &offsets) ||
      !GetU32(env, a.argv[2], "sizes", &sizes) || !GetBatchCount(env, a.argv[3], "count", &count) ||
      !GetI32(env, a.argv[4], "sel", &sel) || !GetU16(env, a.argv[5], "srcPort", &srcPort) ||
      !GetU8(env, a.argv[6], "templates", &templates) || !GetInt(env, a.argv[7], "dfMode", 0, 2, &dfMode) ||
      !GetInt(env, a.argv[8], "maxOuterIp", 68, 65535, &maxOuterIp) ||
      !GetU32(env, a.argv[9], "outOffsets", &outOffsets) || !GetU32(env, a.argv[10], "outSizes", &outSizes) ||
      !GetU32(env, a.argv[11], "result", &result) || !CheckLen(env, offsets.elems, count, "offsets", "count") ||
      !CheckLen(env, sizes.elems, count, "sizes", "count") || !CheckLen(env, sel.elems, count, "sel", "count") ||
      !CheckLen(env, srcPort.elems, count, "srcPort", "count") ||
      !CheckLen(env, outOffsets.elems, count, "outOffsets", "count") ||
      !CheckLen(env, outSizes.elems, count, "outSizes", "count") || !CheckLen(env, result.elems, 2, "result", "2") ||
      !GetU32(env, a.argv[12], "ipId", &ipId) || !CheckLen(env, ipId.elems, 1, "ipId", "1")) {
    return nullptr;
  }
  for (uint32_t i = 0; i < count; i++) {
    if (offsets.data[i] < kHeadroom || static_cast<uint64_t>(offsets.data[i]) + sizes.data[i] > bufs.elems) {
      return ThrowRange(env, "offsets[%u] (%u) needs %zu bytes of headroom and offsets[%u] + sizes[%u] (%u) must lie in bufs (%zu)",
                        i, offsets.data[i], kHeadroom, i, i, sizes.data[i], bufs.elems);
    }
    if (sel.data[i] >= 0 && (static_cast<uint64_t>(sel.data[i]) + 1) * kTemplate > templates.elems) {
      return ThrowRange(env, "sel[%u] (%d) has no template in templates (%zu bytes, %zu per peer)", i, sel.data[i],
                        templates.elems, kTemplate);
    }
  }
  uint32_t emitted = 0, segments = 0, refused = 0;
  uint32_t id = ipId.data[0];
  for (uint32_t i = 0; i < count; i++) {
    if (sel.data[i] < 0) continue;
    uint8_t* v = bufs.data + offsets.data[i];
    const size_t len = sizes.data[i];
    if (len < kVnetHdrLen + 14) {
      sel.data[i] = -1;  // the socket path counts it
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
      // GSO: only TCP/USO (no UFO), matching the headers, the checksum at the inner L4
      // header; each outer segment must fit the underlay unfragmented.
      const bool tcp = inner == kGsoTcpV4 || inner == kGsoTcpV6;
      ok = parsed && (tcp || inner == kGsoUdpL4) && f.proto == (tcp ? kProtoTcp : kProtoUdp) && gsoSize > 0 &&
           (flags & kNeedsCsum) && csumStart == f.l4 && kOuterLen - 14 + hdrs + gsoSize <= static_cast<size_t>(maxOuterIp);
    } else if (ok) {
      ok = kOuterLen - 14 + elen <= static_cast<size_t>(maxOuterIp);  // else: the socket path fragments it
    }
    if (ok && (flags & kNeedsCsum)) ok = static_cast<size_t>(csumStart) + csumOffset + 2 <= elen;
    if (!ok) {
      sel.data[i] = -1;  // leave it to the socket path (fragmentation, drop counting)
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
      n = static_cast<uint32_t>((elen - hdrs + gsoSize - 1) / gsoSize);
    }
    segments += n;
    if (flags & kNeedsCsum) {
      PutLe16(h + 6, static_cast<uint32_t>(csumStart + kOuterLen));
      PutLe16(h + 8, csumOffset);
    }
    PutLe16(h + 20, 14 + 20);                                      // outer_th_offset: the outer UDP header
    PutLe16(h + 22, static_cast<uint32_t>(kOuterLen + l3));      // inner_nh_offset: the inner IP header
    uint8_t* o = h + kTnlVnetLen;
    std::memcpy(o, templates.data + static_cast<size_t>(sel.data[i]) * kTemplate, kOuterLen);
    uint8_t* ip = o + 14;
    Put16(ip + 2, static_cast<uint32_t>(kOuterLen - 14 + elen));
    const bool df = dfMode == 1 || (dfMode == 2 && InnerDf(e, elen));
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
    Put16(udp, srcPort.data[i]);
    Put16(udp + 4, static_cast<uint32_t>(kOuterLen - 34 + elen));
    udp[6] = 0;
    udp[7] = 0;  // no outer UDP checksum, as Linux VXLAN sends by default over IPv4
    outOffsets.data[emitted] = offsets.data[i] - static_cast<uint32_t>(kHeadroom);
    outSizes.data[emitted] = static_cast<uint32_t>(len + kHeadroom);
    emitted++;
  }
  ipId.data[0] = id;
  result.data[0] = segments;
  result.data[1] = refused;
  return Number(env, emitted);
}

napi_value RxTunnel(napi_env env, napi_callback_info info) {
  WideArgs a(env, info);
  View<uint8_t> bufs, addrs, usoAddrs, order;
  View<uint32_t> offsets, sizes, frameOffsets, frameSizes, drops, result, usoOffsets, usoSizes;
  View<uint16_t> usoGso;
  uint32_t count;
  int64_t vni, port;
  if (!GetU8(env, a.argv[0], "bufs", &bufs) || !GetU32(env, a.argv[1], "offsets", &offsets) ||
      !GetU32(env, a.argv[2], "sizes", &sizes) || !GetBatchCount(env, a.argv[3], "count", &count) ||
      !GetInt(env, a.argv[4], "vni", 0, 0xffffff, &vni) || !GetInt(env, a.argv[5], "port", 1, 65535, &port) ||
      !GetU8(env, a.argv[6], "addrs", &addrs) || !GetU32(env, a.argv[7], "frameOffsets", &frameOffsets) ||
      !GetU32(env, a.argv[8], "frameSizes", &frameSizes) || !GetU32(env, a.argv[9], "drops", &drops) ||
      !GetU32(env, a.argv[10], "result", &result) || !CheckLen(env, offsets.elems, count, "offsets", "count") ||
      !CheckLen(env, sizes.elems, count, "sizes", "count") || !CheckLen(env, addrs.elems, count * kAddrLen, "addrs", "count * ADDR_LEN") ||
      !CheckLen(env, frameOffsets.elems, count, "frameOffsets", "count") ||
      !CheckLen(env, frameSizes.elems, count, "frameSizes", "count") || !CheckLen(env, drops.elems, 3, "drops", "3") ||
      !CheckLen(env, result.elems, 4, "result", "4") || !GetU32(env, a.argv[11], "usoOffsets", &usoOffsets) ||
      !GetU32(env, a.argv[12], "usoSizes", &usoSizes) || !GetU16(env, a.argv[13], "usoGso", &usoGso) ||
      !GetU8(env, a.argv[14], "usoAddrs", &usoAddrs) || !CheckLen(env, usoOffsets.elems, count, "usoOffsets", "count") ||
      !CheckLen(env, usoSizes.elems, count, "usoSizes", "count") || !CheckLen(env, usoGso.elems, count, "usoGso", "count") ||
      !CheckLen(env, usoAddrs.elems, count * kAddrLen, "usoAddrs", "count * ADDR_LEN") ||
      !GetU8(env, a.argv[15], "order", &order) || !CheckLen(env, order.elems, count, "order", "count")) {
    return nullptr;
  }
  for (uint32_t i = 0; i < count; i++) {
    if (static_cast<uint64_t>(offsets.data[i]) + sizes.data[i] > bufs.elems) {
      return ThrowRange(env, "offsets[%u] (%u) + sizes[%u] (%u) exceeds bufs.length (%zu)", i, offsets.data[i], i, sizes.data[i],
                        bufs.elems);
    }
  }
  const uint8_t want[3] = {static_cast<uint8_t>(vni >> 16), static_cast<uint8_t>(vni >> 8), static_cast<uint8_t>(vni)};
  uint32_t kept = 0, malformed = 0, badFlags = 0, wrongVni = 0, segments = 0, supers = 0, uso = 0, ignored = 0;
  for (uint32_t i = 0; i < count; i++) {
    uint8_t* v = bufs.data + offsets.data[i];
    const size_t len = sizes.data[i];
    if (len < kTnlVnetLen + 14 + 20 + 8) {  // too short for outer IPv4/UDP: not VXLAN at all
      ignored++;
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
        14 + ihl + 8 > elen || Be16(ip + ihl + 2) != port) {
      ignored++;
      continue;
    }
    // the lengths consistent, the outer IPv4 header checksum right
    const uint8_t* udp = ip + ihl;
    if (tot < ihl + 8 + 8 + 14 || 14 + tot > elen || Be16(udp + 4) < 8 + 8 + 14 || Be16(udp + 4) > tot - ihl ||
        Fold16(Sum64(ip, ihl)) != 0xffff) {
      malformed++;
      continue;
    }
    if (gsoType == kGsoUdpL4) {
      // a UDP GSO run of VXLAN datagrams (a socket-path sender): left whole for
      // rxOffload, which splits it by gso_size and checks each VXLAN header
      if (gsoSize == 0) {
        malformed++;
        continue;
      }
      PutSourceRecord(usoAddrs.data + static_cast<size_t>(uso) * kAddrLen, ip, udp);
      usoOffsets.data[uso] = static_cast<uint32_t>(udp + 8 - bufs.data);
      usoSizes.data[uso] = static_cast<uint32_t>(ip + tot - (udp + 8));
      usoGso.data[uso] = gsoSize;
      uso++;
      order.data[kept + uso - 1] = 1;  // arrival order of frames (0) and runs (1)
      continue;
    }
    const uint8_t* vx = udp + 8;
    if (vx[0] != 0x08 || vx[1] != 0 || vx[2] != 0 || vx[3] != 0 || vx[7] != 0) {
      badFlags++;
      continue;
    }
    if (std::memcmp(vx + 4, want, 3) != 0) {
      wrongVni++;
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
        malformed++;
        continue;
      }
      ngso = static_cast<uint8_t>(gsoType & ~(kGsoUdpTunnelV4 | 0x40));
      nhdr = static_cast<uint16_t>(hdrLen > inner ? hdrLen - inner : 0);
      ngs = gsoSize;
      const size_t data = innerLen > nhdr ? innerLen - nhdr : 0;
      segments += static_cast<uint32_t>((data + gsoSize - 1) / gsoSize);
      supers++;
    } else {
      segments++;
    }
    if (innerCsum) {
      // a partial checksum on the outer UDP header only is dropped with it: the inner one is complete
      nflags = kNeedsCsum;
      ncs = static_cast<uint16_t>(csumStart - inner);
      nco = csumOffset;
    }
    PutSourceRecord(addrs.data + static_cast<size_t>(kept) * kAddrLen, ip, udp);
    uint8_t* nv = v + kTnlVnetLen + inner - kVnetHdrLen;  // over the UDP checksum and the VXLAN header, read already
    const VnetHdr nh{nflags, ngso, nhdr, ngs, ncs, nco};
    std::memcpy(nv, &nh, kVnetHdrLen);
    frameOffsets.data[kept] = static_cast<uint32_t>(nv - bufs.data);
    frameSizes.data[kept] = static_cast<uint32_t>(kVnetHdrLen + innerLen);
    order.data[kept + uso] = 0;
    kept++;
  }
  drops.data[0] = malformed;
  drops.data[1] = badFlags;
  drops.data[2] = wrongVni;
  result.data[0] = segments;
  result.data[1] = supers;
  result.data[2] = uso;
  result.data[3] = ignored;
  return Number(env, kept);
}

}  // namespace vxtap
