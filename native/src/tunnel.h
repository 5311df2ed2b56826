// txTunnel / rxTunnel: whole TSO super-frames wrapped for, and unwrapped from, a
// UDP-tunnel GSO uplink TAP (see
// src/native/index.ts for the contract).
#pragma once

#include <napi.h>

namespace vxtap {

napi_value TxTunnel(napi_env, napi_callback_info);
napi_value RxTunnel(napi_env, napi_callback_info);

}  // namespace vxtap
