// Argument unpacking, errors and scratch space (see common.h).
#include "common.h"

#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace vxtap {

Scratch::Scratch() {
  std::memset(this, 0, sizeof(*this));
  for (uint32_t i = 0; i < kMaxBatch; i++) {
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &addrs[i];
    msgs[i].msg_hdr.msg_control = cmsgs[i].buf;
  }
}

Scratch* GetScratch(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<Scratch*>(data);
}

Args::Args(napi_env env, napi_callback_info info) : argc(8) {
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  // napi_get_cb_info fills missing slots (argc < 8) with undefined.
}

// --- errors -----------------------------------------------------------------

namespace {

struct ErrnoEntry {
  int err;
  const char* name;
};

// The errnos this addon's syscalls produce in practice; anything else falls back
// to glibc's strerrorname_np.
constexpr ErrnoEntry kErrnoNames[] = {
    {EPERM, "EPERM"},
    {ENOENT, "ENOENT"},
    {ESRCH, "ESRCH"},
    {EINTR, "EINTR"},
    {EIO, "EIO"},
    {ENXIO, "ENXIO"},
    {E2BIG, "E2BIG"},
    {EBADF, "EBADF"},
    {EAGAIN, "EAGAIN"},
    {ENOMEM, "ENOMEM"},
    {EACCES, "EACCES"},
    {EFAULT, "EFAULT"},
    {EBUSY, "EBUSY"},
    {EEXIST, "EEXIST"},
    {ENODEV, "ENODEV"},
    {ENOTDIR, "ENOTDIR"},
    {EINVAL, "EINVAL"},
    {ENFILE, "ENFILE"},
    {EMFILE, "EMFILE"},
    {ENOTTY, "ENOTTY"},
    {ENOSPC, "ENOSPC"},
    {EPIPE, "EPIPE"},
    {ERANGE, "ERANGE"},
    {ENAMETOOLONG, "ENAMETOOLONG"},
    {ENOSYS, "ENOSYS"},
    {EBADFD, "EBADFD"},
    {ENOTSOCK, "ENOTSOCK"},
    {EDESTADDRREQ, "EDESTADDRREQ"},
    {EMSGSIZE, "EMSGSIZE"},
    {EPROTOTYPE, "EPROTOTYPE"},
    {ENOPROTOOPT, "ENOPROTOOPT"},
    {EPROTONOSUPPORT, "EPROTONOSUPPORT"},
    {EOPNOTSUPP, "EOPNOTSUPP"},
    {EAFNOSUPPORT, "EAFNOSUPPORT"},
    {EADDRINUSE, "EADDRINUSE"},
    {EADDRNOTAVAIL, "EADDRNOTAVAIL"},
    {ENETDOWN, "ENETDOWN"},
    {ENETUNREACH, "ENETUNREACH"},
    {ECONNABORTED, "ECONNABORTED"},
    {ECONNRESET, "ECONNRESET"},
    {ENOBUFS, "ENOBUFS"},
    {EISCONN, "EISCONN"},
    {ENOTCONN, "ENOTCONN"},
    {ETIMEDOUT, "ETIMEDOUT"},
    {ECONNREFUSED, "ECONNREFUSED"},
    {EHOSTDOWN, "EHOSTDOWN"},
    {EHOSTUNREACH, "EHOSTUNREACH"},
    {EALREADY, "EALREADY"},
    {EINPROGRESS, "EINPROGRESS"},
};

napi_value ThrowWithCode(napi_env env, bool range, const char* code, const char* fmt, va_list ap) {
  char msg[256];
  std::vsnprintf(msg, sizeof(msg), fmt, ap);
  Napi::Env e(env);
  Napi::Error err = range ? static_cast<Napi::Error>(Napi::RangeError::New(e, msg))
                          : static_cast<Napi::Error>(Napi::TypeError::New(e, msg));
  err.Set("code", Napi::String::New(e, code));
  err.ThrowAsJavaScriptException();
  return nullptr;
}

}  // namespace

const char* ErrnoName(int err) {
  for (const auto& entry : kErrnoNames) {
    if (entry.err == err) return entry.name;
  }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* name = strerrorname_np(err);
  if (name) return name;
#endif
  return "EUNKNOWN";
}

napi_value ThrowErrno(napi_env env, int err, const char* syscall) {
  char desc[128];
  // GNU strerror_r: returns a pointer to the message (maybe a static string).
  const char* text = strerror_r(err, desc, sizeof(desc));
  const char* code = ErrnoName(err);
  char msg[256];
  std::snprintf(msg, sizeof(msg), "%s: %s (%s)", syscall, text, code);
  Napi::Env e(env);
  Napi::Error error = Napi::Error::New(e, msg);
  error.Set("code", Napi::String::New(e, code));
  error.Set("errno", Napi::Number::New(e, err));
  error.Set("syscall", Napi::String::New(e, syscall));
  error.ThrowAsJavaScriptException();
  return nullptr;
}

napi_value ThrowType(napi_env env, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ThrowWithCode(env, false, "ERR_INVALID_ARG_TYPE", fmt, ap);
  va_end(ap);
  return nullptr;
}

napi_value ThrowRange(napi_env env, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ThrowWithCode(env, true, "ERR_OUT_OF_RANGE", fmt, ap);
  va_end(ap);
  return nullptr;
}

// --- getters ----------------------------------------------------------------

