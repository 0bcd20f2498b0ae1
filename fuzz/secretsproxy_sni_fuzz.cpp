// Fuzzes the ClientHello SNI parser the transparent listener runs on the
// first bytes of every untrusted connection.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "secretsproxy/sni_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string host;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = osb::secretsproxy::ParseClientHelloSni(in, &host);
  if (r == osb::secretsproxy::SniResult::kFound) {
    if (host.empty() || host.size() > 253) abort();
    for (char c : host) {
      if (c == '\r' || c == '\n' || c == '\0' || (c >= 'A' && c <= 'Z')) abort();
    }
  }
  // Every prefix of an input is either incomplete or decided the same way
  // for a complete hello; at least it must never crash.
  for (size_t n = 0; n < size && n < 64; ++n) (void)osb::secretsproxy::ParseClientHelloSni(in.substr(0, n), &host);
  return 0;
}
