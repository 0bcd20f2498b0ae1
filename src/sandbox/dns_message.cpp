#include "sandbox/dns_message.h"

namespace osb::sandbox::dns {
namespace {

uint16_t Be16(std::span<const uint8_t> p, size_t off) {
  return static_cast<uint16_t>((p[off] << 8) | p[off + 1]);
}

void Put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v & 0xff));
}

void Put32(std::vector<uint8_t>& out, uint32_t v) {
  Put16(out, static_cast<uint16_t>(v >> 16));
  Put16(out, static_cast<uint16_t>(v & 0xffff));
}

}  // namespace

ParseResult ParseQuery(std::span<const uint8_t> p) {
  ParseResult r;
  if (p.size() < 12) return r;
  r.id = Be16(p, 0);
  const uint16_t flags = Be16(p, 2);
  r.opcode = static_cast<uint8_t>((flags >> 11) & 0xf);
  if (flags & 0x8000) return r;  // a response, not a query
  if (r.opcode != 0) {
    r.error = Rcode::kNotImp;
    return r;
  }
  if (Be16(p, 4) != 1 || Be16(p, 6) != 0 || Be16(p, 8) != 0 || Be16(p, 10) > 1) return r;

  Query q;
  q.id = *r.id;
  q.recursionDesired = flags & 0x0100;
  size_t pos = 12;
  size_t nameLen = 0;
  for (;;) {
    if (pos >= p.size()) return r;
    const uint8_t len = p[pos++];
    if (len == 0) break;
    if (len > 63) return r;  // compression pointers (0xC0) and reserved label types
    if (p.size() - pos < len) return r;
    nameLen += len + 1;
    if (nameLen > 255) return r;
    if (!q.name.empty()) q.name.push_back('.');
    for (size_t i = 0; i < len; ++i) {
      char c = static_cast<char>(p[pos + i]);
      if (c == '.' || p[pos + i] < 0x21 || p[pos + i] > 0x7e) q.nameIsPlain = false;
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      q.name.push_back(c);
    }
    pos += len;
  }
  if (p.size() - pos < 4) return r;
  q.qtype = Be16(p, pos);
  q.qclass = Be16(p, pos + 2);
  pos += 4;
  q.question.assign(p.begin() + 12, p.begin() + static_cast<std::ptrdiff_t>(pos));
  r.query = std::move(q);
  return r;
}

std::vector<uint8_t> BuildResponse(const Query& q, Rcode rcode, std::optional<uint32_t> ipv4, uint32_t ttl) {
  std::vector<uint8_t> out;
  out.reserve(12 + q.question.size() + 16);
  const bool answer = rcode == Rcode::kNoError && ipv4.has_value();
  Put16(out, q.id);
  // QR=1, AA=1, RD copied, RA=0 (we never recurse).
  Put16(out, static_cast<uint16_t>(0x8400 | (q.recursionDesired ? 0x0100 : 0) | static_cast<uint8_t>(rcode)));
  Put16(out, 1);
  Put16(out, answer ? 1 : 0);
  Put16(out, 0);
  Put16(out, 0);
  out.insert(out.end(), q.question.begin(), q.question.end());
  if (answer) {
    Put16(out, 0xC00C);  // pointer to the question's name at offset 12
    Put16(out, kTypeA);
    Put16(out, kClassIN);
    Put32(out, ttl);
    Put16(out, 4);
    const auto* b = reinterpret_cast<const uint8_t*>(&*ipv4);
    out.insert(out.end(), b, b + 4);  // already network byte order
  }
  return out;
}

std::vector<uint8_t> BuildErrorResponse(uint16_t id, uint8_t opcode, Rcode rcode) {
  std::vector<uint8_t> out;
  Put16(out, id);
  Put16(out, static_cast<uint16_t>(0x8000 | ((opcode & 0xf) << 11) | static_cast<uint8_t>(rcode)));
  for (int i = 0; i < 4; ++i) Put16(out, 0);
  return out;
}

}  // namespace osb::sandbox::dns
