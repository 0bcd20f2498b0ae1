#include "api/exec_stream_routes.h"

#include "api/command_frames.h"

#include <signal.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>
#include <mutex>
#include <vector>

#include "api/json_body.h"
#include "api/websocket.h"
#include "store/store.h"

namespace osb::api {
namespace {

using controlplane::CommandEvent;
using controlplane::CommandInfo;
using controlplane::CommandSpec;
using controlplane::CommandStream;
using nlohmann::json;

constexpr char kStdoutId = 1;
constexpr char kStderrId = 2;
constexpr int kMaxWaitSec = 300;
constexpr size_t kStdinChunk = 64 * 1024;

std::string Rfc3339(int64_t unix_ms) {
  if (unix_ms <= 0) return "";
  return store::Rfc3339Ms(std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms)));
}

json CommandJson(const CommandInfo& c) {
  json j = {{"id", c.id},
            {"cmd", c.cmd},
            {"args", c.args},
            {"status", c.status},
            {"pty", c.pty},
            {"detached", c.detached},
            {"startedAt", Rfc3339(c.started_at_unix_ms)}};
  if (c.status == "exited") {
    j["exitCode"] = c.exit_code;
    j["signal"] = c.signal;
    j["timedOut"] = c.timed_out;
    j["endedAt"] = Rfc3339(c.ended_at_unix_ms);
  } else {
    j["exitCode"] = nullptr;
  }
  return j;
}

// Sends {"type":"error"} and closes: 1008 for the client's fault (4xx),
// 1011 otherwise.
// The server's message for one command event; `exited` is set by the exit.
WsMessage EventMessage(CommandEvent& e, bool* exited) {
  WsMessage out;
  switch (e.kind) {
    case CommandEvent::kStarted:
      out.data = Dump({{"type", "started"}, {"command", CommandJson(e.info)}});
      break;
    case CommandEvent::kStdout:
    case CommandEvent::kStderr:
      out.binary = true;
      out.data.reserve(e.data.size() + 1);
      out.data.push_back(e.kind == CommandEvent::kStdout ? kStdoutId : kStderrId);
      out.data += e.data;
      break;
    case CommandEvent::kDropped:
      out.data = Dump({{"type", "dropped"}, {"bytes", e.dropped}});
      break;
    case CommandEvent::kExit: {
      json j = {{"type", "exit"}, {"exitCode", e.info.exit_code}, {"timedOut", e.info.timed_out}};
      j["signal"] = e.info.signal ? json(e.info.signal) : json(nullptr);
      out.data = Dump(j);
      *exited = true;
      break;
    }
  }
  return out;
}

void FailChannel(AsyncWebSocketChannel& ch, const Error& e) {
  const Response r = ErrorResponse(e);
  json msg = {{"type", "error"}, {"status", r.status}};
  auto parsed = json::parse(r.body, nullptr, false);
  msg["error"] = parsed.is_object() && parsed.contains("error") ? parsed["error"] : json("error");
  ch.AsyncSend(WsMessage{false, Dump(msg)}, nullptr);
  ch.Close(r.status < 500 ? kWsPolicyViolation : kWsInternalError, r.status < 500 ? "request refused" : "server error");
}

// Relays one command stream <-> one WebSocket, with no thread of its own:
// everything happens in the callbacks of both sides (any thread; state
// under mu_, and no call into either side with mu_ held).
//
// Flow control, both ways, without a buffer here: the next event is read
// from the worker only once the WebSocket write of the previous one
// completed (a client that does not read pauses the gRPC reads, then the
// worker's ring, then the command); the next client message is taken only
// once the previous one was written to the worker.
//
// Ends when the stream reports on_done (after the exit, the worker's
// refusal, or Cancel because the client left): the org's stream slot is
// released and the session told Done.
class Relay : public std::enable_shared_from_this<Relay> {
 public:
  Relay(std::shared_ptr<AsyncWebSocketChannel> ch, std::shared_ptr<controlplane::AsyncCommandStream> stream)
      : ch_(std::move(ch)), stream_(std::move(stream)) {}

