// WorkerClient::OpenCommandStreamAsync's default: a blocking CommandStream
// driven by two threads of its own (a reader and a writer), for clients
// without an asynchronous transport (test fakes). The gRPC client has its
// own, threadless implementation (grpc_worker_commands.cpp).
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "controlplane/worker_client.h"

namespace osb::controlplane {
namespace {

class ThreadedCommandStream final : public AsyncCommandStream,
                                    public std::enable_shared_from_this<ThreadedCommandStream> {
 public:
  explicit ThreadedCommandStream(std::unique_ptr<CommandStream> s) : s_(std::move(s)) {}

  void Start(Callbacks cb) override {
    cb_ = std::move(cb);
    auto self = shared_from_this();
    std::thread writer([self] { self->WriteLoop(); });
    std::thread([self, writer = std::move(writer)]() mutable { self->ReadLoop(writer); }).detach();
  }
  void ReadNext() override {
    std::lock_guard lock(mu_);
    ++reads_;
    cv_.notify_all();
  }
  void Write(CommandInput in, std::function<void(bool)> written) override {
    {
      std::lock_guard lock(mu_);
      if (!reading_done_) {
        writes_.emplace_back(std::move(in), std::move(written));
        cv_.notify_all();
        return;
      }
    }
    if (written) written(false);
  }
  void Cancel() override {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
      cv_.notify_all();
    }
    s_->Cancel();
  }

 private:
  void ReadLoop(std::thread& writer) {
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return reads_ > 0 || cancelled_; });
        if (cancelled_) break;
        --reads_;
      }
      CommandEvent e;
      if (!s_->Read(&e)) break;
      cb_.on_event(std::move(e));
    }
    {
      std::lock_guard lock(mu_);
      reading_done_ = true;
      cv_.notify_all();
    }
    writer.join();
    Status st = s_->Finish();
    auto cb = std::move(cb_);
    cb.on_done(std::move(st));
  }

  void WriteLoop() {
    for (;;) {
      std::pair<CommandInput, std::function<void(bool)>> w;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !writes_.empty() || reading_done_; });
        if (writes_.empty()) return;
        w = std::move(writes_.front());
        writes_.pop_front();
      }
      bool ok = true;
      switch (w.first.kind) {
        case CommandInput::kStdin: ok = s_->WriteStdin(w.first.data); break;
        case CommandInput::kEof: ok = s_->CloseStdin(); break;
        case CommandInput::kResize: ok = s_->Resize(w.first.cols, w.first.rows); break;
        case CommandInput::kSignal: ok = s_->Signal(w.first.signal); break;
        case CommandInput::kWritesDone: s_->WritesDone(); break;
      }
      if (w.second) w.second(ok);
    }
  }

  std::unique_ptr<CommandStream> s_;
  Callbacks cb_;
  std::mutex mu_;
  std::condition_variable cv_;
  int reads_ = 0;
  bool cancelled_ = false;
  bool reading_done_ = false;
  std::deque<std::pair<CommandInput, std::function<void(bool)>>> writes_;
};

}  // namespace

Result<std::shared_ptr<AsyncCommandStream>> WorkerClient::OpenCommandStreamAsync(const std::string& sandbox_id,
                                                                                 const CommandSpec* spec,
                                                                                 const std::string& command_id) {
  auto s = OpenCommandStream(sandbox_id, spec, command_id);
  if (!s) return s.error();
  return std::shared_ptr<AsyncCommandStream>(std::make_shared<ThreadedCommandStream>(std::move(*s)));
}

}  // namespace osb::controlplane
