// Process-wide logging setup. Everything logs through spdlog to stderr.
// Contract for every caller: never log a secret value, key, or token->value
// mapping; log secret *names* only.
#pragma once

#include <string_view>

namespace osb {

// level: "trace", "debug", "info", "warn", "error", "off". Unknown -> info.
void InitLogging(std::string_view level);

}  // namespace osb
