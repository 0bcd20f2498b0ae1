#include "sandbox/host_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>

namespace osb::sandbox {
namespace {

constexpr size_t kCap = 64 * 1024;

std::string Resolve(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    std::string p = std::string(dir) + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return name;
}

}  // namespace

Result<CommandOutput> RunHostCommand(const std::vector<std::string>& argv, const std::string& stdinData) {
  if (argv.empty()) return MakeError(ErrorCode::kInternal, "RunHostCommand: empty argv");
  int inPipe[2], outPipe[2];
  // stdin is a socket so a child that exits early yields EPIPE, not SIGPIPE.
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, inPipe) != 0)
    return MakeError(ErrorCode::kInternal, "socketpair failed");
  if (pipe2(outPipe, O_CLOEXEC) != 0) {
    close(inPipe[0]);
    close(inPipe[1]);
    return MakeError(ErrorCode::kInternal, "pipe failed");
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, inPipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, outPipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, outPipe[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::string path = Resolve(argv[0]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char* envp[] = {const_cast<char*>("PATH=/usr/sbin:/sbin:/usr/bin:/bin"), const_cast<char*>("LC_ALL=C"), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &fa, &attr, args.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(inPipe[0]);
  close(outPipe[1]);
  if (rc != 0) {
    close(inPipe[1]);
    close(outPipe[0]);
    return MakeError(ErrorCode::kInternal, "cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  // Feed stdin and drain output together so neither side can block the other.
  CommandOutput result;
  size_t written = 0;
  int inFd = inPipe[1];
  if (stdinData.empty()) {
    close(inFd);
    inFd = -1;
  } else {
    fcntl(inFd, F_SETFL, O_NONBLOCK);
  }
  bool outOpen = true;
  while (outOpen) {
    pollfd fds[2] = {{outPipe[0], POLLIN, 0}, {inFd, POLLOUT, 0}};
    if (poll(fds, inFd >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (inFd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = send(inFd, stdinData.data() + written, stdinData.size() - written, MSG_NOSIGNAL);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) written = stdinData.size();
      if (written >= stdinData.size()) {
        close(inFd);
        inFd = -1;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[4096];
      ssize_t n = read(outPipe[0], buf, sizeof buf);
      if (n > 0) {
        if (result.out.size() < kCap) result.out.append(buf, std::min(static_cast<size_t>(n), kCap - result.out.size()));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        outOpen = false;
      }
    }
  }
  if (inFd >= 0) close(inFd);
  close(outPipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

Status RunHostCommandOk(const std::vector<std::string>& argv, const std::string& stdinData) {
  auto r = RunHostCommand(argv, stdinData);
  if (!r) return r.error();
  if (r->exitCode != 0) {
    std::string msg = r->out.substr(0, 400);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return MakeError(ErrorCode::kInternal,
                     argv[0] + " " + (argv.size() > 1 ? argv[1] : "") + " failed (exit " +
                         std::to_string(r->exitCode) + "): " + msg);
  }
  return {};
}

}  // namespace osb::sandbox
