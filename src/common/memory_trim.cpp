#include "common/memory_trim.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace osb {

MemoryTrimmer::MemoryTrimmer(std::chrono::milliseconds min_interval)
    : min_interval_(min_interval), thread_([this] { Loop(); }) {}

MemoryTrimmer::~MemoryTrimmer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void MemoryTrimmer::Note(int64_t live) {
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (live > peak && !peak_.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
  if (live > peak) return;
  const bool drop = (live == 0 && peak > 0) || (peak >= kMinPeak && live * 2 <= peak);
  if (!drop || wanted_.exchange(true)) return;
  {
    std::lock_guard lock(mu_);  // pairs with the wait in Loop: no lost wake-up
  }
  cv_.notify_one();
}

void MemoryTrimmer::Loop() {
  std::unique_lock lock(mu_);
  auto last = std::chrono::steady_clock::now() - min_interval_;
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || wanted_.load(); });
    if (stopping_) return;
    // At most one trim per min_interval; requests in between merge.
    const auto earliest = last + min_interval_;
    if (cv_.wait_until(lock, earliest, [&] { return stopping_; })) return;
    wanted_ = false;
    peak_ = 0;  // the next burst is measured from here
    lock.unlock();
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    ++trims_;
    last = std::chrono::steady_clock::now();
    lock.lock();
  }
}

}  // namespace osb
