// Host matching for the egress allowlist and per-secret allowedHosts.
//
// Contract (DESIGN.md "Secrets proxy"; grammar in common/host_pattern.h):
//  - a pattern is an exact host name, an IP literal, or `*.suffix`, each with
//    an optional `:port` that restricts it to that port;
//  - matching is case-insensitive and ignores ONE trailing dot on either side;
//  - `*.example.com` matches `a.example.com` and `a.b.example.com`, never
//    `example.com` nor `badexample.com`;
//  - an IP literal matches only the same literal; wildcards never match IPs;
//  - `*` (only where Parse is told any_allowed: a secret's allowedHosts)
//    matches every host; it must stand alone in its list.
// What an EMPTY list means is the caller's business (an empty egress
// allowlist = every host; a secret with no allowedHosts follows its
// project's allowlist — see SessionSnapshot::EnabledFor).
// Immutable after Parse; safe to share between threads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/host_pattern.h"
#include "common/result.h"

namespace osb::secretsproxy {

// Lower-cases, strips surrounding [] of an IPv6 literal and one trailing dot.
inline std::string NormalizeHost(std::string_view host) { return NormalizeHostName(host); }

// True when `host` (normalized) is an IPv4 or IPv6 literal.
inline bool IsIpLiteral(std::string_view host) { return IsIpLiteralHost(host); }

class HostList {
 public:
  enum class Star { kRefuse, kAllow };
  HostList() = default;
  // Errors name `field[i]` and never echo more than the pattern.
  static Result<HostList> Parse(const std::vector<std::string>& patterns, std::string_view field,
                                Star star = Star::kRefuse);
  // Whether some pattern matches host:port. An empty list matches nothing.
  bool Matches(std::string_view host, uint16_t port) const;
  bool empty() const { return patterns_.empty(); }
  bool any() const { return any_; }  // the list is ["*"]

 private:
  std::vector<HostPatternSpec> patterns_;
  bool any_ = false;
};

}  // namespace osb::secretsproxy
