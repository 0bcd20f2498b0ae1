#include "sandbox/seccomp_filter.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>

#include <cstring>

namespace osb::sandbox {

Result<SeccompFilter> SeccompFilter::Build() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return MakeError(ErrorCode::kInternal, "seccomp_init failed");
  SeccompFilter filter(ctx);
  static const char* kDenied[] = {
      "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
      "mount", "umount", "umount2", "pivot_root", "chroot", "mount_setattr", "move_mount", "open_tree",
      "fsopen", "fsconfig", "fsmount", "fspick", "unshare", "setns",
      "kexec_load", "kexec_file_load", "reboot", "init_module", "finit_module", "delete_module",
      "create_module", "query_module", "get_kernel_syms",
      "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
      "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "userfaultfd",
      "acct", "quotactl", "quotactl_fd", "syslog", "lookup_dcookie", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
      "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime",
      "iopl", "ioperm", "vhangup", "io_uring_setup", "io_uring_enter", "io_uring_register",
      "fanotify_init"};
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) != 0)
      return MakeError(ErrorCode::kInternal, std::string("seccomp: cannot deny ") + name);
  }
  // clone: refuse any namespace flag (new user namespaces would regain caps).
  const uint64_t nsFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                           CLONE_NEWNET | CLONE_NEWCGROUP | 0x00000080 /* CLONE_NEWTIME */;
  // One rule per flag bit: any namespace flag in clone's flags -> EPERM.
  for (uint64_t bit = 1; bit; bit <<= 1) {
    if (!(nsFlags & bit)) continue;
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit)) != 0)
      return MakeError(ErrorCode::kInternal, "seccomp: cannot restrict clone");
  }
  // clone3 passes flags in memory, which seccomp cannot read: ENOSYS makes
  // glibc fall back to clone, which the rules above check.
  if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0)
    return MakeError(ErrorCode::kInternal, "seccomp: cannot deny clone3");
  return filter;
}

SeccompFilter::~SeccompFilter() {
  if (ctx_) seccomp_release(static_cast<scmp_filter_ctx>(ctx_));
}

Status SeccompFilter::Load() const {
  int rc = seccomp_load(static_cast<scmp_filter_ctx>(ctx_));
  if (rc != 0) return MakeError(ErrorCode::kInternal, std::string("seccomp_load: ") + std::strerror(-rc));
  return {};
}

}  // namespace osb::sandbox
