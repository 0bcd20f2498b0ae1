// Strict DNS query parsing and response building (RFC 1035 subset) for the
// worker's sandbox-facing responder. Pure functions, no I/O, fuzzed
// (fuzz/dns_query_fuzz.cpp): any byte string yields a value or an error.
//
// Accepted: a standard query (QR=0, OPCODE=0) with exactly one question,
// no answer/authority records, at most one additional record (EDNS OPT,
// ignored), no name compression in the question, labels 1..63 bytes, name
// <= 255 bytes. Anything else is rejected (the responder answers FORMERR
// when the header is readable, and drops the packet otherwise).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace osb::sandbox::dns {

inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeAAAA = 28;
inline constexpr uint16_t kClassIN = 1;

enum class Rcode : uint8_t { kNoError = 0, kFormErr = 1, kServFail = 2, kNxDomain = 3, kNotImp = 4, kRefused = 5 };

struct Query {
  uint16_t id = 0;
  bool recursionDesired = false;
  std::string name;            // lower-case, dotted, no trailing dot ("" = root)
  bool nameIsPlain = true;     // false if a label holds '.', or a byte outside [0x21,0x7e]
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  std::vector<uint8_t> question;  // the raw question section, echoed back
};

struct ParseResult {
  std::optional<Query> query;  // set when the query is acceptable
  std::optional<uint16_t> id;  // set whenever the header was readable
  uint8_t opcode = 0;
  Rcode error = Rcode::kFormErr;  // why it was refused, when !query
};

ParseResult ParseQuery(std::span<const uint8_t> packet);

// A response to `q`: rcode, and (for kNoError) zero or one A record for the
// question's name with `ipv4` (network byte order) and `ttl`.
std::vector<uint8_t> BuildResponse(const Query& q, Rcode rcode, std::optional<uint32_t> ipv4, uint32_t ttl = 5);

// A header-only error response (no question) for unparseable queries.
std::vector<uint8_t> BuildErrorResponse(uint16_t id, uint8_t opcode, Rcode rcode);

}  // namespace osb::sandbox::dns
