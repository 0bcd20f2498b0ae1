#include "worker/command_service.h"

#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <optional>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "crypto/random.h"
#include "proto/status_mapping.h"
#include "sandbox/commands.h"
#include "worker/request_validation.h"

namespace osb::worker {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxInboundFrame = 64 * 1024;
constexpr size_t kMaxFramesPerWake = 256 * 1024;
// After the command ended, output still in the pipes is read for at most
// this long (a process that escaped its group cannot hold the command open).
// The drain limit counts from the last read; kDrainHardLimit bounds it all.
constexpr auto kDrainLimit = std::chrono::seconds(2);
constexpr auto kDrainHardLimit = std::chrono::seconds(30);

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

grpc::Status Invalid(const std::string& m) { return {grpc::StatusCode::INVALID_ARGUMENT, m}; }

struct Chunk {
  int stream;  // 1 stdout, 2 stderr
  std::string data;
};

struct Frame {
  enum Kind { kData, kDropped, kExit } kind = kData;
  int stream = 1;
  std::string data;
  uint64_t dropped = 0;
};

}  // namespace

// One command: its handle, pump thread, retained output and attached readers.
class Command : public std::enable_shared_from_this<Command> {
 public:
  struct Cursor {
    uint64_t seq = 0;    // next chunk to deliver
    uint64_t bytes = 0;  // output bytes consumed or skipped
    bool stop = false;   // the stream is going away
    // A threadless reader's wake-up (called by the pump, without the
    // command's lock, after new output or the end); null for blocking ones.
    std::function<void()> wake;
  };

  Command(std::string sandbox_id, std::string id, const v1::CommandStart& start,
          std::unique_ptr<sandbox::CommandHandle> handle, size_t ring_bytes)
      : sandbox_id_(std::move(sandbox_id)), id_(std::move(id)), handle_(std::move(handle)), ring_bytes_(ring_bytes) {
    info_.set_command_id(id_);
    info_.set_cmd(start.cmd());
    *info_.mutable_args() = start.args();
    info_.set_status("running");
    info_.set_pty(start.pty());
    info_.set_detached(start.detach());
    info_.set_started_at_unix_ms(NowMs());
    if (start.timeout_sec() > 0) deadline_ = Clock::now() + std::chrono::seconds(start.timeout_sec());
  }

  const std::string& id() const { return id_; }
  const std::string& sandbox_id() const { return sandbox_id_; }

  v1::CommandInfo Info() {
    std::lock_guard lock(mu_);
    return info_;
  }
  bool Running() {
    std::lock_guard lock(mu_);
    return !exited_;
  }
  bool Detached() {
    std::lock_guard lock(mu_);
    return info_.detached();
  }

  // Runs the pump on its own thread; `on_gone` runs there at the end when
  // the sandbox itself went away.
  void StartPump(std::function<void(const std::shared_ptr<Command>&)> on_gone) {
    std::thread([self = shared_from_this(), on_gone = std::move(on_gone)] {
      self->Pump();
      bool gone;
      {
        std::lock_guard lock(self->mu_);
        gone = self->sandbox_gone_;
      }
      if (gone && on_gone) on_gone(self);
    }).detach();
  }

  std::shared_ptr<Cursor> Subscribe(std::function<void()> wake = nullptr) {
    auto c = std::make_shared<Cursor>();
    c->wake = std::move(wake);
    std::lock_guard lock(mu_);
    c->seq = first_seq_;
    c->bytes = 0;  // below ring_start_bytes_: the first Next reports the drop
    cursors_.push_back(c);
    return c;
  }

  void Unsubscribe(const std::shared_ptr<Cursor>& c) {
    std::lock_guard lock(mu_);
    std::erase(cursors_, c);
    cv_.notify_all();
  }

  void StopCursor(const std::shared_ptr<Cursor>& c) {
    std::lock_guard lock(mu_);
    c->stop = true;
    cv_.notify_all();
  }

