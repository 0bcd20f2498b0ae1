#include "sandbox/allowlist.h"

#include "common/host_pattern.h"

namespace osb::sandbox {

bool HostAllowed(const std::vector<std::string>& allowlist, std::string_view host) {
  if (allowlist.empty()) return true;
  const std::string h = NormalizeHostName(host);
  if (h.empty()) return false;
  for (const auto& entry : allowlist) {
    // The one parser (common/host_pattern.h); a name resolves when some entry
    // names it on any port (the proxy enforces the port).
    auto p = ParseHostPattern(entry, "allowlist", false);
    if (!p) continue;
    p->port.reset();
    if (p->Matches(h, 0)) return true;
  }
  return false;
}

}  // namespace osb::sandbox
