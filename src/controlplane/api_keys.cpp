#include "controlplane/api_keys.h"

#include "controlplane/auth.h"

namespace osb::controlplane {
namespace {

constexpr size_t kMaxKeyNameBytes = 64;

Status ValidateKeyName(const std::string& name) {
  if (name.empty()) return MakeError(ErrorCode::kInvalidArgument, "name: is required");
  if (name.size() > kMaxKeyNameBytes) {
    return MakeError(ErrorCode::kInvalidArgument, "name: at most 64 characters");
  }
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return MakeError(ErrorCode::kInvalidArgument, "name: control characters are not allowed");
  }
  return {};
}

}  // namespace

std::string ApiKeyId(const std::string& key_hash) { return "key_" + key_hash.substr(0, 16); }

Result<ApiKeyView> ApiKeyService::Create(const std::string& org_id, const std::string& name,
                                         const std::string& scope,
                                         std::optional<std::chrono::system_clock::time_point> expires_at) {
  if (Status st = ValidateKeyName(name); !st) return st.error();
  if (scope != store::kScopeAdmin && scope != store::kScopeSandbox) {
    return MakeError(ErrorCode::kInvalidArgument, "scope: must be \"admin\" or \"sandbox\"");
  }
  ApiKeyView view;
  if (expires_at) {
    if (*expires_at <= std::chrono::system_clock::now()) {
      return MakeError(ErrorCode::kInvalidArgument, "expiresAt: must be in the future");
    }
    view.expires_at = store::Rfc3339Ms(*expires_at);
  }
  view.key = GenerateApiKey();
  const std::string hash = HashApiKey(view.key);
  if (Status st = store_.AddApiKey(org_id, hash, name, scope, view.expires_at); !st) return st.error();
  auto keys = store_.ListApiKeys(org_id);
  if (!keys) return keys.error();
  for (const auto& k : *keys) {
    if (k.key_hash == hash) view.created_at = k.created_at;
  }
  view.id = ApiKeyId(hash);
  view.name = name;
  view.scope = scope;
  return view;
}

Result<std::vector<ApiKeyView>> ApiKeyService::List(const std::string& org_id) {
  auto keys = store_.ListApiKeys(org_id);
  if (!keys) return keys.error();
  std::vector<ApiKeyView> out;
  for (const auto& k : *keys) out.push_back({ApiKeyId(k.key_hash), k.label, k.created_at, "", k.scope, k.expires_at});
  return out;
}

Status ApiKeyService::Delete(const std::string& org_id, const std::string& id) {
  auto keys = store_.ListApiKeys(org_id);
  if (!keys) return keys.error();
  for (const auto& k : *keys) {
    if (ApiKeyId(k.key_hash) == id) {
      Status st = store_.DeleteApiKey(org_id, k.key_hash);
      if (!st && st.error().code == ErrorCode::kNotFound) break;  // deleted meanwhile
      return st;
    }
  }
  return MakeError(ErrorCode::kNotFound, "API key '" + id + "' not found");
}

}  // namespace osb::controlplane
