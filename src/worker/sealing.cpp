#include "worker/sealing.h"

#include "crypto/random.h"

namespace osb::worker {

std::string MintToken() {
  return std::string(kTokenPrefix) + crypto::RandomHex(kTokenHexChars / 2);
}

bool IsSealedToken(std::string_view s) {
  if (s.size() != kTokenSize || s.substr(0, kTokenPrefix.size()) != kTokenPrefix) return false;
  for (char c : s.substr(kTokenPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::map<std::string, std::string> ComposeSandboxEnv(
    const std::map<std::string, std::string>& plain_envs,
    const std::map<std::string, std::string>& name_to_token) {
  std::map<std::string, std::string> env = plain_envs;
  for (const auto& [name, token] : name_to_token) env.emplace(name, token);  // plain wins
  return env;
}

Result<SealedSecretEnv> SealSecret(std::string_view kind_text, std::string_view name, std::string_view material_json,
                                   std::string token, std::string aux_token) {
  auto kind = ParseSecretKind(kind_text.empty() ? "value" : kind_text);
  if (!kind) return MakeError(ErrorCode::kInvalidArgument, "kind: must be value, hmac, aws-sigv4 or oauth2-refresh");
  std::optional<SecretMaterial> material;
  if (*kind != SecretKind::kValue) {
    auto m = SecretMaterial::Parse(*kind, material_json);
    if (!m) return m.error();
    material = std::move(*m);
  }
  SealedSecretEnv out;
  out.token = token.empty() ? MintToken() : std::move(token);
  if (NeedsAuxToken(*kind, material ? &*material : nullptr)) out.aux_token = aux_token.empty() ? MintToken() : std::move(aux_token);
  for (auto& e : SandboxEnvFor(*kind, name, material ? &*material : nullptr)) {
    switch (e.source) {
      case SandboxEnvEntry::Source::kToken: out.env.emplace_back(e.name, out.token); break;
      case SandboxEnvEntry::Source::kAuxToken: out.env.emplace_back(e.name, out.aux_token); break;
      case SandboxEnvEntry::Source::kPlain: out.env.emplace_back(e.name, e.plain); break;
    }
  }
  return out;
}

}  // namespace osb::worker