  // Blocks until there is something for `c`: output (in order), a drop
  // marker, or the exit (last). Returns false when the cursor is done.
  bool Next(Cursor& c, std::vector<Frame>* out, v1::CommandInfo* exit_info) {
    out->clear();
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return c.stop || c.seq < first_seq_ + ring_.size() || c.bytes < ring_start_bytes_ || finished_; });
    return TakeLocked(c, out, exit_info);
  }

  // The same without waiting: `out` stays empty when nothing is there yet
  // (the cursor's wake says when to try again).
  bool TryNext(Cursor& c, std::vector<Frame>* out, v1::CommandInfo* exit_info) {
    out->clear();
    std::lock_guard lock(mu_);
    return TakeLocked(c, out, exit_info);
  }

  // Writes all of `data` to the command's stdin, waiting while its socket is
  // full. False when stdin is closed, the command ended, or `stop` is set.
  bool WriteStdin(const std::string& data, const Cursor& c) {
    std::lock_guard in(stdin_mu_);
    size_t sent = 0;
    while (sent < data.size()) {
      int fd = handle_->stdinFd();
      if (fd < 0 || !Running()) return false;
      {
        std::lock_guard lock(mu_);
        if (c.stop) return false;
      }
      ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == ENOTSOCK) n = write(fd, data.data() + sent, data.size() - sent);  // a terminal
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 500);
    }
    return true;
  }

  // Writes what fits now, without waiting; erases what was written.
  enum class StdinWrite { kDone, kFull, kClosed };
  StdinWrite TryWriteStdin(std::string* data) {
    std::lock_guard in(stdin_mu_);
    while (!data->empty()) {
      int fd = handle_->stdinFd();
      if (fd < 0 || !Running()) return StdinWrite::kClosed;
      ssize_t n = send(fd, data->data(), data->size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno == ENOTSOCK) n = write(fd, data->data(), data->size());  // a terminal
      if (n > 0) {
        data->erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return StdinWrite::kFull;
      return StdinWrite::kClosed;
    }
    return StdinWrite::kDone;
  }

  void CloseStdin() {
    std::lock_guard in(stdin_mu_);
    handle_->CloseStdin();
  }

  Status Resize(int cols, int rows) {
    std::lock_guard lock(mu_);
    if (exited_) return MakeError(ErrorCode::kFailedPrecondition, "the command has ended");
    return handle_->Resize(static_cast<uint16_t>(cols), static_cast<uint16_t>(rows));
  }

  Status Signal(int sig) {
    std::lock_guard lock(mu_);
    if (exited_) return MakeError(ErrorCode::kFailedPrecondition, "command " + id_ + " has ended");
    return handle_->Signal(sig);
  }

  // Waits up to `timeout` for the exit; returns the info either way.
  v1::CommandInfo WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return finished_; });
    return info_;
  }

 private:
  bool TakeLocked(Cursor& c, std::vector<Frame>* out, v1::CommandInfo* exit_info) {  // mu_ held
    if (c.stop) return false;
    if (c.bytes < ring_start_bytes_) {
      Frame f;
      f.kind = Frame::kDropped;
      f.dropped = ring_start_bytes_ - c.bytes;
      out->push_back(std::move(f));
      c.bytes = ring_start_bytes_;
      c.seq = std::max(c.seq, first_seq_);
    }
    size_t taken = 0;
    while (c.seq < first_seq_ + ring_.size() && taken < kMaxFramesPerWake) {
      const Chunk& chunk = ring_[c.seq - first_seq_];
      out->push_back(Frame{Frame::kData, chunk.stream, chunk.data, 0});
      taken += chunk.data.size();
      c.bytes += chunk.data.size();
      ++c.seq;
    }
    if (taken > 0) cv_.notify_all();  // the pump may be waiting for room
    if (out->empty() && finished_) {
      Frame f;
      f.kind = Frame::kExit;
      out->push_back(std::move(f));
      *exit_info = info_;
      c.stop = true;
    }
    return true;
  }

  void WakeReaders() {
    std::vector<std::function<void()>> wakes;
    {
      std::lock_guard lock(mu_);
      for (const auto& c : cursors_)
        if (c->wake && !c->stop) wakes.push_back(c->wake);
    }
    for (auto& w : wakes) w();
  }

  bool Backpressured() const {  // mu_ held
    for (const auto& c : cursors_)
      if (!c->stop && total_bytes_ - std::min(total_bytes_, c->bytes) >= ring_bytes_) return true;
    return false;
  }

  bool FrontUnread() const {  // mu_ held
    for (const auto& c : cursors_)
      if (!c->stop && c->seq <= first_seq_) return true;
    return false;
  }

  void Append(int stream, const char* data, size_t n) {  // mu_ held
    ring_.push_back(Chunk{stream, std::string(data, n)});
    ring_size_ += n;
    total_bytes_ += n;
    // Only output every attached reader has taken may go: backpressure keeps
    // them within a ring (+ one read) of the end, so this stays bounded.
    while (ring_size_ > ring_bytes_ && ring_.size() > 1 && !FrontUnread()) {
      ring_size_ -= ring_.front().data.size();
      ring_start_bytes_ += ring_.front().data.size();
      ring_.pop_front();
      ++first_seq_;
    }
    cv_.notify_all();
  }

  void Pump() {
    char buf[kReadChunk];
    bool out_open = handle_->stdoutFd() >= 0, err_open = handle_->stderrFd() >= 0;
    std::optional<sandbox::CommandExit> exit;
    Clock::time_point drain_until = Clock::time_point::max();
    Clock::time_point drain_hard_until = Clock::time_point::max();
    bool timed_out = false;
    for (;;) {
      if (exit && ((!out_open && !err_open) || Clock::now() >= drain_until)) break;
      {
        std::unique_lock lock(mu_);
        // While a reader is a whole ring behind, read nothing (the command
        // blocks on its pipe). After the exit, waiting for a slow reader
        // postpones the drain limit, up to kDrainHardLimit.
        for (;;) {
          const auto limit = exit ? drain_hard_until : deadline_;
          if (!Backpressured() || Clock::now() >= limit) break;
          cv_.wait_until(lock, std::min(limit, Clock::now() + std::chrono::seconds(1)));
          if (exit) drain_until = std::min(drain_hard_until, Clock::now() + kDrainLimit);
        }
        if (!exit && !timed_out && Clock::now() >= deadline_) {
          timed_out = true;
          (void)handle_->Signal(SIGKILL);
        }
      }
      pollfd fds[3];
      int n = 0;
      if (out_open) fds[n++] = {handle_->stdoutFd(), POLLIN, 0};
      if (err_open) fds[n++] = {handle_->stderrFd(), POLLIN, 0};
      if (!exit && handle_->statusFd() >= 0) fds[n++] = {handle_->statusFd(), POLLIN, 0};
      if (n == 0) break;
      int wait_ms = 1000;
      if (exit) wait_ms = 100;
      if (poll(fds, static_cast<nfds_t>(n), wait_ms) < 0 && errno != EINTR) break;
      bool appended = false;
      for (int i = 0; i < n; ++i) {
        if (!fds[i].revents) continue;
        if (fds[i].fd == handle_->statusFd()) {
          std::lock_guard lock(mu_);
          auto e = handle_->ReadExit();
          if (e) {
            exit = *e;
            drain_until = Clock::now() + kDrainLimit;
            drain_hard_until = Clock::now() + kDrainHardLimit;
            handle_->CloseStdin();
          }
          continue;
        }
        const int stream = fds[i].fd == handle_->stdoutFd() ? 1 : 2;
        ssize_t r = read(fds[i].fd, buf, sizeof buf);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        std::lock_guard lock(mu_);
        if (r <= 0) {  // EOF, or EIO: a terminal whose last user closed it
          if (stream == 1) {
            handle_->CloseStdout();
            out_open = false;
          } else {
            handle_->CloseStderr();
            err_open = false;
          }
          continue;
        }
        Append(stream, buf, static_cast<size_t>(r));
        appended = true;
        if (exit) drain_until = std::min(drain_hard_until, Clock::now() + kDrainLimit);
      }
      if (appended) WakeReaders();
    }
    Finished(exit, timed_out);
    WakeReaders();
  }

  void Finished(const std::optional<sandbox::CommandExit>& exit, bool timed_out) {
    std::lock_guard lock(mu_);
    exited_ = true;
    finished_ = true;
    info_.set_status("exited");
    info_.set_ended_at_unix_ms(NowMs());
    if (exit) {
      info_.set_exit_code(timed_out ? 124 : exit->exitCode);
      info_.set_signal(exit->termSignal);
      sandbox_gone_ = exit->sandboxGone;
    } else {
      info_.set_exit_code(-1);
    }
    info_.set_timed_out(timed_out);
    handle_->CloseStdout();
    handle_->CloseStderr();
    cv_.notify_all();
  }

  const std::string sandbox_id_;
  const std::string id_;
  std::unique_ptr<sandbox::CommandHandle> handle_;
  const size_t ring_bytes_;
  Clock::time_point deadline_ = Clock::time_point::max();

  std::mutex stdin_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  v1::CommandInfo info_;
  std::deque<Chunk> ring_;
  uint64_t first_seq_ = 0;
  size_t ring_size_ = 0;
  uint64_t ring_start_bytes_ = 0;  // output bytes dropped from the front
  uint64_t total_bytes_ = 0;
  std::vector<std::shared_ptr<Cursor>> cursors_;
  bool exited_ = false;
  bool finished_ = false;
  bool sandbox_gone_ = false;
};

