// Offload kernels for the super-frame path: txOffload segments TSO/USO frames read
// from a vnet_hdr TAP into VXLAN-wrapped segments grouped for UDP GSO; rxOffload
// splits UDP GRO datagrams, checks VXLAN, and re-coalesces consecutive TCP
// segments of one flow into GSO super-frames for a vnet_hdr TAP write. Pure C++:
// the Node-API glue (argument checks) is offload_napi.cc.
//
// Design note. Both kernels trust nothing: every header length and offset is
// checked against the frame (and the frame against the slab) before a byte is
// read, a malformed frame is counted and skipped, and the output is written only
// into the caller's `out` slab after a capacity check for the whole frame. Nothing
// is allocated. Checksums are memory-order ones' complement sums (csum.h); only
// the 16-bit results are stored back as they sit in memory.
//
// virtio_net_hdr (include/uapi/linux/virtio_net.h) is host-endian on a TAP that
// has no TUNSETVNETLE/BE; csum_start counts from the start of the Ethernet frame.
// For a GSO write the kernel (virtio_net_hdr_to_skb) wants NEEDS_CSUM with the L4
// checksum field holding the folded, uncomplemented pseudo-header sum over the
// whole super-frame, and trusts the payload checksums it is given: which is why
// rxOffload verifies every segment before it coalesces it.
#include "offload.h"

#include <cstring>

#include "csum.h"
#include "frame.h"

