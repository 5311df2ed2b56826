// vxtap native addon: module registration. See native/README.md for the design
// and src/native/index.ts for the contract.
#include "common.h"

namespace vxtap {
namespace {

struct Export {
  const char* name;
  napi_callback fn;
};

constexpr Export kExports[] = {
    {"tapOpen", TapOpen},
    {"tapSetOffload", TapSetOffload},
    {"tapSetVnetHdrSize", TapSetVnetHdrSize},
    {"ifSetMtu", IfSetMtu},
    {"ifGetMtu", IfGetMtu},
    {"ifSetMac", IfSetMac},
    {"ifGetMac", IfGetMac},
    {"ifSetUp", IfSetUp},
    {"ifIndex", IfIndex},
    {"udpOpen", UdpOpen},
    {"udpLocalPort", UdpLocalPort},
    {"readBatch", ReadBatch},
    {"writeBatch", WriteBatch},
    {"recvBatch", RecvBatch},
    {"sendBatch", SendBatch},
    {"completeChecksums", CompleteChecksums},
    {"checksum", Checksum},
    {"txOffloadBind", TxOffloadBind},
    {"txOffload", TxOffload},
    {"rxOffloadBind", RxOffloadBind},
    {"rxOffload", RxOffload},
    {"txTunnelBind", TxTunnelBind},
    {"txTunnel", TxTunnel},
    {"rxTunnelBind", RxTunnelBind},
    {"rxTunnel", RxTunnel},
    {"poll", Poll},
    {"eventfdOpen", EventfdOpen},
    {"eventfdSignal", EventfdSignal},
    {"eventfdDrain", EventfdDrain},
    {"close", Close},
    {"netnsEnter", NetnsEnter},
    {"netnsEnterFd", NetnsEnterFd},
    {"threadPinCpu", ThreadPinCpu},
    {"threadCpu", ThreadCpu},
    {"tapSteerByCpu", TapSteerByCpu},
    {"udpSteerByCpu", UdpSteerByCpu},
};

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // One scratch area per environment (main thread or worker); Node deletes it
  // when the environment is torn down.
  env.SetInstanceData<Scratch>(new Scratch());
  for (const auto& e : kExports) {
    napi_value fn;
    if (napi_create_function(env, e.name, NAPI_AUTO_LENGTH, e.fn, nullptr, &fn) != napi_ok) return exports;
    exports.Set(e.name, Napi::Value(env, fn));
  }
  // The numbers shared with TypeScript, as compiled (from native/limits.json):
  // a unit test checks that they equal what src/native/limits.ts read.
  Napi::Object limits = Napi::Object::New(env);
  for (const auto& l : kSharedLimits) limits.Set(l.name, Napi::Number::New(env, l.value));
  limits.Freeze();
  exports.Set("limits", limits);
  // The result views' slot indices, as compiled: views[VIEW][SLOT] = index.
  Napi::Object views = Napi::Object::New(env);
  for (const auto& s : kSharedSlots) {
    if (s.view[0] == 0) continue;
    Napi::Value v = views.Get(s.view);
    Napi::Object o = v.IsObject() ? v.As<Napi::Object>() : Napi::Object::New(env);
    o.Set(s.name, Napi::Number::New(env, s.index));
    views.Set(s.view, o);
  }
  exports.Set("views", views);
  return exports;
}

}  // namespace vxtap

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return vxtap::Init(env, exports); }

NODE_API_MODULE(vxtap_native, InitModule)
