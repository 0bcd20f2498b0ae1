// Commands whose I/O the caller relays as it is produced (streaming exec,
// background commands, terminals), as opposed to SandboxRuntime::Exec which
// buffers. Started through the sandbox init exactly like Exec (same user,
// no capabilities, no_new_privs, seccomp allowlist, cwd/env rules), see
// init_protocol.h.
//
// * Pipes: stdin is the write end of a socket (EPIPE, never SIGPIPE, when
//   the command stopped reading); stdout and stderr are pipe read ends. All
//   three are non-blocking; the caller polls them and decides how much to
//   read, so a slow consumer simply stops reading (backpressure: the
//   command blocks on a full pipe; nothing is dropped here).
// * Terminal (pty): the command is a session leader on a new pty of the
//   sandbox's own devpts instance; stdout() is the master (output of both
//   streams, read EIO/0 when the command and its children closed it) and
//   stdin() a duplicate of it; stderr() is -1.
//
// Ending: the command's process group is killed by the init when it exits,
// on Kill(), or when this handle is destroyed (closing the status socket),
// and when the sandbox ends. Thread safety: one thread at a time per handle.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace osb::sandbox {

struct CommandRequest {
  std::string cmd;                          // absolute path or a name looked up in PATH
  std::vector<std::string> args;
  std::map<std::string, std::string> env;   // over the sandbox's base env
  std::string cwd;                          // absolute; empty = /home/sandbox
  bool pty = false;
  uint16_t cols = 80;                       // pty only, 1..1000
  uint16_t rows = 24;
};

// How a command ended.
struct CommandExit {
  int exitCode = 0;    // exit status, or 128+signal
  int termSignal = 0;  // 0 when it exited
  bool sandboxGone = false;  // the sandbox ended under it (exitCode -1)
};

class CommandHandle {
 public:
  CommandHandle() = default;
  ~CommandHandle();
  CommandHandle(const CommandHandle&) = delete;
  CommandHandle& operator=(const CommandHandle&) = delete;

  pid_t pid() const { return pid_; }  // in the sandbox's PID namespace
  bool pty() const { return pty_; }
  int stdinFd() const { return stdin_; }
  int stdoutFd() const { return stdout_; }
  int stderrFd() const { return stderr_; }
  // Readable when the init reports the exit (or the sandbox went away).
  int statusFd() const { return status_; }

  // End of input. Pipes: shuts the socket down. Terminal: sends the
  // terminal's EOF character (^D) once, as a keyboard would.
  void CloseStdin();
  void CloseStdout();
  void CloseStderr();
  // TIOCSWINSZ on the terminal (the command gets SIGWINCH). kFailedPrecondition without a pty.
  Status Resize(uint16_t cols, uint16_t rows);
  // Sends `signal` (1..64) to the command's process group.
  Status Signal(int signal);
  // Call when statusFd() is readable: the exit once known, nullopt if the
  // record was something else.
  std::optional<CommandExit> ReadExit();

 private:
  friend class SandboxRuntime;
  friend Result<std::unique_ptr<CommandHandle>> StartCommandOn(int controlFd, const std::string& sandboxId,
                                                               const CommandRequest& request);
  pid_t pid_ = -1;
  bool pty_ = false;
  int stdin_ = -1;
  int stdout_ = -1;
  int stderr_ = -1;
  int status_ = -1;
};

// Checks a request (kInvalidArgument naming the field, kTooLarge over 1 MiB).
Status ValidateCommand(const CommandRequest& request);

}  // namespace osb::sandbox
