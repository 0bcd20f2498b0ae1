// API keys of an org, managed over the API: create (the key is returned
// once, only its SHA-256 is stored), list (ids, names, scopes, dates; never
// a key or its hash), delete. A key's id is "key_" + the first 16 hex digits
// of its hash: stable, unique in practice, and useless for authenticating.
// Every key has a scope, store::kScopeAdmin or store::kScopeSandbox, and an
// optional expiry; what each scope may call is decided by the router.
// Deleting the org's last unexpired admin key is refused (409), so an org
// cannot lock itself out; deleting the key a request itself uses is allowed.
// Errors: kInvalidArgument naming the field, kNotFound (unknown id or
// another org's key), kConflict (last key).
// Thread safety: safe to share; every call is independent.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/store.h"

namespace osb::controlplane {

struct ApiKeyView {
  std::string id;
  std::string name;
  std::string created_at;
  std::string key;  // only set in the answer to Create
  std::string scope;
  std::optional<std::string> expires_at;  // RFC 3339 UTC; nullopt = never
};

// The scope a key gets when its creator names none: the least one.
inline constexpr const char* kDefaultKeyScope = store::kScopeSandbox;

class ApiKeyService {
 public:
  explicit ApiKeyService(store::Store& store) : store_(store) {}

  // `scope`: "admin" or "sandbox" (kInvalidArgument "scope: ..." otherwise);
  // `expires_at`: must be in the future (kInvalidArgument "expiresAt: ...").
  Result<ApiKeyView> Create(const std::string& org_id, const std::string& name,
                            const std::string& scope = kDefaultKeyScope,
                            std::optional<std::chrono::system_clock::time_point> expires_at = std::nullopt);
  Result<std::vector<ApiKeyView>> List(const std::string& org_id);
  Status Delete(const std::string& org_id, const std::string& id);

 private:
  store::Store& store_;
};

// "key_" + the first 16 hex digits of the key's hash.
std::string ApiKeyId(const std::string& key_hash);

}  // namespace osb::controlplane
