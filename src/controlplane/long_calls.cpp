#include "controlplane/long_calls.h"

#include <spdlog/spdlog.h>

namespace osb::controlplane {

LongCalls::LongCalls(LongCallLimits limits) : limits_(limits) {}

LongCalls::~LongCalls() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  // Admitted calls running elsewhere (Admit) end by their own deadlines.
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return pending_ == 0; });
}

Status LongCalls::AdmitLocked(const std::string& org_id) {
  if (stopping_) return MakeError(ErrorCode::kUnavailable, "shutting down");
  size_t& mine = per_org_[org_id];
  if (mine >= limits_.per_org) {
    if (mine == 0) per_org_.erase(org_id);
    return MakeError(ErrorCode::kResourceExhausted,
                     "too many long calls at once for this org (limit " + std::to_string(limits_.per_org) +
                         ", --org-max-execs); retry later");
  }
  if (pending_ >= limits_.max_pending) {
    if (mine == 0) per_org_.erase(org_id);
    return MakeError(ErrorCode::kResourceExhausted, "the server is running too many long calls; retry later");
  }
  ++mine;
  ++pending_;
  return {};
}

void LongCalls::ReleaseLocked(const std::string& org_id) {
  if (--per_org_[org_id] == 0) per_org_.erase(org_id);
  --pending_;
}

Status LongCalls::Submit(const std::string& org_id, std::function<void()> call) {
  std::lock_guard lock(mu_);
  if (Status st = AdmitLocked(org_id); !st) return st;
  queue_.emplace_back(org_id, std::move(call));
  if (idle_ == 0 && threads_.size() < std::max<size_t>(1, limits_.threads)) {
    threads_.emplace_back([this] { Run(); });
  } else {
    cv_.notify_one();
  }
  return {};
}

Result<LongCalls::Admission> LongCalls::Admit(const std::string& org_id) {
  std::lock_guard lock(mu_);
  if (Status st = AdmitLocked(org_id); !st) return st.error();
  return Admission(static_cast<void*>(this), [this, org_id](void*) {
    {
      std::lock_guard lock(mu_);
      ReleaseLocked(org_id);
    }
    cv_.notify_all();
  });
}

size_t LongCalls::InFlight(const std::string& org_id) {
  std::lock_guard lock(mu_);
  auto it = per_org_.find(org_id);
  return it == per_org_.end() ? 0 : it->second;
}

void LongCalls::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    --idle_;
    if (queue_.empty()) return;  // stopping, and nothing admitted is left
    auto [org, call] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    try {
      call();
    } catch (const std::exception& e) {
      spdlog::error("long call threw: {}", e.what());
    }
    lock.lock();
    ReleaseLocked(org);
    if (pending_ == 0) cv_.notify_all();  // the destructor may wait for admitted calls
  }
}

}  // namespace osb::controlplane
