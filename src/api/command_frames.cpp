#include "api/command_frames.h"

#include <signal.h>

#include <cctype>
#include <nlohmann/json.hpp>

#include "api/json_body.h"

namespace osb::api {
namespace {

using controlplane::CommandSpec;
using nlohmann::json;

constexpr char kStdinId = 0;

}  // namespace

std::optional<int> ParseSignal(const std::string& text) {
  if (!text.empty() && text.size() <= 2 && std::isdigit(static_cast<unsigned char>(text[0]))) {
    int n = 0;
    for (char c : text) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      n = n * 10 + (c - '0');
    }
    if (n >= 1 && n <= 64) return n;
    return std::nullopt;
  }
  std::string name = text;
  for (auto& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  static const std::pair<const char*, int> kNames[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL}, {"USR1", SIGUSR1},
      {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"WINCH", SIGWINCH},
      {"ALRM", SIGALRM}, {"PIPE", SIGPIPE}, {"TSTP", SIGTSTP}};
  for (const auto& [n, v] : kNames)
    if (name == n) return v;
  return std::nullopt;
}

Result<CommandSpec> ParseCommandSpec(const std::string& body, bool with_type) {
  auto j = with_type ? JsonBody::Parse(body, {"type", "cmd", "args", "envs", "cwd", "timeoutSec", "pty", "cols", "rows"})
                     : JsonBody::Parse(body, {"cmd", "args", "envs", "cwd", "timeoutSec", "pty", "cols", "rows"});
  if (!j) return j.error();
  CommandSpec c;
  auto cmd = j->String("cmd");
  if (!cmd) return cmd.error();
  if (*cmd) c.cmd = **cmd;
  auto args = j->StringList("args");
  if (!args) return args.error();
  if (*args) c.args = **args;
  auto envs = j->StringMap("envs");
  if (!envs) return envs.error();
  if (*envs) c.envs = **envs;
  auto cwd = j->String("cwd");
  if (!cwd) return cwd.error();
  if (*cwd) {
    if (!(*cwd)->empty() && (*cwd)->front() != '/')
      return MakeError(ErrorCode::kInvalidArgument, "cwd: must be an absolute path");
    c.cwd = **cwd;
  }
  auto timeout = j->Int("timeoutSec");
  if (!timeout) return timeout.error();
  if (*timeout) {
    if (**timeout < 0 || **timeout > 86400)
      return MakeError(ErrorCode::kInvalidArgument, "timeoutSec: must be 0-86400 seconds (0 = no limit)");
    c.timeout_sec = **timeout;
  }
  auto pty = j->Bool("pty");
  if (!pty) return pty.error();
  c.pty = pty->value_or(false);
  for (auto [name, out] : {std::pair{"cols", &c.cols}, std::pair{"rows", &c.rows}}) {
    auto v = j->Int(name);
    if (!v) return v.error();
    if (*v) {
      if (**v < 1 || **v > 1000) return MakeError(ErrorCode::kInvalidArgument, std::string(name) + ": must be 1-1000");
      *out = **v;
    }
  }
  return c;
}

Result<ClientFrame> ParseClientFrame(bool binary, const std::string& data) {
  ClientFrame f;
  if (binary) {
    if (data.empty() || data[0] != kStdinId)
      return MakeError(ErrorCode::kInvalidArgument, "binary messages must start with stream id 0 (stdin)");
    f.kind = ClientFrame::kStdin;
    f.data = data.substr(1);
    return f;
  }
  auto j = json::parse(data, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "text messages must be JSON objects");
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) return MakeError(ErrorCode::kInvalidArgument, "type: required");
  const std::string t = type->get<std::string>();
  if (t == "start") {
    auto spec = ParseCommandSpec(data, true);
    if (!spec) return spec.error();
    f.kind = ClientFrame::kStart;
    f.start = std::move(*spec);
  } else if (t == "eof") {
    f.kind = ClientFrame::kEof;
  } else if (t == "resize") {
    auto cols = j.find("cols");
    auto rows = j.find("rows");
    if (cols == j.end() || rows == j.end() || !cols->is_number_integer() || !rows->is_number_integer())
      return MakeError(ErrorCode::kInvalidArgument, "resize: cols and rows are required integers");
    const auto c = cols->get<int64_t>(), r = rows->get<int64_t>();
    if (c < 1 || c > 1000 || r < 1 || r > 1000)
      return MakeError(ErrorCode::kInvalidArgument, "resize: cols and rows must be 1-1000");
    f.kind = ClientFrame::kResize;
    f.cols = static_cast<int>(c);
    f.rows = static_cast<int>(r);
  } else if (t == "signal") {
    auto s = j.find("signal");
    std::optional<int> sig;
    if (s != j.end() && s->is_number_integer()) {
      const auto v = s->get<int64_t>();
      if (v >= 1 && v <= 64) sig = static_cast<int>(v);
    } else if (s != j.end() && s->is_string()) {
      sig = ParseSignal(s->get<std::string>());
    }
    if (!sig) return MakeError(ErrorCode::kInvalidArgument, "signal: a number 1-64 or a name like TERM");
    f.kind = ClientFrame::kSignal;
    f.signal = *sig;
  } else if (t == "stdin") {
    auto d = j.find("data");
    if (d == j.end() || !d->is_string()) return MakeError(ErrorCode::kInvalidArgument, "stdin: data (a string) required");
    f.kind = ClientFrame::kStdin;
    f.data = d->get<std::string>();
  } else {
    return MakeError(ErrorCode::kInvalidArgument, "type: unknown message type");
  }
  return f;
}

}  // namespace osb::api
