// LongCalls: a bounded executor for calls that last as long as a user's
// command (exec) so they never hold one of the REST server's handler
// threads. Admission is decided up front: at most `per_org` calls of one org
// at once and `max_pending` in all (running + queued); beyond either,
// Submit answers kResourceExhausted (HTTP 429, Retry-After) and runs nothing.
// Up to `threads` calls run at once; threads are started on demand.
// Admit() counts a call that runs elsewhere (no thread here) against the
// same caps. Destruction waits for the calls already admitted.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"

namespace osb::controlplane {

struct LongCallLimits {
  size_t threads = 128;
  size_t per_org = 64;
  size_t max_pending = 1024;
};

class LongCalls {
 public:
  explicit LongCalls(LongCallLimits limits = {});
  ~LongCalls();
  LongCalls(const LongCalls&) = delete;
  LongCalls& operator=(const LongCalls&) = delete;

  Status Submit(const std::string& org_id, std::function<void()> call);
  // Admission alone, for a call that needs no thread of ours (an
  // asynchronous gRPC exec): the same caps as Submit, and the call counts
  // until the returned token is dropped (destruction waits for that too).
  using Admission = std::shared_ptr<void>;
  Result<Admission> Admit(const std::string& org_id);
  // Calls of this org admitted and not finished.
  size_t InFlight(const std::string& org_id);

 private:
  void Run();
  Status AdmitLocked(const std::string& org_id);  // counts one call of the org, or kResourceExhausted
  void ReleaseLocked(const std::string& org_id);

  const LongCallLimits limits_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::function<void()>>> queue_;
  std::map<std::string, size_t> per_org_;
  size_t pending_ = 0;
  size_t idle_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace osb::controlplane
