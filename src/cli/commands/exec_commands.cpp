// oc exec (streamed by default), exec --detach, ps, attach, kill-cmd, shell.
// The frame protocol is docs/api.md "Command WebSocket frames".
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <cerrno>
#include <csignal>
#include <optional>
#include <thread>

#include "cli/commands/commands.h"
#include "cli/exit_codes.h"
#include "cli/output.h"
#include "cli/ws_client.h"

namespace osb::cli {
namespace {

struct StreamExecFlags {
  std::string id;
  std::vector<std::string> command;
  std::vector<std::string> envs;
  std::string cwd;
  int timeout = 0;
  bool detach = false;
  bool buffered = false;
  bool tty = false;
  bool no_stdin = false;
  CLI::Option* cwd_opt = nullptr;
  CLI::Option* timeout_opt = nullptr;
};

int ProcessExitCode(long long code) {
  if (code >= 0 && code <= 255) return static_cast<int>(code);
  if (code < 0 && code >= -127) return static_cast<int>(128 - code);
  return 1;
}

void WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    data += w;
    n -= static_cast<size_t>(w);
  }
}

// Puts the local terminal in raw mode for the session and restores it.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (!isatty(fd_) || tcgetattr(fd_, &saved_) != 0) return;
    termios raw = saved_;
    cfmakeraw(&raw);
    if (tcsetattr(fd_, TCSANOW, &raw) == 0) active_ = true;
  }
  ~RawTerminal() { Restore(); }
  void Restore() {
    if (active_) tcsetattr(fd_, TCSANOW, &saved_);
    active_ = false;
  }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

std::optional<std::pair<int, int>> TerminalSize(int fd) {
  winsize ws{};
  if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 || ws.ws_row == 0) return std::nullopt;
  return std::make_pair(static_cast<int>(ws.ws_col), static_cast<int>(ws.ws_row));
}

struct SessionOptions {
  bool forward_stdin = true;
  bool tty = false;  // raw mode + SIGWINCH -> resize
  std::optional<nlohmann::json> start;  // the first message (exec/stream, pty)
};

// Connects to `target`, relays stdin / output, returns the command's exit
// code (or the CLI's error code).
int RunStream(Context& ctx, const std::string& target, const SessionOptions& opt) {
  auto resolved = ctx.Resolve();
  if (!resolved) return ctx.Fail(resolved.error());
  if (resolved->api_key.empty())
    return ctx.Fail(MakeError(ErrorCode::kUnauthenticated, "no API key: run `oc login`, set OPENSANDBOX_API_KEY or pass --api-key"));
  auto url = ParseApiUrl(resolved->api_url);
  if (!url) return ctx.Usage(url.error().message);
  if (opt.tty) {
    // SIGWINCH is taken by one thread (sigwait): block it before any thread
    // exists (Asio's resolver starts one), or a thread that does not block
    // it would swallow the signal.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }
  auto ws = WsClient::Connect(*url, resolved->ca_file, resolved->api_key, target, std::chrono::seconds(30));
  if (!ws) return ctx.Fail(ws.error());
  // Shared with the stdin and SIGWINCH threads, which may outlive this call
  // (a read() on a terminal cannot be interrupted); the process exits soon after.
  std::shared_ptr<WsClient> shared = std::move(*ws);
  WsClient& client = *shared;

  std::optional<RawTerminal> raw;
  if (opt.start) client.Send(false, opt.start->dump());
  if (opt.tty) raw.emplace(STDIN_FILENO);

  auto done_flag = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool>& done = *done_flag;
  if (opt.forward_stdin) {
    // Detached: a read() on a terminal cannot be interrupted portably; the
    // process exits with it still blocked.
    std::thread([shared, done_flag] {
      WsClient& client = *shared;
      std::atomic<bool>& done = *done_flag;
      char buf[16384];
      for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (done) return;
        if (n <= 0) {
          client.Send(false, R"({"type":"eof"})");
          return;
        }
        std::string frame(1, '\0');
        frame.append(buf, static_cast<size_t>(n));
        client.Send(true, std::move(frame));
      }
    }).detach();
  }
  if (opt.tty) {
    std::thread([shared, done_flag] {
      WsClient& client = *shared;
      std::atomic<bool>& done = *done_flag;
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGWINCH);
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0 || done) return;
        if (auto size = TerminalSize(STDIN_FILENO)) {
          client.Send(false, nlohmann::json{{"type", "resize"}, {"cols", size->first}, {"rows", size->second}}.dump());
        }
      }
    }).detach();
  }

  std::optional<int> exit_code;
  std::string error;
  client.Run([&](bool binary, std::string& data) {
    if (binary) {
      if (data.empty()) return;
      WriteAll(data[0] == 2 ? STDERR_FILENO : STDOUT_FILENO, data.data() + 1, data.size() - 1);
      return;
    }
    auto j = nlohmann::json::parse(data, nullptr, false);
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return;
    const std::string type = j["type"].get<std::string>();
    if (type == "exit") {
      long long code = j.value("exitCode", 1);
      exit_code = ProcessExitCode(code);
    } else if (type == "error") {
      error = j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : "stream refused";
      const int status = j.value("status", 500);
      if (status == 404) exit_code = kExitNotFound;
      else if (status == 429 || status == 409) exit_code = kExitConflict;
      else if (status < 500) exit_code = kExitRejected;
      else exit_code = kExitFailure;
    } else if (type == "dropped") {
      if (raw) return;
      ctx.Warn(std::to_string(j.value("bytes", 0ull)) + " bytes of earlier output were dropped (only the last 1 MiB is kept)");
    }
  });
  done = true;
  if (raw) raw->Restore();
  if (!error.empty()) {
    ctx.err() << "error: " << error << "\n";
    return exit_code.value_or(kExitFailure);
  }
  if (!exit_code) {
    return ctx.Fail(MakeError(ErrorCode::kUnavailable, "the stream ended before the command's exit code arrived" +
                                                          (client.CloseReason().empty() ? std::string()
                                                                                        : " (" + client.CloseReason() + ")")));
  }
  return *exit_code;
}

