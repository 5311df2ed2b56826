// Node-API glue for the offload kernels in offload.cc: txOffloadBind/txOffload
// and rxOffloadBind/rxOffload (see src/native/index.ts for the contract). A bind
// checks every array of the descriptor once and holds it; a call checks what
// changes per call (the count and the frames' spans) before the kernel runs, and
// the kernel relies on it. Results go to the descriptor's `result` view, its
// slots named in native/limits.json (TxOffloadView, RxOffloadView).
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

constexpr napi_type_tag kTxOffloadTag = {0x7678746170747830ULL, 0x6f66666c6f616431ULL};
constexpr napi_type_tag kRxOffloadTag = {0x7678746170727830ULL, 0x6f66666c6f616431ULL};

struct TxOffloadBinding {
  RefSet refs;
  View<uint8_t> bufs, vxlan, out, msgBuf, frameDf;
  View<uint32_t> offsets, sizes, msgOffsets, msgSizes, msgFrame, result, frameHash;
  View<uint16_t> msgGso;
  size_t maxMsg = 0, outOffset = 0, msgCap = 0, frameCap = 0;
};

struct RxOffloadBinding {
  RefSet refs;
  View<uint8_t> bufs, ok, out;
  View<uint32_t> offsets, sizes, frameOffsets, frameSizes, learnSrc, result;
  View<uint16_t> gso;
  uint32_t vni = 0;
  size_t outOffset = 0, frameCap = 0, inCap = 0;
};

}  // namespace

napi_value TxOffloadBind(napi_env env, napi_callback_info info) {
  Args a(env, info);
  napi_value d = a.argv[0];
  if (!CheckObject(env, d, "desc")) return nullptr;
  auto* b = new TxOffloadBinding();
  int64_t maxMsg, outOffset;
  if (!PropU8(env, d, "bufs", &b->bufs, &b->refs) || !PropU32(env, d, "offsets", &b->offsets, &b->refs) ||
      !PropU32(env, d, "sizes", &b->sizes, &b->refs) || !PropU8(env, d, "vxlan", &b->vxlan, &b->refs) ||
      !PropInt(env, d, "maxMsgBytes", 1, static_cast<int64_t>(kUdpMaxPayload), &maxMsg) ||
      !PropU8(env, d, "out", &b->out, &b->refs) || !PropInt(env, d, "outOffset", 0, 0xffffffffLL, &outOffset) ||
      !PropU8(env, d, "msgBuf", &b->msgBuf, &b->refs) || !PropU32(env, d, "msgOffsets", &b->msgOffsets, &b->refs) ||
      !PropU32(env, d, "msgSizes", &b->msgSizes, &b->refs) || !PropU16(env, d, "msgGso", &b->msgGso, &b->refs) ||
      !PropU32(env, d, "msgFrame", &b->msgFrame, &b->refs) || !PropU32(env, d, "result", &b->result, &b->refs) ||
      !PropU32(env, d, "frameHash", &b->frameHash, &b->refs, true) ||
      !PropU8(env, d, "frameDf", &b->frameDf, &b->refs, true) ||
      !CheckLen(env, b->vxlan.elems, kVxlanLen, "desc.vxlan", "the VXLAN header length") ||
      !CheckLen(env, b->result.elems, TxOffloadView::LENGTH, "desc.result", "TX_OFFLOAD.LENGTH")) {
    b->refs.Release(env);
    delete b;
    return nullptr;
  }
  if (static_cast<uint64_t>(outOffset) > b->out.elems) {
    b->refs.Release(env);
    delete b;
    return ThrowRange(env, "desc.outOffset (%lld) exceeds desc.out.length", static_cast<long long>(outOffset));
  }
  b->maxMsg = static_cast<size_t>(maxMsg);
  b->outOffset = static_cast<size_t>(outOffset);
  b->msgCap =
      Min(Min(Min(b->msgBuf.elems, b->msgOffsets.elems), Min(b->msgSizes.elems, b->msgGso.elems)), b->msgFrame.elems);
  b->frameCap = Min(b->offsets.elems, b->sizes.elems);
  if (b->frameHash.data) b->frameCap = Min(b->frameCap, b->frameHash.elems);
  if (b->frameDf.data) b->frameCap = Min(b->frameCap, b->frameDf.elems);
  return WrapBinding(env, b, &kTxOffloadTag);
}