namespace vxtap {
namespace {

constexpr size_t kMaxFrame = 65535;  // largest Ethernet frame a GSO TAP write takes here

constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpRst = 0x04;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpAck = 0x10;
constexpr uint8_t kTcpUrg = 0x20;
constexpr uint8_t kTcpEce = 0x40;
constexpr uint8_t kTcpCwr = 0x80;

/** Store a memory-order 16-bit checksum value. */
inline void PutMem16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline uint16_t GetMem16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

/** Memory-order sum of the pseudo-header's addresses. */
inline uint64_t AddrSum(const uint8_t* p, const Layout& f) {
  return f.ipv == 4 ? Sum64(p + f.l3 + 12, 8) : Sum64(p + f.l3 + 8, 32);
}
/** Full pseudo-header sum: addresses + protocol + L4 length (32-bit for IPv6). */
inline uint64_t PseudoSum(uint64_t addrs, uint8_t proto, uint32_t l4len) {
  uint64_t s = Add64(addrs, Mem16(proto));
  s = Add64(s, Mem16(static_cast<uint16_t>(l4len & 0xffff)));
  return Add64(s, Mem16(static_cast<uint16_t>(l4len >> 16)));
}
/** Recompute an IPv4 header checksum in place. */
inline void SetIpv4Csum(uint8_t* ip, size_t ihl) {
  ip[10] = 0;
  ip[11] = 0;
  PutMem16(ip + 10, static_cast<uint16_t>(~Fold16(Sum64(ip, ihl))));
}

inline size_t Min(size_t a, size_t b) { return a < b ? a : b; }

// --- transmit ---------------------------------------------------------------

struct TxOut {
  uint8_t* out;
  size_t cap;  // out.length
  size_t pos;  // next free byte
  uint8_t* msgBuf;
  uint32_t* msgOffsets;
  uint32_t* msgSizes;
  uint16_t* msgGso;
  uint32_t* msgFrame;
  size_t msgCap;
  size_t nMsg = 0;
  uint32_t segments = 0;
};

/**
 * Segment one TSO/USO super-frame (the Ethernet frame at `e`, `len` bytes) into
 * `st.out` and emit its messages. Returns false (nothing emitted) when the frame is
 * malformed, does not match its gso type, or does not fit.
 */
bool TxSegment(const uint8_t* e, size_t len, const VnetHdr& h, uint32_t frameIdx, const uint8_t* vxlan, size_t maxMsg,
               TxOut& st) {
  Layout f;
  if (!ParseL4(e, len, true, &f)) return false;
  const uint8_t type = static_cast<uint8_t>(h.gsoType & ~kGsoEcn);
  const bool tcp = type != kGsoUdpL4;
  if (tcp ? (f.proto != kProtoTcp || f.ipv != (type == kGsoTcpV4 ? 4 : 6)) : f.proto != kProtoUdp) return false;
  const size_t mss = h.gsoSize;
  if (mss == 0) return false;
  const size_t hdrs = f.l4 + f.l4hdr;  // Ethernet .. end of the L4 header
  const size_t payload = f.end - hdrs;
  const size_t nseg = payload == 0 ? 1 : (payload + mss - 1) / mss;
  const size_t segHdr = kVxlanLen + hdrs;  // message bytes in front of each payload chunk
  const size_t segFull = segHdr + Min(mss, payload);
  if (segFull > maxMsg) return false;
  size_t perMsg = maxMsg / segFull;
  if (perMsg > kUdpGsoMaxSegs) perMsg = kUdpGsoMaxSegs;
  const size_t nMsg = (nseg + perMsg - 1) / perMsg;
  const size_t bytes = nseg * segHdr + payload;
  if (bytes > st.cap - st.pos || nMsg > st.msgCap - st.nMsg) return false;

  const size_t l3 = f.l3, l4 = f.l4, ihl = l4 - l3;
  const uint64_t addrs = AddrSum(e, f);
  const uint16_t id = Be16(e + l3 + 4);
  // TCP only: a UDP header is 8 bytes, so l4 + 13 can lie past a USO frame's end
  // (the fuzzer found that read past the frame: a USO frame with < 6 payload bytes).
  const uint32_t seq = tcp ? Be32(e + l4 + 4) : 0;
  const uint8_t flags = tcp ? e[l4 + 13] : 0;
  const size_t base = st.pos;
  uint8_t* s = st.out + base;
  for (size_t k = 0; k < nseg; k++) {
    const size_t chunk = Min(mss, payload - k * mss);
    std::memcpy(s, vxlan, kVxlanLen);
    uint8_t* o = s + kVxlanLen;
    std::memcpy(o, e, hdrs);
    const uint64_t dataSum = CopySum64(o + hdrs, e + hdrs + k * mss, chunk);  // one pass: copy and sum
    const uint32_t l4len = static_cast<uint32_t>(f.l4hdr + chunk);
    if (f.ipv == 4) {
      Put16(o + l3 + 2, static_cast<uint32_t>(ihl + l4len));
      Put16(o + l3 + 4, static_cast<uint32_t>(id + k));
      SetIpv4Csum(o + l3, ihl);
    } else {
      Put16(o + l3 + 4, l4len);
    }
    size_t field;
    if (tcp) {
      Put32(o + l4 + 4, static_cast<uint32_t>(seq + k * mss));
      uint8_t fl = flags;
      if (k + 1 < nseg) fl &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
      if (k > 0) fl &= static_cast<uint8_t>(~kTcpCwr);
      o[l4 + 13] = fl;
      field = l4 + 16;
    } else {
      Put16(o + l4 + 4, l4len);
      field = l4 + 6;
    }
    o[field] = 0;
    o[field + 1] = 0;
    // The L4 header length is even (TCP: 4 x data offset, UDP: 8), so its sum and the data's add up.
    const uint64_t l4Sum = Add64(Sum64(o + l4, f.l4hdr), dataSum);
    uint16_t c = static_cast<uint16_t>(~Fold16(Add64(PseudoSum(addrs, f.proto, l4len), l4Sum)));
    if (!tcp && c == 0) c = 0xffff;  // RFC 768: 0 means "no checksum"
    PutMem16(o + field, c);
    s += kVxlanLen + hdrs + chunk;
  }
  st.pos = base + bytes;
  st.segments += static_cast<uint32_t>(nseg);
  // Segment k starts at base + k * segFull (all but the last are full).
  for (size_t m = 0; m < nMsg; m++) {
    const size_t first = m * perMsg;
    const size_t n = Min(perMsg, nseg - first);
    const size_t start = base + first * segFull;
    const size_t end = first + n == nseg ? base + bytes : start + n * segFull;
    const size_t k = st.nMsg++;
    st.msgBuf[k] = 1;
    st.msgOffsets[k] = static_cast<uint32_t>(start);
    st.msgSizes[k] = static_cast<uint32_t>(end - start);
    st.msgGso[k] = n > 1 ? static_cast<uint16_t>(segFull) : 0;
    st.msgFrame[k] = frameIdx;
  }
  return true;
}

/**
 * Finish a NEEDS_CSUM checksum in place (skb_checksum_help: sum from csum_start to
 * the end of the packet, the field's seed included; 0 stored as 0xffff).
 */
bool TxFinishCsum(uint8_t* e, size_t len, const VnetHdr& h) {
  const size_t cs = h.csumStart, co = h.csumOffset;
  size_t end = len;
  Layout f;
  if (ParseL4(e, len, false, &f) && f.l4 == cs) end = f.end;  // leave Ethernet padding out
  if ((co & 1) != 0 || cs + co + 2 > end) return false;
  uint16_t c = static_cast<uint16_t>(~Fold16(Sum64(e + cs, end - cs)));
  if (c == 0) c = 0xffff;
  PutMem16(e + cs + co, c);
  return true;
}

// --- receive ----------------------------------------------------------------

/** The super-frame being built at the end of `out`. */
struct Building {
  bool open = false;
  bool closed = false;   // a short or PSH/FIN segment was added: nothing may follow
  bool partial = false;  // the first segment's checksum was partial (matters only alone)
  size_t start = 0;      // offset in out of its virtio_net_hdr
  Layout f;              // of the first segment (offsets from the Ethernet header)
  size_t hdrs = 0;       // Ethernet .. end of TCP header
  size_t payload = 0;
  size_t mss = 0;
  uint32_t nseg = 0;
  uint32_t nextSeq = 0;
  uint16_t firstId = 0;
  uint8_t idMode = 0;  // 0 unknown (one segment), 1 incrementing, 2 fixed
  uint8_t endFlags = 0;
  uint32_t src = 0;
};

struct RxOut {
  uint8_t* out;
  size_t cap;
  size_t pos;
  uint32_t* frameOffsets;
  uint32_t* frameSizes;
  uint32_t* learnSrc;  // may be null
  size_t frameCap;
  size_t nFrames = 0;
  uint32_t superFrames = 0;
  uint32_t noRoom = 0;
};

inline void PutVnet(uint8_t* v, const VnetHdr& h) { std::memcpy(v, &h, kVnetHdrLen); }

/** True when the TCP/UDP checksum field holds the folded pseudo-header sum only. */
bool IsPartial(const uint8_t* e, const Layout& f, size_t* fieldOff) {
  uint32_t l4len = static_cast<uint32_t>(f.end - f.l4);
  size_t field = f.l4 + 16;
  if (f.proto == kProtoUdp) {
    const size_t ulen = Be16(e + f.l4 + 4);
    if (ulen < 8 || ulen > l4len) return false;
    l4len = static_cast<uint32_t>(ulen);
    field = f.l4 + 6;
  }
  *fieldOff = field - f.l4;
  return GetMem16(e + field) == Fold16(PseudoSum(AddrSum(e, f), f.proto, l4len));
}

void Emit(RxOut& st, size_t start, size_t size, uint32_t src) {
  const size_t k = st.nFrames++;
  st.frameOffsets[k] = static_cast<uint32_t>(start);
  st.frameSizes[k] = static_cast<uint32_t>(size);
  if (st.learnSrc) st.learnSrc[k] = src;
}

/** Write the virtio_net_hdr (and, for several segments, the rewritten headers) and emit. */
void Finish(RxOut& st, Building& b) {
  if (!b.open) return;
  b.open = false;
  uint8_t* v = st.out + b.start;
  uint8_t* e = v + kVnetHdrLen;
  VnetHdr h{};
  if (b.nseg == 1) {
    if (b.partial) {
      h.flags = kNeedsCsum;
      h.csumStart = static_cast<uint16_t>(b.f.l4);
      h.csumOffset = 16;
    }
  } else {
    const size_t l3 = b.f.l3, l4 = b.f.l4;
    const uint32_t l4len = static_cast<uint32_t>(b.f.l4hdr + b.payload);
    if (b.f.ipv == 4) {
      Put16(e + l3 + 2, static_cast<uint32_t>(l4 - l3 + l4len));
      SetIpv4Csum(e + l3, l4 - l3);
    } else {
      Put16(e + l3 + 4, l4len);
    }
    e[l4 + 13] = static_cast<uint8_t>(e[l4 + 13] | b.endFlags);
    PutMem16(e + l4 + 16, Fold16(PseudoSum(AddrSum(e, b.f), kProtoTcp, l4len)));
    h.flags = kNeedsCsum;
    h.gsoType = b.f.ipv == 4 ? kGsoTcpV4 : kGsoTcpV6;
    h.hdrLen = static_cast<uint16_t>(b.hdrs);
    h.gsoSize = static_cast<uint16_t>(b.mss);
    h.csumStart = static_cast<uint16_t>(l4);
    h.csumOffset = 16;
    st.superFrames++;
  }
  PutVnet(v, h);
  Emit(st, b.start, kVnetHdrLen + b.hdrs + b.payload, b.src);
}

/** Can segment `e` (a verified coalescing candidate) be appended to `b`? */
bool Continues(const RxOut& st, const Building& b, const uint8_t* e, const Layout& f, size_t payload) {
  if (!b.open || b.closed || payload > b.mss) return false;
  if (f.ipv != b.f.ipv || f.l3 != b.f.l3 || f.l4hdr != b.f.l4hdr) return false;
  if (b.hdrs + b.payload + payload > kMaxFrame || payload > st.cap - st.pos) return false;
  const uint8_t* h = st.out + b.start + kVnetHdrLen;  // the first segment's headers
  const size_t l3 = f.l3, l4 = f.l4;
  if (Be32(e + l4 + 4) != b.nextSeq) return false;
  if (std::memcmp(h, e, l3) != 0) return false;  // MACs, tags, EtherType
  if (f.ipv == 4) {
    // TOS, flags (DF), TTL, protocol, addresses; ids follow one pattern.
    if (h[l3 + 1] != e[l3 + 1] || std::memcmp(h + l3 + 6, e + l3 + 6, 4) != 0 ||
        std::memcmp(h + l3 + 12, e + l3 + 12, 8) != 0) {
      return false;
    }
    const uint16_t id = Be16(e + l3 + 4);
    if (b.idMode == 0) {
      if (id != b.firstId && id != static_cast<uint16_t>(b.firstId + 1)) return false;
    } else if (id != (b.idMode == 1 ? static_cast<uint16_t>(b.firstId + b.nseg) : b.firstId)) {
      return false;
    }
  } else {
    // Version, traffic class, flow label; next header, hop limit; addresses.
    if (std::memcmp(h + l3, e + l3, 4) != 0 || std::memcmp(h + l3 + 6, e + l3 + 6, 34) != 0) return false;
  }
  // Ports, ack, data offset with the reserved bits (AccECN's AE among them: Linux's
  // tcp_gro_receive compares the whole word at offset 12 but CWR/FIN/PSH; the fuzzer
  // found segments differing there coalesced), window, options; flags were checked
  // by the caller (ACK, maybe PSH/FIN, nothing else).
  return std::memcmp(h + l4, e + l4, 4) == 0 && std::memcmp(h + l4 + 8, e + l4 + 8, 4) == 0 &&
         h[l4 + 12] == e[l4 + 12] && std::memcmp(h + l4 + 14, e + l4 + 14, 2) == 0 &&
         std::memcmp(h + l4 + 20, e + l4 + 20, f.l4hdr - 20) == 0;
}

/** Handle one inner Ethernet frame (`e`, `len` bytes) from input datagram `src`. */
void RxFrame(RxOut& st, Building& b, const uint8_t* e, size_t len, uint32_t src) {
  Layout f;
  const bool parsed = ParseL4(e, len, false, &f);
  bool candidate = false, partial = false;
  size_t payload = 0;
  uint8_t flags = 0;
  size_t fieldOff = 0;
  // Where the TCP payload was copied while it was summed (nullptr: not copied).
  // It is copied speculatively to where it will most likely go: behind the open
  // super-frame (it continues it) or behind the headers of a new one; free space
  // in `out` either way, so a wrong guess costs only a second copy.
  uint8_t* copiedTo = nullptr;
  if (parsed) {
    if (f.proto == kProtoTcp) {
      payload = f.end - f.l4 - f.l4hdr;
      flags = e[f.l4 + 13];
      const size_t hdrEnd = f.l4 + f.l4hdr;
      const uint32_t l4len = static_cast<uint32_t>(f.end - f.l4);
      const uint64_t pseudo = PseudoSum(AddrSum(e, f), kProtoTcp, l4len);
      uint64_t dataSum;
      if (b.open && !b.closed && payload <= st.cap - st.pos) {
        copiedTo = st.out + st.pos;
      } else if (kVnetHdrLen + f.end <= st.cap - st.pos) {
        copiedTo = st.out + st.pos + kVnetHdrLen + hdrEnd;
      }
      dataSum = copiedTo ? CopySum64(copiedTo, e + hdrEnd, payload) : Sum64(e + hdrEnd, payload);
      // The TCP header length is a multiple of 4, so the two sums add up.
      const bool full = Fold16(Add64(pseudo, Add64(Sum64(e + f.l4, f.l4hdr), dataSum))) == 0xffff;
      partial = !full && GetMem16(e + f.l4 + 16) == Fold16(pseudo);
      fieldOff = 16;
      candidate = (full || partial) && payload > 0 && (flags & kTcpAck) != 0 &&
                  (flags & (kTcpSyn | kTcpRst | kTcpUrg | kTcpCwr | kTcpEce)) == 0 &&
                  (f.ipv == 6 || (f.l4 - f.l3 == 20 && Fold16(Sum64(e + f.l3, 20)) == 0xffff));
    } else {
      partial = IsPartial(e, f, &fieldOff);
    }
  }
  if (candidate && Continues(st, b, e, f, payload)) {
    if (copiedTo != st.out + st.pos) std::memcpy(st.out + st.pos, e + f.l4 + f.l4hdr, payload);
    st.pos += payload;
    b.payload += payload;
    const uint16_t id = f.ipv == 4 ? Be16(e + f.l3 + 4) : 0;
    if (f.ipv == 4 && b.idMode == 0) b.idMode = id == b.firstId ? 2 : 1;
    b.nseg++;
    b.nextSeq += static_cast<uint32_t>(payload);
    b.endFlags = static_cast<uint8_t>(flags & (kTcpPsh | kTcpFin));
    if (payload < b.mss || b.endFlags) b.closed = true;
    return;
  }
  Finish(st, b);
  if (st.nFrames >= st.frameCap) {
    st.noRoom++;
    return;
  }
  if (candidate) {
    const size_t copy = f.end;  // headers + payload, Ethernet padding left out
    if (kVnetHdrLen + copy > st.cap - st.pos) {
      st.noRoom++;
      return;
    }
    const size_t hdrEnd = f.l4 + f.l4hdr;
    if (copiedTo == st.out + st.pos + kVnetHdrLen + hdrEnd) {
      std::memcpy(st.out + st.pos + kVnetHdrLen, e, hdrEnd);  // the payload is there already
    } else {
      std::memcpy(st.out + st.pos + kVnetHdrLen, e, copy);
    }
    b.open = true;
    b.closed = (flags & (kTcpPsh | kTcpFin)) != 0;
    b.partial = partial;
    b.start = st.pos;
    b.f = f;
    b.hdrs = f.l4 + f.l4hdr;
    b.payload = payload;
    b.mss = payload;
    b.nseg = 1;
    b.nextSeq = static_cast<uint32_t>(Be32(e + f.l4 + 4) + payload);
    b.firstId = f.ipv == 4 ? Be16(e + f.l3 + 4) : 0;
    b.idMode = 0;
    b.endFlags = 0;
    b.src = src;
    st.pos += kVnetHdrLen + copy;
    return;
  }
  if (kVnetHdrLen + len > st.cap - st.pos) {
    st.noRoom++;
    return;
  }
  VnetHdr h{};
  if (partial) {
    h.flags = kNeedsCsum;
    h.csumStart = static_cast<uint16_t>(f.l4);
    h.csumOffset = static_cast<uint16_t>(fieldOff);
  }
  PutVnet(st.out + st.pos, h);
  std::memcpy(st.out + st.pos + kVnetHdrLen, e, len);
  Emit(st, st.pos, kVnetHdrLen + len, src);
  st.pos += kVnetHdrLen + len;
}

}  // namespace

TxOffloadResult TxOffloadFrames(const TxOffloadBatch& b) {
  TxOut st{b.out, b.outLen, b.outOffset, b.msgBuf, b.msgOffsets, b.msgSizes, b.msgGso, b.msgFrame, b.msgCap};
  // Message offsets are u32; a slab beyond 4 GiB cannot be described.
  if (st.cap > 0xffffffffu) st.cap = 0xffffffffu;
  uint32_t dropped = 0;
  for (uint32_t i = 0; i < b.count; i++) {
    const size_t len = b.sizes[i];
    uint8_t* v = b.bufs + b.offsets[i];
    if (len < kVnetHdrLen + kEthLen) {
      dropped++;
      continue;
    }
    VnetHdr h;
    std::memcpy(&h, v, kVnetHdrLen);
    uint8_t* e = v + kVnetHdrLen;
    const size_t elen = len - kVnetHdrLen;
    // metadata first: segmentation leaves the super-frame's headers as they are,
    // but finishing a checksum writes into it
    if (b.frameHash) b.frameHash[i] = FlowHash(e, elen);
    if (b.frameDf) b.frameDf[i] = FrameDf(e, elen) ? 1 : 0;
    const uint8_t type = static_cast<uint8_t>(h.gsoType & ~kGsoEcn);
    bool ok;
    if (h.gsoType == kGsoNone) {
      ok = st.nMsg < st.msgCap && kVxlanLen + elen <= b.maxMsg &&
           ((h.flags & kNeedsCsum) == 0 || TxFinishCsum(e, elen, h));
      if (ok) {
        std::memcpy(e - kVxlanLen, b.vxlan, kVxlanLen);
        const size_t k = st.nMsg++;
        st.msgBuf[k] = 0;
        st.msgOffsets[k] = b.offsets[i] + static_cast<uint32_t>(kVnetHdrLen - kVxlanLen);
        st.msgSizes[k] = static_cast<uint32_t>(kVxlanLen + elen);
        st.msgGso[k] = 0;
        st.msgFrame[k] = i;
        st.segments++;
      }
    } else if (type == kGsoTcpV4 || type == kGsoTcpV6 || h.gsoType == kGsoUdpL4) {
      ok = TxSegment(e, elen, h, i, b.vxlan, b.maxMsg, st);
    } else {
      ok = false;  // UFO (3) and anything unknown
    }
    if (!ok) dropped++;
  }
  TxOffloadResult r;
  r.msgs = st.nMsg;
  r.outBytes = st.pos - b.outOffset;
  r.dropped = dropped;
  r.segments = st.segments;
  return r;
}

RxOffloadResult RxOffloadDatagrams(const RxOffloadBatch& b) {
  RxOut st{b.out, b.outLen, b.outOffset, b.frameOffsets, b.frameSizes, b.learnSrc, b.frameCap};
  if (st.cap > 0xffffffffu) st.cap = 0xffffffffu;
  const uint8_t want[3] = {static_cast<uint8_t>(b.vni >> 16), static_cast<uint8_t>(b.vni >> 8),
                           static_cast<uint8_t>(b.vni)};
  RxOffloadResult r;
  Building sf;
  for (uint32_t i = 0; i < b.count; i++) {
    if (!b.ok[i]) continue;
    const uint8_t* d = b.bufs + b.offsets[i];
    const size_t size = b.sizes[i];
    if (size == 0) {
      r.dropShort++;
      continue;
    }
    const size_t step = b.gso[i] ? b.gso[i] : size;  // UDP_GRO: segments of gso[i], the last maybe shorter
    for (size_t pos = 0; pos < size; pos += step) {
      const size_t seg = Min(step, size - pos);
      const uint8_t* p = d + pos;
      if (seg < kVxlanLen + kEthLen) {
        r.dropShort++;
      } else if (p[0] != 0x08 || p[1] != 0 || p[2] != 0 || p[3] != 0 || p[7] != 0) {
        r.dropBadFlags++;
      } else if (std::memcmp(p + 4, want, 3) != 0) {
        r.dropWrongVni++;
      } else {
        r.segmentsIn++;
        RxFrame(st, sf, p + kVxlanLen, seg - kVxlanLen, i);
      }
    }
  }
  Finish(st, sf);
  r.frames = st.nFrames;
  r.outBytes = st.pos - b.outOffset;
  r.superFrames = st.superFrames;
  r.noRoom = st.noRoom;
  return r;
}

}  // namespace vxtap
