// The worker's descriptor budget. One process serves many sandboxes and its
// own control channel (REST, gRPC, the store, log files). Sandbox-facing
// acceptors (the secrets proxy's listeners, the DNS responder's TCP port)
// take descriptors from this budget per connection and refuse new sandbox
// connections once it is spent, so `reserve` descriptors always stay free for
// the control channel: /healthz and gRPC keep answering while sandboxes
// flood.
//
//   limit    = RLIMIT_NOFILE (soft) after RaiseFileLimit()
//   capacity = limit - reserve
// A connection is admitted when (in_use + n <= capacity) AND its accepted
// descriptor number is below capacity. The second test catches descriptors
// the counter does not see: accept(2) returns the lowest free number, so a
// descriptor numbered N means at least N are open.
//
// Thread-safe (atomics). Lease releases its descriptors when destroyed.
#pragma once

#include <atomic>
#include <cstddef>
#include <optional>
#include <string>

namespace osb {

class FdBudget {
 public:
  FdBudget(size_t limit, size_t reserve) { Configure(limit, reserve); }
  FdBudget(const FdBudget&) = delete;
  FdBudget& operator=(const FdBudget&) = delete;

  // The process-wide budget, configured from the current RLIMIT_NOFILE with
  // DefaultReserve() on first use (see InitProcessFdBudget).
  static FdBudget& Process();

  void Configure(size_t limit, size_t reserve);

  class Lease {
   public:
    Lease() = default;
    Lease(FdBudget* budget, size_t n) : budget_(budget), n_(n) {}
    Lease(Lease&& o) noexcept : budget_(o.budget_), n_(o.n_) { o.budget_ = nullptr; }
    Lease& operator=(Lease&& o) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { Release(); }
    void Release();

   private:
    FdBudget* budget_ = nullptr;
    size_t n_ = 0;
  };

  // n descriptors for a new sandbox connection whose accepted descriptor is
  // `fd` (-1: not checked). std::nullopt when the budget is spent.
  std::optional<Lease> TryAcquire(size_t n, int fd = -1);

  size_t limit() const { return limit_.load(); }
  size_t reserve() const { return reserve_.load(); }
  size_t capacity() const { return capacity_.load(); }
  size_t in_use() const { return in_use_.load(); }
  uint64_t refused() const { return refused_.load(); }

  // max(64, min(limit / 4, 1024)), never more than half the limit.
  static size_t DefaultReserve(size_t limit);

 private:
  std::atomic<size_t> limit_{0}, reserve_{0}, capacity_{0}, in_use_{0};
  std::atomic<uint64_t> refused_{0};
};

// Raises the soft RLIMIT_NOFILE to the hard limit (what the host allows) and
// returns the resulting soft limit.
size_t RaiseFileLimit();

// RaiseFileLimit(), then configures FdBudget::Process() with `reserve`
// (0 = DefaultReserve). Returns a one-line summary for the startup log.
std::string InitProcessFdBudget(size_t reserve = 0);

// Descriptors open in this process now (counts /proc/self/fd; -1 if unknown).
// For tests and diagnostics, not for the data path.
long CountOpenFds();

}  // namespace osb