struct CommandService::State {
  sandbox::SandboxRuntime& runtime;
  CommandLimits limits;
  std::mutex mu;
  // sandbox id -> command id -> command (insertion order kept by `order`)
  std::map<std::string, std::map<std::string, std::shared_ptr<Command>>> commands;
  std::map<std::string, std::deque<std::string>> order;

  State(sandbox::SandboxRuntime& r, CommandLimits l) : runtime(r), limits(l) {}

  std::shared_ptr<Command> Find(const std::string& sandbox_id, const std::string& id) {
    std::lock_guard lock(mu);
    auto s = commands.find(sandbox_id);
    if (s == commands.end()) return nullptr;
    auto c = s->second.find(id);
    return c == s->second.end() ? nullptr : c->second;
  }

  void Remove(const std::string& sandbox_id, const std::string& id) {
    std::lock_guard lock(mu);
    auto s = commands.find(sandbox_id);
    if (s == commands.end()) return;
    s->second.erase(id);
    std::erase(order[sandbox_id], id);
    if (s->second.empty()) {
      commands.erase(s);
      order.erase(sandbox_id);
    }
  }

  Result<std::shared_ptr<Command>> Launch(const v1::CommandStart& start, const std::shared_ptr<State>& self) {
    if (auto s = ValidateSandboxIdField(start.sandbox_id()); !s) return s.error();
    if (start.timeout_sec() < 0 || start.timeout_sec() > 86400)
      return MakeError(ErrorCode::kInvalidArgument, "timeoutSec: must be 0-86400");
    sandbox::CommandRequest req;
    req.cmd = start.cmd();
    req.args.assign(start.args().begin(), start.args().end());
    req.env = {start.envs().begin(), start.envs().end()};
    req.cwd = start.cwd();
    req.pty = start.pty();
    if (start.pty()) {
      if (start.cols() < 1 || start.cols() > 1000 || start.rows() < 1 || start.rows() > 1000)
        return MakeError(ErrorCode::kInvalidArgument, "cols/rows: must be 1-1000");
      req.cols = static_cast<uint16_t>(start.cols());
      req.rows = static_cast<uint16_t>(start.rows());
    }
    if (auto s = sandbox::ValidateCommand(req); !s) return s.error();
    {
      std::lock_guard lock(mu);
      size_t running = 0;
      for (const auto& [id, c] : commands[start.sandbox_id()]) running += c->Running() ? 1 : 0;
      if (running >= limits.max_running) {
        return MakeError(ErrorCode::kResourceExhausted, "sandbox " + start.sandbox_id() + " already runs " +
                                                            std::to_string(limits.max_running) +
                                                            " commands (the limit)");
      }
    }
    auto handle = runtime.StartCommand(start.sandbox_id(), req);
    if (!handle) return handle.error();
    auto cmd = std::make_shared<Command>(start.sandbox_id(), "cmd_" + crypto::RandomHex(8), start,
                                         std::move(*handle), limits.ring_bytes);
    {
      std::lock_guard lock(mu);
      commands[start.sandbox_id()][cmd->id()] = cmd;
      auto& ids = order[start.sandbox_id()];
      ids.push_back(cmd->id());
      // Forget the oldest ended commands beyond the retention cap.
      size_t ended = 0;
      for (const auto& id : ids) ended += commands[start.sandbox_id()][id]->Running() ? 0 : 1;
      for (auto it = ids.begin(); ended > limits.max_retained && it != ids.end();) {
        auto& c = commands[start.sandbox_id()][*it];
        if (!c->Running()) {
          commands[start.sandbox_id()].erase(*it);
          it = ids.erase(it);
          --ended;
        } else {
          ++it;
        }
      }
    }
    std::weak_ptr<State> weak = self;
    cmd->StartPump([weak](const std::shared_ptr<Command>& c) {
      if (auto s = weak.lock()) s->Remove(c->sandbox_id(), c->id());
    });
    spdlog::info("sandbox {}: command {} started ({}{})", start.sandbox_id(), cmd->id(),
                 start.detach() ? "detached" : "attached", start.pty() ? ", terminal" : "");
    return cmd;
  }
};

