#include "crypto/keyring.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cctype>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/hex.h"
#include "common/secure_memory.h"
#include "crypto/random.h"

namespace osb::crypto {

namespace {

constexpr uint8_t kFormatVersion = 1;
constexpr int kMaxPreviousSlots = 9;

Error Invalid(std::string msg) { return MakeError(ErrorCode::kInvalidArgument, std::move(msg)); }

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

// Parses 64 hex chars into a key. The message names the slot, never the value.
Result<std::array<uint8_t, kKeySize>> ParseKey(std::string_view slot, std::string_view hex) {
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back()))) hex.remove_suffix(1);
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.front()))) hex.remove_prefix(1);
  if (hex.size() != 2 * kKeySize) {
    return Invalid(std::string(slot) + ": expected 64 hex characters (a 32-byte key), got " +
                   std::to_string(hex.size()) + " characters");
  }
  auto bytes = HexDecode(hex);
  if (!bytes) return Invalid(std::string(slot) + ": key is not valid hex");
  std::array<uint8_t, kKeySize> key{};
  std::memcpy(key.data(), bytes->data(), kKeySize);
  SecureWipe(*bytes);
  return key;
}

Result<std::string> ReadKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     std::string(kKeyFileEnv) + ": cannot read " + path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

struct Keyring::Key {
  std::string slot;
  std::array<uint8_t, kKeySize> material{};
  std::array<uint8_t, kKeyIdSize> raw_id{};
  std::string id_hex;

  Key() = default;
  Key(const Key&) = default;
  Key(Key&&) = default;
  Key& operator=(const Key&) = default;
  ~Key() { SecureWipe(material.data(), material.size()); }
};

std::string Keyring::KeyIdFor(const std::array<uint8_t, kKeySize>& key) {
  static constexpr char kLabel[] = "opensandbox-key-id-v1";
  uint8_t digest[SHA256_DIGEST_LENGTH];
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  EVP_DigestUpdate(md, kLabel, sizeof(kLabel) - 1);
  EVP_DigestUpdate(md, key.data(), key.size());
  unsigned int len = 0;
  EVP_DigestFinal_ex(md, digest, &len);
  EVP_MD_CTX_free(md);
  return HexEncode(std::span<const uint8_t>(digest, kKeyIdSize));
}

Result<Keyring> Keyring::FromHex(
    std::string_view primary_hex,
    const std::vector<std::pair<std::string, std::string>>& previous) {
  auto keys = std::make_shared<Keys>();
  auto add = [&](std::string_view slot, std::string_view hex) -> Status {
    auto parsed = ParseKey(slot, hex);
    if (!parsed) return parsed.error();
    Key key;
    key.slot = std::string(slot);
    key.material = *parsed;
    SecureWipe(parsed->data(), parsed->size());
    key.id_hex = KeyIdFor(key.material);
    auto raw = HexDecode(key.id_hex);
    std::memcpy(key.raw_id.data(), raw->data(), kKeyIdSize);
    for (const Key& other : *keys) {
      if (other.raw_id == key.raw_id) {
        return Invalid(key.slot + ": the same key is already configured in " + other.slot +
                       " (each key may be configured once)");
      }
    }
    keys->push_back(std::move(key));
    return {};
  };
  if (auto s = add(kKeyEnv, primary_hex); !s) return s.error();
  for (const auto& [slot, hex] : previous) {
    if (auto s = add(slot, hex); !s) return s.error();
  }
  return Keyring(std::move(keys));
}

Result<Keyring> Keyring::FromEnvironment(const std::function<const char*(const char*)>& getenv_fn) {
  auto get = [&](const std::string& name) -> const char* {
    const char* v = getenv_fn ? getenv_fn(name.c_str()) : std::getenv(name.c_str());
    return (v != nullptr && *v != '\0') ? v : nullptr;
  };
  const char* direct = get(kKeyEnv);
  const char* file = get(kKeyFileEnv);
  if (direct && file) {
    return Invalid(std::string("set only one of ") + kKeyEnv + " and " + kKeyFileEnv);
  }
  std::string primary;
  if (direct) {
    primary = direct;
  } else if (file) {
    auto content = ReadKeyFile(file);
    if (!content) return content.error();
    primary = std::move(*content);
  } else {
    return MakeError(ErrorCode::kFailedPrecondition,
                     std::string("no encryption key: set ") + kKeyEnv + " (64 hex chars, see `osb keygen`) or " +
                         kKeyFileEnv);
  }
  std::vector<std::pair<std::string, std::string>> previous;
  for (int i = 1; i <= kMaxPreviousSlots; ++i) {
    const std::string slot = std::string(kKeyEnv) + "_V" + std::to_string(i);
    if (const char* v = get(slot)) previous.emplace_back(slot, v);
  }
  auto ring = FromHex(primary, previous);
  SecureWipe(primary);
  for (auto& [slot, hex] : previous) SecureWipe(hex);
  return ring;
}

