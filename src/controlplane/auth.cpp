#include "controlplane/auth.h"

#include <openssl/sha.h>

#include "common/hex.h"
#include "crypto/random.h"

namespace osb::controlplane {

std::string HashApiKey(std::string_view api_key) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(api_key.data()), api_key.size(), digest);
  return HexEncode(digest);
}

std::string GenerateApiKey() { return "osb_" + crypto::RandomHex(32); }

Result<KeyIdentity> Authenticator::Authenticate(std::string_view api_key, const std::string& now) const {
  if (api_key.empty()) {
    return MakeError(ErrorCode::kUnauthenticated, "missing API key (send it in the X-API-Key header)");
  }
  auto key = store_.GetApiKey(HashApiKey(api_key));
  if (!key) {
    if (key.error().code == ErrorCode::kNotFound) {
      return MakeError(ErrorCode::kUnauthenticated, "invalid API key");
    }
    return key.error();
  }
  if (key->expires_at && *key->expires_at <= now) {
    return MakeError(ErrorCode::kUnauthenticated,
                     "API key expired at " + *key->expires_at + " (an admin can create a new one)");
  }
  return KeyIdentity{key->org_id, key->scope};
}

Result<store::Org> BootstrapAdminKey(store::Store& store, std::string_view api_key) {
  if (api_key.size() < kMinBootstrapKeyLength) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(kApiKeyEnv) + " is too short: it must be at least " +
                         std::to_string(kMinBootstrapKeyLength) +
                         " random characters (e.g. the output of `openssl rand -hex 32`)");
  }
  auto org = store.EnsureOrg(kDefaultOrgName);
  if (!org) return org.error();
  if (Status st = store.AddApiKey(org->id, HashApiKey(api_key), "bootstrap admin", store::kScopeAdmin); !st) {
    return st.error();
  }
  return org;
}

}  // namespace osb::controlplane
