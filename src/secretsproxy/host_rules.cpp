#include "secretsproxy/host_rules.h"

#include <algorithm>

namespace osb::secretsproxy {

Result<HostList> HostList::Parse(const std::vector<std::string>& patterns, std::string_view field, Star star) {
  HostList list;
  for (size_t i = 0; i < patterns.size(); ++i) {
    const std::string f = std::string(field) + "[" + std::to_string(i) + "]";
    auto p = ParseHostPattern(patterns[i], f, star == Star::kAllow);
    if (!p) return p.error();
    if (p->any) list.any_ = true;
    list.patterns_.push_back(std::move(*p));
  }
  if (list.any_ && list.patterns_.size() > 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(field) + ": '*' (any host) must be the only entry");
  }
  return list;
}

bool HostList::Matches(std::string_view host, uint16_t port) const {
  if (patterns_.empty()) return false;
  const std::string norm = NormalizeHost(host);
  return std::any_of(patterns_.begin(), patterns_.end(),
                     [&](const HostPatternSpec& p) { return p.Matches(norm, port); });
}

}  // namespace osb::secretsproxy