  static void Run(std::shared_ptr<AsyncWebSocketChannel> ch,
                  std::shared_ptr<controlplane::AsyncCommandStream> stream) {
    auto r = std::make_shared<Relay>(std::move(ch), stream);
    // The stream's callbacks hold the relay until on_done (then the stream
    // drops them); the channel's hold it while one is pending.
    stream->Start({[r](CommandEvent e) { r->OnEvent(std::move(e)); },
                   [r](Status st) { r->OnDone(std::move(st)); }});
    stream->ReadNext();
    r->ReceiveNext();
  }

 private:
  std::shared_ptr<controlplane::AsyncCommandStream> Stream() {
    std::lock_guard lock(mu_);
    return stream_;
  }

  void OnEvent(CommandEvent e) {
    bool exited = false;
    WsMessage out = EventMessage(e, &exited);
    auto stream = Stream();
    if (!stream) return;
    if (exited) {
      {
        std::lock_guard lock(mu_);
        exited_ = true;
      }
      ch_->AsyncSend(std::move(out), nullptr);
      ch_->Close(kWsNormalClose, "exited");
      stream->Write(controlplane::CommandInput{controlplane::CommandInput::kWritesDone, {}, 0, 0, 0}, nullptr);
      stream->ReadNext();  // the end of the stream (then on_done)
      return;
    }
    ch_->AsyncSend(std::move(out), [self = shared_from_this()](bool ok) {
      auto s = self->Stream();
      if (!s) return;
      if (ok) return s->ReadNext();
      self->ClientGone();
      s->Cancel();
    });
  }

  void OnDone(Status st) {
    bool exited, client_gone;
    {
      std::lock_guard lock(mu_);
      exited = exited_;
      client_gone = client_gone_;
      stream_.reset();  // releases the org's slot (once no callback holds it)
    }
    // A client that left needs no error (its stream ended CANCELLED).
    if (!exited && !client_gone) {
      if (!st) FailChannel(*ch_, st.error());
      else ch_->Close(kWsInternalError, "stream ended");
    }
    ch_->Done();
  }

  void ClientGone() {
    std::lock_guard lock(mu_);
    client_gone_ = true;
  }

  void ReceiveNext() {
    ch_->AsyncReceive([self = shared_from_this()](std::optional<WsMessage> m) { self->OnClient(std::move(m)); });
  }

  void OnClient(std::optional<WsMessage> m) {
    auto stream = Stream();
    if (!stream) return;
    // The client left (or the session closed): end the stream. A command
    // started with this stream dies with it; an attached one only detaches.
    if (!m) {
      ClientGone();
      return stream->Cancel();
    }
    auto f = ParseClientFrame(m->binary, m->data);
    if (!f || f->kind == ClientFrame::kStart) {
      const std::string why = f ? "start: the command is already running" : f.error().message;
      ch_->AsyncSend(WsMessage{false, Dump({{"type", "error"}, {"status", 400}, {"error", why}})}, nullptr);
      ch_->Close(kWsPolicyViolation, why.substr(0, 120));
      return stream->Cancel();
    }
    using controlplane::CommandInput;
    std::vector<CommandInput> inputs;
    switch (f->kind) {
      case ClientFrame::kStdin:
        // The worker takes stdin in frames of at most 64 KiB.
        for (size_t at = 0; at < f->data.size(); at += kStdinChunk)
          inputs.push_back(CommandInput{CommandInput::kStdin, f->data.substr(at, kStdinChunk), 0, 0, 0});
        break;
      case ClientFrame::kEof: inputs.push_back(CommandInput{CommandInput::kEof, {}, 0, 0, 0}); break;
      case ClientFrame::kResize: inputs.push_back(CommandInput{CommandInput::kResize, {}, f->cols, f->rows, 0}); break;
      case ClientFrame::kSignal: inputs.push_back(CommandInput{CommandInput::kSignal, {}, 0, 0, f->signal}); break;
      case ClientFrame::kStart: break;
    }
    if (inputs.empty()) return ReceiveNext();  // an empty stdin frame
    // The next client message once the last of these reached the worker.
    for (size_t i = 0; i < inputs.size(); ++i) {
      const bool last = i + 1 == inputs.size();
      stream->Write(std::move(inputs[i]), [self = shared_from_this(), last](bool ok) {
        if (!ok) {
          if (auto s = self->Stream()) s->Cancel();
          return;
        }
        if (last) self->ReceiveNext();
      });
    }
  }