bool GetInt(napi_env env, napi_value v, const char* name, int64_t min, int64_t max, int64_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    ThrowType(env, "%s must be a number", name);
    return false;
  }
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || d != std::floor(d)) {
    ThrowRange(env, "%s must be an integer between %lld and %lld (got %g)", name, static_cast<long long>(min),
               static_cast<long long>(max), d);
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool GetFd(napi_env env, napi_value v, const char* name, int* out) {
  int64_t x;
  if (!GetInt(env, v, name, 0, INT32_MAX, &x)) return false;
  *out = static_cast<int>(x);
  return true;
}

bool GetBool(napi_env env, napi_value v, const char* name, bool optional, bool dflt, bool* out) {
  if (optional && IsNullish(env, v)) {
    *out = dflt;
    return true;
  }
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    ThrowType(env, "%s must be a boolean", name);
    return false;
  }
  return true;
}

bool GetString(napi_env env, napi_value v, const char* name, char* out, size_t maxBytes, size_t* len) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &n) != napi_ok) {
    ThrowType(env, "%s must be a string", name);
    return false;
  }
  if (n > maxBytes) {
    ThrowRange(env, "%s must be at most %zu bytes (got %zu)", name, maxBytes, n);
    return false;
  }
  napi_get_value_string_utf8(env, v, out, maxBytes + 1, &n);
  if (std::strlen(out) != n) {
    ThrowRange(env, "%s must not contain NUL characters", name);
    return false;
  }
  if (len) *len = n;
  return true;
}

bool GetIfName(napi_env env, napi_value v, const char* name, bool allowEmpty, char out[16]) {
  size_t n = 0;
  std::memset(out, 0, 16);
  if (!GetString(env, v, name, out, 15, &n)) return false;
  if (n == 0 && !allowEmpty) {
    ThrowRange(env, "%s must not be empty", name);
    return false;
  }
  return true;
}

bool GetTypedRaw(napi_env env, napi_value v, const char* name, napi_typedarray_type type, const char* typeName,
                 void** data, size_t* elems) {
  napi_typedarray_type actual;
  size_t length = 0;
  void* ptr = nullptr;
  if (napi_get_typedarray_info(env, v, &actual, &length, &ptr, nullptr, nullptr) != napi_ok || actual != type) {
    ThrowType(env, "%s must be a %s", name, typeName);
    return false;
  }
  if (ptr == nullptr) length = 0;  // detached buffer
  *data = ptr;
  *elems = length;
  return true;
}

bool GetBatchCount(napi_env env, napi_value v, const char* name, uint32_t* out) {
  int64_t x;
  if (!GetInt(env, v, name, 0, kMaxBatch, &x)) return false;
  *out = static_cast<uint32_t>(x);
  return true;
}

bool CheckLen(napi_env env, size_t have, size_t need, const char* arrName, const char* countName) {
  if (have < need) {
    ThrowRange(env, "%s has %zu elements, fewer than %s (%zu)", arrName, have, countName, need);
    return false;
  }
  return true;
}

napi_value GetProp(napi_env env, napi_value obj, const char* key) {
  napi_value v = nullptr;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return Undefined(env);
  return v;
}

bool IsNullish(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return true;
  return t == napi_undefined || t == napi_null;
}

napi_value Undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

napi_value Number(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

}  // namespace vxtap

namespace vxtap {

// --- bindings -------------------------------------------------------------------

bool RefSet::Add(napi_env env, napi_value v) {
  if (n == sizeof(refs) / sizeof(refs[0])) {
    ThrowRange(env, "too many arrays in one descriptor");
    return false;
  }
  if (napi_create_reference(env, v, 1, &refs[n]) != napi_ok) {
    ThrowType(env, "cannot reference a descriptor array");
    return false;
  }
  n++;
  return true;
}

void RefSet::Release(napi_env env) {
  for (size_t i = 0; i < n; i++) napi_delete_reference(env, refs[i]);
  n = 0;
}

bool CheckObject(napi_env env, napi_value v, const char* name) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_object) {
    ThrowType(env, "%s must be an object", name);
    return false;
  }
  return true;
}

namespace {

template <typename T>
bool PropTyped(napi_env env, napi_value obj, const char* key, napi_typedarray_type type, const char* typeName,
               View<T>* out, RefSet* refs, bool optional) {
  napi_value v = GetProp(env, obj, key);
  if (optional && IsNullish(env, v)) {
    *out = View<T>{};
    return true;
  }
  char name[64];
  std::snprintf(name, sizeof(name), "desc.%s", key);
  void* data = nullptr;
  if (!GetTypedRaw(env, v, name, type, typeName, &data, &out->elems)) return false;
  out->data = static_cast<T*>(data);
  return refs->Add(env, v);
}

}  // namespace

bool PropU8(napi_env env, napi_value obj, const char* key, View<uint8_t>* out, RefSet* refs, bool optional) {
  return PropTyped(env, obj, key, napi_uint8_array, "Uint8Array", out, refs, optional);
}
bool PropU16(napi_env env, napi_value obj, const char* key, View<uint16_t>* out, RefSet* refs) {
  return PropTyped(env, obj, key, napi_uint16_array, "Uint16Array", out, refs, false);
}
bool PropU32(napi_env env, napi_value obj, const char* key, View<uint32_t>* out, RefSet* refs, bool optional) {
  return PropTyped(env, obj, key, napi_uint32_array, "Uint32Array", out, refs, optional);
}
bool PropI32(napi_env env, napi_value obj, const char* key, View<int32_t>* out, RefSet* refs) {
  return PropTyped(env, obj, key, napi_int32_array, "Int32Array", out, refs, false);
}
bool PropInt(napi_env env, napi_value obj, const char* key, int64_t min, int64_t max, int64_t* out) {
  char name[64];
  std::snprintf(name, sizeof(name), "desc.%s", key);
  return GetInt(env, GetProp(env, obj, key), name, min, max, out);
}

}  // namespace vxtap
