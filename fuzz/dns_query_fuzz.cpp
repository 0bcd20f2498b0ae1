// Fuzzes the sandbox DNS responder's parser and response builder: any byte
// string must parse to a query or a refusal, and every response built from
// a parsed query must be well-formed (checked by re-reading its header).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "sandbox/allowlist.h"
#include "sandbox/dns_message.h"

using namespace osb::sandbox;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = dns::ParseQuery(std::span<const uint8_t>(data, size));
  if (!parsed.query) {
    if (parsed.id) {
      auto err = dns::BuildErrorResponse(*parsed.id, parsed.opcode, parsed.error);
      if (err.size() != 12) std::abort();
    }
    return 0;
  }
  const auto& q = *parsed.query;
  if (q.name.size() > 255 || q.question.size() < 5 || q.question.size() > size - 12) std::abort();
  (void)HostAllowed({"*.example.com", "api.test"}, q.name);
  for (auto rcode : {dns::Rcode::kNoError, dns::Rcode::kNxDomain, dns::Rcode::kRefused}) {
    auto resp = dns::BuildResponse(q, rcode, rcode == dns::Rcode::kNoError ? std::optional<uint32_t>(0x0100000a) : std::nullopt);
    if (resp.size() < 12 + q.question.size()) std::abort();
    if (((resp[0] << 8) | resp[1]) != q.id || !(resp[2] & 0x80)) std::abort();
    // A response is not a query: feeding it back must be refused.
    if (dns::ParseQuery(resp).query) std::abort();
  }
  return 0;
}
