// Durations on command lines: "86400", "90s", "30m", "24h", "7d" -> seconds.
// kInvalidArgument naming `field` for anything else (empty, negative, junk,
// overflow beyond int).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace osb {

Result<int> ParseDurationSeconds(std::string_view field, std::string_view text);

}  // namespace osb
