// Rate limiting for log lines that an untrusted party (a sandbox) can cause:
// refusals, accept errors, parse errors. Each (key, kind) pair — key = the
// sandbox (or source address), kind = a fixed text naming the event — may
// log `burst` lines per `window`; further lines are counted, not written, and
// the next line admitted for that pair says how many were left out
// (" (N similar suppressed)"). The table of pairs is bounded (max_keys):
// when it is full, expired pairs are dropped, and if none has expired new
// pairs share one overflow entry, so memory does not grow with the number of
// distinct keys an attacker can make up. Thread-safe.
#pragma once

#include <spdlog/common.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace osb {

class RateLimitedLog {
 public:
  struct Options {
    size_t burst = 5;
    std::chrono::milliseconds window{10'000};
    size_t max_keys = 4096;
  };
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  RateLimitedLog() : RateLimitedLog(Options{}) {}
  // clock: for tests; default std::chrono::steady_clock::now.
  explicit RateLimitedLog(Options options, Clock clock = {});

  // std::nullopt: leave this line out. Otherwise the line may be written and
  // the value is how many lines of this pair were left out since the last
  // admitted one (0 = none).
  std::optional<uint64_t> Admit(std::string_view key, std::string_view kind);
  // "" for 0, else " (N similar suppressed)".
  static std::string Suffix(uint64_t suppressed);
  // Lines left out so far (all pairs).
  uint64_t suppressed_total() const { return suppressed_total_.load(); }
  size_t tracked_pairs() const;

  // One process-wide instance (default options) for spdlog lines.
  static RateLimitedLog& Process();

 private:
  struct Entry {
    std::chrono::steady_clock::time_point window_start;
    size_t used = 0;
    uint64_t suppressed = 0;
  };
  std::chrono::steady_clock::time_point Now() const;
  void Prune(std::chrono::steady_clock::time_point now);

  const Options options_;
  const Clock clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;  // key + '\0' + kind
  std::atomic<uint64_t> suppressed_total_{0};
};

// Logs `message` through spdlog at `level` if RateLimitedLog::Process()
// admits (key, kind), with the suppressed-count suffix. `message` must not
// hold a secret (see common/log.h).
void LogLimited(spdlog::level::level_enum level, std::string_view key, std::string_view kind,
                const std::string& message);

}  // namespace osb