  const std::shared_ptr<AsyncWebSocketChannel> ch_;
  std::mutex mu_;
  std::shared_ptr<controlplane::AsyncCommandStream> stream_;  // null after on_done
  bool exited_ = false;
  bool client_gone_ = false;
};

// The first message of /exec/stream and /pty must be a start.
void StartAndRelay(const std::shared_ptr<AsyncWebSocketChannel>& ch, controlplane::CommandService& commands,
                   const std::string& org_id, const std::string& sandbox_id, bool force_pty) {
  ch->AsyncReceive([ch, &commands, org_id, sandbox_id, force_pty](std::optional<WsMessage> first) {
    if (!first) return ch->Done();
    auto f = ParseClientFrame(first->binary, first->data);
    if (!f) {
      FailChannel(*ch, f.error());
      return ch->Done();
    }
    if (f->kind != ClientFrame::kStart) {
      FailChannel(*ch, MakeError(ErrorCode::kInvalidArgument, "the first message must be {\"type\":\"start\"}"));
      return ch->Done();
    }
    CommandSpec spec = std::move(f->start);
    if (force_pty) {
      spec.pty = true;
      if (spec.cmd.empty()) spec.cmd = "/bin/bash";
    }
    if (spec.cmd.empty()) {
      FailChannel(*ch, MakeError(ErrorCode::kInvalidArgument, "cmd: required"));
      return ch->Done();
    }
    auto stream = commands.OpenAsync(org_id, sandbox_id, spec);
    if (!stream) {
      FailChannel(*ch, stream.error());
      return ch->Done();
    }
    Relay::Run(ch, std::move(*stream));
  });
}

Response NeedsUpgrade(Request& req, std::function<void(std::shared_ptr<AsyncWebSocketChannel>)> run) {
  (void)req;
  Response r;
  r.websocket_async = std::move(run);
  return r;
}

}  // namespace

