// Egress allowlist matching for DNS, as documented in DESIGN.md: entries are
// exact names or "*.suffix" (grammar: common/host_pattern.h; an entry's
// optional ":port" is ignored here: the name resolves, the proxy enforces
// the port); matching is case-insensitive and ignores one trailing
// dot on either side; "*.example.com" matches "a.example.com" and
// "a.b.example.com" but not "example.com"; an empty list allows every name.
// Pure function, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace osb::sandbox {

bool HostAllowed(const std::vector<std::string>& allowlist, std::string_view host);

}  // namespace osb::sandbox