nlohmann::json StartBody(const StreamExecFlags& f, const std::map<std::string, std::string>& envs) {
  nlohmann::json body = {{"cmd", f.command.front()}};
  if (f.command.size() > 1) body["args"] = std::vector<std::string>(f.command.begin() + 1, f.command.end());
  if (!envs.empty()) body["envs"] = envs;
  if (f.cwd_opt->count() > 0) body["cwd"] = f.cwd;
  return body;
}

int Buffered(Context& ctx, const StreamExecFlags& f, const std::map<std::string, std::string>& envs) {
  nlohmann::json body = StartBody(f, envs);
  if (f.timeout_opt->count() > 0) body["timeout"] = f.timeout;
  int code = 0;
  ApiClient* api = ctx.Api(&code);
  if (api == nullptr) return code;
  ApiClient::CallOptions options;
  options.timeout = f.timeout_opt->count() > 0 ? std::chrono::seconds(f.timeout + 60) : std::chrono::seconds(15 * 60);
  auto res = api->Call("POST", ApiPath({"sandboxes", f.id, "exec", "run"}), &body, options);
  if (!res) return ctx.Fail(res.error());
  const nlohmann::json& r = *res;
  if (ctx.json) {
    PrintJson(ctx.out(), r);
  } else {
    if (r.contains("stdout") && r["stdout"].is_string()) ctx.out() << r["stdout"].get<std::string>();
    ctx.out().flush();
    if (r.contains("stderr") && r["stderr"].is_string()) ctx.err() << r["stderr"].get<std::string>();
    for (const char* stream : {"stdout", "stderr"}) {
      std::string flag = std::string(stream) + "Truncated";
      if (r.contains(flag) && r[flag].is_boolean() && r[flag].get<bool>())
        ctx.Warn(std::string("the command's ") + stream + " was truncated by the server (use `oc exec` without --buffered)");
    }
  }
  if (!r.contains("exitCode") || !r["exitCode"].is_number_integer())
    return ctx.Fail(MakeError(ErrorCode::kInternal, "the server's exec response has no exitCode"));
  return ProcessExitCode(r["exitCode"].get<long long>());
}

int Exec(Context& ctx, const StreamExecFlags& f) {
  if (f.command.empty()) return ctx.Usage("missing the command: oc exec <id> -- CMD [ARGS...]");
  auto envs = ParseEnvPairs(f.envs);
  if (!envs) return ctx.Usage(envs.error().message);
  if (f.buffered) return Buffered(ctx, f, *envs);
  nlohmann::json body = StartBody(f, *envs);
  if (f.timeout_opt->count() > 0) body["timeoutSec"] = f.timeout;
  if (f.detach) {
    if (f.tty) body["pty"] = true;
    return SendOne(ctx, "POST", ApiPath({"sandboxes", f.id, "commands"}), body,
                   [](Context& ctx, const nlohmann::json& started) {
                     if (ctx.json) PrintJson(ctx.out(), started);
                     else ctx.out() << Cell(started, "id") << "\n";
                   });
  }
  body["type"] = "start";
  SessionOptions opt;
  opt.forward_stdin = !f.no_stdin;
  if (f.tty) {
    body["pty"] = true;
    if (auto size = TerminalSize(STDIN_FILENO)) {
      body["cols"] = size->first;
      body["rows"] = size->second;
    }
    opt.tty = isatty(STDIN_FILENO);
  }
  opt.start = body;
  return RunStream(ctx, ApiPath({"sandboxes", f.id, "exec", "stream"}), opt);
}

int Shell(Context& ctx, const std::string& id, const std::string& shell) {
  nlohmann::json body = {{"type", "start"}, {"pty", true}};
  if (!shell.empty()) body["cmd"] = shell;
  if (auto size = TerminalSize(STDIN_FILENO)) {
    body["cols"] = size->first;
    body["rows"] = size->second;
  }
  SessionOptions opt;
  opt.tty = isatty(STDIN_FILENO);
  opt.start = body;
  return RunStream(ctx, ApiPath({"sandboxes", id, "pty"}), opt);
}

