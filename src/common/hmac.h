// HMAC (RFC 2104) over OpenSSL, the one home for request signing
// primitives (secret kinds hmac, aws-sigv4). Outputs are raw digest bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace osb {

enum class HashAlg { kSha1, kSha256, kSha512 };

// "sha1", "sha256", "sha512".
std::optional<HashAlg> ParseHashAlg(std::string_view name);

// The raw MAC (20, 32 or 64 bytes). Never fails for these algorithms.
std::string Hmac(HashAlg alg, std::string_view key, std::string_view message);

// Incremental HMAC for streamed messages. Not copyable; wipes its state.
class HmacStream {
 public:
  HmacStream(HashAlg alg, std::string_view key);
  ~HmacStream();
  HmacStream(const HmacStream&) = delete;
  HmacStream& operator=(const HmacStream&) = delete;
  void Update(std::string_view data);
  std::string Final();

 private:
  void* ctx_ = nullptr;  // EVP_MAC_CTX
};

}  // namespace osb
