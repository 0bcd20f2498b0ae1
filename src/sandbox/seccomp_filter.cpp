#include "sandbox/seccomp_filter.h"

#include <errno.h>
#include <linux/netlink.h>
#include <sched.h>
#include <seccomp.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace osb::sandbox {
namespace {

// Allowed without condition. Modelled on the Docker/Podman default profile
// (moby profiles/seccomp/default.json, the part granted to a container with
// no extra capabilities), minus io_uring, name_to_handle_at, modify_ldt and
// the process-inspection calls denied below. Names unknown to this
// architecture (the *32 / *64 / time64 variants of 32-bit ABIs) are skipped.
const char* const kAllowed[] = {
    "accept", "accept4", "access", "alarm", "arch_prctl", "bind", "brk", "cachestat", "capget", "capset",
    "chdir", "chmod", "chown", "clock_getres", "clock_gettime", "clock_nanosleep", "close", "close_range",
    "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fork", "fremovexattr", "fsetxattr", "fstat", "fstatfs", "fsync", "ftruncate", "futex", "futex_requeue",
    "futex_wait", "futex_waitv", "futex_wake", "futimesat", "get_mempolicy", "get_robust_list",
    "get_thread_area", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "geteuid", "getgid",
    "getgroups", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresuid", "getrlimit", "getrusage", "getsid", "getsockname", "getsockopt",
    "gettid", "gettimeofday", "getuid", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
    "inotify_rm_watch", "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit",
    "ioctl", "ioprio_get", "ioprio_set", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack", "mbind", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedsend", "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "nanosleep", "newfstatat", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll",
    "prctl", "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recvfrom", "recvmmsg",
    "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
    "sched_rr_get_interval", "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
    "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "sendfile", "sendmmsg",
    "sendmsg", "sendto", "set_mempolicy", "set_robust_list", "set_thread_area", "set_tid_address",
    "setfsgid", "setfsuid", "setgid", "setgroups", "setitimer", "setpgid", "setpriority", "setregid",
    "setresgid", "setresuid", "setreuid", "setrlimit", "setsid", "setsockopt", "setuid", "setxattr", "shmat",
    "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4", "splice", "stat",
    "statfs", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs", "sysinfo", "tee",
    "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime", "timer_settime",
    "timerfd_create", "timerfd_gettime", "timerfd_settime", "times", "tkill", "truncate", "umask", "uname",
    "unlink", "unlinkat", "utime", "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "write",
    "writev"};

// Denied with EPERM (what the kernel says to an unprivileged caller, so
// programs that probe them take their fallback): kernel, module, keyring,
// bpf, perf, ptrace and process-inspection interfaces, every mount and
// namespace operation, time setting, swap, reboot, userfaultfd, io_uring,
// handle-based opens. Anything in neither list gets ENOSYS.
const char* const kDenied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "mount", "umount", "umount2",
    "pivot_root", "chroot", "mount_setattr", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
    "fspick", "unshare", "setns", "kexec_load", "kexec_file_load", "reboot", "init_module", "finit_module",
    "delete_module", "create_module", "query_module", "get_kernel_syms", "bpf", "perf_event_open", "keyctl",
    "add_key", "request_key", "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "userfaultfd",
    "acct", "quotactl", "quotactl_fd", "syslog", "lookup_dcookie", "nfsservctl", "uselib", "ustat", "sysfs",
    "_sysctl", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "stime", "iopl", "ioperm",
    "vhangup", "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init", "fanotify_mark",
    "modify_ldt", "sethostname", "setdomainname", "move_pages", "migrate_pages", "set_mempolicy_home_node",
    "process_madvise", "vm86", "vm86old"};

Error RuleError(const char* what) { return MakeError(ErrorCode::kInternal, std::string("seccomp: cannot add ") + what); }

}  // namespace