int Attach(Context& ctx, const std::string& id, const std::string& cmd, bool no_stdin) {
  SessionOptions opt;
  opt.forward_stdin = !no_stdin;
  return RunStream(ctx, ApiPath({"sandboxes", id, "commands", cmd, "attach"}), opt);
}

int KillCmd(Context& ctx, const std::string& id, const std::string& cmd, const std::string& signal) {
  nlohmann::json body = nlohmann::json::object();
  if (!signal.empty()) body["signal"] = signal;
  return SendOne(ctx, "POST", ApiPath({"sandboxes", id, "commands", cmd, "kill"}), body,
                 [&cmd](Context& ctx, const nlohmann::json& response) {
                   if (ctx.json) PrintJson(ctx.out(), response);
                   else ctx.out() << "signalled command " << cmd << "\n";
                 });
}

}  // namespace

void AddExecCommands(CLI::App& root, Context& ctx) {
  auto ef = std::make_shared<StreamExecFlags>();
  auto* exec = root.add_subcommand(
      "exec", "Run a command in a sandbox: streams its stdout/stderr as produced, forwards stdin, exits with its exit code");
  exec->add_option("id", ef->id, "Sandbox id")->required()->check(NonEmptyArg());
  exec->add_option("command", ef->command, "Command and arguments; put them after -- when they contain options")->required();
  exec->add_option("--env", ef->envs, "Environment variable K=V for this command; repeatable")->type_name("K=V");
  ef->cwd_opt = exec->add_option("--cwd", ef->cwd, "Working directory inside the sandbox");
  ef->timeout_opt = exec->add_option("--timeout", ef->timeout, "Kill the command after this many seconds");
  exec->add_flag("--detach,-d", ef->detach, "Start it in the background and print its command id (see oc ps / attach)");
  exec->add_flag("--tty,-t", ef->tty, "Run it on a terminal (raw mode locally when stdin is one)");
  exec->add_flag("--no-stdin", ef->no_stdin, "Do not forward stdin (the command reads end-of-file)");
  exec->add_flag("--buffered", ef->buffered,
                 "Use the buffered exec/run call: output arrives at the end, at most 1 MiB per stream");
  OnRun(exec, ctx, [&ctx, ef] { return Exec(ctx, *ef); });

  auto ps_id = std::make_shared<std::string>();
  auto* ps = root.add_subcommand("ps", "List the commands of a sandbox (background and running)");
  ps->add_option("id", *ps_id, "Sandbox id")->required()->check(NonEmptyArg());
  OnRun(ps, ctx, [&ctx, ps_id] {
    return PrintList(ctx, ApiPath({"sandboxes", *ps_id, "commands"}), {"ID", "STATUS", "EXIT", "STARTED", "COMMAND"},
                     [](const nlohmann::json& c) {
                       std::string command = Cell(c, "cmd");
                       if (c.contains("args") && c["args"].is_array())
                         for (const auto& a : c["args"])
                           if (a.is_string()) command += " " + a.get<std::string>();
                       return std::vector<std::string>{Cell(c, "id"), Cell(c, "status"), Cell(c, "exitCode"),
                                                       Cell(c, "startedAt"), TerminalSafe(command)};
                     });
  });

  struct AttachFlags {
    std::string id, cmd;
    bool no_stdin = false;
  };
  auto af = std::make_shared<AttachFlags>();
  auto* attach = root.add_subcommand("attach", "Attach to a background command: replays its retained output, then follows it");
  attach->add_option("id", af->id, "Sandbox id")->required()->check(NonEmptyArg());
  attach->add_option("command-id", af->cmd, "Command id (from oc exec --detach or oc ps)")->required()->check(NonEmptyArg());
  attach->add_flag("--no-stdin", af->no_stdin, "Do not forward stdin to the command");
  OnRun(attach, ctx, [&ctx, af] { return Attach(ctx, af->id, af->cmd, af->no_stdin); });

  struct KillFlags {
    std::string id, cmd, signal;
  };
  auto kf = std::make_shared<KillFlags>();
  auto* kill = root.add_subcommand("kill-cmd", "Send a signal (default KILL) to a command in a sandbox");
  kill->add_option("id", kf->id, "Sandbox id")->required()->check(NonEmptyArg());
  kill->add_option("command-id", kf->cmd, "Command id")->required()->check(NonEmptyArg());
  kill->add_option("--signal,-s", kf->signal, "Signal name or number, e.g. TERM, INT, 9");
  OnRun(kill, ctx, [&ctx, kf] { return KillCmd(ctx, kf->id, kf->cmd, kf->signal); });

  struct ShellFlags {
    std::string id, shell;
  };
  auto sf = std::make_shared<ShellFlags>();
  auto* shell = root.add_subcommand("shell", "Open an interactive shell in a sandbox (a terminal; exits with the shell's code)");
  shell->add_option("id", sf->id, "Sandbox id")->required()->check(NonEmptyArg());
  shell->add_option("--shell", sf->shell, "Program to run (default /bin/bash)");
  OnRun(shell, ctx, [&ctx, sf] { return Shell(ctx, sf->id, sf->shell); });
}

}  // namespace osb::cli
