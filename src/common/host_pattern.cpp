#include "common/host_pattern.h"

#include <arpa/inet.h>

#include <algorithm>

#include "common/port.h"

namespace osb {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsLabel(std::string_view label) {
  if (label.empty() || label.size() > 63) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  for (char c : label) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool IsDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  while (true) {
    const size_t dot = name.find('.');
    if (!IsLabel(name.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    name.remove_prefix(dot + 1);
  }
}

bool IsV6(const std::string& h) {
  unsigned char buf[16];
  return inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

// The entry quoted on one line: truncated, control bytes shown as '?'.
Error Bad(std::string_view field, std::string_view entry, std::string_view why) {
  std::string shown;
  for (size_t i = 0; i < entry.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(entry[i]);
    shown += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (entry.size() > 80) shown += "...";
  return MakeError(ErrorCode::kInvalidArgument,
                   std::string(field) + ": invalid entry '" + shown + "' (" + std::string(why) + ")");
}

constexpr std::string_view kExpected =
    "expected a hostname such as api.example.com, a wildcard such as *.example.com, an IP address, "
    "each optionally with :port";

}  // namespace

std::string NormalizeHostName(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  std::string out(host);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  return out;
}

bool IsIpLiteralHost(std::string_view host) {
  std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

bool IsLoopbackName(std::string_view host) {
  constexpr std::string_view kName = "localhost";
  if (host == kName) return true;
  return host.size() > kName.size() + 1 && host.ends_with(kName) && host[host.size() - kName.size() - 1] == '.';
}

std::string HostPatternSpec::Text() const {
  if (any) return "*";
  std::string out;
  if (wildcard) out = "*.";
  const bool v6 = !wildcard && host.find(':') != std::string::npos;
  if (v6 && port) out += "[";
  out += host;
  if (v6 && port) out += "]";
  if (port) {
    // push_back/append: GCC 12 -O2 reports a false -Wrestrict on ":" + ...
    out.push_back(':');
    out.append(std::to_string(*port));
  }
  return out;
}

bool HostPatternSpec::Matches(std::string_view h, uint16_t p) const {
  if (port && *port != p) return false;
  if (any) return true;
  if (!wildcard) return h == host;
  if (IsIpLiteralHost(h)) return false;
  return h.size() > host.size() + 1 && h[h.size() - host.size() - 1] == '.' &&
         h.substr(h.size() - host.size()) == host;
}

Result<HostPatternSpec> ParseHostPattern(std::string_view entry, std::string_view field, bool allow_any) {
  HostPatternSpec spec;
  if (entry == "*") {
    if (!allow_any) {
      return Bad(field, entry, "'*' is only for a secret's allowedHosts; an empty egress allowlist already "
                               "allows every host");
    }
    spec.any = true;
    return spec;
  }
  if (entry.empty()) return Bad(field, entry, "empty");
  if (entry.size() > 300) return Bad(field, entry, "too long");
  std::string text;
  text.reserve(entry.size());
  for (char c : entry) text += Lower(c);
  std::string_view rest = text;
  std::string host;
  if (rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return Bad(field, entry, "unclosed [");
    host = std::string(rest.substr(1, close - 1));
    if (!IsV6(host)) return Bad(field, entry, "[...] must hold an IPv6 address");
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      uint16_t port = 0;
      if (after.front() != ':' || !ParsePort(after.substr(1), &port)) {
        return Bad(field, entry, "port must be 1-65535");
      }
      spec.port = port;
    }
    spec.host = std::move(host);
    return spec;
  }
  const size_t colons = static_cast<size_t>(std::count(rest.begin(), rest.end(), ':'));
  if (colons > 1) {  // a bare IPv6 literal
    host = std::string(rest);
    if (!IsV6(host)) return Bad(field, entry, std::string(kExpected));
    spec.host = std::move(host);
    return spec;
  }
  if (colons == 1) {
    const size_t colon = rest.find(':');
    uint16_t port = 0;
    if (!ParsePort(rest.substr(colon + 1), &port)) return Bad(field, entry, "port must be 1-65535");
    spec.port = port;
    rest = rest.substr(0, colon);
  }
  if (!rest.empty() && rest.back() == '.') rest.remove_suffix(1);
  if (rest.starts_with("*.")) {
    spec.wildcard = true;
    rest.remove_prefix(2);
  }
  if (rest.find('*') != std::string_view::npos) {
    return Bad(field, entry, "'*' may only be a whole entry or a leading '*.' label");
  }
  if (!IsDnsName(rest)) return Bad(field, entry, std::string(kExpected));
  spec.host = std::string(rest);
  return spec;
}

}  // namespace osb
