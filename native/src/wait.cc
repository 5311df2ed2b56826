// poll(2) and eventfd(2): how a worker thread without an event loop sleeps until a
// queue is readable and how another thread wakes it.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "common.h"

namespace vxtap {

napi_value Poll(napi_env env, napi_callback_info info) {
  Args a(env, info);
  View<int32_t> fds;
  View<int16_t> events, revents;
  int64_t timeoutMs;
  if (!GetI32(env, a.argv[0], "fds", &fds) || !GetI16(env, a.argv[1], "events", &events) ||
      !GetI16(env, a.argv[2], "revents", &revents) || !GetInt(env, a.argv[3], "timeoutMs", -1, INT32_MAX, &timeoutMs)) {
    return nullptr;
  }
  const size_t n = fds.elems;
  if (n > kMaxBatch) return ThrowRange(env, "fds has %zu elements, more than %u", n, kMaxBatch);
  if (!CheckLen(env, events.elems, n, "events", "fds.length") ||
      !CheckLen(env, revents.elems, n, "revents", "fds.length")) {
    return nullptr;
  }
  Scratch* s = GetScratch(env);
  for (size_t i = 0; i < n; i++) {
    s->pfds[i].fd = fds.data[i];  // negative fds are ignored by poll(2)
    s->pfds[i].events = events.data[i];
    s->pfds[i].revents = 0;
  }
  int r = poll(s->pfds, n, static_cast<int>(timeoutMs));
  if (r < 0) {
    if (errno != EINTR) return ThrowErrno(env, errno, "poll");
    r = 0;
  }
  for (size_t i = 0; i < n; i++) revents.data[i] = r > 0 ? s->pfds[i].revents : 0;
  return Number(env, r);
}

napi_value EventfdOpen(napi_env env, napi_callback_info) {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, errno, "eventfd");
  return Number(env, fd);
}

napi_value EventfdSignal(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  if (!GetFd(env, a.argv[0], "fd", &fd)) return nullptr;
  const uint64_t one = 1;
  ssize_t r;
  do {
    r = write(fd, &one, sizeof(one));
  } while (r < 0 && errno == EINTR);
  // EAGAIN: the counter is at its maximum, so a poller is woken already.
  if (r < 0 && errno != EAGAIN) return ThrowErrno(env, errno, "write(eventfd)");
  return Undefined(env);
}

napi_value EventfdDrain(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  if (!GetFd(env, a.argv[0], "fd", &fd)) return nullptr;
  uint64_t value = 0;
  ssize_t r;
  do {
    r = read(fd, &value, sizeof(value));
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN) return Number(env, 0);
    return ThrowErrno(env, errno, "read(eventfd)");
  }
  return Number(env, static_cast<double>(value));
}

napi_value Close(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  if (!GetFd(env, a.argv[0], "fd", &fd)) return nullptr;
  // Linux releases the descriptor even when close reports EINTR: never retry.
  if (close(fd) < 0 && errno != EINTR) return ThrowErrno(env, errno, "close");
  return Undefined(env);
}

}  // namespace vxtap

namespace vxtap {

// setns(2) for the calling thread's network namespace: sockets and TAPs opened
// afterwards live in it. Only the calling thread moves (Linux allows CLONE_NEWNET
// in a multithreaded process). Returns an fd of the namespace the thread was in,
// to go back with netnsEnterFd; the caller closes it.
napi_value NetnsEnter(napi_env env, napi_callback_info info) {
  Args a(env, info);
  char path[256];
  size_t len;
  if (!GetString(env, a.argv[0], "path", path, sizeof(path) - 1, &len)) return nullptr;
  int prev = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (prev < 0) return ThrowErrno(env, errno, "open(/proc/thread-self/ns/net)");
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    close(prev);
    return ThrowErrno(env, err, "open(netns)");
  }
  if (setns(fd, CLONE_NEWNET) < 0) {
    int err = errno;
    close(fd);
    close(prev);
    return ThrowErrno(env, err, "setns");
  }
  close(fd);
  return Number(env, prev);
}

napi_value NetnsEnterFd(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  if (!GetFd(env, a.argv[0], "fd", &fd)) return nullptr;
  if (setns(fd, CLONE_NEWNET) < 0) return ThrowErrno(env, errno, "setns");
  return Undefined(env);
}

}  // namespace vxtap
