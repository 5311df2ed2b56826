// UDP sockets and the recvmmsg/sendmmsg batch calls.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace vxtap {

namespace {

/** setsockopt(int) that closes `fd` and throws on failure. */
bool SetOpt(napi_env env, int fd, int level, int opt, int value, const char* syscall) {
  if (setsockopt(fd, level, opt, &value, sizeof(value)) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, syscall);
    return false;
  }
  return true;
}

/** SO_*BUFFORCE (root may exceed rmem_max/wmem_max), else the capped SO_*BUF. */
bool SetBuf(napi_env env, int fd, int force, int plain, int value, const char* syscall) {
  if (setsockopt(fd, SOL_SOCKET, force, &value, sizeof(value)) == 0) return true;
  return SetOpt(env, fd, SOL_SOCKET, plain, value, syscall);
}

/** An optional positive int option (bytes); 0 when absent. */
bool GetOptBytes(napi_env env, napi_value obj, const char* key, const char* name, int* out) {
  napi_value v = GetProp(env, obj, key);
  *out = 0;
  if (IsNullish(env, v)) return true;
  int64_t x;
  if (!GetInt(env, v, name, 1, INT32_MAX / 2, &x)) return false;
  *out = static_cast<int>(x);
  return true;
}

/** Decode a sockaddr into a 20-byte record (v4-mapped IPv6 is reported as IPv4). */
inline void AddrToRecord(const Scratch::Addr& a, uint8_t* rec) {
  std::memset(rec, 0, kAddrLen);
  if (a.sa.sa_family == AF_INET) {
    rec[0] = 4;
    std::memcpy(rec + 2, &a.in4.sin_port, 2);
    std::memcpy(rec + 4, &a.in4.sin_addr, 4);
  } else if (a.sa.sa_family == AF_INET6) {
    std::memcpy(rec + 2, &a.in6.sin6_port, 2);
    if (IN6_IS_ADDR_V4MAPPED(&a.in6.sin6_addr)) {
      rec[0] = 4;
      std::memcpy(rec + 4, a.in6.sin6_addr.s6_addr + 12, 4);
    } else {
      rec[0] = 6;
      std::memcpy(rec + 4, a.in6.sin6_addr.s6_addr, 16);
    }
  }
}

/**
 * Encode a record as a sockaddr. An IPv4 record becomes a sockaddr_in even for an
 * AF_INET6 socket: Linux's udpv6_sendmsg hands AF_INET destinations to the IPv4
 * path on dual-stack sockets (and fails with ENETUNREACH on v6-only ones).
 */
inline bool RecordToAddr(const uint8_t* rec, Scratch::Addr* a, socklen_t* len) {
  if (rec[0] == 4) {
    a->in4.sin_family = AF_INET;
    std::memcpy(&a->in4.sin_port, rec + 2, 2);
    std::memcpy(&a->in4.sin_addr, rec + 4, 4);
    std::memset(a->in4.sin_zero, 0, sizeof(a->in4.sin_zero));
    *len = sizeof(struct sockaddr_in);
    return true;
  }
  if (rec[0] == 6) {
    a->in6.sin6_family = AF_INET6;
    std::memcpy(&a->in6.sin6_port, rec + 2, 2);
    a->in6.sin6_flowinfo = 0;
    std::memcpy(a->in6.sin6_addr.s6_addr, rec + 4, 16);
    a->in6.sin6_scope_id = 0;
    *len = sizeof(struct sockaddr_in6);
    return true;
  }
  return false;
}

}  // namespace

