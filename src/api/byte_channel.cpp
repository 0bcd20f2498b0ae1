#include "api/byte_channel.h"

namespace osb::api {

bool ByteChannel::Push(std::string chunk) {
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return aborted_ || chunks_.size() < max_chunks_; });
    if (aborted_ || finished_) return false;
    chunks_.push_back(std::move(chunk));
  }
  cv_.notify_all();
  Notify();
  return true;
}

std::optional<std::string> ByteChannel::Pop() {
  std::optional<std::string> out;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return aborted_ || finished_ || !chunks_.empty(); });
    if (aborted_) return std::nullopt;
    if (chunks_.empty()) return std::nullopt;  // finished
    out = std::move(chunks_.front());
    chunks_.pop_front();
  }
  cv_.notify_all();
  Notify();
  return out;
}

ByteChannel::Poll ByteChannel::TryPush(std::string& chunk) {
  {
    std::lock_guard lock(mu_);
    if (aborted_ || finished_) return Poll::kClosed;
    if (chunks_.size() >= max_chunks_) return Poll::kWait;
    chunks_.push_back(std::move(chunk));
  }
  cv_.notify_all();
  return Poll::kReady;
}

ByteChannel::Poll ByteChannel::TryPop(std::string* out) {
  {
    std::lock_guard lock(mu_);
    if (aborted_) return Poll::kClosed;
    if (chunks_.empty()) return finished_ ? Poll::kClosed : Poll::kWait;
    *out = std::move(chunks_.front());
    chunks_.pop_front();
  }
  cv_.notify_all();
  return Poll::kReady;
}

void ByteChannel::Finish() {
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  cv_.notify_all();
  Notify();
}

void ByteChannel::Abort() {
  {
    std::lock_guard lock(mu_);
    aborted_ = true;
    chunks_.clear();
  }
  cv_.notify_all();
  Notify();
}

bool ByteChannel::aborted() const {
  std::lock_guard lock(mu_);
  return aborted_;
}

void ByteChannel::SetNotifier(std::function<void()> notify) {
  std::lock_guard lock(mu_);
  notify_ = std::move(notify);
}

void ByteChannel::Notify() {
  std::function<void()> n;
  {
    std::lock_guard lock(mu_);
    n = notify_;
  }
  if (n) n();
}

}  // namespace osb::api
