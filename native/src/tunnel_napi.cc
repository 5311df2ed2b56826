// Node-API glue for the uplink kernels in tunnel.cc: txTunnel and rxTunnel (see
// src/native/index.ts for the contract). Every argument, array length and span
// is checked here, before the kernel runs; the kernel relies on it.
#include "common.h"
#include "tunnel.h"

namespace vxtap {

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
    if (offsets.data[i] < kTunnelHeadroom || static_cast<uint64_t>(offsets.data[i]) + sizes.data[i] > bufs.elems) {
      return ThrowRange(env, "offsets[%u] (%u) needs %zu bytes of headroom and offsets[%u] + sizes[%u] (%u) must lie in bufs (%zu)",
                        i, offsets.data[i], kTunnelHeadroom, i, i, sizes.data[i], bufs.elems);
    }
    if (sel.data[i] >= 0 && (static_cast<uint64_t>(sel.data[i]) + 1) * kTunnelTemplate > templates.elems) {
      return ThrowRange(env, "sel[%u] (%d) has no template in templates (%zu bytes, %zu per peer)", i, sel.data[i],
                        templates.elems, kTunnelTemplate);
    }
  }
  const TxTunnelBatch b{bufs.data, offsets.data, sizes.data, count, sel.data, srcPort.data, templates.data,
                       static_cast<int>(dfMode), static_cast<size_t>(maxOuterIp), outOffsets.data, outSizes.data,
                       ipId.data[0]};
  const TxTunnelResult r = TxTunnelFrames(b);
  ipId.data[0] = r.nextIpId;
  result.data[0] = r.segments;
  result.data[1] = r.refused;
  return Number(env, r.emitted);
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
  const RxTunnelBatch b{bufs.data, offsets.data, sizes.data, count, static_cast<uint32_t>(vni),
                       static_cast<uint16_t>(port), addrs.data, frameOffsets.data, frameSizes.data, usoOffsets.data,
                       usoSizes.data, usoGso.data, usoAddrs.data, order.data};
  const RxTunnelResult r = RxTunnelFrames(b);
  drops.data[0] = r.malformed;
  drops.data[1] = r.badFlags;
  drops.data[2] = r.wrongVni;
  result.data[0] = r.segments;
  result.data[1] = r.supers;
  result.data[2] = r.uso;
  result.data[3] = r.ignored;
  return Number(env, r.kept);
}

}  // namespace vxtap
