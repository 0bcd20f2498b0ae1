#include "secretsproxy/memory_budget.h"

namespace osb::secretsproxy {

bool BodyBudgetLease::TryCharge(const std::shared_ptr<const SessionSnapshot>& session, size_t limit, size_t n) {
  if (session_ && session_ != session) Release();
  auto& counter = session->buffered_body_bytes();
  size_t cur = counter.load(std::memory_order_relaxed);
  do {
    if (n > limit || cur > limit - n) return false;
  } while (!counter.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
  if (!session_) session_ = session;
  charged_ += n;
  return true;
}

void BodyBudgetLease::Release() {
  if (!session_) return;
  if (charged_ > 0) session_->buffered_body_bytes().fetch_sub(charged_, std::memory_order_relaxed);
  charged_ = 0;
  session_.reset();
}

}  // namespace osb::secretsproxy
