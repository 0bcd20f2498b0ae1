#include "sandbox/init_launcher.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace osb::sandbox {

std::string DefaultInitBinary() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "osb-sandbox-init";
  std::string exe(buf, static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/') + 1) + "osb-sandbox-init";
}

Result<LaunchedInit> LaunchInit(const std::string& initBinary) {
  if (access(initBinary.c_str(), X_OK) != 0)
    return MakeError(ErrorCode::kFailedPrecondition, "sandbox init binary not executable: " + initBinary);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return MakeError(ErrorCode::kInternal, std::string("socketpair: ") + std::strerror(errno));
  // Setup carries the CA bundle and base env in one record: allow 32 MiB.
  int big = 32 << 20;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
  // Move our fds above 3 so the child's dup2 calls cannot clobber them.
  int child = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  int devnullHigh = devnull >= 0 ? fcntl(devnull, F_DUPFD_CLOEXEC, 10) : -1;
  close(sv[1]);
  if (devnull >= 0) close(devnull);
  if (child < 0 || devnullHigh < 0) {
    close(sv[0]);
    if (child >= 0) close(child);
    if (devnullHigh >= 0) close(devnullHigh);
    return MakeError(ErrorCode::kInternal, "cannot prepare init file descriptors");
  }
  char* const argv[] = {const_cast<char*>("osb-sandbox-init"), nullptr};
  char* const envp[] = {nullptr};
  const char* path = initBinary.c_str();

  // Raw clone behaves like fork, with new namespaces; the child is PID 1 of
  // its PID namespace. Only async-signal-safe calls until execve.
  long pid = syscall(SYS_clone, SIGCHLD | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET,
                     nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (dup2(devnullHigh, 0) < 0 || dup2(devnullHigh, 1) < 0 || dup2(child, 3) < 0) _exit(127);
    syscall(SYS_close_range, 4, ~0U, 0);
    execve(path, argv, envp);
    _exit(127);
  }
  int err = errno;
  close(child);
  close(devnullHigh);
  if (pid < 0) {
    close(sv[0]);
    return MakeError(ErrorCode::kInternal, std::string("clone: ") + std::strerror(err));
  }
  LaunchedInit li;
  li.pid = static_cast<pid_t>(pid);
  li.setupFd = sv[0];
  li.pidfd = static_cast<int>(syscall(SYS_pidfd_open, li.pid, 0));
  return li;
}

}  // namespace osb::sandbox