CommandService::CommandService(sandbox::SandboxRuntime& runtime, CommandLimits limits)
    : state_(std::make_shared<State>(runtime, limits)) {}

CommandService::~CommandService() {
  std::lock_guard lock(state_->mu);
  for (auto& [sb, cmds] : state_->commands)
    for (auto& [id, c] : cmds) (void)c->Signal(SIGKILL);
}

grpc::Status CommandService::Start(grpc::ServerContext*, const v1::CommandStart* req, v1::CommandInfo* out) {
  v1::CommandStart start = *req;
  start.set_detach(true);
  auto cmd = state_->Launch(start, state_);
  if (!cmd) return proto::ToGrpcStatus(cmd.error());
  *out = (*cmd)->Info();
  return grpc::Status::OK;
}

grpc::Status CommandService::List(grpc::ServerContext*, const v1::ListCommandsRequest* req,
                                  v1::ListCommandsResponse* out) {
  std::vector<std::shared_ptr<Command>> cmds;
  {
    std::lock_guard lock(state_->mu);
    auto s = state_->commands.find(req->sandbox_id());
    if (s != state_->commands.end()) {
      for (const auto& id : state_->order[req->sandbox_id()]) cmds.push_back(s->second[id]);
    }
  }
  for (const auto& c : cmds) *out->add_commands() = c->Info();
  return grpc::Status::OK;
}

