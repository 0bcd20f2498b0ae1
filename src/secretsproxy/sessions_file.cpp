#include "secretsproxy/sessions_file.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/secure_memory.h"

namespace osb::secretsproxy {
namespace {

Result<std::vector<std::string>> StringList(const nlohmann::json& j, const char* key, const std::string& field) {
  std::vector<std::string> out;
  if (!j.contains(key) || j[key].is_null()) return out;
  if (!j[key].is_array()) return MakeError(ErrorCode::kInvalidArgument, field + "." + key + ": must be a list");
  for (const auto& v : j[key]) {
    if (!v.is_string()) return MakeError(ErrorCode::kInvalidArgument, field + "." + key + ": must hold strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::string> RequiredString(const nlohmann::json& j, const char* key, const std::string& field) {
  if (!j.contains(key) || !j[key].is_string()) {
    return MakeError(ErrorCode::kInvalidArgument, field + "." + key + ": required string");
  }
  return j[key].get<std::string>();
}

}  // namespace

Result<std::vector<SessionEntry>> ParseSessionsJson(const std::string& text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return MakeError(ErrorCode::kInvalidArgument, "sessions: not valid JSON");
  if (!doc.is_array()) return MakeError(ErrorCode::kInvalidArgument, "sessions: must be a JSON list");
  std::vector<SessionEntry> out;
  for (size_t i = 0; i < doc.size(); ++i) {
    const std::string field = "sessions[" + std::to_string(i) + "]";
    const auto& j = doc[i];
    if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, field + ": must be an object");
    SessionEntry e;
    auto source = RequiredString(j, "source", field);
    if (!source) return source.error();
    e.source = *source;
    auto id = RequiredString(j, "sandboxId", field);
    if (!id) return id.error();
    e.session.sandbox_id = *id;
    if (j.contains("projectId") && j["projectId"].is_string()) e.session.project_id = j["projectId"].get<std::string>();
    auto allow = StringList(j, "allowlist", field);
    if (!allow) return allow.error();
    e.session.egress_allowlist = *allow;
    if (j.contains("secrets")) {
      if (!j["secrets"].is_array()) return MakeError(ErrorCode::kInvalidArgument, field + ".secrets: must be a list");
      for (size_t k = 0; k < j["secrets"].size(); ++k) {
        const auto& s = j["secrets"][k];
        const std::string sf = field + ".secrets[" + std::to_string(k) + "]";
        if (!s.is_object()) return MakeError(ErrorCode::kInvalidArgument, sf + ": must be an object");
        SecretBinding b;
        auto name = RequiredString(s, "name", sf);
        auto token = RequiredString(s, "token", sf);
        if (!name) return name.error();
        if (!token) return token.error();
        // Issue 16: "kind" (default "value"); a non-value kind carries
        // "material" (a JSON object) instead of "value", and aws-sigv4 with a
        // sessionToken an "auxToken".
        b.kind = s.contains("kind") && s["kind"].is_string() ? s["kind"].get<std::string>() : "value";
        if (b.kind == "value") {
          auto value = RequiredString(s, "value", sf);
          if (!value) return value.error();
          b.value = std::move(*value);
        } else {
          if (!s.contains("material") || !s["material"].is_object()) {
            return MakeError(ErrorCode::kInvalidArgument, sf + ".material: required object for kind " + b.kind);
          }
          b.material = s["material"].dump();
          if (s.contains("auxToken")) {
            auto aux = RequiredString(s, "auxToken", sf);
            if (!aux) return aux.error();
            b.aux_token = *aux;
          }
        }
        auto hosts = StringList(s, "allowedHosts", sf);
        if (!hosts) return hosts.error();
        b.name = *name;
        b.token = *token;
        b.allowed_hosts = *hosts;
        if (s.contains("allowedRequests")) {
          auto rules = RequestRulesFromJson(s["allowedRequests"].dump(), sf + ".allowedRequests");
          if (!rules) return rules.error();
          b.allowed_requests = std::move(*rules);
        }
        b.refuse_disallowed = s.contains("onDisallowedRequest") && s["onDisallowedRequest"] == "refuse";
        e.session.secrets.push_back(std::move(b));
      }
    }
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::vector<SessionEntry>> LoadSessionsFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return MakeError(ErrorCode::kInvalidArgument, "sessions: cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto r = ParseSessionsJson(text);
  SecureWipe(text);
  return r;
}

}  // namespace osb::secretsproxy
