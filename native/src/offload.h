// Offload kernels between a vnet_hdr TAP and UDP GSO/GRO sockets (see txOffload and
// rxOffload in src/native/index.ts for the contract).
#pragma once

#include <napi.h>

namespace vxtap {

napi_value TxOffload(napi_env, napi_callback_info);
napi_value RxOffload(napi_env, napi_callback_info);

}  // namespace vxtap
