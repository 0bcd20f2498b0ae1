// Fuzzes the host-pattern parser every allowlist / allowedHosts entry goes
// through (REST input in the control plane, sessions in the proxy), and the
// matcher. Properties: never crashes; the canonical text of a parsed pattern
// parses again to the same text (normalisation is idempotent); a pattern
// matches its own host on its own port (wildcards: one label below it).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/host_pattern.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  for (bool any : {false, true}) {
    auto p = osb::ParseHostPattern(in, "f", any);
    if (!p) {
      if (p.error().message.find('\n') != std::string::npos) abort();  // one line, hostile bytes shown as '?'
      continue;
    }
    const std::string text = p->Text();
    auto again = osb::ParseHostPattern(text, "f", any);
    if (!again || again->Text() != text) abort();
    if (p->any) continue;
    const uint16_t port = p->port.value_or(443);
    const std::string host = p->wildcard ? "x." + p->host : p->host;
    if (!p->Matches(host, port)) abort();
    if (p->port && p->Matches(host, static_cast<uint16_t>(port + 1))) abort();
  }
  return 0;
}
