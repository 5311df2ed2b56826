// Fuzz target "tunnel": TxTunnelFrames and RxTunnelFrames (the uplink's
// txTunnel / rxTunnel: whole super-frames wrapped in outer
// Ethernet/IPv4/UDP/VXLAN with the 24-byte UDP-tunnel GSO virtio header, and
// unwrapped in place). See README.md, "Fuzzing".
//
// Input: u8 mode (bit 0: 0 transmit + round trip, 1 receive), u24 vni, u16 port,
// u8 dfMode, u16 maxOuterIp, u16 ipId, u8 template count (1..4) and 50 bytes per
// template, then frames as [u16 length][u8 sel][u16 srcPort][bytes]. Transmit
// frames are [virtio_net_hdr 10][Ethernet]; receive frames [tunnel header
// 24][outer Ethernet/IPv4/UDP/VXLAN][inner Ethernet].
//
// Invariants on every input:
// - nothing read or written outside each frame's span (receive) or its span plus
//   the 64 bytes of headroom (transmit), nor the output arrays (exact size);
// - transmit: a model of the contract says which frames are wrapped and which are
//   handed back (sel -1), and the counts match; a wrapped frame's tunnel header
//   and outer headers are as the model says, its outer IPv4 header checksum is
//   correct (reference), IDs advance by the wire packets of each frame (at least
//   one), its inner bytes are untouched; a refused frame is untouched;
// - round trip: every wrapped frame, given to rxTunnel, comes back whole: the
//   same inner bytes, the same virtio_net_hdr (GSO type, size, checksum offsets),
//   the same wire-packet count, the outer source as its address record;
// - receive: every frame lands in exactly one of kept / UDP GSO run / malformed /
//   bad flags / wrong VNI / ignored, as the harness's classification says;
//   order[] lists frames and runs in arrival order; only the 10 bytes of the new
//   virtio_net_hdr are written, and only in kept frames.
#include <cstring>

#include "../src/frame.h"
#include "../src/tunnel.h"
#include "harness.h"