napi_value TxOffload(napi_env env, napi_callback_info info) {
  Args a(env, info);
  auto* b = UnwrapBinding<TxOffloadBinding>(env, a.argv[0], &kTxOffloadTag, "txOffload");
  uint32_t count;
  if (b == nullptr || !GetBatchCount(env, a.argv[1], "count", &count) ||
      !CheckLen(env, b->frameCap, count, "desc.offsets/sizes/frameHash/frameDf", "count") ||
      !CheckSpans(env, b->offsets, b->sizes, count, b->bufs.elems)) {
    return nullptr;
  }
  const TxOffloadBatch k{b->bufs.data,   b->offsets.data,  b->sizes.data,      count,
                         b->vxlan.data,  b->maxMsg,        b->out.data,        b->out.elems,
                         b->outOffset,   b->msgBuf.data,   b->msgOffsets.data, b->msgSizes.data,
                         b->msgGso.data, b->msgFrame.data, b->msgCap,          b->frameHash.data,
                         b->frameDf.data};
  const TxOffloadResult r = TxOffloadFrames(k);
  uint32_t* res = b->result.data;
  res[TxOffloadView::OUT_BYTES] = static_cast<uint32_t>(r.outBytes);
  res[TxOffloadView::DROPPED] = r.dropped;
  res[TxOffloadView::SEGMENTS] = r.segments;
  return Number(env, static_cast<double>(r.msgs));
}

napi_value RxOffloadBind(napi_env env, napi_callback_info info) {
  Args a(env, info);
  napi_value d = a.argv[0];
  if (!CheckObject(env, d, "desc")) return nullptr;
  auto* b = new RxOffloadBinding();
  int64_t vni, outOffset;
  if (!PropU8(env, d, "bufs", &b->bufs, &b->refs) || !PropU32(env, d, "offsets", &b->offsets, &b->refs) ||
      !PropU32(env, d, "sizes", &b->sizes, &b->refs) || !PropU16(env, d, "gso", &b->gso, &b->refs) ||
      !PropU8(env, d, "ok", &b->ok, &b->refs) || !PropInt(env, d, "vni", 0, 0xffffff, &vni) ||
      !PropU8(env, d, "out", &b->out, &b->refs) || !PropInt(env, d, "outOffset", 0, 0xffffffffLL, &outOffset) ||
      !PropU32(env, d, "frameOffsets", &b->frameOffsets, &b->refs) ||
      !PropU32(env, d, "frameSizes", &b->frameSizes, &b->refs) ||
      !PropU32(env, d, "learnSrc", &b->learnSrc, &b->refs, true) || !PropU32(env, d, "result", &b->result, &b->refs) ||
      !CheckLen(env, b->result.elems, RxOffloadView::LENGTH, "desc.result", "RX_OFFLOAD.LENGTH")) {
    b->refs.Release(env);
    delete b;
    return nullptr;
  }
  if (static_cast<uint64_t>(outOffset) > b->out.elems) {
    b->refs.Release(env);
    delete b;
    return ThrowRange(env, "desc.outOffset (%lld) exceeds desc.out.length", static_cast<long long>(outOffset));
  }
  b->vni = static_cast<uint32_t>(vni);
  b->outOffset = static_cast<size_t>(outOffset);
  b->frameCap = Min(b->frameOffsets.elems, b->frameSizes.elems);
  if (b->learnSrc.data) b->frameCap = Min(b->frameCap, b->learnSrc.elems);
  b->inCap = Min(Min(b->offsets.elems, b->sizes.elems), Min(b->gso.elems, b->ok.elems));
  return WrapBinding(env, b, &kRxOffloadTag);
}

napi_value RxOffload(napi_env env, napi_callback_info info) {
  Args a(env, info);
  auto* b = UnwrapBinding<RxOffloadBinding>(env, a.argv[0], &kRxOffloadTag, "rxOffload");
  uint32_t count;
  if (b == nullptr || !GetBatchCount(env, a.argv[1], "count", &count) ||
      !CheckLen(env, b->inCap, count, "desc.offsets/sizes/gso/ok", "count") ||
      !CheckSpans(env, b->offsets, b->sizes, count, b->bufs.elems)) {
    return nullptr;
  }
  const RxOffloadBatch k{
      b->bufs.data,     b->offsets.data, b->sizes.data, b->gso.data,  b->ok.data,           count,
      b->vni,           b->out.data,     b->out.elems,  b->outOffset, b->frameOffsets.data, b->frameSizes.data,
      b->learnSrc.data, b->frameCap};
  const RxOffloadResult r = RxOffloadDatagrams(k);
  uint32_t* res = b->result.data;
  res[RxOffloadView::OUT_BYTES] = static_cast<uint32_t>(r.outBytes);
  res[RxOffloadView::SEGMENTS_IN] = r.segmentsIn;
  res[RxOffloadView::SUPER_FRAMES] = r.superFrames;
  res[RxOffloadView::NO_ROOM] = r.noRoom;
  res[RxOffloadView::DROP_SHORT] = r.dropShort;
  res[RxOffloadView::DROP_BAD_FLAGS] = r.dropBadFlags;
  res[RxOffloadView::DROP_WRONG_VNI] = r.dropWrongVni;
  return Number(env, static_cast<double>(r.frames));
}

}  // namespace vxtap
