// Shared plumbing for the vxtap addon: argument unpacking that never throws C++
// exceptions, errno -> JS Error mapping, and the per-environment scratch space the
// batch calls use instead of allocating.
//
// Every exported function is a raw napi_callback (so that 8-argument batch calls
// do not pay for node-addon-api's heap-allocated argument vector) and uses
// node-addon-api types for values and errors. A getter that fails has already
// thrown a JS exception; the caller then returns nullptr at once.
#pragma once

#include <napi.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "frame.h"  // kAddrLen, and kMaxBatch from the generated vxtap_limits.h

namespace vxtap {

/** Control-message space per message: one UDP_GRO int or one UDP_SEGMENT u16. */
constexpr size_t kCmsgSpace = 32;

/**
 * Scratch space owned by one Node environment (main thread or one worker), set as
 * instance data at load and freed when the environment goes away. Pointers that do
 * not change between calls (msg_name, msg_iov, msg_control) are wired once.
 */
struct Scratch {
  struct mmsghdr msgs[kMaxBatch];
  struct iovec iov[kMaxBatch];
  union Addr {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } addrs[kMaxBatch];
  union Cmsg {
    struct cmsghdr align;
    unsigned char buf[kCmsgSpace];
  } cmsgs[kMaxBatch];
  struct pollfd pfds[kMaxBatch];

  Scratch();
};

/** The calling environment's scratch space (never null after Init). */
Scratch* GetScratch(napi_env env);

/** Up to 8 arguments of the current call; missing ones read as undefined. */
struct Args {
  napi_value argv[8];
  size_t argc;
  Args(napi_env env, napi_callback_info info);
};

/** Up to 16 arguments, for the offload kernels' long signatures; missing ones read as undefined. */
struct WideArgs {
  napi_value argv[16];
  size_t argc = 16;
  WideArgs(napi_env env, napi_callback_info info) { napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr); }
};

// --- throwing helpers (each returns nullptr so callers can `return Throw...`) ---
napi_value ThrowType(napi_env env, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
napi_value ThrowRange(napi_env env, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
/** Throw Error{code,errno,syscall} for `err` (a positive errno). */
napi_value ThrowErrno(napi_env env, int err, const char* syscall);
/** Name of an errno value ('EPERM'); never null. */
const char* ErrnoName(int err);

// --- argument getters: return false after throwing TypeError/RangeError ---
/** An integer in [min, max]. */
bool GetInt(napi_env env, napi_value v, const char* name, int64_t min, int64_t max, int64_t* out);
/** A file descriptor: an integer in [0, INT32_MAX]. */
bool GetFd(napi_env env, napi_value v, const char* name, int* out);
/** A boolean; `undefined` gives `dflt` when `optional`. */
bool GetBool(napi_env env, napi_value v, const char* name, bool optional, bool dflt, bool* out);
/** A string of at most `maxBytes` UTF-8 bytes (NUL-terminated into `out`). */
bool GetString(napi_env env, napi_value v, const char* name, char* out, size_t maxBytes, size_t* len);
/** An interface name: 1..15 bytes (0..15 when allowEmpty), no NUL or '/'. */
bool GetIfName(napi_env env, napi_value v, const char* name, bool allowEmpty, char out[16]);

/** A typed array of the given type; `elems` is its element count. */
template <typename T>
struct View {
  T* data = nullptr;
  size_t elems = 0;
};
bool GetTypedRaw(napi_env env, napi_value v, const char* name, napi_typedarray_type type, const char* typeName,
                 void** data, size_t* elems);

inline bool GetU8(napi_env env, napi_value v, const char* name, View<uint8_t>* out) {
  return GetTypedRaw(env, v, name, napi_uint8_array, "Uint8Array", reinterpret_cast<void**>(&out->data), &out->elems);
}
inline bool GetU16(napi_env env, napi_value v, const char* name, View<uint16_t>* out) {
  return GetTypedRaw(env, v, name, napi_uint16_array, "Uint16Array", reinterpret_cast<void**>(&out->data), &out->elems);
}
inline bool GetU32(napi_env env, napi_value v, const char* name, View<uint32_t>* out) {
  return GetTypedRaw(env, v, name, napi_uint32_array, "Uint32Array", reinterpret_cast<void**>(&out->data), &out->elems);
}
inline bool GetI32(napi_env env, napi_value v, const char* name, View<int32_t>* out) {
  return GetTypedRaw(env, v, name, napi_int32_array, "Int32Array", reinterpret_cast<void**>(&out->data), &out->elems);
}
inline bool GetI16(napi_env env, napi_value v, const char* name, View<int16_t>* out) {
  return GetTypedRaw(env, v, name, napi_int16_array, "Int16Array", reinterpret_cast<void**>(&out->data), &out->elems);
}

/** `count` (or `max`): an integer in [0, kMaxBatch]. */
bool GetBatchCount(napi_env env, napi_value v, const char* name, uint32_t* out);
/** Throw RangeError unless `arr` (named `arrName`) has at least `need` elements. */
bool CheckLen(napi_env env, size_t have, size_t need, const char* arrName, const char* countName);

/** A property of an options object (undefined when absent). */
napi_value GetProp(napi_env env, napi_value obj, const char* key);
/** True when v is undefined or null. */
bool IsNullish(napi_env env, napi_value v);

napi_value Undefined(napi_env env);
napi_value Number(napi_env env, double d);

// --- bindings: a kernel's arrays checked once and held, then called with a count ---
//
// A byte kernel's call used to take 13-16 positional typed arrays and unpack
// every one on every call. Instead, `xxxBind(desc)` reads a descriptor object
// once (each property named in errors, 'desc.offsets'), keeps a strong reference
// to every typed array it took (so its memory stays put and alive), and returns
// an opaque external handle tagged with the binding's type; `xxx(handle, count)`
// then checks only what changes per call (count, spans) and runs the kernel.

/** Strong references to the typed arrays a binding holds. */
struct RefSet {
  napi_ref refs[20];
  size_t n = 0;
  bool Add(napi_env env, napi_value v);
  void Release(napi_env env);
};

/** A descriptor property `key` of `obj` as a typed array, referenced in `refs` (error names 'desc.<key>'). */
bool PropU8(napi_env env, napi_value obj, const char* key, View<uint8_t>* out, RefSet* refs, bool optional = false);
bool PropU16(napi_env env, napi_value obj, const char* key, View<uint16_t>* out, RefSet* refs);
bool PropU32(napi_env env, napi_value obj, const char* key, View<uint32_t>* out, RefSet* refs, bool optional = false);
bool PropI32(napi_env env, napi_value obj, const char* key, View<int32_t>* out, RefSet* refs);
bool PropInt(napi_env env, napi_value obj, const char* key, int64_t min, int64_t max, int64_t* out);
/** Throw TypeError unless `v` is an object (the descriptor). */
bool CheckObject(napi_env env, napi_value v, const char* name);

/** Wrap a binding (deleted, with its references, when the handle is collected). */
template <typename T>
napi_value WrapBinding(napi_env env, T* b, const napi_type_tag* tag) {
  napi_value ext;
  auto fin = [](napi_env e, void* data, void*) {
    T* t = static_cast<T*>(data);
    t->refs.Release(e);
    delete t;
  };
  if (napi_create_external(env, b, fin, nullptr, &ext) != napi_ok) {
    b->refs.Release(env);
    delete b;
    return nullptr;
  }
  napi_type_tag_object(env, ext, tag);
  return ext;
}

/** The binding behind handle `v`, or null after throwing TypeError ('handle must be a NAME handle'). */
template <typename T>
T* UnwrapBinding(napi_env env, napi_value v, const napi_type_tag* tag, const char* what) {
  bool ok = false;
  void* data = nullptr;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, v, tag, &ok) != napi_ok || !ok ||
      napi_get_value_external(env, v, &data) != napi_ok) {
    ThrowType(env, "handle must be a %s handle", what);
    return nullptr;
  }
  return static_cast<T*>(data);
}