grpc::Status CommandService::Kill(grpc::ServerContext*, const v1::KillCommandRequest* req, v1::CommandInfo* out) {
  auto cmd = state_->Find(req->sandbox_id(), req->command_id());
  if (!cmd) return {grpc::StatusCode::NOT_FOUND, "command " + req->command_id() + " not found"};
  const int sig = req->signal() == 0 ? SIGKILL : req->signal();
  if (sig < 1 || sig > 64) return Invalid("signal: must be 1-64");
  if (auto s = cmd->Signal(sig); !s && s.error().code != ErrorCode::kFailedPrecondition)
    return proto::ToGrpcStatus(s.error());
  *out = cmd->Info();
  return grpc::Status::OK;
}

grpc::Status CommandService::Wait(grpc::ServerContext* ctx, const v1::WaitCommandRequest* req,
                                  v1::CommandInfo* out) {
  auto cmd = state_->Find(req->sandbox_id(), req->command_id());
  if (!cmd) return {grpc::StatusCode::NOT_FOUND, "command " + req->command_id() + " not found"};
  auto timeout = std::chrono::milliseconds(std::clamp(req->timeout_ms(), 0, 3600 * 1000));
  const auto until = Clock::now() + timeout;
  // In slices, so a caller that went away does not hold the thread long.
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
    *out = cmd->WaitFor(std::min(left, std::chrono::milliseconds(1000)));
    if (out->status() != "running" || left.count() <= 0 || ctx->IsCancelled()) break;
  }
  return grpc::Status::OK;
}

