// Node-API glue for the checksum kernels in csum.cc: checksum() and
// completeChecksums() (see src/native/index.ts for the contract).
#include "common.h"
#include "csum.h"

namespace vxtap {

napi_value CompleteChecksums(napi_env env, napi_callback_info info) {
  Args a(env, info);
  View<uint8_t> bufs;
  View<uint32_t> offsets, sizes;
  uint32_t count;
  if (!GetU8(env, a.argv[0], "bufs", &bufs) || !GetU32(env, a.argv[1], "offsets", &offsets) ||
      !GetU32(env, a.argv[2], "sizes", &sizes) || !GetBatchCount(env, a.argv[3], "count", &count) ||
      !CheckLen(env, offsets.elems, count, "offsets", "count") ||
      !CheckLen(env, sizes.elems, count, "sizes", "count")) {
    return nullptr;
  }
  for (uint32_t i = 0; i < count; i++) {
    if (static_cast<uint64_t>(offsets.data[i]) + sizes.data[i] > bufs.elems) {
      return ThrowRange(env, "offsets[%u] (%u) + sizes[%u] (%u) exceeds bufs.length (%zu)", i, offsets.data[i], i,
                        sizes.data[i], bufs.elems);
    }
  }
  uint32_t done = 0;
  for (uint32_t i = 0; i < count; i++) {
    done += CompleteFrameChecksum(bufs.data + offsets.data[i], sizes.data[i]) ? 1 : 0;
  }
  return Number(env, done);
}

napi_value Checksum(napi_env env, napi_callback_info info) {
  Args a(env, info);
  View<uint8_t> bufs;
  int64_t offset, length, seed;
  if (!GetU8(env, a.argv[0], "bufs", &bufs) || !GetInt(env, a.argv[1], "offset", 0, 0xffffffffLL, &offset) ||
      !GetInt(env, a.argv[2], "length", 0, 0xffffffffLL, &length) ||
      !GetInt(env, a.argv[3], "seed", 0, 0xffffffffLL, &seed)) {
    return nullptr;
  }
  if (static_cast<uint64_t>(offset) + static_cast<uint64_t>(length) > bufs.elems) {
    return ThrowRange(env, "offset (%lld) + length (%lld) exceeds bufs.length (%zu)", static_cast<long long>(offset),
                      static_cast<long long>(length), bufs.elems);
  }
  const uint16_t mem = Fold16(Sum64(bufs.data + offset, static_cast<size_t>(length)));
  // Byte-swapping commutes with ones' complement addition, so the network-order
  // value of the memory-order sum is its swap; then add the (network-order) seed.
  const uint16_t net = Mem16(mem);
  return Number(env, Fold16(static_cast<uint64_t>(net) + static_cast<uint64_t>(seed)));
}

}  // namespace vxtap
