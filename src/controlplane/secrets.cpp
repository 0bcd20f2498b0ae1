#include "controlplane/secrets.h"

#include "common/log.h"
#include "common/secure_memory.h"
#include "controlplane/validation.h"

#include <spdlog/spdlog.h>

namespace osb::controlplane {

PlainSecret::~PlainSecret() { SecureWipe(value); }

std::string SecretAad(std::string_view org_id, std::string_view group_id, std::string_view name) {
  std::string aad = "osb-secret-v1";
  for (std::string_view part : {org_id, group_id, name}) {
    const auto n = static_cast<uint32_t>(part.size());
    aad += static_cast<char>((n >> 24) & 0xff);
    aad += static_cast<char>((n >> 16) & 0xff);
    aad += static_cast<char>((n >> 8) & 0xff);
    aad += static_cast<char>(n & 0xff);
    aad += part;
  }
  return aad;
}

namespace {
SecretMetadata MetadataOf(const store::SecretRow& r) {
  SecretMetadata m;
  m.name = r.name;
  m.allowed_hosts = r.allowed_hosts;
  m.created_at = r.created_at;
  m.updated_at = r.updated_at;
  m.kind = r.kind.empty() ? "value" : r.kind;
  m.public_material = r.public_material;
  auto rules = RequestRulesFromJson(r.allowed_requests, "allowedRequests");
  if (rules) m.allowed_requests = std::move(*rules);
  m.on_disallowed_request = r.on_disallowed_request.empty() ? "seal" : r.on_disallowed_request;
  return m;
}
}  // namespace

Result<SecretService::Target> SecretService::Locate(const std::string& org_id, SecretScope scope,
                                                    const std::string& ref) {
  if (scope == SecretScope::kProject) {
    auto p = projects_.Find(org_id, ref);
    if (!p) return p.error();
    return Target{p->own_group_id, p->id, *p};
  }
  auto g = groups_.Get(org_id, ref);
  if (!g) return g.error();
  return Target{g->id, std::nullopt, std::nullopt};
}

Result<SecretMetadata> SecretService::Set(const std::string& org_id, SecretScope scope,
                                          const std::string& ref, const std::string& name,
                                          std::string_view value,
                                          const std::vector<std::string>& allowed_hosts) {
  return Set(org_id, scope, ref, name, value, allowed_hosts, Options{});
}

Result<SecretMetadata> SecretService::Set(const std::string& org_id, SecretScope scope,
                                          const std::string& ref, const std::string& name,
                                          std::string_view value,
                                          const std::vector<std::string>& allowed_hosts, const Options& options) {
  if (Status st = ValidateSecretName("name", name); !st) return st.error();
  auto kind = ParseSecretKind(options.kind);
  if (!kind) return MakeError(ErrorCode::kInvalidArgument, "kind: must be value, hmac, aws-sigv4 or oauth2-refresh");
  if (options.on_disallowed_request != kOnDisallowedSeal && options.on_disallowed_request != kOnDisallowedRefuse) {
    return MakeError(ErrorCode::kInvalidArgument, "onDisallowedRequest: must be seal or refuse");
  }
  auto rules = NormalizeRequestRules(options.allowed_requests, "allowedRequests");
  if (!rules) return rules.error();
  // A non-value secret: the material is validated and stored canonical.
  std::string canonical;
  struct Wipe {
    std::string& s;
    ~Wipe() { SecureWipe(s); }
  } wipe{canonical};
  std::string public_material;
  if (*kind != SecretKind::kValue) {
    auto material = SecretMaterial::Parse(*kind, value);
    if (!material) return material.error();
    canonical = material->ToJson();
    public_material = material->PublicJson();
    value = canonical;
  }
  if (Status st = ValidateSecretValue(value); !st) return st.error();
  auto hosts = NormalizeHostPatterns("allowedHosts", allowed_hosts, HostPatterns::kAllowAny);
  if (!hosts) return hosts.error();
  auto target = Locate(org_id, scope, ref);
  if (!target) return target.error();

  auto ciphertext = keyring_->Encrypt(value, SecretAad(org_id, target->group_id, name));
  if (!ciphertext) return ciphertext.error();
  auto key_id = crypto::Keyring::KeyIdOf(*ciphertext);
  if (!key_id) return key_id.error();
  store::SecretRow row;
  row.org_id = org_id;
  row.group_id = target->group_id;
  row.name = name;
  row.ciphertext = std::move(*ciphertext);
  row.key_id = *key_id;
  row.allowed_hosts = std::move(*hosts);
  row.kind = std::string(SecretKindName(*kind));
  row.public_material = std::move(public_material);
  row.allowed_requests = RequestRulesToJson(*rules);
  row.on_disallowed_request = options.on_disallowed_request;
  row.created_at = row.updated_at = store::NowRfc3339();
  auto stored = store_.PutSecret(row);
  if (!stored) {
    if (stored.error().code == ErrorCode::kNotFound) {
      return MakeError(ErrorCode::kNotFound, "'" + ref + "' was deleted");
    }
    return stored.error();
  }
  RefreshReport refresh = Notify(SecretChange::Kind::kSet, org_id, *target, name);
  SecretMetadata out = MetadataOf(*stored);
  out.refresh = std::move(refresh);
  if (stored->allowed_hosts.empty()) out.warnings = HostlessWarnings(org_id, *target);
  return out;
}

std::vector<std::string> SecretService::HostlessWarnings(const std::string& org_id, const Target& t) {
  constexpr std::string_view kFix =
      ": the secret will not be sent to any host (its token stays sealed). Set allowedHosts, give the "
      "project an egressAllowlist, or use allowedHosts [\"*\"] to allow any host the sandbox may reach";
  std::vector<std::string> out;
  if (t.project) {
    if (t.project->egress_allowlist.empty()) {
      out.push_back("no allowedHosts and project '" + t.project->name + "' has an empty egress allowlist" +
                    std::string(kFix));
    }
    return out;
  }
  auto projects = store_.ListProjects(org_id);
  if (!projects) return out;
  std::string names;
  for (const auto& p : *projects) {
    if (!p.egress_allowlist.empty()) continue;
    for (const auto& gid : p.secret_group_ids) {
      if (gid != t.group_id) continue;
      names += (names.empty() ? "'" : ", '") + p.name + "'";
      break;
    }
  }
  if (!names.empty()) {
    out.push_back("no allowedHosts and the projects using this group with an empty egress allowlist (" + names +
                  ")" + std::string(kFix) + " in their sandboxes");
  }
  return out;
}

Result<std::vector<SecretMetadata>> SecretService::List(const std::string& org_id, SecretScope scope,
                                                        const std::string& ref) {
  auto target = Locate(org_id, scope, ref);
  if (!target) return target.error();
  auto rows = store_.ListSecrets(target->group_id, /*with_ciphertext=*/false);
  if (!rows) return rows.error();
  std::vector<SecretMetadata> out;
  for (auto& r : *rows) out.push_back(MetadataOf(r));
  return out;
}

Status SecretService::Delete(const std::string& org_id, SecretScope scope, const std::string& ref,
                             const std::string& name) {
  if (Status st = ValidateSecretName("name", name); !st) return st;
  auto target = Locate(org_id, scope, ref);
  if (!target) return target.error();
  Status st = store_.DeleteSecret(target->group_id, name);
  if (!st) {
    if (st.error().code == ErrorCode::kNotFound) {
      return MakeError(ErrorCode::kNotFound, "secret '" + name + "' not found");
    }
    return st;
  }
  Notify(SecretChange::Kind::kDelete, org_id, *target, name);
  return {};
}

Result<std::vector<PlainSecret>> SecretService::DecryptGroup(const std::string& org_id,
                                                             const std::string& group_id) {
  auto rows = store_.ListSecrets(group_id, /*with_ciphertext=*/true);
  if (!rows) return rows.error();
  std::vector<PlainSecret> out;
  for (const auto& r : *rows) {
    auto plain = keyring_->Decrypt(r.ciphertext, SecretAad(org_id, group_id, r.name));
    if (!plain) {
      return MakeError(plain.error().code, "secret '" + r.name + "': " + plain.error().message);
    }
    out.emplace_back(r.name, std::move(*plain), r.allowed_hosts);
    out.back().kind = r.kind;
    out.back().on_disallowed_request = r.on_disallowed_request;
    auto rules = RequestRulesFromJson(r.allowed_requests, "allowedRequests");
    if (rules) out.back().allowed_requests = std::move(*rules);
  }
  return out;
}

RefreshReport SecretService::Notify(SecretChange::Kind kind, const std::string& org_id, const Target& t,
                                    const std::string& name) {
  if (!listener_) return {};
  SecretChange change;
  change.kind = kind;
  change.org_id = org_id;
  change.name = name;
  if (t.project_id) {
    change.project_id = t.project_id;
    change.affected_project_ids.push_back(*t.project_id);
  } else {
    change.group_id = t.group_id;
    auto projects = store_.ListProjects(org_id);
    if (projects) {
      for (const auto& p : *projects) {
        for (const auto& gid : p.secret_group_ids) {
          if (gid == t.group_id) change.affected_project_ids.push_back(p.id);
        }
      }
    } else {
      spdlog::warn("secret change hook: cannot list projects: {}", projects.error().message);
    }
  }
  try {
    return listener_(change);
  } catch (const std::exception& e) {
    spdlog::error("secret change listener threw: {}", e.what());
  }
  return {};
}

}  // namespace osb::controlplane
