// Messages between SandboxRuntime (worker, host side) and osb-sandbox-init
// (PID 1 inside the sandbox). Internal to src/sandbox.
//
// Transport: AF_UNIX SOCK_SEQPACKET, one message per record, file
// descriptors passed with SCM_RIGHTS. Encoding: a 1-byte tag, then fields,
// each a u32 little-endian length + bytes (integers as decimal strings).
//
//   runtime -> init (setup socket, fd 3 of init)
//     'P' SetupMessage              init answers 'R' (ready) or 'F' <error>
//   runtime -> init (control connection: fd 3, or a connection to ctl.sock)
//     'E' ExecMessage + fds [status, stdin, stdout, stderr]
//     'T' PtyExecMessage + fds [status]: the command runs as a session
//         leader on a new terminal of the sandbox's own devpts; init answers
//         'S' with the terminal's master fd attached
//   on the per-exec status socket
//     init -> runtime 'S' <pid in sandbox>  after fork
//     init -> runtime 'X' <wait status>      when the command ended
//     init -> runtime 'F' <error>            could not start it
//     runtime -> init 'K'                    kill it (timeout)
//     runtime -> init 'G' <signal number>    send a signal to its process group
//   Closing the status socket also kills the command's process group.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "sandbox/rootfs.h"

namespace osb::sandbox {

struct SetupMessage {
  RootfsPlan rootfs;
  std::string hostname;
  std::string controlSocketPath;  // host path init listens on (re-attach)
  std::map<std::string, std::string> baseEnv;
};

struct ExecMessage {
  std::string cmd;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  // merged over the base env by init
  std::string cwd;
};

struct PtyExecMessage {
  ExecMessage exec;
  uint16_t cols = 80;  // 1..1000
  uint16_t rows = 24;  // 1..1000
};

class WireWriter {
 public:
  explicit WireWriter(char tag) { buf_.push_back(tag); }
  WireWriter& Str(const std::string& s);
  WireWriter& Num(int64_t n) { return Str(std::to_string(n)); }
  const std::string& data() const { return buf_; }

 private:
  std::string buf_;
};

class WireReader {
 public:
  explicit WireReader(const std::string& data) : data_(data) {}
  char Tag();
  std::optional<std::string> Str();
  std::optional<int64_t> Num();

 private:
  const std::string& data_;
  size_t pos_ = 0;
};

std::string EncodeSetup(const SetupMessage& m);
Result<SetupMessage> DecodeSetup(const std::string& data);
std::string EncodeExec(const ExecMessage& m);
Result<ExecMessage> DecodeExec(const std::string& data);
std::string EncodePtyExec(const PtyExecMessage& m);
Result<PtyExecMessage> DecodePtyExec(const std::string& data);

// One SEQPACKET record with up to 4 fds. Returns false on error.
bool SendRecord(int sock, const std::string& data, const std::vector<int>& fds = {});
// Receives one record (any size) and its fds (close-on-exec). nullopt on
// EOF or error; errno == 0 means orderly EOF.
std::optional<std::string> RecvRecord(int sock, std::vector<int>* fds = nullptr);

}  // namespace osb::sandbox
