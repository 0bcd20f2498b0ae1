// Gives freed heap memory back to the OS after a burst. glibc's malloc keeps
// freed memory in its arenas (one per thread that allocated), so after a
// burst of connections the RSS stays at its peak although the memory is
// free. MemoryTrimmer calls malloc_trim(0) on a background thread:
//   - when the live count reported through Note() falls to zero, or to at
//     most half of its peak since the last trim (peak >= kMinPeak);
//   - at most once per min_interval (a trim walks every arena: it costs
//     about a millisecond per hundred MiB and must not run per connection).
// Without glibc it does nothing. Note() is cheap (atomics; a lock only when
// it requests a trim). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace osb {

class MemoryTrimmer {
 public:
  static constexpr int64_t kMinPeak = 8;
  explicit MemoryTrimmer(std::chrono::milliseconds min_interval = std::chrono::milliseconds(1000));
  ~MemoryTrimmer();
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  // The number of live things (connections) holding memory, after a change.
  void Note(int64_t live);
  // Trims done so far (for tests and metrics).
  uint64_t trims() const { return trims_.load(); }

 private:
  void Loop();
  const std::chrono::milliseconds min_interval_;
  std::atomic<int64_t> peak_{0};
  std::atomic<bool> wanted_{false};
  std::atomic<uint64_t> trims_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace osb
