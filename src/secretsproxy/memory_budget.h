// Per-sandbox body memory (DESIGN.md: every shared resource of the worker is
// accounted per sandbox with a cap). Bodies the proxy holds whole in memory
// — a request body it substitutes or scans before sending, a response body
// it scrubs before sending with an exact Content-Length — are charged to the
// sandbox's counter (SessionSnapshot::buffered_body_bytes, shared by all of
// its connections and snapshots) before a byte of them is read, and only if
// the total stays within ProxyLimits::session_body_budget. When the charge
// is refused the exchange streams the body instead (re-framed as chunked),
// or, for plain HTTP request bodies that must be scanned whole, answers 503.
// So one sandbox can make the worker hold at most its budget in bodies,
// whatever number of slow connections it opens, in either direction.
//
// A BodyBudgetLease holds one body's charge and returns it when released or
// destroyed. Lock-free (one compare-and-swap loop); not thread-safe itself
// (one per body), the counter it charges is.
#pragma once

#include <cstddef>
#include <memory>

#include "secretsproxy/session_registry.h"

namespace osb::secretsproxy {

class BodyBudgetLease {
 public:
  BodyBudgetLease() = default;
  ~BodyBudgetLease() { Release(); }
  BodyBudgetLease(const BodyBudgetLease&) = delete;
  BodyBudgetLease& operator=(const BodyBudgetLease&) = delete;

  // Charges n more bytes to session's counter if the total stays <= limit;
  // false (nothing charged) otherwise. A lease charges one session: a call
  // for another session first releases the previous charge.
  bool TryCharge(const std::shared_ptr<const SessionSnapshot>& session, size_t limit, size_t n);
  // Returns everything charged (idempotent).
  void Release();
  size_t charged() const { return charged_; }

 private:
  std::shared_ptr<const SessionSnapshot> session_;
  size_t charged_ = 0;
};

}  // namespace osb::secretsproxy
