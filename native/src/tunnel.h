// txTunnel: whole TSO super-frames wrapped for a UDP-tunnel GSO TAP write (see
// src/native/index.ts for the contract).
#pragma once

#include <napi.h>

namespace vxtap {

napi_value TxTunnel(napi_env, napi_callback_info);

}  // namespace vxtap
