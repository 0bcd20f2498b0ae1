// The seccomp filter every sandboxed command runs under: an allowlist.
//
// Allowed: the syscalls of the Docker/Podman default profile for a
// container without extra capabilities (file, process, memory, signal, IPC,
// time-reading and socket calls), with these conditions:
//   socket      AF_UNIX, AF_INET, AF_INET6, and AF_NETLINK with
//               NETLINK_ROUTE only; every other family -> EAFNOSUPPORT
//               (AF_VSOCK reaches the hypervisor, AF_ALG/AF_PACKET/other
//               netlink protocols are kernel attack surface)
//   socketpair  AF_UNIX only
//   clone       without any namespace flag (else EPERM); clone3 -> ENOSYS
//               so libc falls back to the checkable clone
//   personality PER_LINUX, UNAME26, PER_LINUX32 and the query only
// Denied with EPERM (what the kernel tells an unprivileged caller): mount and
// namespace operations, ptrace and process_vm_*, kcmp, pidfd_getfd,
// kernel/module/keyring/bpf/perf interfaces, time setting, swap, reboot,
// userfaultfd, io_uring, handle-based opens, modify_ldt, iopl/ioperm.
// Everything else: ENOSYS, so newer syscalls look unimplemented and callers
// fall back. Only the native x86_64 ABI passes: any i386 (int 0x80) or x32
// syscall kills the process (libseccomp's bad-arch action).
//
// Thread safety: build once per process; Load() in a single-threaded child.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "common/result.h"

namespace osb::sandbox {

class SeccompFilter {
 public:
  // Builds the rules and compiles them to BPF once (libseccomp would
  // otherwise regenerate the program in every command it loads it for).
  static Result<SeccompFilter> Build();
  SeccompFilter(SeccompFilter&&) noexcept = default;
  SeccompFilter& operator=(SeccompFilter&&) = delete;
  SeccompFilter(const SeccompFilter&) = delete;

  // Installs the filter on the calling thread (needs no_new_privs first).
  // Async-signal-safe: one prctl.
  Status Load() const;

 private:
  SeccompFilter() = default;
  std::vector<sock_filter> program_;
};

}  // namespace osb::sandbox
