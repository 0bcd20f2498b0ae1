#include "worker/request_validation.h"

#include <set>

#include "common/secret_kinds.h"

#include "controlplane/validation.h"  // the REST API's limits (constants only)
#include "sandbox/spec.h"

namespace osb::worker {
namespace {

constexpr size_t kMaxListEntries = 1000;
constexpr size_t kMaxEnvValueBytes = 64 * 1024;
constexpr size_t kMaxCmdBytes = 4096;

Error Bad(const std::string& field, const std::string& why) {
  return MakeError(ErrorCode::kInvalidArgument, field + ": " + why);
}

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

Status EnvName(const std::string& field, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 128 && !IsDigit(name[0]);
  for (char c : name) ok = ok && (IsAlnum(c) || c == '_');
  if (!ok) return Bad(field, "'" + name.substr(0, 64) + "' is not a valid name ([A-Za-z_][A-Za-z0-9_]{0,127})");
  return {};
}

Status NoNul(const std::string& field, const std::string& s) {
  if (s.find('\0') != std::string::npos) return Bad(field, "must not contain NUL bytes");
  return {};
}

Status Range(const std::string& field, int v, int min, int max) {
  if (v == 0 || (v >= min && v <= max)) return {};
  return Bad(field, "must be 0 (default) or " + std::to_string(min) + ".." + std::to_string(max) + ", got " +
                        std::to_string(v));
}

template <typename List>
Status HostPatterns(const std::string& field, const List& entries, bool allow_any) {
  if (static_cast<size_t>(entries.size()) > kMaxListEntries) {
    return Bad(field, "at most " + std::to_string(kMaxListEntries) + " entries");
  }
  for (const std::string& e : entries) {
    if (allow_any && e == "*") continue;
    bool ok = !e.empty() && e.size() <= 261;
    for (char c : e) ok = ok && (IsAlnum(c) || c == '.' || c == '-' || c == '*' || c == ':' || c == '_');
    // A wildcard only as a leading "*." label.
    const auto star = e.find('*');
    if (star != std::string::npos) ok = ok && e.starts_with("*.") && e.find('*', 1) == std::string::npos;
    if (!ok) return Bad(field, "'" + e.substr(0, 64) + "' is not a host pattern");
  }
  return {};
}

// Issue-16 fields: a known kind, seal|refuse, well-formed allowedRequests.
// (The material itself is validated where it is sealed: SealSecret.)
template <typename Msg>
Status KindFields(const std::string& field, const Msg& m) {
  if (!m.kind().empty() && !ParseSecretKind(m.kind())) return Bad(field + ".kind", "unknown secret kind");
  const auto& on = m.on_disallowed_request();
  if (!on.empty() && on != kOnDisallowedSeal && on != kOnDisallowedRefuse) {
    return Bad(field + ".on_disallowed_request", "must be seal or refuse");
  }
  std::vector<RequestRule> rules;
  for (const auto& r : m.allowed_requests()) {
    rules.push_back({r.host(), {r.methods().begin(), r.methods().end()}, r.path_prefix()});
  }
  auto norm = NormalizeRequestRules(std::move(rules), field + ".allowed_requests");
  if (!norm) return norm.error();
  return {};
}

}  // namespace

Status ValidateSandboxIdField(const std::string& id) {
  if (auto s = sandbox::ValidateSandboxId(id); !s) return Bad("sandbox_id", s.error().message);
  return {};
}

Status ValidateCreateRequest(const v1::CreateSandboxRequest& req) {
  if (auto s = ValidateSandboxIdField(req.sandbox_id()); !s) return s;
  const auto& c = req.config();
  const std::string& t = c.template_id();
  if (!t.empty()) {
    bool ok = t.size() <= 128 && IsAlnum(t[0]);
    for (char ch : t) ok = ok && (IsAlnum(ch) || ch == '.' || ch == '_' || ch == '-');
    if (!ok) return Bad("template_id", "'" + t.substr(0, 64) + "' is not a template name ([A-Za-z0-9][A-Za-z0-9._-]{0,127})");
  }
  if (!c.project_id().empty()) {
    bool ok = c.project_id().size() <= 128;
    for (char ch : c.project_id()) ok = ok && (IsAlnum(ch) || ch == '.' || ch == '_' || ch == '-');
    if (!ok) return Bad("project_id", "not a project id");
  }
  if (auto s = Range("cpu_count", c.cpu_count(), controlplane::kMinCpu, controlplane::kMaxCpu); !s) return s;
  if (auto s = Range("memory_mb", c.memory_mb(), controlplane::kMinMemoryMb, controlplane::kMaxMemoryMb); !s) return s;
  if (auto s = Range("timeout_sec", c.timeout_sec(), controlplane::kMinTimeoutSec, controlplane::kMaxTimeoutSec); !s) {
    return s;
  }
  if (auto s = HostPatterns("egress_allowlist", c.egress_allowlist(), false); !s) return s;
  if (c.envs().size() > kMaxListEntries) return Bad("envs", "at most " + std::to_string(kMaxListEntries) + " entries");
  for (const auto& [name, value] : c.envs()) {
    if (auto s = EnvName("envs", name); !s) return s;
    if (value.size() > kMaxEnvValueBytes) return Bad("envs", name + ": value larger than 64 KiB");
    if (auto s = NoNul("envs." + name, value); !s) return s;
  }
  if (static_cast<size_t>(req.secrets_size()) > kMaxListEntries) {
    return Bad("secrets", "at most " + std::to_string(kMaxListEntries) + " entries");
  }
  std::set<std::string> names;
  for (const auto& secret : req.secrets()) {
    if (auto s = EnvName("secrets", secret.name()); !s) return s;
    if (!names.insert(secret.name()).second) return Bad("secrets", "duplicate name " + secret.name());
    if (secret.value().empty() || secret.value().size() > controlplane::kMaxSecretValueBytes) {
      return Bad("secrets." + secret.name(), "value must be 1 byte .. 64 KiB");
    }
    if (auto s = HostPatterns("secrets." + secret.name() + ".allowed_hosts", secret.allowed_hosts(), true); !s) {
      return s;
    }
    if (auto s = KindFields("secrets." + secret.name(), secret); !s) return s;
  }
  return {};
}

Status ValidateExecRequest(const v1::ExecRequest& req) {
  if (auto s = ValidateSandboxIdField(req.sandbox_id()); !s) return s;
  if (req.cmd().empty() || req.cmd().size() > kMaxCmdBytes) return Bad("cmd", "must be 1..4096 bytes");
  if (auto s = NoNul("cmd", req.cmd()); !s) return s;
  for (const auto& a : req.args()) {
    if (auto s = NoNul("args", a); !s) return s;
  }
  for (const auto& [name, value] : req.envs()) {
    if (auto s = EnvName("envs", name); !s) return s;
    if (auto s = NoNul("envs." + name, value); !s) return s;
  }
  if (!req.cwd().empty() && req.cwd().front() != '/') return Bad("cwd", "must be an absolute path");
  if (auto s = NoNul("cwd", req.cwd()); !s) return s;
  if (req.timeout_sec() < 0 || req.timeout_sec() > controlplane::kMaxTimeoutSec) {
    return Bad("timeout_sec", "must be 0 (default) .. " + std::to_string(controlplane::kMaxTimeoutSec));
  }
  return {};
}

Status ValidateUpdateSecretRequest(const v1::UpdateSecretRequest& req) {
  if (auto s = ValidateSandboxIdField(req.sandbox_id()); !s) return s;
  if (auto s = EnvName("name", req.name()); !s) return s;
  if (!req.deleted() && (req.value().empty() || req.value().size() > controlplane::kMaxSecretValueBytes)) {
    return Bad("value", "must be 1 byte .. 64 KiB");
  }
  if (auto s = KindFields("secret", req); !s) return s;
  return HostPatterns("allowed_hosts", req.allowed_hosts(), true);
}

}  // namespace osb::worker
