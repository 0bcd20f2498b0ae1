#include "sandbox/allowlist.h"

namespace osb::sandbox {
namespace {

std::string Normalize(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

bool HostAllowed(const std::vector<std::string>& allowlist, std::string_view host) {
  if (allowlist.empty()) return true;
  const std::string h = Normalize(host);
  if (h.empty()) return false;
  for (const auto& entry : allowlist) {
    const std::string e = Normalize(entry);
    if (e.size() > 2 && e[0] == '*' && e[1] == '.') {
      const std::string_view suffix = std::string_view(e).substr(1);  // ".example.com"
      if (h.size() > suffix.size() && h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0) return true;
    } else if (!e.empty() && e == h) {
      return true;
    }
  }
  return false;
}

}  // namespace osb::sandbox
