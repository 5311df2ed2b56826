// CPU-local workers: pin the calling thread, and steer a reuseport group's
// receive sockets (and the uplink TAP's queues) by the CPU that received the
// packet, so a worker pinned to CPU n handles what arrived on CPU n.
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common.h"

namespace vxtap {

// sched_setaffinity(0) on the calling thread: [cpu] only.
napi_value ThreadPinCpu(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int64_t cpu;
  if (!GetInt(env, a.argv[0], "cpu", 0, CPU_SETSIZE - 1, &cpu)) return nullptr;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<int>(cpu), &set);
  if (sched_setaffinity(0, sizeof(set), &set) < 0) return ThrowErrno(env, errno, "sched_setaffinity");
  return Undefined(env);
}

// The CPU the calling thread runs on now.
napi_value ThreadCpu(napi_env env, napi_callback_info) {
  int cpu = sched_getcpu();
  if (cpu < 0) return ThrowErrno(env, errno, "sched_getcpu");
  return Number(env, cpu);
}

// TUNSETSTEERINGEBPF with a two-instruction socket filter that returns the
// current CPU id; tun takes the result modulo its queue count. The device keeps
// its own reference to the program, so our fd is closed at once. Setting it on
// one queue's fd sets it for the device.
napi_value TapSteerByCpu(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  if (!GetFd(env, a.argv[0], "fd", &fd)) return nullptr;
  struct bpf_insn insns[2];
  std::memset(insns, 0, sizeof(insns));
  insns[0].code = BPF_JMP | BPF_CALL;
  insns[0].imm = BPF_FUNC_get_smp_processor_id;
  insns[1].code = BPF_JMP | BPF_EXIT;
  static const char kLicense[] = "GPL";
  union bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = reinterpret_cast<uint64_t>(insns);
  attr.insn_cnt = 2;
  attr.license = reinterpret_cast<uint64_t>(kLicense);
  int prog = static_cast<int>(syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr)));
  if (prog < 0) return ThrowErrno(env, errno, "bpf(BPF_PROG_LOAD)");
  int rc = ioctl(fd, TUNSETSTEERINGEBPF, &prog);
  int err = errno;
  close(prog);
  if (rc < 0) return ThrowErrno(env, err, "ioctl(TUNSETSTEERINGEBPF)");
  return Undefined(env);
}

// SO_ATTACH_REUSEPORT_CBPF: the group member is (CPU id mod `members`), in the
// order the members were bound. Set on one member, it applies to the group.
napi_value UdpSteerByCpu(napi_env env, napi_callback_info info) {
  Args a(env, info);
  int fd;
  int64_t members;
  if (!GetFd(env, a.argv[0], "fd", &fd) || !GetInt(env, a.argv[1], "members", 1, 1024, &members)) return nullptr;
  struct sock_filter code[3] = {
      {BPF_LD | BPF_W | BPF_ABS, 0, 0, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_CPU)},
      {BPF_ALU | BPF_MOD | BPF_K, 0, 0, static_cast<uint32_t>(members)},
      {BPF_RET | BPF_A, 0, 0, 0},
  };
  struct sock_fprog prog = {3, code};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0) {
    return ThrowErrno(env, errno, "setsockopt(SO_ATTACH_REUSEPORT_CBPF)");
  }
  return Undefined(env);
}

}  // namespace vxtap
