// Host matching for the egress allowlist and per-secret allowedHosts.
//
// Contract (DESIGN.md "Secrets proxy"):
//  - a pattern is an exact host name, an IP literal, or `*.suffix`;
//  - matching is case-insensitive and ignores ONE trailing dot on either side;
//  - `*.example.com` matches `a.example.com` and `a.b.example.com`, never
//    `example.com` nor `badexample.com`;
//  - an IP literal matches only the same literal; wildcards never match IPs;
//  - an empty HostList matches every host.
// Immutable after Parse; safe to share between threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace osb::secretsproxy {

// Lower-cases, strips surrounding [] of an IPv6 literal and one trailing dot.
std::string NormalizeHost(std::string_view host);

// True when `host` (normalized) is an IPv4 or IPv6 literal.
bool IsIpLiteral(std::string_view host);

class HostPattern {
 public:
  // Errors name `field` (e.g. "allowlist[2]") and never echo more than the pattern.
  static Result<HostPattern> Parse(std::string_view pattern, std::string_view field);
  bool Matches(std::string_view normalized_host) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;    // normalized; for wildcards the ".suffix" part
  bool wildcard_ = false;
};

class HostList {
 public:
  HostList() = default;
  static Result<HostList> Parse(const std::vector<std::string>& patterns, std::string_view field);
  // Empty list = every host.
  bool Matches(std::string_view host) const;
  bool empty() const { return patterns_.empty(); }

 private:
  std::vector<HostPattern> patterns_;
};

}  // namespace osb::secretsproxy
