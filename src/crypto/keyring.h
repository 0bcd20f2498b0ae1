// Keyring: AES-256-GCM encryption of secrets at rest, with key rotation.
//
// Configuration (see DESIGN.md "Secrets at rest"):
//   OPENSANDBOX_SECRET_ENCRYPTION_KEY        primary key, 64 hex chars, or
//   OPENSANDBOX_SECRET_ENCRYPTION_KEY_FILE   a file holding them
//   OPENSANDBOX_SECRET_ENCRYPTION_KEY_V1..V9 previous keys (decrypt only)
// Rotation: the new key becomes the primary and the old one moves to any
// free _Vn slot. Ciphertexts name their key by a key id derived from the key
// material (not by slot), so they keep decrypting whatever slot holds it.
//
// Ciphertext layout (binary; store as a BLOB):
//   [0]      format version (1)
//   [1..8]   key id (first 8 bytes of SHA-256("opensandbox-key-id-v1" || key))
//   [9..20]  96-bit random nonce, fresh for every encryption
//   [21..]   AES-256-GCM ciphertext, then the 16-byte tag
// The GCM associated data is the 9-byte header followed by the caller's
// associated data, so neither the header nor the binding can be altered.
//
// Errors never contain key material, plaintext or the associated data.
// Thread safety: a Keyring is immutable after construction; Encrypt and
// Decrypt may be called concurrently. Key material is wiped on destruction.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/secure_memory.h"

namespace osb::crypto {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kKeyIdSize = 8;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kHeaderSize = 1 + kKeyIdSize + kNonceSize;
inline constexpr size_t kCiphertextOverhead = kHeaderSize + kTagSize;

inline constexpr const char* kKeyEnv = "OPENSANDBOX_SECRET_ENCRYPTION_KEY";
inline constexpr const char* kKeyFileEnv = "OPENSANDBOX_SECRET_ENCRYPTION_KEY_FILE";

// One configured key: where it came from (for messages) and its id.
struct KeyInfo {
  std::string slot;    // "OPENSANDBOX_SECRET_ENCRYPTION_KEY", "..._V3"
  std::string key_id;  // 16 lower-case hex chars
  bool primary = false;
};

class Keyring {
 public:
  // Reads the variables above through `getenv` (a seam for tests).
  static Result<Keyring> FromEnvironment(
      const std::function<const char*(const char*)>& getenv = nullptr);

  // primary_hex: 64 hex chars. previous: (slot label, 64 hex chars) pairs.
  static Result<Keyring> FromHex(
      std::string_view primary_hex,
      const std::vector<std::pair<std::string, std::string>>& previous = {});

  Result<std::string> Encrypt(std::string_view plaintext, std::string_view aad) const;
  Result<std::string> Decrypt(std::string_view ciphertext, std::string_view aad) const;

  // The id of the key that made `ciphertext` (hex), or an error if it is not
  // a well-formed ciphertext header. Does not need the key.
  static Result<std::string> KeyIdOf(std::string_view ciphertext);

  // Key id of 32 raw key bytes.
  static std::string KeyIdFor(const std::array<uint8_t, kKeySize>& key);

  const std::string& primary_key_id() const;
  std::vector<KeyInfo> keys() const;

 private:
  struct Key;
  // Key material lives in pages excluded from core dumps (secure_memory.h).
  using Keys = std::vector<Key, DontDumpAllocator<Key>>;
  explicit Keyring(std::shared_ptr<const Keys> keys) : keys_(std::move(keys)) {}
  const Key* Find(std::string_view raw_key_id) const;

  std::shared_ptr<const Keys> keys_;  // [0] is the primary
};

// Removes OPENSANDBOX_SECRET_ENCRYPTION_KEY and its _V1.._V9 from the process
// environment and overwrites their bytes (common/secure_memory.h), once the
// keyring has been built: the keys are not visible in /proc/PID/environ nor
// inherited by children. The _FILE variable (a path) is kept.
void RemoveKeysFromEnvironment();

// A fresh random key, hex-encoded (what `osb keygen` prints).
std::string GenerateKeyHex();

}  // namespace osb::crypto
