// Reads the server name (SNI) from the first bytes a TLS client sends, so the
// transparent listener knows the target before it answers the handshake.
// Handles a ClientHello fragmented over several TLS records. Input is
// untrusted: every length is bounds-checked, the hello is capped at 64 KiB,
// never throws. Pure function; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace osb::secretsproxy {

enum class SniResult {
  kNeedMore,  // a valid prefix of a ClientHello; read more bytes
  kFound,     // *host = lower-cased server name (no trailing dot)
  kNoSni,     // a complete ClientHello without a usable host_name
  kInvalid,   // not TLS / malformed
};

SniResult ParseClientHelloSni(std::string_view bytes, std::string* host);

}  // namespace osb::secretsproxy