void RemoveKeysFromEnvironment() {
  RemoveFromEnvironment(kKeyEnv);
  for (int i = 1; i <= kMaxPreviousSlots; ++i) {
    RemoveFromEnvironment((std::string(kKeyEnv) + "_V" + std::to_string(i)).c_str());
  }
}

const Keyring::Key* Keyring::Find(std::string_view raw_key_id) const {
  for (const Key& k : *keys_) {
    if (std::memcmp(k.raw_id.data(), raw_key_id.data(), kKeyIdSize) == 0) return &k;
  }
  return nullptr;
}

Result<std::string> Keyring::Encrypt(std::string_view plaintext, std::string_view aad) const {
  const Key& key = keys_->front();
  std::string out(kCiphertextOverhead + plaintext.size(), '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  p[0] = kFormatVersion;
  std::memcpy(p + 1, key.raw_id.data(), kKeyIdSize);
  RandomBytes(std::span<uint8_t>(p + 1 + kKeyIdSize, kNonceSize));

  CipherCtx c;
  int len = 0;
  bool ok = c.ctx != nullptr &&
            EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) == 1 &&
            EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, key.material.data(), p + 1 + kKeyIdSize) == 1 &&
            EVP_EncryptUpdate(c.ctx, nullptr, &len, p, kHeaderSize - kNonceSize) == 1 &&
            EVP_EncryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const uint8_t*>(aad.data()),
                              static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(c.ctx, p + kHeaderSize, &len,
                              reinterpret_cast<const uint8_t*>(plaintext.data()),
                              static_cast<int>(plaintext.size())) == 1 &&
            EVP_EncryptFinal_ex(c.ctx, p + kHeaderSize + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagSize,
                                p + kHeaderSize + plaintext.size()) == 1;
  if (!ok) return MakeError(ErrorCode::kInternal, "AES-256-GCM encryption failed");
  return out;
}

Result<std::string> Keyring::KeyIdOf(std::string_view ct) {
  if (ct.size() < kCiphertextOverhead) {
    return MakeError(ErrorCode::kDataLoss, "ciphertext is truncated: " + std::to_string(ct.size()) +
                                               " bytes, a valid one has at least " +
                                               std::to_string(kCiphertextOverhead));
  }
  if (static_cast<uint8_t>(ct[0]) != kFormatVersion) {
    return MakeError(ErrorCode::kDataLoss, "unsupported ciphertext format version " +
                                               std::to_string(static_cast<uint8_t>(ct[0])));
  }
  return HexEncode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(ct.data()) + 1, kKeyIdSize));
}

Result<std::string> Keyring::Decrypt(std::string_view ct, std::string_view aad) const {
  auto key_id = KeyIdOf(ct);
  if (!key_id) return key_id.error();
  const Key* key = Find(ct.substr(1, kKeyIdSize));
  if (key == nullptr) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "ciphertext was encrypted with key id " + *key_id +
                         ", which is not configured; set that key as " + kKeyEnv + "_V1..V9");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(ct.data());
  const size_t body = ct.size() - kCiphertextOverhead;
  std::string out(body, '\0');
  auto* o = reinterpret_cast<uint8_t*>(out.data());
  std::array<uint8_t, kTagSize> tag{};
  std::memcpy(tag.data(), p + kHeaderSize + body, kTagSize);

  CipherCtx c;
  int len = 0;
  bool ok = c.ctx != nullptr &&
            EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) == 1 &&
            EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, key->material.data(), p + 1 + kKeyIdSize) == 1 &&
            EVP_DecryptUpdate(c.ctx, nullptr, &len, p, kHeaderSize - kNonceSize) == 1 &&
            EVP_DecryptUpdate(c.ctx, nullptr, &len, reinterpret_cast<const uint8_t*>(aad.data()),
                              static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(c.ctx, o, &len, p + kHeaderSize, static_cast<int>(body)) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTagSize, tag.data()) == 1 &&
            EVP_DecryptFinal_ex(c.ctx, o + len, &len) == 1;
  if (!ok) {
    SecureWipe(out);
    return MakeError(ErrorCode::kDataLoss,
                     "ciphertext failed authentication (corrupted, tampered with, or moved "
                     "from another row)");
  }
  return out;
}

const std::string& Keyring::primary_key_id() const { return keys_->front().id_hex; }

std::vector<KeyInfo> Keyring::keys() const {
  std::vector<KeyInfo> out;
  for (size_t i = 0; i < keys_->size(); ++i) {
    out.push_back({(*keys_)[i].slot, (*keys_)[i].id_hex, i == 0});
  }
  return out;
}

std::string GenerateKeyHex() { return RandomHex(kKeySize); }

}  // namespace osb::crypto
