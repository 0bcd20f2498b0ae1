#include "sandbox/commands.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/init_protocol.h"
#include "sandbox/runtime.h"
#include "sandbox/runtime_internal.h"

namespace osb::sandbox {
namespace {

// How long the init may take to fork the command and answer.
constexpr int kStartTimeoutMs = 10000;

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

CommandHandle::~CommandHandle() {
  CloseFd(stdin_);
  CloseFd(stdout_);
  CloseFd(stderr_);
  CloseFd(status_);  // the init kills the process group if it still runs
}

void CommandHandle::CloseStdin() {
  if (stdin_ < 0) return;
  if (pty_) {
    const char eof = 0x04;
    ssize_t ignored = write(stdin_, &eof, 1);
    (void)ignored;
  } else {
    shutdown(stdin_, SHUT_WR);
  }
  CloseFd(stdin_);
}

void CommandHandle::CloseStdout() { CloseFd(stdout_); }
void CommandHandle::CloseStderr() { CloseFd(stderr_); }

Status CommandHandle::Resize(uint16_t cols, uint16_t rows) {
  if (!pty_ || stdout_ < 0) return MakeError(ErrorCode::kFailedPrecondition, "resize: the command has no terminal");
  if (cols < 1 || cols > 1000 || rows < 1 || rows > 1000)
    return MakeError(ErrorCode::kInvalidArgument, "resize: cols and rows must be 1-1000");
  winsize ws{};
  ws.ws_col = cols;
  ws.ws_row = rows;
  if (ioctl(stdout_, TIOCSWINSZ, &ws) != 0) return MakeError(ErrorCode::kInternal, "resize failed");
  return {};
}

Status CommandHandle::Signal(int signal) {
  if (signal < 1 || signal > 64) return MakeError(ErrorCode::kInvalidArgument, "signal: must be 1-64");
  if (status_ < 0 || !SendRecord(status_, WireWriter('G').Num(signal).data()))
    return MakeError(ErrorCode::kFailedPrecondition, "the command has ended");
  return {};
}

std::optional<CommandExit> CommandHandle::ReadExit() {
  if (status_ < 0) return CommandExit{-1, 0, true};
  auto rec = RecvRecord(status_);
  if (!rec) {
    CloseFd(status_);
    return CommandExit{-1, 0, true};
  }
  WireReader r(*rec);
  if (r.Tag() != 'X') return std::nullopt;
  auto st = r.Num();
  const int ws = st ? static_cast<int>(*st) : 0;
  CommandExit out;
  if (WIFEXITED(ws)) out.exitCode = WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) {
    out.termSignal = WTERMSIG(ws);
    out.exitCode = 128 + out.termSignal;
  }
  CloseFd(status_);
  return out;
}

Status ValidateCommand(const CommandRequest& request) {
  ExecRequest as_exec;
  as_exec.cmd = request.cmd;
  as_exec.args = request.args;
  as_exec.env = request.env;
  as_exec.cwd = request.cwd;
  if (auto s = ValidateExec(as_exec); !s) return s;
  if (request.pty && (request.cols < 1 || request.cols > 1000 || request.rows < 1 || request.rows > 1000))
    return MakeError(ErrorCode::kInvalidArgument, "cols/rows: must be 1-1000");
  return {};
}

Result<std::unique_ptr<CommandHandle>> StartCommandOn(int controlFd, const std::string& sandboxId,
                                                      const CommandRequest& req) {
  auto h = std::make_unique<CommandHandle>();
  h->pty_ = req.pty;
  int status[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, status) != 0)
    return MakeError(ErrorCode::kInternal, "command: socketpair failed");
  h->status_ = status[0];
  int statusChild = status[1];
  std::vector<int> childFds{statusChild};
  std::string record;
  ExecMessage m{req.cmd, req.args, req.env, req.cwd};
  if (req.pty) {
    record = EncodePtyExec(PtyExecMessage{m, req.cols, req.rows});
  } else {
    int in[2], out[2], err[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) {
      close(statusChild);
      return MakeError(ErrorCode::kInternal, "command: socketpair failed");
    }
    h->stdin_ = in[0];
    shutdown(in[1], SHUT_WR);  // the command's end only reads
    if (pipe2(out, O_CLOEXEC) != 0) {
      close(statusChild);
      close(in[1]);
      return MakeError(ErrorCode::kInternal, "command: pipe failed");
    }
    h->stdout_ = out[0];
    if (pipe2(err, O_CLOEXEC) != 0) {
      close(statusChild);
      close(in[1]);
      close(out[1]);
      return MakeError(ErrorCode::kInternal, "command: pipe failed");
    }
    h->stderr_ = err[0];
    childFds = {statusChild, in[1], out[1], err[1]};
    record = EncodeExec(m);
  }
  const bool sent = SendRecord(controlFd, record, childFds);
  for (int fd : childFds) close(fd);
  if (!sent) return MakeError(ErrorCode::kUnavailable, "sandbox " + sandboxId + " is not running");

  pollfd p{h->status_, POLLIN, 0};
  int ready;
  do {
    ready = poll(&p, 1, kStartTimeoutMs);
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) return MakeError(ErrorCode::kUnavailable, "sandbox " + sandboxId + " did not start the command");
  std::vector<int> fds;
  auto rec = RecvRecord(h->status_, &fds);
  if (!rec) return MakeError(ErrorCode::kUnavailable, "sandbox " + sandboxId + " ended");
  WireReader r(*rec);
  const char tag = r.Tag();
  if (tag == 'F') {
    for (int f : fds) close(f);
    auto msg = r.Str();
    return MakeError(ErrorCode::kInternal, "command: " + (msg ? *msg : std::string("failed to start")));
  }
  auto pid = r.Num();
  if (tag != 'S' || !pid || (req.pty && fds.size() != 1)) {
    for (int f : fds) close(f);
    return MakeError(ErrorCode::kInternal, "command: unexpected answer from the sandbox init");
  }
  h->pid_ = static_cast<pid_t>(*pid);
  if (req.pty) {
    h->stdout_ = fds[0];
    h->stdin_ = fcntl(fds[0], F_DUPFD_CLOEXEC, 0);
  }
  for (int fd : {h->stdin_, h->stdout_, h->stderr_})
    if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return h;
}

Result<std::unique_ptr<CommandHandle>> SandboxRuntime::StartCommand(const std::string& id,
                                                                    const CommandRequest& request) {
  if (auto s = ValidateCommand(request); !s) return s.error();
  std::shared_ptr<Sandbox> sb;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->sandboxes.find(id);
    if (it == impl_->sandboxes.end()) return MakeError(ErrorCode::kNotFound, "sandbox " + id + " not found");
    sb = it->second;
  }
  std::lock_guard lock(sb->controlMu);
  return StartCommandOn(sb->controlFd, id, request);
}

}  // namespace osb::sandbox