namespace {

// One Stream call, without a thread (see command_service.h). Output: the
// pump's wake (or a completed write) takes what the cursor has and writes
// it one frame at a time. Input: one read at a time, the next one after
// the frame was applied. Finish once the output is over (exit written,
// write failed, or the input ended) and the input ended too.
class StreamReactor final : public grpc::ServerBidiReactor<v1::CommandClientFrame, v1::CommandServerFrame> {
 public:
  using State = CommandService::State;

  // The pump may call a cursor's wake after the stream went away: the wake
  // goes through this, which OnDone detaches.
  struct Waker {
    std::mutex mu;
    StreamReactor* r = nullptr;
    void Wake() {
      std::lock_guard lock(mu);
      if (r) r->Pump();
    }
  };

  StreamReactor(grpc::CallbackServerContext* ctx, std::shared_ptr<State> state)
      : ctx_(ctx), state_(std::move(state)), waker_(std::make_shared<Waker>()) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!cmd_) return First(ok);
    if (!ok) return InputEnded("");
    if (in_.has_stdin()) {
      if (in_.stdin().size() > kMaxInboundFrame) return InputEnded("stdin frame larger than 64 KiB");
      std::string data = std::move(*in_.mutable_stdin());
      if (cmd_->TryWriteStdin(&data) == Command::StdinWrite::kFull) {
        // The command does not read its stdin yet: finish this write on a
        // thread of its own (the next read waits for it, so at most one).
        std::thread([this, data = std::move(data)] {
          (void)cmd_->WriteStdin(data, *cursor_);
          StartRead(&in_);
        }).detach();
        return;
      }
    } else if (in_.has_stdin_eof()) {
      cmd_->CloseStdin();
    } else if (in_.has_resize()) {
      (void)cmd_->Resize(in_.resize().cols(), in_.resize().rows());
    } else if (in_.has_signal()) {
      (void)cmd_->Signal(in_.signal());
    }
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      const bool was_exit = out_.front().has_exit();
      out_.pop_front();
      writing_ = false;
      if (!ok || was_exit) out_done_ = true;
    }
    Pump();
  }

  void OnDone() override {
    {
      std::lock_guard lock(waker_->mu);
      waker_->r = nullptr;
    }
    delete this;
  }

  // Writes the next frame if none is in flight, taking output when the
  // queue is empty; finishes the call when both directions are over.
  void Pump() {
    std::unique_lock lock(mu_);
    if (finishing_ || writing_) return;
    if (out_.empty() && !out_done_) {
      std::vector<Frame> frames;
      v1::CommandInfo exit_info;
      if (!cmd_->TryNext(*cursor_, &frames, &exit_info)) out_done_ = true;
      for (auto& f : frames) {
        v1::CommandServerFrame out;
        if (f.kind == Frame::kData) {
          if (f.stream == 1) out.set_stdout(std::move(f.data));
          else out.set_stderr(std::move(f.data));
        } else if (f.kind == Frame::kDropped) {
          out.set_dropped(f.dropped);
        } else {
          *out.mutable_exit() = exit_info;
        }
        out_.push_back(std::move(out));
      }
    }
    if (!out_.empty() && !out_done_) {
      writing_ = true;
      const v1::CommandServerFrame* next = &out_.front();
      lock.unlock();
      StartWrite(next);
      return;
    }
    if (!out_done_) return;  // idle until the pump's wake
    if (!left_) {
      left_ = true;
      lock.unlock();
      Leave();
      lock.lock();
    }
    if (!input_done_ || finishing_) return;
    finishing_ = true;
    const std::string refusal = refusal_;
    lock.unlock();
    Finish(refusal.empty() ? grpc::Status::OK : Invalid(refusal));
  }

 private:
  void First(bool ok) {
    if (!ok) return Finish(grpc::Status::OK);
    std::shared_ptr<Command> cmd;
    if (in_.has_start()) {
      auto launched = state_->Launch(in_.start(), state_);
      if (!launched) return Finish(proto::ToGrpcStatus(launched.error()));
      cmd = *launched;
    } else if (in_.has_attach()) {
      cmd = state_->Find(in_.attach().sandbox_id(), in_.attach().command_id());
      if (!cmd) return Finish({grpc::StatusCode::NOT_FOUND, "command " + in_.attach().command_id() + " not found"});
    } else {
      return Finish(Invalid("the first frame must be start or attach"));
    }
    std::weak_ptr<Waker> weak = waker_;
    {
      std::lock_guard lock(mu_);
      cmd_ = cmd;
      v1::CommandServerFrame started;
      *started.mutable_started() = cmd->Info();
      out_.push_back(std::move(started));
    }
    cursor_ = cmd->Subscribe([weak] {
      if (auto w = weak.lock()) w->Wake();
    });
    {
      std::lock_guard lock(waker_->mu);  // wakes reach Pump from now on
      waker_->r = this;
    }
    StartRead(&in_);
    Pump();
  }

  // The client's half ended (half-close, cancel, or a refused frame): the
  // output stops too, as with the blocking stream.
  void InputEnded(const std::string& refusal) {
    {
      std::lock_guard lock(mu_);
      input_done_ = true;
      if (refusal_.empty()) refusal_ = refusal;
    }
    cmd_->StopCursor(cursor_);
    Pump();
  }

  // The output is over: leave the command (a command this stream started,
  // not detached, dies with it).
  void Leave() {
    cmd_->StopCursor(cursor_);
    cmd_->Unsubscribe(cursor_);
    if (!cmd_->Detached() && cmd_->Running()) (void)cmd_->Signal(SIGKILL);  // its client left
    if (!cmd_->Detached()) {
      std::thread([cmd = cmd_, weak = std::weak_ptr<State>(state_)] {
        (void)cmd->WaitFor(std::chrono::seconds(5));
        if (cmd->Running()) return;
        if (auto s = weak.lock()) s->Remove(cmd->sandbox_id(), cmd->id());
      }).detach();
    }
  }

  grpc::CallbackServerContext* ctx_;
  std::shared_ptr<State> state_;
  std::shared_ptr<Waker> waker_;
  v1::CommandClientFrame in_;
  std::shared_ptr<Command> cmd_;  // set once, by First (before any other reaction)
  std::shared_ptr<Command::Cursor> cursor_;
  std::mutex mu_;
  std::deque<v1::CommandServerFrame> out_;  // front in flight while writing_
  bool writing_ = false;
  bool out_done_ = false;
  bool input_done_ = false;
  bool left_ = false;
  bool finishing_ = false;
  std::string refusal_;
};

}  // namespace

grpc::ServerBidiReactor<v1::CommandClientFrame, v1::CommandServerFrame>* CommandService::Stream(
    grpc::CallbackServerContext* ctx) {
  return new StreamReactor(ctx, state_);
}

}  // namespace osb::worker
