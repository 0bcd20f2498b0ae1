#include "common/rate_limited_log.h"

#include <spdlog/spdlog.h>

namespace osb {

namespace {
// Key of the shared entry used once the table is full.
constexpr std::string_view kOverflowKey = "\x01overflow";
}  // namespace

RateLimitedLog::RateLimitedLog(Options options, Clock clock) : options_(options), clock_(std::move(clock)) {}

std::chrono::steady_clock::time_point RateLimitedLog::Now() const {
  return clock_ ? clock_() : std::chrono::steady_clock::now();
}

void RateLimitedLog::Prune(std::chrono::steady_clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (now - it->second.window_start >= options_.window) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<uint64_t> RateLimitedLog::Admit(std::string_view key, std::string_view kind) {
  const auto now = Now();
  std::lock_guard lock(mu_);
  std::string k;
  k.reserve(key.size() + 1 + kind.size());
  k.append(key).append(1, '\0').append(kind);
  auto it = entries_.find(k);
  if (it == entries_.end()) {
    if (entries_.size() >= options_.max_keys) Prune(now);
    if (entries_.size() >= options_.max_keys) k = std::string(kOverflowKey);
    it = entries_.try_emplace(std::move(k), Entry{now, 0, 0}).first;
  }
  Entry& e = it->second;
  if (now - e.window_start >= options_.window) {
    e.window_start = now;
    e.used = 0;
  }
  if (e.used >= options_.burst) {
    ++e.suppressed;
    ++suppressed_total_;
    return std::nullopt;
  }
  ++e.used;
  const uint64_t left_out = e.suppressed;
  e.suppressed = 0;
  return left_out;
}

std::string RateLimitedLog::Suffix(uint64_t suppressed) {
  if (suppressed == 0) return "";
  return " (" + std::to_string(suppressed) + " similar suppressed)";
}

size_t RateLimitedLog::tracked_pairs() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

RateLimitedLog& RateLimitedLog::Process() {
  static RateLimitedLog* instance = new RateLimitedLog();  // never destroyed: usable during exit
  return *instance;
}

void LogLimited(spdlog::level::level_enum level, std::string_view key, std::string_view kind,
                const std::string& message) {
  if (!spdlog::should_log(level)) return;
  const auto admitted = RateLimitedLog::Process().Admit(key, kind);
  if (!admitted) return;
  spdlog::log(level, "{}{}", message, RateLimitedLog::Suffix(*admitted));
}

}  // namespace osb
