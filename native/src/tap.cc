// TAP devices (TUNSETIFF and friends), interface ioctls, and the TAP batch calls.
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common.h"

namespace vxtap {

// --- TAP ----------------------------------------------------------------------

napi_value TapOpen(napi_env env, napi_callback_info info) {
  Args a(env, info);
  char name[16];
  if (!GetIfName(env, a.argv[0], "name", true, name)) return nullptr;
  bool multiQueue = false, vnetHdr = false;
  if (!IsNullish(env, a.argv[1])) {
    napi_valuetype t;
    napi_typeof(env, a.argv[1], &t);
    if (t != napi_object) return ThrowType(env, "options must be an object");
    if (!GetBool(env, GetProp(env, a.argv[1], "multiQueue"), "options.multiQueue", true, false, &multiQueue))
      return nullptr;
    if (!GetBool(env, GetProp(env, a.argv[1], "vnetHdr"), "options.vnetHdr", true, false, &vnetHdr)) return nullptr;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, errno, "open(/dev/net/tun)");
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof(ifr));
  std::memcpy(ifr.ifr_name, name, IFNAMSIZ);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (multiQueue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (vnetHdr) ifr.ifr_flags |= IFF_VNET_HDR;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, err, "ioctl(TUNSETIFF)");
  }
  ifr.ifr_name[IFNAMSIZ - 1] = 0;
  Napi::Env e(env);
  Napi::Object result = Napi::Object::New(e);
  result.Set("fd", Napi::Number::New(e, fd));
  result.Set("name", Napi::String::New(e, ifr.ifr_name));
  return result;
}

napi_value TapSetOffload(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  int64_t flags;
  if (!GetFd(env, a.argv[0], "fd", &fd)) return nullptr;
  if (!GetInt(env, a.argv[1], "flags", 0, 0xffff, &flags)) return nullptr;
  if (ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(flags)) < 0) {
    return ThrowErrno(env, errno, "ioctl(TUNSETOFFLOAD)");
  }
  return Undefined(env);
}

napi_value TapSetVnetHdrSize(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  int64_t size;
  if (!GetFd(env, a.argv[0], "fd", &fd)) return nullptr;
  if (!GetInt(env, a.argv[1], "size", 0, 4096, &size)) return nullptr;
  int sz = static_cast<int>(size);
  if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) return ThrowErrno(env, errno, "ioctl(TUNSETVNETHDRSZ)");
  return Undefined(env);
}

// --- interface ioctls ---------------------------------------------------------
// Each call opens a fresh AF_INET datagram socket so the ioctl acts in the calling
// thread's current network namespace (a cached socket would pin the namespace it
// was created in).

namespace {

/** ioctl(req) on `ifr` through a throwaway socket; throws and returns false on failure. */
bool IfIoctl(napi_env env, unsigned long req, struct ifreq* ifr, const char* syscall) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    ThrowErrno(env, errno, "socket");
    return false;
  }
  int rc = ioctl(s, req, ifr);
  int err = errno;
  close(s);
  if (rc < 0) {
    ThrowErrno(env, err, syscall);
    return false;
  }
  return true;
}

bool IfReq(napi_env env, napi_value v, struct ifreq* ifr) {
  std::memset(ifr, 0, sizeof(*ifr));
  char name[16];
  if (!GetIfName(env, v, "name", false, name)) return false;
  std::memcpy(ifr->ifr_name, name, IFNAMSIZ);
  return true;
}

}  // namespace

napi_value IfSetMtu(napi_env env, napi_callback_info info) {
  Args a(env, info);
  struct ifreq ifr;
  int64_t mtu;
  if (!IfReq(env, a.argv[0], &ifr)) return nullptr;
  if (!GetInt(env, a.argv[1], "mtu", 68, 65535, &mtu)) return nullptr;
  ifr.ifr_mtu = static_cast<int>(mtu);
  if (!IfIoctl(env, SIOCSIFMTU, &ifr, "ioctl(SIOCSIFMTU)")) return nullptr;
  return Undefined(env);
}

napi_value IfGetMtu(napi_env env, napi_callback_info info) {
  Args a(env, info);
  struct ifreq ifr;
  if (!IfReq(env, a.argv[0], &ifr)) return nullptr;
  if (!IfIoctl(env, SIOCGIFMTU, &ifr, "ioctl(SIOCGIFMTU)")) return nullptr;
  return Number(env, ifr.ifr_mtu);
}

napi_value IfSetMac(napi_env env, napi_callback_info info) {
  Args a(env, info);
  struct ifreq ifr;
  View<uint8_t> mac;
  if (!IfReq(env, a.argv[0], &ifr)) return nullptr;
  if (!GetU8(env, a.argv[1], "mac", &mac)) return nullptr;
  if (mac.elems != 6) return ThrowRange(env, "mac must be 6 bytes (got %zu)", mac.elems);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(ifr.ifr_hwaddr.sa_data, mac.data, 6);
  if (!IfIoctl(env, SIOCSIFHWADDR, &ifr, "ioctl(SIOCSIFHWADDR)")) return nullptr;
  return Undefined(env);
}

