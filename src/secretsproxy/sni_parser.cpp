#include "secretsproxy/sni_parser.h"

#include <cstdint>

#include "secretsproxy/host_rules.h"

namespace osb::secretsproxy {
namespace {

constexpr size_t kMaxHello = 64 * 1024;

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool Skip(size_t n) {
    if (d_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  bool U8(uint32_t* v) {
    if (d_.size() - pos_ < 1) return false;
    *v = static_cast<uint8_t>(d_[pos_++]);
    return true;
  }
  bool U16(uint32_t* v) {
    uint32_t a, b;
    if (!U8(&a) || !U8(&b)) return false;
    *v = (a << 8) | b;
    return true;
  }
  bool Sub(size_t n, Reader* out) {
    if (d_.size() - pos_ < n) return false;
    *out = Reader(d_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  std::string_view Rest() const { return d_.substr(pos_); }
  bool empty() const { return pos_ == d_.size(); }

 private:
  std::string_view d_;
  size_t pos_ = 0;
};

bool ValidHostName(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

SniResult ParseHello(std::string_view body, std::string* host) {
  Reader r(body);
  uint32_t len;
  Reader sub("");
  if (!r.Skip(2 + 32)) return SniResult::kInvalid;                 // version, random
  if (!r.U8(&len) || len > 32 || !r.Skip(len)) return SniResult::kInvalid;  // session id
  if (!r.U16(&len) || len % 2 != 0 || !r.Skip(len)) return SniResult::kInvalid;  // cipher suites
  if (!r.U8(&len) || !r.Skip(len)) return SniResult::kInvalid;     // compression methods
  if (r.empty()) return SniResult::kNoSni;                          // no extensions
  Reader exts("");
  if (!r.U16(&len) || !r.Sub(len, &exts)) return SniResult::kInvalid;
  while (!exts.empty()) {
    uint32_t type, elen;
    Reader ext("");
    if (!exts.U16(&type) || !exts.U16(&elen) || !exts.Sub(elen, &ext)) return SniResult::kInvalid;
    if (type != 0) continue;
    Reader list("");
    if (!ext.U16(&len) || !ext.Sub(len, &list)) return SniResult::kInvalid;
    while (!list.empty()) {
      uint32_t name_type, nlen;
      Reader name("");
      if (!list.U8(&name_type) || !list.U16(&nlen) || !list.Sub(nlen, &name)) return SniResult::kInvalid;
      if (name_type != 0) continue;
      std::string_view h = name.Rest();
      if (!ValidHostName(h)) return SniResult::kInvalid;
      *host = NormalizeHost(h);
      return host->empty() ? SniResult::kInvalid : SniResult::kFound;
    }
    return SniResult::kNoSni;
  }
  return SniResult::kNoSni;
}

}  // namespace

SniResult ParseClientHelloSni(std::string_view bytes, std::string* host) {
  // Reassemble the handshake message from consecutive handshake records.
  std::string hs;
  size_t pos = 0;
  while (true) {
    if (bytes.size() - pos < 5) return SniResult::kNeedMore;
    const auto type = static_cast<uint8_t>(bytes[pos]);
    const auto major = static_cast<uint8_t>(bytes[pos + 1]);
    const size_t rlen = (static_cast<uint8_t>(bytes[pos + 3]) << 8) | static_cast<uint8_t>(bytes[pos + 4]);
    if (type != 22 || major != 3 || rlen == 0 || rlen > 16384 + 2048) return SniResult::kInvalid;
    if (bytes.size() - pos - 5 < rlen) {
      // Partial record: still useful if the handshake header is invalid.
      hs.append(bytes.substr(pos + 5));
      if (hs.size() >= 1 && static_cast<uint8_t>(hs[0]) != 1) return SniResult::kInvalid;
      return hs.size() > kMaxHello ? SniResult::kInvalid : SniResult::kNeedMore;
    }
    hs.append(bytes.substr(pos + 5, rlen));
    pos += 5 + rlen;
    if (static_cast<uint8_t>(hs[0]) != 1) return SniResult::kInvalid;  // not a ClientHello
    if (hs.size() >= 4) {
      const size_t mlen = (static_cast<uint8_t>(hs[1]) << 16) | (static_cast<uint8_t>(hs[2]) << 8) |
                          static_cast<uint8_t>(hs[3]);
      if (mlen > kMaxHello) return SniResult::kInvalid;
      if (hs.size() - 4 >= mlen) return ParseHello(std::string_view(hs).substr(4, mlen), host);
    }
    if (hs.size() > kMaxHello) return SniResult::kInvalid;
  }
}

}  // namespace osb::secretsproxy