void RegisterCommandRoutes(Router& router, controlplane::CommandService& commands) {
  auto stream_route = [&commands](bool pty) {
    return [&commands, pty](Request& req) {
      const std::string sandbox_id = req.Param("id");
      if (Status st = commands.CheckSandbox(req.org_id, sandbox_id); !st) return ErrorResponse(st.error());
      return NeedsUpgrade(req, [&commands, org = req.org_id, sandbox_id, pty](std::shared_ptr<AsyncWebSocketChannel> ch) {
        StartAndRelay(ch, commands, org, sandbox_id, pty);
      });
    };
  };
  router.Add("GET", "/api/sandboxes/{id}/exec/stream", stream_route(false), KeyScope::kSandbox);
  router.Add("GET", "/api/sandboxes/{id}/pty", stream_route(true), KeyScope::kSandbox);

  router.Add("POST", "/api/sandboxes/{id}/commands", [&commands](Request& req) {
    auto spec = ParseCommandSpec(req.body, false);
    if (!spec) return ErrorResponse(spec.error());
    if (spec->cmd.empty()) return ErrorResponse(400, "cmd: required");
    auto started = commands.Start(req.org_id, req.Param("id"), *spec);
    if (!started) return ErrorResponse(started.error());
    return JsonResponse(201, CommandJson(*started));
  }, KeyScope::kSandbox);
  router.Add("GET", "/api/sandboxes/{id}/commands", [&commands](Request& req) {
    auto list = commands.List(req.org_id, req.Param("id"));
    if (!list) return ErrorResponse(list.error());
    json out = json::array();
    for (const auto& c : *list) out.push_back(CommandJson(c));
    return JsonResponse(200, out);
  }, KeyScope::kSandbox);
  router.Add("GET", "/api/sandboxes/{id}/commands/{cmd}", [&commands](Request& req) {
    auto c = commands.Get(req.org_id, req.Param("id"), req.Param("cmd"));
    if (!c) return ErrorResponse(c.error());
    return JsonResponse(200, CommandJson(*c));
  }, KeyScope::kSandbox);
  router.Add("GET", "/api/sandboxes/{id}/commands/{cmd}/attach", [&commands](Request& req) {
    const std::string sandbox_id = req.Param("id"), command_id = req.Param("cmd");
    // Before the upgrade: another org's sandbox, or a command id that is not
    // this sandbox's, is a plain 404.
    auto c = commands.Get(req.org_id, sandbox_id, command_id);
    if (!c) return ErrorResponse(c.error());
    return NeedsUpgrade(req, [&commands, org = req.org_id, sandbox_id, command_id](
                                 std::shared_ptr<AsyncWebSocketChannel> ch) {
      auto stream = commands.AttachAsync(org, sandbox_id, command_id);
      if (!stream) {
        FailChannel(*ch, stream.error());
        return ch->Done();
      }
      Relay::Run(ch, std::move(*stream));
    });
  }, KeyScope::kSandbox);
  router.Add("POST", "/api/sandboxes/{id}/commands/{cmd}/kill", [&commands](Request& req) {
    int signal = SIGKILL;
    if (!req.body.empty()) {
      auto j = json::parse(req.body, nullptr, false);
      if (j.is_discarded() || !j.is_object()) return ErrorResponse(400, "body: must be a JSON object");
      for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key() != "signal") return ErrorResponse(400, it.key().substr(0, 64) + ": unknown field");
      if (j.contains("signal") && !j["signal"].is_null()) {
        std::optional<int> sig;
        if (j["signal"].is_number_integer()) {
          const auto v = j["signal"].get<int64_t>();
          if (v >= 1 && v <= 64) sig = static_cast<int>(v);
        } else if (j["signal"].is_string()) {
          sig = ParseSignal(j["signal"].get<std::string>());
        }
        if (!sig) return ErrorResponse(400, "signal: a number 1-64 or a name like TERM");
        signal = *sig;
      }
    }
    auto c = commands.Kill(req.org_id, req.Param("id"), req.Param("cmd"), signal);
    if (!c) return ErrorResponse(c.error());
    return JsonResponse(200, CommandJson(*c));
  }, KeyScope::kSandbox);
  router.Add("POST", "/api/sandboxes/{id}/commands/{cmd}/wait", [&commands](Request& req) {
    int timeout = 60;
    if (!req.query.empty()) {
      const std::string prefix = "timeout=";
      if (req.query.rfind(prefix, 0) != 0 || req.query.size() > prefix.size() + 3 ||
          req.query.size() == prefix.size())
        return ErrorResponse(400, "timeout: query parameter, 0-300 seconds");
      timeout = 0;
      for (char ch : req.query.substr(prefix.size())) {
        if (!std::isdigit(static_cast<unsigned char>(ch))) return ErrorResponse(400, "timeout: 0-300 seconds");
        timeout = timeout * 10 + (ch - '0');
      }
      if (timeout > kMaxWaitSec) return ErrorResponse(400, "timeout: 0-300 seconds");
    }
    Response r;
    r.deferred = [&commands, org = req.org_id, id = req.Param("id"), cmd = req.Param("cmd"), timeout](Deliver deliver) {
      Status admitted = commands.WaitAsync(org, id, cmd, std::chrono::seconds(timeout),
                                           [deliver](Result<CommandInfo> out) {
                                             if (!out) return deliver(ErrorResponse(out.error()));
                                             deliver(JsonResponse(200, CommandJson(*out)));
                                           });
      if (!admitted) deliver(ErrorResponse(admitted.error()));
    };
    return r;
  }, KeyScope::kSandbox);
}

}  // namespace osb::api
