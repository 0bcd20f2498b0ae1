// Times and durations as users type them (API key expiry: `expiresAt`,
// `expiresIn`, `oc api-key create --expires-in`). Pure functions, no
// allocation beyond the result; safe from any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace osb {

// RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)"
// ('T'/'Z' in either case; at most 9 fraction digits, kept to the
// millisecond). nullopt for anything else, including out-of-range fields
// (month 13, hour 24, Feb 30, second 60) and years before 1970 or after 2199
// (system_clock counts nanoseconds in 64 bits: it ends in 2262).
std::optional<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view text);

// A positive duration: digits and one unit, s m h d (e.g. "90s", "45m",
// "12h", "30d"). nullopt for zero, no unit, other units, or more than
// `max` (defaults to ~100 years, so additions cannot overflow).
std::optional<std::chrono::seconds> ParseDuration(
    std::string_view text, std::chrono::seconds max = std::chrono::hours(24 * 36500));

// A duration on a command line, in whole seconds: bare seconds ("86400")
// or ParseDuration's form ("90s", "30m", "24h", "7d"), at most INT_MAX
// seconds. kInvalidArgument naming `field` for anything else.
Result<int> ParseDurationSeconds(std::string_view field, std::string_view text);

}  // namespace osb