Result<SeccompFilter> SeccompFilter::Build() {
  // Default: ENOSYS, so a syscall newer than this list looks unimplemented
  // and libc/runtimes fall back to an older one (as with clone3).
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
  if (!ctx) return MakeError(ErrorCode::kInternal, "seccomp_init failed");
  struct Release {
    scmp_filter_ctx ctx;
    ~Release() { seccomp_release(ctx); }
  } release{ctx};
  // Only the native ABI: i386 and x32 calls hit the bad-arch action (kill).
  for (const char* name : kAllowed) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0) return RuleError(name);
  }
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) != 0) return RuleError(name);
  }

  // personality: only the values Docker allows (PER_LINUX, UNAME26,
  // PER_LINUX32 and the query 0xffffffff); others, e.g. ADDR_NO_RANDOMIZE,
  // get the default ENOSYS.
  for (uint64_t persona : {0x0ull, 0x0008ull, 0x20000ull, 0x20008ull, 0xffffffffull})
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1, SCMP_A0(SCMP_CMP_EQ, persona)) != 0)
      return RuleError("personality");

  // clone: allowed unless any namespace flag is set (a new user namespace
  // would regain capabilities). Flags are argument 0 on x86_64.
  const uint64_t nsFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
                           CLONE_NEWNET | CLONE_NEWCGROUP | 0x00000080 /* CLONE_NEWTIME */;
  if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, nsFlags, 0)) != 0)
    return RuleError("clone");
  // Any namespace bit: EPERM, one rule per bit (libseccomp ORs rules).
  for (uint64_t bit = 1; bit; bit <<= 1) {
    if (!(nsFlags & bit)) continue;
    if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit)) != 0)
      return RuleError("clone");
  }
  // clone3 passes flags in memory, which seccomp cannot read: it is left to
  // the default ENOSYS, which makes glibc fall back to clone, checked above.

  // socket: AF_UNIX, AF_INET, AF_INET6, and AF_NETLINK with NETLINK_ROUTE
  // only (glibc's getaddrinfo reads interface addresses through it). Every
  // other family (AF_VSOCK reaches the hypervisor; AF_ALG, AF_PACKET, other
  // netlink protocols are kernel attack surface) fails as unsupported.
  for (int family : {AF_UNIX, AF_INET, AF_INET6})
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family))) != 0)
      return RuleError("socket");
  if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                       SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE)) != 0)
    return RuleError("socket");
  // The rest fails as unsupported. Rules of one syscall with different
  // actions must not overlap, so the denied values are listed as ranges
  // around the allowed ones; a value none covers gets the default ENOSYS.
  auto denyFamily = [&](scmp_arg_cmp cmp) {
    return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, cmp) == 0;
  };
  bool ok = denyFamily(SCMP_A0(SCMP_CMP_EQ, AF_UNSPEC)) && denyFamily(SCMP_A0(SCMP_CMP_GT, AF_NETLINK));
  for (int family = AF_INET + 1; ok && family < AF_NETLINK; ++family)
    if (family != AF_INET6) ok = denyFamily(SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(family)));
  ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                              SCMP_A2(SCMP_CMP_NE, NETLINK_ROUTE)) == 0;
  if (!ok) return RuleError("socket");
  // socketpair only makes sense (and is only allowed) for AF_UNIX.
  if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX)) != 0 ||
      seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX)) != 0)
    return RuleError("socketpair");

  // Compile once: libseccomp writes the BPF program to an fd.
  int fd = memfd_create("osb-seccomp", MFD_CLOEXEC);
  if (fd < 0) return MakeError(ErrorCode::kInternal, std::string("seccomp: memfd: ") + std::strerror(errno));
  std::string bytes;
  if (int rc = seccomp_export_bpf(ctx, fd); rc != 0) {
    close(fd);
    return MakeError(ErrorCode::kInternal, std::string("seccomp_export_bpf: ") + std::strerror(-rc));
  }
  char buf[65536];
  for (off_t off = 0;;) {
    ssize_t n = pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.append(buf, static_cast<size_t>(n));
    off += n;
  }
  close(fd);
  if (bytes.empty() || bytes.size() % sizeof(sock_filter) != 0 || bytes.size() / sizeof(sock_filter) > BPF_MAXINSNS)
    return MakeError(ErrorCode::kInternal, "seccomp: bad compiled program size " + std::to_string(bytes.size()));
  SeccompFilter filter;
  filter.program_.resize(bytes.size() / sizeof(sock_filter));
  std::memcpy(filter.program_.data(), bytes.data(), bytes.size());
  return filter;
}

Status SeccompFilter::Load() const {
  sock_fprog prog{static_cast<unsigned short>(program_.size()), const_cast<sock_filter*>(program_.data())};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    return MakeError(ErrorCode::kInternal, std::string("seccomp: load: ") + std::strerror(errno));
  return {};
}

}  // namespace osb::sandbox
