// Node-API glue for the uplink kernels in tunnel.cc: txTunnelBind/txTunnel and
// rxTunnelBind/rxTunnel (see src/native/index.ts for the contract). A bind
// checks every array of the descriptor once and holds it; a call checks what
// changes per call (count, spans, the template of each selected frame) before
// the kernel runs, and the kernel relies on it. Results go to the descriptor's
// `result` view (TxTunnelView, RxTunnelView in native/limits.json).
#include "common.h"
#include "tunnel.h"

namespace vxtap {
namespace {

inline size_t Min(size_t a, size_t b) { return a < b ? a : b; }

constexpr napi_type_tag kTxTunnelTag = {0x7678746170747830ULL, 0x74756e6e656c3031ULL};
constexpr napi_type_tag kRxTunnelTag = {0x7678746170727830ULL, 0x74756e6e656c3031ULL};

struct TxTunnelBinding {
  RefSet refs;
  View<uint8_t> bufs;
  View<uint32_t> offsets, sizes, outOffsets, outSizes, result;
  View<int32_t> sel;
  View<uint16_t> srcPort;
  int dfMode = 0;
  size_t maxOuterIp = 0, cap = 0;
};

struct RxTunnelBinding {
  RefSet refs;
  View<uint8_t> bufs, addrs, usoAddrs, order;
  View<uint32_t> offsets, sizes, frameOffsets, frameSizes, result, usoOffsets, usoSizes;
  View<uint16_t> usoGso;
  uint32_t vni = 0;
  uint16_t port = 0;
  size_t cap = 0;
};

}  // namespace

napi_value TxTunnelBind(napi_env env, napi_callback_info info) {
  Args a(env, info);
  napi_value d = a.argv[0];
  if (!CheckObject(env, d, "desc")) return nullptr;
  auto* b = new TxTunnelBinding();
  int64_t dfMode, maxOuterIp;
  if (!PropU8(env, d, "bufs", &b->bufs, &b->refs) || !PropU32(env, d, "offsets", &b->offsets, &b->refs) ||
      !PropU32(env, d, "sizes", &b->sizes, &b->refs) || !PropI32(env, d, "sel", &b->sel, &b->refs) ||
      !PropU16(env, d, "srcPort", &b->srcPort, &b->refs) || !PropInt(env, d, "dfMode", 0, 2, &dfMode) ||
      !PropInt(env, d, "maxOuterIp", 68, 65535, &maxOuterIp) ||
      !PropU32(env, d, "outOffsets", &b->outOffsets, &b->refs) ||
      !PropU32(env, d, "outSizes", &b->outSizes, &b->refs) || !PropU32(env, d, "result", &b->result, &b->refs) ||
      !CheckLen(env, b->result.elems, TxTunnelView::LENGTH, "desc.result", "TX_TUNNEL.LENGTH")) {
    b->refs.Release(env);
    delete b;
    return nullptr;
  }
  b->dfMode = static_cast<int>(dfMode);
  b->maxOuterIp = static_cast<size_t>(maxOuterIp);
  b->cap = Min(Min(Min(b->offsets.elems, b->sizes.elems), Min(b->sel.elems, b->srcPort.elems)),
               Min(b->outOffsets.elems, b->outSizes.elems));
  return WrapBinding(env, b, &kTxTunnelTag);
}

napi_value TxTunnel(napi_env env, napi_callback_info info) {
  Args a(env, info);
  auto* b = UnwrapBinding<TxTunnelBinding>(env, a.argv[0], &kTxTunnelTag, "txTunnel");
  uint32_t count;
  View<uint8_t> templates;
  if (b == nullptr || !GetBatchCount(env, a.argv[1], "count", &count) ||
      !GetU8(env, a.argv[2], "templates", &templates) ||
      !CheckLen(env, b->cap, count, "desc.offsets/sizes/sel/srcPort/outOffsets/outSizes", "count")) {
    return nullptr;
  }
  const uint32_t* offsets = b->offsets.data;
  const uint32_t* sizes = b->sizes.data;
  const int32_t* sel = b->sel.data;
  for (uint32_t i = 0; i < count; i++) {
    if (offsets[i] < kTunnelHeadroom || static_cast<uint64_t>(offsets[i]) + sizes[i] > b->bufs.elems) {
      return ThrowRange(
          env, "offsets[%u] (%u) needs %zu bytes of headroom and offsets[%u] + sizes[%u] (%u) must lie in bufs (%zu)",
          i, offsets[i], kTunnelHeadroom, i, i, sizes[i], b->bufs.elems);
    }
    if (sel[i] >= 0 && (static_cast<uint64_t>(sel[i]) + 1) * kTunnelTemplate > templates.elems) {
      return ThrowRange(env, "sel[%u] (%d) has no template in templates (%zu bytes, %zu per peer)", i, sel[i],
                        templates.elems, kTunnelTemplate);
    }
  }
  uint32_t* res = b->result.data;
  const TxTunnelBatch k{b->bufs.data,
                        offsets,
                        sizes,
                        count,
                        b->sel.data,
                        b->srcPort.data,
                        templates.data,
                        b->dfMode,
                        b->maxOuterIp,
                        b->outOffsets.data,
                        b->outSizes.data,
                        res[TxTunnelView::NEXT_IP_ID]};
  const TxTunnelResult r = TxTunnelFrames(k);
  res[TxTunnelView::NEXT_IP_ID] = r.nextIpId;
  res[TxTunnelView::SEGMENTS] = r.segments;
  res[TxTunnelView::REFUSED] = r.refused;
  return Number(env, r.emitted);
}

napi_value RxTunnelBind(napi_env env, napi_callback_info info) {
  Args a(env, info);
  napi_value d = a.argv[0];
  if (!CheckObject(env, d, "desc")) return nullptr;
  auto* b = new RxTunnelBinding();
  int64_t vni, port;
  if (!PropU8(env, d, "bufs", &b->bufs, &b->refs) || !PropU32(env, d, "offsets", &b->offsets, &b->refs) ||
      !PropU32(env, d, "sizes", &b->sizes, &b->refs) || !PropInt(env, d, "vni", 0, 0xffffff, &vni) ||
      !PropInt(env, d, "port", 1, 65535, &port) || !PropU8(env, d, "addrs", &b->addrs, &b->refs) ||
      !PropU32(env, d, "frameOffsets", &b->frameOffsets, &b->refs) ||
      !PropU32(env, d, "frameSizes", &b->frameSizes, &b->refs) || !PropU32(env, d, "result", &b->result, &b->refs) ||
      !PropU32(env, d, "usoOffsets", &b->usoOffsets, &b->refs) ||
      !PropU32(env, d, "usoSizes", &b->usoSizes, &b->refs) || !PropU16(env, d, "usoGso", &b->usoGso, &b->refs) ||
      !PropU8(env, d, "usoAddrs", &b->usoAddrs, &b->refs) || !PropU8(env, d, "order", &b->order, &b->refs) ||
      !CheckLen(env, b->result.elems, RxTunnelView::LENGTH, "desc.result", "RX_TUNNEL.LENGTH")) {
    b->refs.Release(env);
    delete b;
    return nullptr;
  }
  b->vni = static_cast<uint32_t>(vni);
  b->port = static_cast<uint16_t>(port);
  size_t cap = Min(Min(b->offsets.elems, b->sizes.elems), Min(b->frameOffsets.elems, b->frameSizes.elems));
  cap = Min(cap, Min(Min(b->usoOffsets.elems, b->usoSizes.elems), Min(b->usoGso.elems, b->order.elems)));
  cap = Min(cap, Min(b->addrs.elems / kAddrLen, b->usoAddrs.elems / kAddrLen));
  b->cap = cap;
  return WrapBinding(env, b, &kRxTunnelTag);
}

napi_value RxTunnel(napi_env env, napi_callback_info info) {
  Args a(env, info);
  auto* b = UnwrapBinding<RxTunnelBinding>(env, a.argv[0], &kRxTunnelTag, "rxTunnel");
  uint32_t count;
  if (b == nullptr || !GetBatchCount(env, a.argv[1], "count", &count) ||
      !CheckLen(env, b->cap, count, "the descriptor's arrays", "count")) {
    return nullptr;
  }
  for (uint32_t i = 0; i < count; i++) {
    if (static_cast<uint64_t>(b->offsets.data[i]) + b->sizes.data[i] > b->bufs.elems) {
      return ThrowRange(env, "offsets[%u] (%u) + sizes[%u] (%u) exceeds bufs.length (%zu)", i, b->offsets.data[i], i,
                        b->sizes.data[i], b->bufs.elems);
    }
  }
  const RxTunnelBatch k{b->bufs.data,
                        b->offsets.data,
                        b->sizes.data,
                        count,
                        b->vni,
                        b->port,
                        b->addrs.data,
                        b->frameOffsets.data,
                        b->frameSizes.data,
                        b->usoOffsets.data,
                        b->usoSizes.data,
                        b->usoGso.data,
                        b->usoAddrs.data,
                        b->order.data};
  const RxTunnelResult r = RxTunnelFrames(k);
  uint32_t* res = b->result.data;
  res[RxTunnelView::SEGMENTS] = r.segments;
  res[RxTunnelView::SUPER_FRAMES] = r.supers;
  res[RxTunnelView::USO_RUNS] = r.uso;
  res[RxTunnelView::IGNORED] = r.ignored;
  res[RxTunnelView::DROP_MALFORMED] = r.malformed;
  res[RxTunnelView::DROP_BAD_FLAGS] = r.badFlags;
  res[RxTunnelView::DROP_WRONG_VNI] = r.wrongVni;
  return Number(env, r.kept);
}

}  // namespace vxtap
