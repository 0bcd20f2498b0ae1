#include "sandbox/init_launcher.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/close_range.h>
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

namespace {

bool WriteProcFile(pid_t pid, const char* name, const std::string& value) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  close(fd);
  return ok;
}

int DupHigh(int fd) {
  if (fd < 0) return -1;
  int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  close(fd);
  return high;
}

}  // namespace

Result<LaunchedInit> LaunchInit(const std::string& initBinary, uint32_t hostIdBase) {
  if (access(initBinary.c_str(), X_OK) != 0)
    return MakeError(ErrorCode::kFailedPrecondition, "sandbox init binary not executable: " + initBinary);
  if (hostIdBase == 0) return MakeError(ErrorCode::kInvalidArgument, "hostIdBase: must not be 0");
  // The child execs through this fd: as the sandbox's root it has no right
  // to search the host directories on the way to the binary.
  int exeFd = DupHigh(open(initBinary.c_str(), O_PATH | O_CLOEXEC));
  // The child waits on this pipe until its uid/gid maps are written.
  int sync[2] = {-1, -1};
  if (exeFd < 0 || pipe2(sync, O_CLOEXEC) != 0) {
    if (exeFd >= 0) close(exeFd);
    return MakeError(ErrorCode::kInternal, std::string("cannot prepare init: ") + std::strerror(errno));
  }
  int syncRead = DupHigh(sync[0]);
  int syncWrite = sync[1];
  auto closeSync = [&] {
    close(exeFd);
    if (syncRead >= 0) close(syncRead);
    if (syncWrite >= 0) close(syncWrite);
  };
  if (syncRead < 0) {
    closeSync();
    return MakeError(ErrorCode::kInternal, "cannot prepare init file descriptors");
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    closeSync();
    return MakeError(ErrorCode::kInternal, std::string("socketpair: ") + std::strerror(errno));
  }
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
    closeSync();
    close(sv[0]);
    if (child >= 0) close(child);
    if (devnullHigh >= 0) close(devnullHigh);
    return MakeError(ErrorCode::kInternal, "cannot prepare init file descriptors");
  }
  char* const argv[] = {const_cast<char*>("osb-sandbox-init"), nullptr};
  char* const envp[] = {nullptr};

  // Raw clone behaves like fork, with new namespaces; the child is PID 1 of
  // its PID namespace. The user namespace is created first, so it owns the
  // others: the child has every capability over its own mount, PID, UTS,
  // IPC and network namespaces and none over the host's. Only
  // async-signal-safe calls until execve.
  long pid = syscall(SYS_clone,
                     SIGCHLD | CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET,
                     nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    close(syncWrite);
    char go = 0;
    if (read(syncRead, &go, 1) != 1 || go != 'G') _exit(127);
    // Become root of the namespace (host uid hostIdBase), so execve keeps
    // the namespace's capabilities. Raw syscalls: glibc's setresuid would
    // signal the parent's other threads, which do not exist here, and hang.
    if (syscall(SYS_setresgid, 0, 0, 0) != 0 || syscall(SYS_setresuid, 0, 0, 0) != 0) _exit(127);
    if (dup2(devnullHigh, 0) < 0 || dup2(devnullHigh, 1) < 0 || dup2(child, 3) < 0) _exit(127);
    // Everything but 0-3 closes at exec (the exe fd must stay open until then).
    syscall(SYS_close_range, 4, ~0U, CLOSE_RANGE_CLOEXEC);
    syscall(SYS_execveat, exeFd, "", argv, envp, AT_EMPTY_PATH);
    _exit(127);
  }
  int err = errno;
  close(child);
  close(devnullHigh);
  close(exeFd);
  close(syncRead);
  if (pid < 0) {
    close(syncWrite);
    close(sv[0]);
    return MakeError(ErrorCode::kInternal, std::string("clone: ") + std::strerror(err));
  }
  // Inside ids 0..65535 are host ids hostIdBase..hostIdBase+65535. Written
  // by us (root of the host namespace), so setgroups stays usable inside.
  const std::string map = "0 " + std::to_string(hostIdBase) + " " + std::to_string(kIdsPerSandbox) + "\n";
  const bool mapped = WriteProcFile(static_cast<pid_t>(pid), "uid_map", map) &&
                      WriteProcFile(static_cast<pid_t>(pid), "gid_map", map);
  const int mapErr = errno;
  const char go = 'G';
  if (!mapped || write(syncWrite, &go, 1) != 1) {
    close(syncWrite);
    kill(static_cast<pid_t>(pid), SIGKILL);
    while (waitpid(static_cast<pid_t>(pid), nullptr, 0) < 0 && errno == EINTR) {
    }
    close(sv[0]);
    return MakeError(ErrorCode::kInternal, std::string("cannot map the sandbox's user ids: ") + std::strerror(mapErr));
  }
  close(syncWrite);
  LaunchedInit li;
  li.pid = static_cast<pid_t>(pid);
  li.setupFd = sv[0];
  li.pidfd = static_cast<int>(syscall(SYS_pidfd_open, li.pid, 0));
  return li;
}

}  // namespace osb::sandbox
