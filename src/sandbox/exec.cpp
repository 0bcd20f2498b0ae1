// SandboxRuntime::Exec's I/O: hands the command to the sandbox init with
// four fds (status socket, stdin, stdout, stderr) and pumps them until the
// command ended and its output is drained, enforcing caps and timeout.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "sandbox/init_protocol.h"
#include "sandbox/runtime_internal.h"

namespace osb::sandbox {
namespace {

using Clock = std::chrono::steady_clock;
// After the command ended (and init killed its process group), output still
// buffered in the pipes is read for at most this long; a process that
// escaped into another session cannot hold Exec open.
constexpr auto kDrainLimit = std::chrono::seconds(2);
// After a timeout kill, the init reports the exit almost at once; this
// bounds the wait if it cannot.
constexpr auto kKillGrace = std::chrono::seconds(5);

struct Fd {
  int fd = -1;
  ~Fd() { Close(); }
  void Close() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

struct Stream {
  Fd fd;
  std::string* data;
  bool* truncated;
};

// Reads what is available; returns false at EOF/error.
bool Pump(Stream& s) {
  char buf[16384];
  ssize_t n = read(s.fd.fd, buf, sizeof buf);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (n == 0) return false;
  size_t room = kMaxOutputBytes - std::min(kMaxOutputBytes, s.data->size());
  size_t take = std::min(room, static_cast<size_t>(n));
  s.data->append(buf, take);
  if (take < static_cast<size_t>(n)) *s.truncated = true;
  return true;
}

}  // namespace

Result<ExecResult> SandboxRuntime::Impl::RunExec(Sandbox& sb, const ExecRequest& req) {
  int status[2], in[2], out[2], err[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, status) != 0)
    return MakeError(ErrorCode::kInternal, "exec: socketpair failed");
  Fd statusFd{status[0]}, statusChild{status[1]};
  // stdin is a socket so writing to a command that stopped reading gives
  // EPIPE (MSG_NOSIGNAL), never SIGPIPE in the worker.
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)
    return MakeError(ErrorCode::kInternal, "exec: socketpair failed");
  Fd inFd{in[0]}, inChild{in[1]};
  if (pipe2(out, O_CLOEXEC) != 0) return MakeError(ErrorCode::kInternal, "exec: pipe failed");
  Fd outChild{out[1]};
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    return MakeError(ErrorCode::kInternal, "exec: pipe failed");
  }
  Fd errChild{err[1]};
  ExecResult result;
  Stream streams[2] = {{Fd{out[0]}, &result.stdoutData, &result.stdoutTruncated},
                       {Fd{err[0]}, &result.stderrData, &result.stderrTruncated}};
  for (auto& s : streams) fcntl(s.fd.fd, F_SETFL, O_NONBLOCK);
  fcntl(inFd.fd, F_SETFL, O_NONBLOCK);
  shutdown(inChild.fd, SHUT_WR);  // the command's stdin is read-only

  ExecMessage m{req.cmd, req.args, req.env, req.cwd};
  {
    std::lock_guard lock(sb.controlMu);
    if (!SendRecord(sb.controlFd, EncodeExec(m), {statusChild.fd, inChild.fd, outChild.fd, errChild.fd}))
      return MakeError(ErrorCode::kUnavailable, "sandbox " + sb.info.id + " is not running");
  }
  statusChild.Close();
  inChild.Close();
  outChild.Close();
  errChild.Close();

  size_t stdinSent = 0;
  if (req.stdinData.empty()) inFd.Close();
  const auto deadline = Clock::now() + std::chrono::seconds(req.timeoutSec);
  Clock::time_point hardStop = Clock::time_point::max();
  bool exited = false;
  int waitStatus = 0;

  for (;;) {
    const bool outputOpen = streams[0].fd.fd >= 0 || streams[1].fd.fd >= 0;
    if (exited && !outputOpen) break;
    auto now = Clock::now();
    if (now >= hardStop) break;
    if (!result.timedOut && !exited && now >= deadline) {
      result.timedOut = true;
      SendRecord(statusFd.fd, "K");
      hardStop = now + kKillGrace;
    }
    auto until = std::min(hardStop, result.timedOut || exited ? hardStop : deadline);
    auto waitMs = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count() + 1;

    pollfd fds[4];
    int n = 0;
    for (auto& s : streams)
      if (s.fd.fd >= 0) fds[n++] = {s.fd.fd, POLLIN, 0};
    if (statusFd.fd >= 0) fds[n++] = {statusFd.fd, POLLIN, 0};
    if (inFd.fd >= 0) fds[n++] = {inFd.fd, POLLOUT, 0};
    if (poll(fds, n, static_cast<int>(std::min<int64_t>(waitMs, 60000))) < 0 && errno != EINTR)
      return MakeError(ErrorCode::kInternal, "exec: poll failed");

    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      for (auto& s : streams)
        if (s.fd.fd == fds[i].fd && !Pump(s)) s.fd.Close();
      if (fds[i].fd == inFd.fd) {
        ssize_t w = send(inFd.fd, req.stdinData.data() + stdinSent, req.stdinData.size() - stdinSent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) stdinSent += static_cast<size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || stdinSent == req.stdinData.size()) inFd.Close();
      } else if (fds[i].fd == statusFd.fd) {
        auto rec = RecvRecord(statusFd.fd);
        if (!rec) {
          statusFd.Close();
          if (!exited)
            return MakeError(ErrorCode::kUnavailable, "sandbox " + sb.info.id + " ended while the command ran");
          continue;
        }
        WireReader r(*rec);
        char tag = r.Tag();
        if (tag == 'X') {
          auto st = r.Num();
          waitStatus = st ? static_cast<int>(*st) : 0;
          exited = true;
          inFd.Close();
          hardStop = std::min(hardStop, Clock::now() + kDrainLimit);
        } else if (tag == 'F') {
          auto msg = r.Str();
          return MakeError(ErrorCode::kInternal, "exec: " + (msg ? *msg : std::string("failed to start")));
        }
      }
    }
  }
  if (!exited && !result.timedOut) return MakeError(ErrorCode::kInternal, "exec: lost track of the command");
  if (WIFEXITED(waitStatus)) result.exitCode = WEXITSTATUS(waitStatus);
  if (WIFSIGNALED(waitStatus)) {
    result.termSignal = WTERMSIG(waitStatus);
    result.exitCode = 128 + result.termSignal;
  }
  // Output not yet at EOF when we stopped waiting counts as truncated.
  for (auto& s : streams)
    if (s.fd.fd >= 0) *s.truncated = true;
  if (result.timedOut) result.exitCode = 124;
  return result;
}

}  // namespace osb::sandbox
