// Node-API glue for the offload kernels in offload.cc: txOffload and rxOffload
// (see src/native/index.ts for the contract). Every argument, array length and
// span is checked here, before the kernel runs; the kernel relies on it.
#include "common.h"
#include "offload.h"

namespace vxtap {
namespace {

/** Throw RangeError unless every offsets[i] + sizes[i] (i < count) lies in a slab of `slabLen`. */
bool CheckSpans(napi_env env, const View<uint32_t>& offsets, const View<uint32_t>& sizes, uint32_t count,
                size_t slabLen) {
  for (uint32_t i = 0; i < count; i++) {
    if (static_cast<uint64_t>(offsets.data[i]) + sizes.data[i] > slabLen) {
      ThrowRange(env, "offsets[%u] (%u) + sizes[%u] (%u) exceeds bufs.length (%zu)", i, offsets.data[i], i,
                 sizes.data[i], slabLen);
      return false;
    }
  }
  return true;
}

inline size_t Min(size_t a, size_t b) { return a < b ? a : b; }

}  // namespace

napi_value TxOffload(napi_env env, napi_callback_info info) {
  WideArgs a(env, info);
  View<uint8_t> bufs, vxlan, out, msgBuf;
  View<uint32_t> offsets, sizes, msgOffsets, msgSizes, msgFrame, result;
  View<uint16_t> msgGso;
  uint32_t count;
  int64_t maxMsg, outOffset;
  if (!GetU8(env, a.argv[0], "bufs", &bufs) || !GetU32(env, a.argv[1], "offsets", &offsets) ||
      !GetU32(env, a.argv[2], "sizes", &sizes) || !GetBatchCount(env, a.argv[3], "count", &count) ||
      !GetU8(env, a.argv[4], "vxlan", &vxlan) ||
      !GetInt(env, a.argv[5], "maxMsgBytes", 1, static_cast<int64_t>(kUdpMaxPayload), &maxMsg) ||
      !GetU8(env, a.argv[6], "out", &out) || !GetInt(env, a.argv[7], "outOffset", 0, 0xffffffffLL, &outOffset) ||
      !GetU8(env, a.argv[8], "msgBuf", &msgBuf) || !GetU32(env, a.argv[9], "msgOffsets", &msgOffsets) ||
      !GetU32(env, a.argv[10], "msgSizes", &msgSizes) || !GetU16(env, a.argv[11], "msgGso", &msgGso) ||
      !GetU32(env, a.argv[12], "msgFrame", &msgFrame) || !GetU32(env, a.argv[13], "result", &result) ||
      !CheckLen(env, offsets.elems, count, "offsets", "count") || !CheckLen(env, sizes.elems, count, "sizes", "count") ||
      !CheckLen(env, vxlan.elems, kVxlanLen, "vxlan", "the VXLAN header length") ||
      !CheckLen(env, result.elems, 3, "result", "3") || !CheckSpans(env, offsets, sizes, count, bufs.elems)) {
    return nullptr;
  }
  if (static_cast<uint64_t>(outOffset) > out.elems) {
    return ThrowRange(env, "outOffset (%lld) exceeds out.length (%zu)", static_cast<long long>(outOffset), out.elems);
  }
  const TxOffloadBatch b{bufs.data, offsets.data, sizes.data, count, vxlan.data, static_cast<size_t>(maxMsg),
                         out.data, out.elems, static_cast<size_t>(outOffset), msgBuf.data, msgOffsets.data,
                         msgSizes.data, msgGso.data, msgFrame.data,
                         Min(Min(Min(msgBuf.elems, msgOffsets.elems), Min(msgSizes.elems, msgGso.elems)), msgFrame.elems)};
  const TxOffloadResult r = TxOffloadFrames(b);
  result.data[0] = static_cast<uint32_t>(r.outBytes);
  result.data[1] = r.dropped;
  result.data[2] = r.segments;
  return Number(env, static_cast<double>(r.msgs));
}

napi_value RxOffload(napi_env env, napi_callback_info info) {
  WideArgs a(env, info);
  View<uint8_t> bufs, ok, out;
  View<uint32_t> offsets, sizes, frameOffsets, frameSizes, learnSrc, drops, result;
  View<uint16_t> gso;
  uint32_t count;
  int64_t vni, outOffset;
  if (!GetU8(env, a.argv[0], "bufs", &bufs) || !GetU32(env, a.argv[1], "offsets", &offsets) ||
      !GetU32(env, a.argv[2], "sizes", &sizes) || !GetU16(env, a.argv[3], "gso", &gso) ||
      !GetU8(env, a.argv[4], "ok", &ok) || !GetBatchCount(env, a.argv[5], "count", &count) ||
      !GetInt(env, a.argv[6], "vni", 0, 0xffffff, &vni) || !GetU8(env, a.argv[7], "out", &out) ||
      !GetInt(env, a.argv[8], "outOffset", 0, 0xffffffffLL, &outOffset) ||
      !GetU32(env, a.argv[9], "frameOffsets", &frameOffsets) || !GetU32(env, a.argv[10], "frameSizes", &frameSizes) ||
      (!IsNullish(env, a.argv[11]) && !GetU32(env, a.argv[11], "learnSrc", &learnSrc)) ||
      !GetU32(env, a.argv[12], "drops", &drops) || !GetU32(env, a.argv[13], "result", &result) ||
      !CheckLen(env, offsets.elems, count, "offsets", "count") || !CheckLen(env, sizes.elems, count, "sizes", "count") ||
      !CheckLen(env, gso.elems, count, "gso", "count") || !CheckLen(env, ok.elems, count, "ok", "count") ||
      !CheckLen(env, drops.elems, 3, "drops", "3") || !CheckLen(env, result.elems, 3, "result", "3") ||
      !CheckSpans(env, offsets, sizes, count, bufs.elems)) {
    return nullptr;
  }
  if (static_cast<uint64_t>(outOffset) > out.elems) {
    return ThrowRange(env, "outOffset (%lld) exceeds out.length (%zu)", static_cast<long long>(outOffset), out.elems);
  }
  size_t frameCap = Min(frameOffsets.elems, frameSizes.elems);
  if (learnSrc.data) frameCap = Min(frameCap, learnSrc.elems);
  const RxOffloadBatch b{bufs.data, offsets.data, sizes.data, gso.data, ok.data, count, static_cast<uint32_t>(vni),
                         out.data, out.elems, static_cast<size_t>(outOffset), frameOffsets.data, frameSizes.data,
                         learnSrc.data, frameCap};
  const RxOffloadResult r = RxOffloadDatagrams(b);
  drops.data[0] = r.dropShort;
  drops.data[1] = r.dropBadFlags;
  drops.data[2] = r.dropWrongVni;
  result.data[0] = static_cast<uint32_t>(r.outBytes);
  result.data[1] = r.segmentsIn;
  result.data[2] = r.superFrames;
  if (result.elems > 3) result.data[3] = r.noRoom;
  return Number(env, static_cast<double>(r.frames));
}

}  // namespace vxtap
