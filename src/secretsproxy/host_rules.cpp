#include "secretsproxy/host_rules.h"

#include <arpa/inet.h>

#include <algorithm>

namespace osb::secretsproxy {
namespace {

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool ValidHostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == ':';
}

}  // namespace

std::string NormalizeHost(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  std::string out(host);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  return out;
}

bool IsIpLiteral(std::string_view host) {
  std::string h(host);
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

Result<HostPattern> HostPattern::Parse(std::string_view pattern, std::string_view field) {
  HostPattern p;
  std::string norm = NormalizeHost(pattern);
  if (norm.rfind("*.", 0) == 0) {
    p.wildcard_ = true;
    norm.erase(0, 1);  // keep the leading dot: ".example.com"
    if (norm.size() < 2) {
      return MakeError(ErrorCode::kInvalidArgument, std::string(field) + ": empty wildcard suffix");
    }
  }
  if (norm.empty() || norm.size() > 253) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(field) + ": host pattern must be 1-253 characters");
  }
  for (char c : norm) {
    if (!ValidHostChar(c)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       std::string(field) + ": invalid character in host pattern (use name, IP or *.suffix)");
    }
  }
  p.text_ = std::move(norm);
  return p;
}

bool HostPattern::Matches(std::string_view host) const {
  if (!wildcard_) return host == text_;
  if (IsIpLiteral(host)) return false;
  return host.size() > text_.size() && host.substr(host.size() - text_.size()) == text_;
}

Result<HostList> HostList::Parse(const std::vector<std::string>& patterns, std::string_view field) {
  HostList list;
  for (size_t i = 0; i < patterns.size(); ++i) {
    auto p = HostPattern::Parse(patterns[i], std::string(field) + "[" + std::to_string(i) + "]");
    if (!p) return p.error();
    list.patterns_.push_back(std::move(*p));
  }
  return list;
}

bool HostList::Matches(std::string_view host) const {
  if (patterns_.empty()) return true;
  std::string norm = NormalizeHost(host);
  return std::any_of(patterns_.begin(), patterns_.end(),
                     [&](const HostPattern& p) { return p.Matches(norm); });
}

}  // namespace osb::secretsproxy
