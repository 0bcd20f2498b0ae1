// Input rules shared by the REST API, resolution and the CLI-facing errors.
// Every error message names the field (API spelling) and, for list entries,
// the offending entry, and never includes a secret value.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace osb::controlplane {

inline constexpr int kMinCpu = 1, kMaxCpu = 64;
inline constexpr int kMinMemoryMb = 128, kMaxMemoryMb = 262144;
inline constexpr int kMinDiskMb = 64, kMaxDiskMb = 65536;  // an image sandbox's writable disk
inline constexpr int kMinTimeoutSec = 1, kMaxTimeoutSec = 86400;  // exec commands
// A sandbox's timeout: the hard ceiling is the runtime's (30 days); the
// server's --max-sandbox-lifetime (default 24 h) bounds it further.
inline constexpr int kMaxSandboxTimeoutSec = 2592000;
inline constexpr int kDefaultMaxSandboxLifetimeSec = 86400;
inline constexpr size_t kMaxSecretValueBytes = 64 * 1024;

// Project and group names: [a-zA-Z0-9][a-zA-Z0-9._-]{0,62}.
Status ValidateName(std::string_view field, std::string_view name);
// A path reference to a project/group: an id or a name (same alphabet).
Status ValidateReference(std::string_view what, std::string_view ref);
// Secret and env names: [A-Za-z_][A-Za-z0-9_]{0,127}.
Status ValidateSecretName(std::string_view field, std::string_view name);
// 1 byte .. 64 KiB. The message never contains the value.
Status ValidateSecretValue(std::string_view value);
Status ValidateRange(std::string_view field, int value, int min, int max);

// Egress allowlist / allowedHosts entries (grammar: common/host_pattern.h):
// a hostname, `*.suffix` or an IP address, each with an optional `:port`.
// Lower-cases and removes one trailing dot; a 400 naming the entry otherwise.
// HostPatterns::kAllowAny accepts `*` (a secret's allowedHosts: any host the
// sandbox may reach), which must then be the only entry.
enum class HostPatterns { kNoAny, kAllowAny };
Result<std::string> NormalizeHostPattern(std::string_view field, std::string_view entry,
                                         HostPatterns any = HostPatterns::kNoAny);
Result<std::vector<std::string>> NormalizeHostPatterns(std::string_view field,
                                                       const std::vector<std::string>& entries,
                                                       HostPatterns any = HostPatterns::kNoAny);

}  // namespace osb::controlplane
