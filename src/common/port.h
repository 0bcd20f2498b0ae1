// TCP port numbers written as text: one parser for every caller (allowlist
// and allowedHosts patterns, request authorities in CONNECT / Host /
// absolute URLs), so a port that one of them accepts the other accepts too.
//   port = 1..65535 in decimal digits: no sign, no spaces, no leading zeros
//          ("0443" is refused: a peer that reads it differently, e.g. as
//          octal, must never be handed a port the proxy checked as 443).
#pragma once

#include <cstdint>
#include <string_view>

namespace osb {

// True and *port set when `text` is exactly a port as above; *port is left
// untouched otherwise.
bool ParsePort(std::string_view text, uint16_t* port);

// The operator's own flags (osb proxy --listen, --resolve,
// --forbid-endpoint) are read by the proxy alone, so they keep what they
// always accepted: leading zeros ("08080" is 8080; still at most 5 digits)
// and, where it means "any free port", 0.
struct PortFlagSyntax {
  bool allow_zero = false;
};
bool ParsePortFlag(std::string_view text, uint16_t* port, PortFlagSyntax syntax = {});

}  // namespace osb