// --- the exported functions, grouped by file ---
// tap.cc
napi_value TapOpen(napi_env, napi_callback_info);
napi_value TapSetOffload(napi_env, napi_callback_info);
napi_value TapSetVnetHdrSize(napi_env, napi_callback_info);
napi_value IfSetMtu(napi_env, napi_callback_info);
napi_value IfGetMtu(napi_env, napi_callback_info);
napi_value IfSetMac(napi_env, napi_callback_info);
napi_value IfGetMac(napi_env, napi_callback_info);
napi_value IfSetUp(napi_env, napi_callback_info);
napi_value IfIndex(napi_env, napi_callback_info);
napi_value ReadBatch(napi_env, napi_callback_info);
napi_value WriteBatch(napi_env, napi_callback_info);
// udp.cc
napi_value UdpOpen(napi_env, napi_callback_info);
napi_value UdpLocalPort(napi_env, napi_callback_info);
napi_value RecvBatch(napi_env, napi_callback_info);
napi_value SendBatch(napi_env, napi_callback_info);
// csum_napi.cc
napi_value CompleteChecksums(napi_env, napi_callback_info);
napi_value Checksum(napi_env, napi_callback_info);
// offload_napi.cc
napi_value TxOffloadBind(napi_env, napi_callback_info);
napi_value TxOffload(napi_env, napi_callback_info);
napi_value RxOffloadBind(napi_env, napi_callback_info);
napi_value RxOffload(napi_env, napi_callback_info);
// tunnel_napi.cc
napi_value TxTunnelBind(napi_env, napi_callback_info);
napi_value TxTunnel(napi_env, napi_callback_info);
napi_value RxTunnelBind(napi_env, napi_callback_info);
napi_value RxTunnel(napi_env, napi_callback_info);
// wait.cc
napi_value Poll(napi_env, napi_callback_info);
napi_value EventfdOpen(napi_env, napi_callback_info);
napi_value EventfdSignal(napi_env, napi_callback_info);
napi_value EventfdDrain(napi_env, napi_callback_info);
napi_value Close(napi_env, napi_callback_info);
napi_value NetnsEnter(napi_env, napi_callback_info);
napi_value NetnsEnterFd(napi_env, napi_callback_info);
// cpu.cc
napi_value ThreadPinCpu(napi_env, napi_callback_info);
napi_value ThreadCpu(napi_env, napi_callback_info);
napi_value TapSteerByCpu(napi_env, napi_callback_info);
napi_value UdpSteerByCpu(napi_env, napi_callback_info);

}  // namespace vxtap
