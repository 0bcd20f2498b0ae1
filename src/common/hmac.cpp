#include "common/hmac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <cstdlib>

namespace osb {
namespace {

const char* DigestName(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha1: return "SHA1";
    case HashAlg::kSha256: return "SHA256";
    case HashAlg::kSha512: return "SHA512";
  }
  return "SHA256";
}

const EVP_MD* Md(HashAlg alg) {
  switch (alg) {
    case HashAlg::kSha1: return EVP_sha1();
    case HashAlg::kSha256: return EVP_sha256();
    case HashAlg::kSha512: return EVP_sha512();
  }
  return EVP_sha256();
}

}  // namespace

std::optional<HashAlg> ParseHashAlg(std::string_view name) {
  if (name == "sha1") return HashAlg::kSha1;
  if (name == "sha256") return HashAlg::kSha256;
  if (name == "sha512") return HashAlg::kSha512;
  return std::nullopt;
}

std::string Hmac(HashAlg alg, std::string_view key, std::string_view message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // An empty key is a valid HMAC key; OpenSSL wants a non-null pointer.
  static const unsigned char kEmpty = 0;
  const void* k = key.empty() ? static_cast<const void*>(&kEmpty) : static_cast<const void*>(key.data());
  if (HMAC(Md(alg), k, static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
           message.size(), out, &len) == nullptr) {
    std::abort();  // only on allocation failure
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

HmacStream::HmacStream(HashAlg alg, std::string_view key) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) std::abort();
  auto* ctx = EVP_MAC_CTX_new(mac);
  EVP_MAC_free(mac);
  if (ctx == nullptr) std::abort();
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(DigestName(alg)), 0),
      OSSL_PARAM_construct_end()};
  static const unsigned char kEmpty = 0;
  const auto* k = key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  if (EVP_MAC_init(ctx, k, key.size(), params) != 1) std::abort();
  ctx_ = ctx;
}

HmacStream::~HmacStream() { EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(ctx_)); }

void HmacStream::Update(std::string_view data) {
  EVP_MAC_update(static_cast<EVP_MAC_CTX*>(ctx_), reinterpret_cast<const unsigned char*>(data.data()), data.size());
}

std::string HmacStream::Final() {
  unsigned char out[EVP_MAX_MD_SIZE];
  size_t len = 0;
  EVP_MAC_final(static_cast<EVP_MAC_CTX*>(ctx_), out, &len, sizeof(out));
  return std::string(reinterpret_cast<const char*>(out), len);
}

}  // namespace osb