napi_value IfGetMac(napi_env env, napi_callback_info info) {
  Args a(env, info);
  struct ifreq ifr;
  if (!IfReq(env, a.argv[0], &ifr)) return nullptr;
  if (!IfIoctl(env, SIOCGIFHWADDR, &ifr, "ioctl(SIOCGIFHWADDR)")) return nullptr;
  Napi::Env e(env);
  Napi::Uint8Array out = Napi::Uint8Array::New(e, 6);
  std::memcpy(out.Data(), ifr.ifr_hwaddr.sa_data, 6);
  return out;
}

napi_value IfSetUp(napi_env env, napi_callback_info info) {
  Args a(env, info);
  struct ifreq ifr;
  bool up;
  if (!IfReq(env, a.argv[0], &ifr)) return nullptr;
  if (!GetBool(env, a.argv[1], "up", false, false, &up)) return nullptr;
  if (!IfIoctl(env, SIOCGIFFLAGS, &ifr, "ioctl(SIOCGIFFLAGS)")) return nullptr;
  if (up)
    ifr.ifr_flags |= IFF_UP;
  else
    ifr.ifr_flags &= ~IFF_UP;
  if (!IfIoctl(env, SIOCSIFFLAGS, &ifr, "ioctl(SIOCSIFFLAGS)")) return nullptr;
  return Undefined(env);
}

napi_value IfIndex(napi_env env, napi_callback_info info) {
  Args a(env, info);
  char name[16];
  if (!GetIfName(env, a.argv[0], "name", false, name)) return nullptr;
  return Number(env, if_nametoindex(name));
}

// --- TAP batches ---------------------------------------------------------------

napi_value ReadBatch(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  View<uint8_t> bufs;
  View<uint32_t> offsets, sizes;
  int64_t slotLen;
  uint32_t max;
  if (!GetFd(env, a.argv[0], "fd", &fd) || !GetU8(env, a.argv[1], "bufs", &bufs) ||
      !GetU32(env, a.argv[2], "offsets", &offsets) || !GetU32(env, a.argv[3], "sizes", &sizes) ||
      !GetInt(env, a.argv[4], "slotLen", 1, 0xffffffffLL, &slotLen) || !GetBatchCount(env, a.argv[5], "max", &max) ||
      !CheckLen(env, offsets.elems, max, "offsets", "max") || !CheckLen(env, sizes.elems, max, "sizes", "max")) {
    return nullptr;
  }
  const uint64_t slot = static_cast<uint64_t>(slotLen);
  for (uint32_t i = 0; i < max; i++) {
    if (offsets.data[i] + slot > bufs.elems) {
      return ThrowRange(env, "offsets[%u] (%u) + slotLen (%llu) exceeds bufs.length (%zu)", i, offsets.data[i],
                        static_cast<unsigned long long>(slot), bufs.elems);
    }
  }
  // A TAP read of a frame longer than the buffer copies what fits and returns
  // that (Linux 6.18: the length is not the frame's), so a frame cut to exactly
  // the slot would look whole. One spare byte after the slot tells them apart:
  // a read that reaches it was cut, and is reported as slot + 1.
  unsigned char spare[1];
  struct iovec iov[2] = {{nullptr, static_cast<size_t>(slot)}, {spare, sizeof(spare)}};
  uint32_t n = 0;
  while (n < max) {
    iov[0].iov_base = bufs.data + offsets.data[n];
    ssize_t r = readv(fd, iov, 2);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (n > 0) break;  // report what was read; the error recurs on the next call
      return ThrowErrno(env, errno, "read");
    }
    sizes.data[n] = static_cast<uint64_t>(r) > slot ? static_cast<uint32_t>(slot + 1) : static_cast<uint32_t>(r);
    n++;
  }
  return Number(env, n);
}

napi_value WriteBatch(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  View<uint8_t> bufs;
  View<uint32_t> offsets, sizes;
  View<int32_t> errs;
  uint32_t count;
  if (!GetFd(env, a.argv[0], "fd", &fd) || !GetU8(env, a.argv[1], "bufs", &bufs) ||
      !GetU32(env, a.argv[2], "offsets", &offsets) || !GetU32(env, a.argv[3], "sizes", &sizes) ||
      !GetBatchCount(env, a.argv[4], "count", &count) || !GetI32(env, a.argv[5], "errs", &errs) ||
      !CheckLen(env, offsets.elems, count, "offsets", "count") ||
      !CheckLen(env, sizes.elems, count, "sizes", "count") || !CheckLen(env, errs.elems, count, "errs", "count")) {
    return nullptr;
  }
  for (uint32_t i = 0; i < count; i++) {
    if (static_cast<uint64_t>(offsets.data[i]) + sizes.data[i] > bufs.elems) {
      return ThrowRange(env, "offsets[%u] (%u) + sizes[%u] (%u) exceeds bufs.length (%zu)", i, offsets.data[i], i,
                        sizes.data[i], bufs.elems);
    }
  }
  uint32_t n = 0;
  while (n < count) {
    ssize_t r = write(fd, bufs.data + offsets.data[n], sizes.data[n]);
    if (r < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (err == EBADF || err == EBADFD) {
        // The queue itself is unusable: not a per-frame refusal.
        if (n > 0) break;
        return ThrowErrno(env, err, "write");
      }
      errs.data[n++] = err;
      continue;
    }
    errs.data[n++] = 0;
  }
  return Number(env, n);
}

}  // namespace vxtap