namespace {

using fuzz::Get16;
using fuzz::RefLayout;

constexpr size_t kVnet = 10;
constexpr size_t kHead = vxtap::kTunnelHeadroom;  // 64

inline uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

struct Frame {
  std::vector<uint8_t> bytes;
  int32_t sel;
  uint16_t srcPort;
};

/** Inner DF for dfMode 2: IPv4 with DF set, or IPv6 (as Linux does). */
bool InnerDf(const uint8_t* e, size_t len) {
  size_t at = 12;
  for (int tags = 0;; tags++) {
    if (at + 2 > len) return false;
    const uint16_t t = Get16(e + at);
    if ((t == 0x8100 || t == 0x88a8) && tags < 2) {
      at += 4;
      continue;
    }
    if (t == 0x86dd) return true;
    return t == 0x0800 && at + 2 + 20 <= len && (e[at + 2 + 6] & 0x40) != 0;
  }
}

/** How many wire packets a GSO frame makes: at least one (a short GSO frame is sent as it is). */
size_t WirePackets(size_t data, size_t gsoSize) { return data <= gsoSize ? 1 : (data + gsoSize - 1) / gsoSize; }

struct TxModel {
  bool ok = false;
  bool gso = false;
  size_t hdrs = 0, l3 = 14, packets = 1;
};

TxModel ModelTx(const std::vector<uint8_t>& f, size_t maxOuterIp) {
  TxModel m;
  if (f.size() < kVnet + 14) return m;
  const uint8_t flags = f[0], type = f[1];
  const uint16_t gsoSize = Le16(&f[4]), cs = Le16(&f[6]), co = Le16(&f[8]);
  const uint8_t* e = f.data() + kVnet;
  const size_t elen = f.size() - kVnet;
  RefLayout r;
  const bool parsed = fuzz::RefParse(e, elen, true, &r);
  if (parsed) m.l3 = r.l3, m.hdrs = r.l4 + r.l4hdr;
  if (36 + elen > 65535 || (flags & ~3) != 0) return m;
  if (type != 0) {
    const uint8_t inner = type & 0x7f;
    const bool tcp = inner == 1 || inner == 4;
    // the headers match the GSO type (TCPV4 on IPv4, TCPV6 on IPv6, UDP_L4 on UDP)
    if (!parsed || !(tcp || inner == 5) || r.proto != (tcp ? 6 : 17) || (tcp && r.ipv != (inner == 1 ? 4 : 6)))
      return m;
    if (gsoSize == 0 || !(flags & 1) || cs != r.l4 || 36 + m.hdrs + gsoSize > maxOuterIp) return m;
    m.gso = true;
    m.packets = WirePackets(elen - m.hdrs, gsoSize);
  } else if (36 + elen > maxOuterIp) {
    return m;
  }
  if ((flags & 1) && size_t{cs} + co + 2 > elen) return m;
  m.ok = true;
  return m;
}

void RunTransmit(fuzz::Reader& in, const std::vector<uint8_t>& templates, size_t ntpl, int dfMode, size_t maxOuterIp,
                 uint32_t ipId) {
  std::vector<Frame> frames;
  while (!in.Empty() && frames.size() < 32) {
    const uint16_t len = in.U16();
    const uint8_t sel = in.U8();
    const uint16_t port = in.U16();
    frames.push_back(Frame{in.Bytes(len), sel == 0xff ? -1 : static_cast<int32_t>(sel % ntpl), port});
  }
  std::vector<std::vector<uint8_t>> spans;
  for (const auto& f : frames) spans.push_back(f.bytes);
  fuzz::Slab slab(spans, kHead);  // headroom filled with 0xa5: only a wrapped frame's may change
  const uint32_t n = static_cast<uint32_t>(frames.size());
  fuzz::Exact<int32_t> sel(n);
  fuzz::Exact<uint16_t> srcPort(n);
  fuzz::Exact<uint32_t> outOffsets(n), outSizes(n);
  fuzz::Exact<uint8_t> tpl(ntpl * vxtap::kTunnelTemplate);
  std::memcpy(tpl.data, templates.data(), tpl.n);
  for (uint32_t i = 0; i < n; i++) sel.data[i] = frames[i].sel, srcPort.data[i] = frames[i].srcPort;
  const vxtap::TxTunnelBatch b{slab.base,  slab.offsets.data(), slab.sizes.data(), n,
                               sel.data,   srcPort.data,        tpl.data,          dfMode,
                               maxOuterIp, outOffsets.data,     outSizes.data,     ipId};
  const vxtap::TxTunnelResult r = vxtap::TxTunnelFrames(b);

  uint32_t emitted = 0, refused = 0, packets = 0, id = ipId;
  std::vector<size_t> wrapped, wrappedPackets;
  for (uint32_t i = 0; i < n; i++) {
    const auto& f = frames[i].bytes;
    const uint8_t* now = slab.At(i);
    bool headroomUntouched = true;
    for (size_t j = 1; j <= kHead; j++)
      headroomUntouched = headroomUntouched && now[-static_cast<ptrdiff_t>(j)] == 0xa5;
    if (frames[i].sel < 0) {
      CHECK(sel.data[i] == -1 && fuzz::Same(now, f.data(), f.size()) && headroomUntouched);
      continue;
    }
    const TxModel m = ModelTx(f, maxOuterIp);
    if (!m.ok) {
      CHECK(sel.data[i] == -1);  // handed back to the socket path
      CHECK(fuzz::Same(now, f.data(), f.size()) && headroomUntouched);
      refused++;
      continue;
    }
    CHECK(sel.data[i] == frames[i].sel);
    CHECK(emitted < r.emitted && outOffsets.data[emitted] == slab.offsets[i] - kHead &&
          outSizes.data[emitted] == f.size() + kHead);
    const size_t elen = f.size() - kVnet;
    CHECK(std::memcmp(now + kVnet, f.data() + kVnet, elen) == 0);  // the inner frame untouched
    const uint8_t* h = now - kHead;
    const uint8_t flags = f[0], type = f[1];
    const uint16_t gsoSize = Le16(&f[4]), cs = Le16(&f[6]), co = Le16(&f[8]);
    CHECK(h[0] == (flags & 1));
    CHECK(h[1] == (m.gso ? (type | 0x20) : 0));
    CHECK(Le16(h + 2) == (m.gso ? 50 + m.hdrs : 0) && Le16(h + 4) == (m.gso ? gsoSize : 0));
    CHECK(Le16(h + 6) == ((flags & 1) ? cs + 50 : 0) && Le16(h + 8) == ((flags & 1) ? co : 0));
    for (int j = 10; j < 20; j++) CHECK(h[j] == 0);
    CHECK(Le16(h + 20) == 34 && Le16(h + 22) == 50 + m.l3);
    const uint8_t* o = h + 24;
    const uint8_t* t = templates.data() + static_cast<size_t>(frames[i].sel) * vxtap::kTunnelTemplate;
    CHECK(std::memcmp(o, t, 16) == 0);           // Ethernet, IP version/TOS
    CHECK(std::memcmp(o + 22, t + 22, 2) == 0);  // TTL, protocol
    CHECK(std::memcmp(o + 26, t + 26, 8) == 0);  // addresses
    CHECK(std::memcmp(o + 36, t + 36, 2) == 0);  // UDP destination port
    CHECK(std::memcmp(o + 42, t + 42, 8) == 0);  // VXLAN
    const uint8_t* ip = o + 14;
    CHECK(Get16(ip + 2) == 36 + elen && Get16(ip + 4) == (id & 0xffff));
    const bool df = dfMode == 1 || (dfMode == 2 && InnerDf(f.data() + kVnet, elen));
    CHECK(ip[6] == (df ? 0x40 : 0) && ip[7] == 0);
    CHECK(fuzz::RefIpv4HeaderOk(ip, 20));
    CHECK(Get16(ip + 20) == frames[i].srcPort && Get16(ip + 24) == 16 + elen && Get16(ip + 26) == 0);
    id += static_cast<uint32_t>(m.packets);
    packets += static_cast<uint32_t>(m.packets);
    wrapped.push_back(i);
    wrappedPackets.push_back(m.packets);
    emitted++;
  }
  CHECK(emitted == r.emitted && refused == r.refused && packets == r.segments && id == r.nextIpId);

  // Round trip: each wrapped frame unwrapped by rxTunnel, one at a time (each with its template's port and VNI).
  for (size_t w = 0; w < wrapped.size(); w++) {
    const size_t i = wrapped[w];
    const auto& f = frames[i].bytes;
    const uint8_t* t = templates.data() + static_cast<size_t>(frames[i].sel) * vxtap::kTunnelTemplate;
    const uint32_t off = outOffsets.data[w], size = outSizes.data[w];
    uint8_t addrs[vxtap::kAddrLen], usoAddrs[vxtap::kAddrLen], order[1];
    uint32_t frameOffsets[1], frameSizes[1], usoOffsets[1], usoSizes[1];
    uint16_t usoGso[1];
    const vxtap::RxTunnelBatch rb{
        slab.base,     &off,   &size,        1,          static_cast<uint32_t>(t[46] << 16 | t[47] << 8 | t[48]),
        Get16(t + 36), addrs,  frameOffsets, frameSizes, usoOffsets,
        usoSizes,      usoGso, usoAddrs,     order};
    const vxtap::RxTunnelResult rr = vxtap::RxTunnelFrames(rb);
    CHECK(rr.kept == 1 && order[0] == 0 && rr.segments == wrappedPackets[w]);
    CHECK(frameOffsets[0] == slab.offsets[i] && frameSizes[0] == f.size());
    const uint8_t* v = slab.At(i);
    const uint8_t flags = f[0], type = f[1];
    const uint16_t gsoSize = Le16(&f[4]), cs = Le16(&f[6]), co = Le16(&f[8]);
    const bool csum = (flags & 1) && cs >= 14;  // a checksum inside the Ethernet header is not carried
    CHECK(v[0] == (csum ? 1 : 0) && v[1] == type);
    CHECK(Le16(v + 2) == (type ? ModelTx(f, maxOuterIp).hdrs : 0) && Le16(v + 4) == (type ? gsoSize : 0));
    CHECK(Le16(v + 6) == (csum ? cs : 0) && Le16(v + 8) == (csum ? co : 0));
    CHECK(std::memcmp(v + kVnet, f.data() + kVnet, f.size() - kVnet) == 0);
    CHECK(addrs[0] == 4 && Get16(addrs + 2) == frames[i].srcPort && std::memcmp(addrs + 4, t + 26, 4) == 0);
  }
}

enum class Rx { kIgnored, kMalformed, kUso, kBadFlags, kWrongVni, kKept };

void RunReceive(fuzz::Reader& in, uint32_t vni, uint16_t port) {
  const auto frames = fuzz::ReadFrames(in, 32);
  const uint32_t n = static_cast<uint32_t>(frames.size());
  fuzz::Slab slab(frames, 0);
  fuzz::Exact<uint8_t> addrs(n * vxtap::kAddrLen), usoAddrs(n * vxtap::kAddrLen), order(n);
  fuzz::Exact<uint32_t> frameOffsets(n), frameSizes(n), usoOffsets(n), usoSizes(n);
  fuzz::Exact<uint16_t> usoGso(n);
  const vxtap::RxTunnelBatch b{slab.base,
                               slab.offsets.data(),
                               slab.sizes.data(),
                               n,
                               vni,
                               port,
                               addrs.data,
                               frameOffsets.data,
                               frameSizes.data,
                               usoOffsets.data,
                               usoSizes.data,
                               usoGso.data,
                               usoAddrs.data,
                               order.data};
  const vxtap::RxTunnelResult r = vxtap::RxTunnelFrames(b);

  uint32_t counts[6] = {};
  uint32_t kept = 0, uso = 0, segments = 0, supers = 0;
  for (uint32_t i = 0; i < n; i++) {
    const auto& f = frames[i];
    const uint8_t* now = slab.At(i);
    const size_t len = f.size();
    Rx c = Rx::kIgnored;
    size_t inner = 0, tot = 0, ihl = 0;
    if (len >= 24 + 14 + 20 + 8) {
      const uint8_t* e = f.data() + 24;
      const size_t elen = len - 24;
      const uint8_t* ip = e + 14;
      ihl = (ip[0] & 15) * 4u;
      tot = Get16(ip + 2);
      const bool ours = Get16(e + 12) == 0x0800 && ip[0] >> 4 == 4 && ihl >= 20 && ip[9] == 17 && (ip[6] & 0x3f) == 0 &&
                        ip[7] == 0 && 14 + ihl + 8 <= elen && Get16(ip + ihl + 2) == port;
      if (ours) {
        const uint8_t* udp = ip + ihl;
        const uint8_t* vx = udp + 8;
        if (tot < ihl + 30 || 14 + tot > elen || Get16(udp + 4) < 30 || Get16(udp + 4) > tot - ihl ||
            !fuzz::RefIpv4HeaderOk(ip, ihl)) {
          c = Rx::kMalformed;
        } else if (f[1] == 5) {
          c = Le16(&f[4]) == 0 ? Rx::kMalformed : Rx::kUso;
        } else if (vx[0] != 0x08 || vx[1] || vx[2] || vx[3] || vx[7]) {
          c = Rx::kBadFlags;
        } else if ((static_cast<uint32_t>(vx[4]) << 16 | vx[5] << 8 | vx[6]) != vni) {
          c = Rx::kWrongVni;
        } else {
          inner = 14 + ihl + 16;
          const uint16_t cs = Le16(&f[6]), co = Le16(&f[8]);
          const bool innerCsum = (f[0] & 1) && cs >= inner + 14 && size_t{cs} + co + 2 <= 14 + tot;
          const uint8_t innerType = f[1] & ~0xe0;
          c = Rx::kKept;
          if (f[1] != 0 && (!(f[1] & 0x20) || !innerCsum || Le16(&f[4]) == 0 ||
                            (innerType != 1 && innerType != 4 && innerType != 5))) {
            c = Rx::kMalformed;
          }
        }
      }
    }
    counts[static_cast<int>(c)]++;
    if (c == Rx::kUso) {
      const uint8_t* ip = f.data() + 24 + 14;
      CHECK(uso < r.uso && order.data[kept + uso] == 1);
      CHECK(usoOffsets.data[uso] == slab.offsets[i] + 24 + 14 + ihl + 8);
      CHECK(usoSizes.data[uso] == tot - ihl - 8 && usoGso.data[uso] == Le16(&f[4]));
      const uint8_t* rec = usoAddrs.data + uso * vxtap::kAddrLen;
      CHECK(rec[0] == 4 && rec[1] == 0 && Get16(rec + 2) == Get16(ip + ihl) && std::memcmp(rec + 4, ip + 12, 4) == 0);
      uso++;
    }
    if (c != Rx::kKept) {
      CHECK(fuzz::Same(now, f.data(), len));  // only kept frames are written
      continue;
    }
    const size_t at = 24 + inner - kVnet;  // where the new virtio_net_hdr goes
    CHECK(std::memcmp(now, f.data(), at) == 0 &&
          std::memcmp(now + at + kVnet, f.data() + at + kVnet, len - at - kVnet) == 0);
    CHECK(kept < r.kept && order.data[kept + uso] == 0);
    CHECK(frameOffsets.data[kept] == slab.offsets[i] + at && frameSizes.data[kept] == kVnet + 14 + tot - inner);
    const uint8_t* v = now + at;
    const uint16_t cs = Le16(&f[6]), co = Le16(&f[8]), gsoSize = Le16(&f[4]), hdrLen = Le16(&f[2]);
    const bool innerCsum = (f[0] & 1) && cs >= inner + 14 && size_t{cs} + co + 2 <= 14 + tot;
    CHECK(v[0] == (innerCsum ? 1 : 0) && v[1] == (f[1] & ~0x60));
    CHECK(Le16(v + 6) == (innerCsum ? cs - inner : 0) && Le16(v + 8) == (innerCsum ? co : 0));
    if (f[1] != 0) {
      const size_t nhdr = hdrLen > inner ? hdrLen - inner : 0;
      const size_t innerLen = 14 + tot - inner;
      CHECK(Le16(v + 2) == nhdr && Le16(v + 4) == gsoSize);
      segments += static_cast<uint32_t>(WirePackets(innerLen > nhdr ? innerLen - nhdr : 0, gsoSize));
      supers++;
    } else {
      CHECK(Le16(v + 2) == 0 && Le16(v + 4) == 0);
      segments++;
    }
    const uint8_t* ip = f.data() + 24 + 14;
    const uint8_t* rec = addrs.data + kept * vxtap::kAddrLen;
    CHECK(rec[0] == 4 && rec[1] == 0 && Get16(rec + 2) == Get16(ip + ihl) && std::memcmp(rec + 4, ip + 12, 4) == 0);
    kept++;
  }
  CHECK(kept == r.kept && uso == r.uso);
  CHECK(counts[int(Rx::kIgnored)] == r.ignored && counts[int(Rx::kMalformed)] == r.malformed &&
        counts[int(Rx::kBadFlags)] == r.badFlags && counts[int(Rx::kWrongVni)] == r.wrongVni);
  CHECK(r.kept + r.uso + r.ignored + r.malformed + r.badFlags + r.wrongVni == n);
  CHECK(segments == r.segments && supers == r.supers);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Reader in{data, size};
  const bool receive = in.U8() & 1;
  const uint32_t vni = in.U24();
  const uint16_t port = in.U16();
  const int dfMode = in.U8() % 3;
  size_t maxOuterIp = in.U16();
  if (maxOuterIp < 68) maxOuterIp = 68 + maxOuterIp;
  const uint32_t ipId = in.U16() | static_cast<uint32_t>(in.U16()) << 16;
  const size_t ntpl = 1 + in.U8() % 4;
  std::vector<uint8_t> templates(ntpl * vxtap::kTunnelTemplate, 0);
  for (size_t t = 0; t < ntpl; t++) {
    uint8_t* o = templates.data() + t * vxtap::kTunnelTemplate;
    for (size_t j = 0; j < vxtap::kOuterLen; j++) o[j] = in.U8();
    // what makes it an IPv4/UDP/VXLAN template (the engine builds nothing else)
    o[12] = 0x08, o[13] = 0x00, o[14] = 0x45, o[23] = 17;
    o[42] = 0x08, o[43] = o[44] = o[45] = 0, o[49] = 0;
  }
  if (receive) {
    RunReceive(in, vni, port);
  } else {
    RunTransmit(in, templates, ntpl, dfMode, maxOuterIp, ipId);
  }
  return 0;
}