napi_value UdpOpen(napi_env env, napi_callback_info info) {
  Args a(env, info);
  napi_valuetype t;
  if (napi_typeof(env, a.argv[0], &t) != napi_ok || t != napi_object || IsNullish(env, a.argv[0])) {
    return ThrowType(env, "options must be an object");
  }
  napi_value o = a.argv[0];

  char address[64];
  if (!GetString(env, GetProp(env, o, "address"), "options.address", address, sizeof(address) - 1, nullptr))
    return nullptr;
  int64_t port;
  if (!GetInt(env, GetProp(env, o, "port"), "options.port", 0, 65535, &port)) return nullptr;
  bool reusePort, gro, v6only;
  if (!GetBool(env, GetProp(env, o, "reusePort"), "options.reusePort", true, false, &reusePort) ||
      !GetBool(env, GetProp(env, o, "gro"), "options.gro", true, false, &gro) ||
      !GetBool(env, GetProp(env, o, "v6only"), "options.v6only", true, true, &v6only)) {
    return nullptr;
  }
  int rcvbuf, sndbuf;
  if (!GetOptBytes(env, o, "rcvbuf", "options.rcvbuf", &rcvbuf) ||
      !GetOptBytes(env, o, "sndbuf", "options.sndbuf", &sndbuf)) {
    return nullptr;
  }
  int pmtu4 = -1, pmtu6 = -1;
  napi_value pv = GetProp(env, o, "pmtu");
  if (!IsNullish(env, pv)) {
    char mode[8];
    size_t n;
    napi_valuetype pt;
    napi_typeof(env, pv, &pt);
    if (pt != napi_string) return ThrowType(env, "options.pmtu must be 'do', 'dont', 'want' or 'probe'");
    napi_get_value_string_utf8(env, pv, mode, sizeof(mode), &n);
    if (std::strcmp(mode, "do") == 0) {
      pmtu4 = IP_PMTUDISC_DO, pmtu6 = IPV6_PMTUDISC_DO;
    } else if (std::strcmp(mode, "dont") == 0) {
      pmtu4 = IP_PMTUDISC_DONT, pmtu6 = IPV6_PMTUDISC_DONT;
    } else if (std::strcmp(mode, "want") == 0) {
      pmtu4 = IP_PMTUDISC_WANT, pmtu6 = IPV6_PMTUDISC_WANT;
    } else if (std::strcmp(mode, "probe") == 0) {
      pmtu4 = IP_PMTUDISC_PROBE, pmtu6 = IPV6_PMTUDISC_PROBE;
    } else {
      return ThrowType(env, "options.pmtu must be 'do', 'dont', 'want' or 'probe'");
    }
  }

  // Parse the address: IPv4, or IPv6 with an optional %scope (name or number).
  Scratch::Addr sa;
  std::memset(&sa, 0, sizeof(sa));
  socklen_t salen;
  int family;
  if (inet_pton(AF_INET, address, &sa.in4.sin_addr) == 1) {
    family = AF_INET;
    sa.in4.sin_family = AF_INET;
    sa.in4.sin_port = htons(static_cast<uint16_t>(port));
    salen = sizeof(sa.in4);
  } else {
    char* scope = std::strchr(address, '%');
    if (scope) *scope++ = 0;
    if (inet_pton(AF_INET6, address, &sa.in6.sin6_addr) != 1) {
      return ThrowType(env, "options.address must be an IPv4 or IPv6 address (got '%s')", address);
    }
    family = AF_INET6;
    sa.in6.sin6_family = AF_INET6;
    sa.in6.sin6_port = htons(static_cast<uint16_t>(port));
    if (scope) {
      unsigned idx = if_nametoindex(scope);
      if (idx == 0) {
        char* end;
        unsigned long v = std::strtoul(scope, &end, 10);
        if (*scope == 0 || *end != 0 || v == 0) return ThrowType(env, "options.address scope '%s' is unknown", scope);
        idx = static_cast<unsigned>(v);
      }
      sa.in6.sin6_scope_id = idx;
    }
    salen = sizeof(sa.in6);
  }

  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, errno, "socket");
  if (family == AF_INET6 && !SetOpt(env, fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? 1 : 0, "setsockopt(IPV6_V6ONLY)"))
    return nullptr;
  if (reusePort && !SetOpt(env, fd, SOL_SOCKET, SO_REUSEPORT, 1, "setsockopt(SO_REUSEPORT)")) return nullptr;
  if (rcvbuf && !SetBuf(env, fd, SO_RCVBUFFORCE, SO_RCVBUF, rcvbuf, "setsockopt(SO_RCVBUF)")) return nullptr;
  if (sndbuf && !SetBuf(env, fd, SO_SNDBUFFORCE, SO_SNDBUF, sndbuf, "setsockopt(SO_SNDBUF)")) return nullptr;
  if (gro && !SetOpt(env, fd, SOL_UDP, UDP_GRO, 1, "setsockopt(UDP_GRO)")) return nullptr;
  if (pmtu4 >= 0) {
    if (family == AF_INET) {
      if (!SetOpt(env, fd, IPPROTO_IP, IP_MTU_DISCOVER, pmtu4, "setsockopt(IP_MTU_DISCOVER)")) return nullptr;
    } else {
      if (!SetOpt(env, fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, pmtu6, "setsockopt(IPV6_MTU_DISCOVER)")) return nullptr;
      // Dual-stack sockets send IPv4 through the IPv4 path, which reads its own option.
      if (!v6only) setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu4, sizeof(pmtu4));
    }
  }
  if (bind(fd, &sa.sa, salen) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, err, "bind");
  }
  return Number(env, fd);
}

