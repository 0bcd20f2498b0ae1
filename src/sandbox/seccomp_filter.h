// The seccomp filter every sandboxed command runs under.
//
// Default: allow. Denied with EPERM: kernel/module/keyring/bpf/perf/ptrace
// interfaces, every mount and namespace operation, time setting, swap,
// reboot, userfaultfd, io_uring, handle-based opens, process_vm_*; clone
// with CLONE_NEWUSER (or any namespace flag); clone3 gets ENOSYS so libc
// falls back to the checkable clone. Syscalls of a foreign ABI (i386, x32)
// kill the process (libseccomp's bad-arch action).
//
// Thread safety: build once per process; Load() in a single-threaded child.
#pragma once

#include "common/result.h"

namespace osb::sandbox {

class SeccompFilter {
 public:
  static Result<SeccompFilter> Build();
  SeccompFilter(SeccompFilter&& other) noexcept : ctx_(other.ctx_) { other.ctx_ = nullptr; }
  SeccompFilter& operator=(SeccompFilter&&) = delete;
  SeccompFilter(const SeccompFilter&) = delete;
  ~SeccompFilter();

  // Installs the filter on the calling thread (needs no_new_privs first).
  Status Load() const;

 private:
  explicit SeccompFilter(void* ctx) : ctx_(ctx) {}
  void* ctx_;
};

}  // namespace osb::sandbox
