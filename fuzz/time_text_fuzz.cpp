// Fuzzes the RFC 3339 and duration parsers behind API key expiry
// (`expiresAt`, `expiresIn`: REST input). Properties: never crashes; a parsed
// time lies in [1970-01-01T00:00:00Z - 1 day, 2200-01-01T00:00:00Z + 1 day]
// (the offset may move it); a parsed duration is positive and within max.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/time_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto t = osb::ParseRfc3339(in)) {
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count();
    if (secs < -86400 || secs > 7258118400LL + 86400) abort();
  }
  if (auto d = osb::ParseDuration(in, std::chrono::hours(24 * 3650))) {
    if (d->count() <= 0 || *d > std::chrono::hours(24 * 3650)) abort();
  }
  return 0;
}
