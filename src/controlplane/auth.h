// API key authentication. Keys are presented in the X-API-Key header; only
// SHA-256(key) (hex) is stored. A plain fast hash is enough here because every
// key we issue is 256 bits of CSPRNG output: there is nothing to brute-force,
// so a slow password hash would only add latency. Lookup is by hash, so no
// constant-time string comparison is involved.
// Thread safety: Authenticator is safe to share across threads.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "store/store.h"

namespace osb::controlplane {

inline constexpr const char* kApiKeyEnv = "OPENSANDBOX_API_KEY";
inline constexpr const char* kDefaultOrgName = "default";
// The bootstrap admin key (OPENSANDBOX_API_KEY) must be at least this long.
inline constexpr size_t kMinBootstrapKeyLength = 32;

std::string HashApiKey(std::string_view api_key);

// A fresh high-entropy key: "osb_" + 64 hex chars.
std::string GenerateApiKey();

// What a valid key is: its org and its scope (store::kScopeAdmin or
// store::kScopeSandbox; which routes each scope reaches is the router's
// business, see api/router.h KeyScope).
struct KeyIdentity {
  std::string org_id;
  std::string scope;
};

class Authenticator {
 public:
  explicit Authenticator(store::Store& store) : store_(store) {}
  // The key's org and scope. kUnauthenticated for a missing or unknown key,
  // and for a key whose expiry is at or before `now` (the message says it
  // expired and when; it never echoes the key).
  Result<KeyIdentity> Authenticate(std::string_view api_key, const std::string& now = store::NowRfc3339()) const;

 private:
  store::Store& store_;
};

// Makes `api_key` the admin key of the default org (created if missing).
// Idempotent. kInvalidArgument if the key is shorter than
// kMinBootstrapKeyLength (the message says so; it never echoes the key).
Result<store::Org> BootstrapAdminKey(store::Store& store, std::string_view api_key);

}  // namespace osb::controlplane
