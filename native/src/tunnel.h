// txTunnel / rxTunnel: whole TSO super-frames wrapped for, and unwrapped from, a
// UDP-tunnel GSO uplink TAP. Pure C++ over caller-owned memory, no Node-API (the
// glue is tunnel_napi.cc; the contract is in src/native/index.ts).
#pragma once

#include <cstddef>
#include <cstdint>

#include "vxtap_limits.h"  // kTnlVnetLen, kTunnelHeadroom, kTunnelTemplate (native/limits.json)

namespace vxtap {

constexpr size_t kOuterLen = 50;  // Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8
static_assert(
    kTunnelHeadroom == kTnlVnetLen + kOuterLen - kVnetHdrLen,
    "limits.json: TUNNEL_HEADROOM is the tunnel vnet header plus the outer headers, less the 10-byte vnet header");
static_assert(kTunnelTemplate >= kOuterLen, "limits.json: a template holds the 50 outer header bytes");

/**
 * One txTunnel batch. Preconditions (checked by the glue): for i < count,
 * offsets[i] >= kTunnelHeadroom and offsets[i] + sizes[i] inside the slab; a
 * template at templates[sel[i] * kTunnelTemplate] for every sel[i] >= 0;
 * outOffsets and outSizes hold count elements; dfMode in 0..2.
 */
struct TxTunnelBatch {
  uint8_t* bufs;
  const uint32_t* offsets;
  const uint32_t* sizes;
  uint32_t count;
  int32_t* sel;  // set to -1 for a frame handed back to the socket path
  const uint16_t* srcPort;
  const uint8_t* templates;
  int dfMode;
  size_t maxOuterIp;
  uint32_t* outOffsets;
  uint32_t* outSizes;
  uint32_t ipId;  // the next outer IPv4 ID
};

struct TxTunnelResult {
  uint32_t emitted = 0;
  uint32_t segments = 0;  // wire packets the emitted frames make
  uint32_t refused = 0;   // frames handed back with sel -1
  uint32_t nextIpId = 0;
};

TxTunnelResult TxTunnelFrames(const TxTunnelBatch& b);

/**
 * One rxTunnel batch. Preconditions: offsets[i] + sizes[i] inside the slab;
 * frameOffsets, frameSizes, usoOffsets, usoSizes, usoGso and order hold count
 * elements, addrs and usoAddrs count * kAddrLen bytes.
 */
struct RxTunnelBatch {
  uint8_t* bufs;
  const uint32_t* offsets;
  const uint32_t* sizes;
  uint32_t count;
  uint32_t vni;
  uint16_t port;
  uint8_t* addrs;
  uint32_t* frameOffsets;
  uint32_t* frameSizes;
  uint32_t* usoOffsets;
  uint32_t* usoSizes;
  uint16_t* usoGso;
  uint8_t* usoAddrs;
  uint8_t* order;
};

struct RxTunnelResult {
  uint32_t kept = 0;
  uint32_t malformed = 0;
  uint32_t badFlags = 0;
  uint32_t wrongVni = 0;
  uint32_t segments = 0;  // wire packets the kept frames stand for
  uint32_t supers = 0;
  uint32_t uso = 0;
  uint32_t ignored = 0;
};

RxTunnelResult RxTunnelFrames(const RxTunnelBatch& b);

}  // namespace vxtap
