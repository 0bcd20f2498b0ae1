// Host patterns: the one parser for egress allowlist entries and a secret's
// allowedHosts, shared by the control plane (validation, normalisation) and
// the secrets proxy (matching).
//
// Grammar (case-insensitive, one trailing dot of the host ignored):
//   pattern  = host [ ":" port ]  |  "[" ipv6 "]" [ ":" port ]  |  ipv6
//   host     = name | "*." name | ipv4
//   port     = 1..65535 (no sign, no leading zeros)
//   "*"      = any host (only where the caller allows it: allowedHosts)
// A bare IPv6 literal takes no port (write "[::1]:443"). A wildcard never
// matches an IP literal; `*.example.com` matches `a.example.com` and
// `a.b.example.com`, never `example.com`. Without a port a pattern matches
// every port.
// Errors name `field` and quote at most the entry itself (which is never a
// secret value). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace osb {

struct HostPatternSpec {
  bool any = false;            // "*"
  bool wildcard = false;       // "*.suffix": host holds "suffix"
  std::string host;            // lower case, no brackets, no trailing dot
  std::optional<uint16_t> port;
  // Canonical text: "*", "api.example.com", "*.example.com:8443", "[::1]:443".
  std::string Text() const;
  // host and port as a connection names them (host already normalized).
  bool Matches(std::string_view normalized_host, uint16_t port) const;
};

// allow_any: whether "*" is accepted (a secret's allowedHosts) or refused
// (the egress allowlist, where an empty list already means every host).
Result<HostPatternSpec> ParseHostPattern(std::string_view entry, std::string_view field, bool allow_any);

// Lower-cases, strips the [] of an IPv6 literal and one trailing dot.
std::string NormalizeHostName(std::string_view host);
// True when `host` (normalized) is an IPv4 or IPv6 literal.
bool IsIpLiteralHost(std::string_view host);
// True for "localhost" and every name under ".localhost" (`host` normalized).
// RFC 6761 §6.3: such names are the loopback host and are never sent to
// DNS, so a policy about them must not depend on what /etc/hosts or a
// resolver says (a host without a localhost line would otherwise let the
// name fail open as "DNS trouble").
bool IsLoopbackName(std::string_view host);

}  // namespace osb
