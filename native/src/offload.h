// Offload kernels between a vnet_hdr TAP and UDP GSO/GRO sockets: pure C++ over
// caller-owned memory, no Node-API (the glue is offload_napi.cc; the contract of
// txOffload and rxOffload is in src/native/index.ts). The fuzz harnesses in
// native/fuzz call these directly.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vxtap_limits.h"  // kVxlanLen, kUdpMaxPayload, kUdpGsoMaxSegs (native/limits.json)

namespace vxtap {

/**
 * One txOffload batch. Preconditions (checked by the glue, relied on here):
 * offsets[i] + sizes[i] <= the slab `bufs` points into, for i < count;
 * outOffset <= outLen <= 2^32 - 1; maxMsg in [1, 65507]; vxlan holds 8 bytes;
 * each msg* array holds msgCap elements.
 */
struct TxOffloadBatch {
  uint8_t* bufs;
  const uint32_t* offsets;
  const uint32_t* sizes;
  uint32_t count;
  const uint8_t* vxlan;
  size_t maxMsg;
  uint8_t* out;
  size_t outLen;
  size_t outOffset;
  uint8_t* msgBuf;
  uint32_t* msgOffsets;
  uint32_t* msgSizes;
  uint16_t* msgGso;
  uint32_t* msgFrame;
  size_t msgCap;
  // Per input frame (count elements each, may be null): the metadata the caller's
  // policy needs, so it never parses the frame itself.
  uint32_t* frameHash = nullptr;  // FlowHash of the Ethernet frame
  uint8_t* frameDf = nullptr;     // FrameDf of it (1 or 0)
};

struct TxOffloadResult {
  size_t msgs = 0;      // messages written to msg*[0..msgs)
  size_t outBytes = 0;  // bytes of out used from outOffset on
  uint32_t dropped = 0;
  uint32_t segments = 0;  // inner frames emitted (segments plus in-place frames)
};

/** Segment and wrap one batch of vnet_hdr TAP frames (txOffload). */
TxOffloadResult TxOffloadFrames(const TxOffloadBatch& b);

/**
 * One rxOffload batch. Preconditions: offsets[i] + sizes[i] inside the slab for
 * i < count; outOffset <= outLen <= 2^32 - 1; frameOffsets, frameSizes (and
 * learnSrc unless it is null) hold frameCap elements.
 */
struct RxOffloadBatch {
  const uint8_t* bufs;
  const uint32_t* offsets;
  const uint32_t* sizes;
  const uint16_t* gso;
  const uint8_t* ok;
  uint32_t count;
  uint32_t vni;
  uint8_t* out;
  size_t outLen;
  size_t outOffset;
  uint32_t* frameOffsets;
  uint32_t* frameSizes;
  uint32_t* learnSrc;  // may be null
  size_t frameCap;
};

struct RxOffloadResult {
  size_t frames = 0;    // TAP frames written
  size_t outBytes = 0;  // bytes of out used from outOffset on
  uint32_t segmentsIn = 0;
  uint32_t superFrames = 0;
  uint32_t noRoom = 0;  // inner segments dropped: out or the frame arrays full
  uint32_t dropShort = 0;
  uint32_t dropBadFlags = 0;
  uint32_t dropWrongVni = 0;
};

/** Split, check and re-coalesce one batch of UDP GRO datagrams (rxOffload). */
RxOffloadResult RxOffloadDatagrams(const RxOffloadBatch& b);

}  // namespace vxtap