napi_value UdpLocalPort(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  if (!GetFd(env, a.argv[0], "fd", &fd)) return nullptr;
  Scratch::Addr sa;
  socklen_t len = sizeof(sa);
  if (getsockname(fd, &sa.sa, &len) < 0) return ThrowErrno(env, errno, "getsockname");
  uint16_t port = 0;
  if (sa.sa.sa_family == AF_INET)
    port = ntohs(sa.in4.sin_port);
  else if (sa.sa.sa_family == AF_INET6)
    port = ntohs(sa.in6.sin6_port);
  else
    return ThrowErrno(env, EAFNOSUPPORT, "getsockname");
  return Number(env, port);
}

napi_value RecvBatch(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  View<uint8_t> bufs, addrs;
  View<uint32_t> offsets, sizes;
  View<uint16_t> gso;
  int64_t slotLen;
  uint32_t max;
  if (!GetFd(env, a.argv[0], "fd", &fd) || !GetU8(env, a.argv[1], "bufs", &bufs) ||
      !GetU32(env, a.argv[2], "offsets", &offsets) || !GetU32(env, a.argv[3], "sizes", &sizes) ||
      !GetInt(env, a.argv[4], "slotLen", 1, 0xffffffffLL, &slotLen) || !GetBatchCount(env, a.argv[5], "max", &max) ||
      !GetU8(env, a.argv[6], "addrs", &addrs) || !GetU16(env, a.argv[7], "gso", &gso) ||
      !CheckLen(env, offsets.elems, max, "offsets", "max") || !CheckLen(env, sizes.elems, max, "sizes", "max") ||
      !CheckLen(env, gso.elems, max, "gso", "max")) {
    return nullptr;
  }
  if (addrs.elems < static_cast<size_t>(max) * kAddrLen) {
    return ThrowRange(env, "addrs has %zu bytes, fewer than max * ADDR_LEN (%zu)", addrs.elems,
                      static_cast<size_t>(max) * kAddrLen);
  }
  Scratch* s = GetScratch(env);
  const uint64_t slot = static_cast<uint64_t>(slotLen);
  for (uint32_t i = 0; i < max; i++) {
    if (offsets.data[i] + slot > bufs.elems) {
      return ThrowRange(env, "offsets[%u] (%u) + slotLen (%llu) exceeds bufs.length (%zu)", i, offsets.data[i],
                        static_cast<unsigned long long>(slot), bufs.elems);
    }
    s->iov[i].iov_base = bufs.data + offsets.data[i];
    s->iov[i].iov_len = slot;
    s->msgs[i].msg_hdr.msg_namelen = sizeof(Scratch::Addr);
    s->msgs[i].msg_hdr.msg_controllen = kCmsgSpace;
    s->msgs[i].msg_hdr.msg_flags = 0;
  }
  if (max == 0) return Number(env, 0);
  int n;
  do {
    n = recvmmsg(fd, s->msgs, max, MSG_DONTWAIT, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Number(env, 0);
    return ThrowErrno(env, errno, "recvmmsg");
  }
  for (int i = 0; i < n; i++) {
    const struct msghdr& h = s->msgs[i].msg_hdr;
    sizes.data[i] = (h.msg_flags & MSG_TRUNC) ? static_cast<uint32_t>(slot + 1) : s->msgs[i].msg_len;
    AddrToRecord(s->addrs[i], addrs.data + static_cast<size_t>(i) * kAddrLen);
    uint16_t seg = 0;
    if (h.msg_controllen >= sizeof(struct cmsghdr)) {
      for (struct cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(const_cast<struct msghdr*>(&h), c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
          int v;
          std::memcpy(&v, CMSG_DATA(c), sizeof(v));
          seg = v > 0 && v <= 0xffff ? static_cast<uint16_t>(v) : 0;
        }
      }
    }
    gso.data[i] = seg;
  }
  return Number(env, n);
}

napi_value SendBatch(napi_env env, napi_callback_info info) {
  Args a(env, info);
  View<int32_t> fds, errs;
  View<uint8_t> bufs, addrs;
  View<uint32_t> offsets, sizes;
  View<uint16_t> gso;
  uint32_t count;
  if (!GetI32(env, a.argv[0], "fds", &fds) || !GetU8(env, a.argv[1], "bufs", &bufs) ||
      !GetU32(env, a.argv[2], "offsets", &offsets) || !GetU32(env, a.argv[3], "sizes", &sizes) ||
      !GetBatchCount(env, a.argv[4], "count", &count) || !GetU8(env, a.argv[5], "addrs", &addrs) ||
      !GetU16(env, a.argv[6], "gso", &gso) || !GetI32(env, a.argv[7], "errs", &errs) ||
      !CheckLen(env, fds.elems, count, "fds", "count") || !CheckLen(env, offsets.elems, count, "offsets", "count") ||
      !CheckLen(env, sizes.elems, count, "sizes", "count") || !CheckLen(env, gso.elems, count, "gso", "count") ||
      !CheckLen(env, errs.elems, count, "errs", "count")) {
    return nullptr;
  }
  if (addrs.elems < static_cast<size_t>(count) * kAddrLen) {
    return ThrowRange(env, "addrs has %zu bytes, fewer than count * ADDR_LEN (%zu)", addrs.elems,
                      static_cast<size_t>(count) * kAddrLen);
  }
  Scratch* s = GetScratch(env);
  for (uint32_t i = 0; i < count; i++) {
    if (fds.data[i] < 0) return ThrowRange(env, "fds[%u] (%d) is not a file descriptor", i, fds.data[i]);
    if (static_cast<uint64_t>(offsets.data[i]) + sizes.data[i] > bufs.elems) {
      return ThrowRange(env, "offsets[%u] (%u) + sizes[%u] (%u) exceeds bufs.length (%zu)", i, offsets.data[i], i,
                        sizes.data[i], bufs.elems);
    }
    struct msghdr& h = s->msgs[i].msg_hdr;
    if (!RecordToAddr(addrs.data + static_cast<size_t>(i) * kAddrLen, &s->addrs[i], &h.msg_namelen)) {
      return ThrowRange(env, "addrs record %u has family %u, not 4 or 6", i, addrs.data[i * kAddrLen]);
    }
    s->iov[i].iov_base = bufs.data + offsets.data[i];
    s->iov[i].iov_len = sizes.data[i];
    if (gso.data[i] > 0) {
      struct cmsghdr* c = &s->cmsgs[i].align;
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      std::memcpy(CMSG_DATA(c), &gso.data[i], sizeof(uint16_t));
      h.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
    } else {
      h.msg_controllen = 0;
    }
    h.msg_flags = 0;
    errs.data[i] = 0;
  }
  // Runs of equal fds share one sendmmsg. sendmmsg stops at the first failing
  // message and returns how many went out (the error itself is lost), so a short
  // return is followed by a retry at the failing message, which reports its errno.
  uint32_t i = 0;
  while (i < count) {
    const int fd = fds.data[i];
    uint32_t end = i + 1;
    while (end < count && fds.data[end] == fd) end++;
    while (i < end) {
      int r = sendmmsg(fd, &s->msgs[i], end - i, MSG_DONTWAIT);
      if (r > 0) {
        i += static_cast<uint32_t>(r);
        continue;
      }
      int err = r < 0 ? errno : EIO;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return Number(env, i);
      errs.data[i++] = err;
    }
  }
  return Number(env, count);
}

}  // namespace vxtap
