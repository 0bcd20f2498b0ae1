#include "common/secret_kinds.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/base64.h"
#include "common/hex.h"
#include "common/host_pattern.h"
#include "common/secure_memory.h"

namespace osb {
namespace {

using nlohmann::json;

constexpr size_t kMaxField = 16 * 1024;

void WipeStrings(json& j) {
  if (j.is_string()) {
    auto& s = j.get_ref<std::string&>();
    SecureWipe(s);
  } else if (j.is_array() || j.is_object()) {
    for (auto& v : j) WipeStrings(v);
  }
}

struct FieldSpec {
  const char* name;
  bool required;
  bool secret;
  bool list;  // array of strings (kept space-joined)
};

const std::vector<FieldSpec>& Fields(SecretKind kind) {
  static const std::vector<FieldSpec> hmac = {
      {"key", true, true, false},        {"keyEncoding", false, false, false}, {"hash", false, false, false},
      {"header", true, false, false},    {"format", false, false, false},      {"prefix", false, false, false},
      {"message", false, false, false},  {"timestampHeader", false, false, false},
  };
  static const std::vector<FieldSpec> aws = {
      {"accessKeyId", true, false, false}, {"secretAccessKey", true, true, false},
      {"sessionToken", false, true, false}, {"region", false, false, false},
      {"service", false, false, false},
  };
  static const std::vector<FieldSpec> oauth = {
      {"tokenEndpoint", true, false, false}, {"clientId", true, false, false},
      {"clientSecret", false, true, false},  {"refreshToken", true, true, false},
      {"scopes", false, false, true},
  };
  static const std::vector<FieldSpec> none;
  switch (kind) {
    case SecretKind::kHmac: return hmac;
    case SecretKind::kAwsSigV4: return aws;
    case SecretKind::kOAuth2Refresh: return oauth;
    case SecretKind::kValue: break;
  }
  return none;
}

bool OneOf(std::string_view v, std::initializer_list<std::string_view> options) {
  return std::find(options.begin(), options.end(), v) != options.end();
}

bool IsToken(std::string_view s) {  // RFC 9110 tchar+
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!ok || c == '\0') return false;
  }
  return true;
}

bool Printable(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

Error Bad(std::string field, std::string_view why) {
  return MakeError(ErrorCode::kInvalidArgument, std::move(field) + ": " + std::string(why));
}

// Per-kind checks beyond presence and type. Never quotes a secret field.
Status CheckKind(SecretKind kind, const std::map<std::string, std::string, std::less<>>& f) {
  auto get = [&](std::string_view k) -> std::string_view {
    auto it = f.find(k);
    return it == f.end() ? std::string_view() : std::string_view(it->second);
  };
  switch (kind) {
    case SecretKind::kHmac: {
      const auto enc = get("keyEncoding");
      if (!enc.empty() && !OneOf(enc, {"utf8", "hex", "base64"})) {
        return Bad("material.keyEncoding", "must be utf8, hex or base64");
      }
      if (enc == "hex" && !HexDecode(get("key"))) return Bad("material.key", "is not valid hex");
      if (enc == "base64") {
        auto k = Base64Decode(get("key"));
        if (!k) return Bad("material.key", "is not valid base64");
        SecureWipe(*k);
      }
      if (!get("hash").empty() && !OneOf(get("hash"), {"sha256", "sha512", "sha1"})) {
        return Bad("material.hash", "must be sha256, sha512 or sha1");
      }
      if (!IsToken(get("header"))) return Bad("material.header", "must be an HTTP header name");
      static constexpr std::string_view kForbidden[] = {"host", "content-length", "transfer-encoding", "connection"};
      std::string lower(get("header"));
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      for (auto h : kForbidden) {
        if (lower == h) return Bad("material.header", "cannot be a framing or routing header");
      }
      if (!get("format").empty() && !OneOf(get("format"), {"hex", "base64"})) {
        return Bad("material.format", "must be hex or base64");
      }
      if (!Printable(get("prefix"))) return Bad("material.prefix", "must not contain control characters");
      if (f.count("timestampHeader") && !IsToken(get("timestampHeader"))) {
        return Bad("material.timestampHeader", "must be an HTTP header name");
      }
      if (f.count("message")) {
        // Placeholders: {method} {path} {query} {host} {timestamp} {body}.
        const auto m = get("message");
        for (size_t i = 0; i < m.size(); ++i) {
          if (m[i] != '{') continue;
          const size_t end = m.find('}', i);
          if (end == std::string_view::npos) return Bad("material.message", "has an unclosed {");
          const auto name = m.substr(i + 1, end - i - 1);
          if (!OneOf(name, {"method", "path", "query", "host", "timestamp", "body"})) {
            return Bad("material.message", "unknown placeholder (use {method} {path} {query} {host} {timestamp} {body})");
          }
          if (name == "timestamp" && !f.count("timestampHeader")) {
            return Bad("material.timestampHeader", "is required when message uses {timestamp}");
          }
          i = end;
        }
      }
      return {};
    }
    case SecretKind::kAwsSigV4: {
      const auto id = get("accessKeyId");
      if (id.size() < 4 || id.size() > 128 || !std::all_of(id.begin(), id.end(), [](unsigned char c) {
            return std::isalnum(c) != 0;
          })) {
        return Bad("material.accessKeyId", "must be 4-128 letters and digits");
      }
      for (const char* k : {"region", "service"}) {
        const auto v = get(k);
        if (!std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; })) {
          return Bad(std::string("material.") + k, "must be letters, digits, - or _");
        }
      }
      if (!Printable(get("secretAccessKey"))) return Bad("material.secretAccessKey", "must not contain control characters");
      if (!Printable(get("sessionToken"))) return Bad("material.sessionToken", "must not contain control characters");
      return {};
    }
    case SecretKind::kOAuth2Refresh: {
      const auto url = get("tokenEndpoint");
      if (url.rfind("https://", 0) != 0 || url.size() <= 8 || !Printable(url) || url.find(' ') != std::string_view::npos) {
        return Bad("material.tokenEndpoint", "must be an https:// URL");
      }
      if (!Printable(get("clientId"))) return Bad("material.clientId", "must not contain control characters");
      return {};
    }
    case SecretKind::kValue:
      break;
  }
  return {};
}

}  // namespace

std::optional<SecretKind> ParseSecretKind(std::string_view text) {
  if (text == "value") return SecretKind::kValue;
  if (text == "hmac") return SecretKind::kHmac;
  if (text == "aws-sigv4") return SecretKind::kAwsSigV4;
  if (text == "oauth2-refresh") return SecretKind::kOAuth2Refresh;
  return std::nullopt;
}

std::string_view SecretKindName(SecretKind kind) {
  switch (kind) {
    case SecretKind::kValue: return "value";
    case SecretKind::kHmac: return "hmac";
    case SecretKind::kAwsSigV4: return "aws-sigv4";
    case SecretKind::kOAuth2Refresh: return "oauth2-refresh";
  }
  return "value";
}

SecretMaterial::~SecretMaterial() {
  for (auto& [k, v] : fields_) SecureWipe(v);
}

SecretMaterial& SecretMaterial::operator=(const SecretMaterial& o) {
  if (this == &o) return *this;
  for (auto& [k, v] : fields_) SecureWipe(v);
  kind_ = o.kind_;
  fields_ = o.fields_;
  return *this;
}

SecretMaterial& SecretMaterial::operator=(SecretMaterial&& o) noexcept {
  if (this == &o) return *this;
  for (auto& [k, v] : fields_) SecureWipe(v);
  kind_ = o.kind_;
  fields_ = std::move(o.fields_);
  o.fields_.clear();
  return *this;
}

bool SecretMaterial::IsSecretField(SecretKind kind, std::string_view field) {
  for (const auto& spec : Fields(kind)) {
    if (field == spec.name) return spec.secret;
  }
  return true;  // unknown: treat as secret
}

Result<SecretMaterial> SecretMaterial::Parse(SecretKind kind, std::string_view text) {
  if (kind == SecretKind::kValue) return Bad("material", "a value secret has no material (use value)");
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  struct Wipe {
    json& j;
    ~Wipe() { WipeStrings(j); }
  } wipe{j};
  if (j.is_discarded()) return Bad("material", "is not valid JSON");
  if (!j.is_object()) return Bad("material", "must be a JSON object");
  const auto& specs = Fields(kind);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const bool known = std::any_of(specs.begin(), specs.end(), [&](const FieldSpec& s) { return it.key() == s.name; });
    if (!known) {
      std::string key = it.key().substr(0, 64);
      if (!Printable(key)) key = "?";
      return Bad("material." + key, std::string("unknown field for kind ") + std::string(SecretKindName(kind)));
    }
  }
  SecretMaterial m;
  m.kind_ = kind;
  for (const auto& spec : specs) {
    const std::string field = std::string("material.") + spec.name;
    auto it = j.find(spec.name);
    if (it == j.end() || it->is_null()) {
      if (spec.required) return Bad(field, "is required");
      continue;
    }
    std::string value;
    if (spec.list) {
      if (!it->is_array()) return Bad(field, "must be an array of strings");
      for (const auto& e : *it) {
        if (!e.is_string()) return Bad(field, "must be an array of strings");
        const auto& s = e.get_ref<const std::string&>();
        if (s.empty() || !IsToken(s) ) {
          // scope tokens: printable ASCII without space, quote or backslash (RFC 6749 3.3)
          bool ok = !s.empty();
          for (char c : s) ok = ok && c > 0x20 && c < 0x7f && c != '"' && c != '\\';
          if (!ok) return Bad(field, "each scope must be printable ASCII without spaces");
        }
        if (!value.empty()) value += ' ';
        value += s;
      }
    } else {
      if (!it->is_string()) return Bad(field, "must be a string");
      value = it->get_ref<const std::string&>();
      if (value.empty() && spec.required) return Bad(field, "must not be empty");
    }
    if (value.size() > kMaxField) return Bad(field, "is too long (max 16 KiB)");
    m.fields_.emplace(spec.name, std::move(value));
  }
  if (Status st = CheckKind(kind, m.fields_); !st) return st.error();
  return m;
}

std::string_view SecretMaterial::Get(std::string_view field) const {
  auto it = fields_.find(field);
  return it == fields_.end() ? std::string_view() : std::string_view(it->second);
}

bool SecretMaterial::Has(std::string_view field) const { return fields_.find(field) != fields_.end(); }

namespace {
json FieldsJson(SecretKind kind, const std::map<std::string, std::string, std::less<>>& fields, bool with_secrets) {
  json j = json::object();
  for (const auto& spec : Fields(kind)) {
    auto it = fields.find(spec.name);
    if (it == fields.end() || (spec.secret && !with_secrets)) continue;
    if (spec.list) {
      json arr = json::array();
      size_t start = 0;
      const std::string& s = it->second;
      while (start < s.size()) {
        size_t end = s.find(' ', start);
        if (end == std::string::npos) end = s.size();
        arr.push_back(s.substr(start, end - start));
        start = end + 1;
      }
      j[spec.name] = std::move(arr);
    } else {
      j[spec.name] = it->second;
    }
  }
  return j;
}
}  // namespace

std::string SecretMaterial::ToJson() const {
  json j = FieldsJson(kind_, fields_, true);
  std::string out = j.dump();
  WipeStrings(j);
  return out;
}

std::string SecretMaterial::PublicJson() const { return FieldsJson(kind_, fields_, false).dump(); }

std::vector<std::string_view> SecretMaterial::SecretValues() const {
  std::vector<std::string_view> out;
  for (const auto& spec : Fields(kind_)) {
    if (!spec.secret) continue;
    auto it = fields_.find(spec.name);
    if (it != fields_.end() && !it->second.empty()) out.push_back(it->second);
  }
  return out;
}

// ---- allowedRequests ----------------------------------------------------

std::string RequestRule::Text() const {
  std::string m;
  for (const auto& x : methods) m += (m.empty() ? "" : ",") + x;
  return (m.empty() ? std::string("*") : m) + " " + host + path_prefix;
}

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// A segment that servers read as "." or "..": dots spelled literally or as
// %2e, optionally followed by ";params".
bool IsDotSegment(std::string_view segment) {
  segment = segment.substr(0, segment.find(';'));
  size_t dots = 0;
  for (size_t i = 0; i < segment.size();) {
    if (segment[i] == '.') {
      ++i;
    } else if (EqualsIgnoreCase(segment.substr(i, 3), "%2e")) {
      i += 3;
    } else {
      return false;
    }
    ++dots;
  }
  return dots == 1 || dots == 2;
}

}  // namespace

bool IsPlainRequestPath(std::string_view path) {
  if (path.find('\\') != std::string_view::npos || path.find('\0') != std::string_view::npos) return false;
  for (size_t i = 0; i + 2 < path.size(); ++i) {
    if (path[i] != '%') continue;
    const auto code = path.substr(i + 1, 2);
    if (EqualsIgnoreCase(code, "2f") || EqualsIgnoreCase(code, "5c") || code == "00") return false;
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (IsDotSegment(path.substr(start, end - start))) return false;
    start = end + 1;
  }
  return true;
}

bool RequestRule::Matches(std::string_view h, uint16_t port, std::string_view method, std::string_view path) const {
  auto spec = ParseHostPattern(host, "host", true);
  if (!spec || !spec->Matches(h, port)) return false;
  if (!methods.empty() && std::find(methods.begin(), methods.end(), method) == methods.end()) return false;
  if (path_prefix.empty() || path_prefix == "/") return true;
  if (!IsPlainRequestPath(path)) return false;
  if (path.substr(0, path_prefix.size()) != path_prefix) return false;
  // "/v1/messages" matches "/v1/messages", "/v1/messages/x", "/v1/messages?..";
  // not "/v1/messagesX" (unless the prefix itself ends with "/").
  if (path_prefix.back() == '/' || path.size() == path_prefix.size()) return true;
  const char next = path[path_prefix.size()];
  return next == '/' || next == '?';
}

Result<std::vector<RequestRule>> NormalizeRequestRules(std::vector<RequestRule> rules, std::string_view field) {
  if (rules.size() > 100) return Bad(std::string(field), "at most 100 rules");
  for (size_t i = 0; i < rules.size(); ++i) {
    auto& r = rules[i];
    const std::string at = std::string(field) + "[" + std::to_string(i) + "]";
    auto spec = ParseHostPattern(r.host, at + ".host", true);
    if (!spec) return spec.error();
    r.host = spec->Text();
    if (r.methods.size() > 16) return Bad(at + ".methods", "at most 16 methods");
    for (auto& m : r.methods) {
      std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::toupper(c); });
      if (!IsToken(m) || m.size() > 32) return Bad(at + ".methods", "each method must be an HTTP method token");
    }
    if (std::find(r.methods.begin(), r.methods.end(), "*") != r.methods.end()) r.methods.clear();
    if (!r.path_prefix.empty()) {
      if (r.path_prefix[0] != '/') return Bad(at + ".pathPrefix", "must start with /");
      if (r.path_prefix.size() > 2048 || !Printable(r.path_prefix) || r.path_prefix.find(' ') != std::string::npos ||
          r.path_prefix.find('?') != std::string::npos || r.path_prefix.find('#') != std::string::npos) {
        return Bad(at + ".pathPrefix", "must be a path without spaces, ? or #");
      }
    }
  }
  return rules;
}

Result<RequestRule> ParseRequestRuleText(std::string_view text, std::string_view field) {
  RequestRule r;
  const auto sp = text.find(' ');
  // "POST" alone names no host (it would parse as the host "post").
  if (sp == std::string_view::npos && !text.empty() &&
      std::all_of(text.begin(), text.end(), [](char c) { return (c >= 'A' && c <= 'Z') || c == ','; })) {
    return Bad(std::string(field), "expected 'METHOD[,METHOD] host[/path-prefix]': no host given");
  }
  std::string_view rest = text;
  if (sp != std::string_view::npos) {
    std::string_view methods = text.substr(0, sp);
    rest = text.substr(sp + 1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    size_t start = 0;
    while (start <= methods.size()) {
      size_t end = methods.find(',', start);
      if (end == std::string_view::npos) end = methods.size();
      if (end > start) r.methods.emplace_back(methods.substr(start, end - start));
      start = end + 1;
    }
  }
  const auto slash = rest.find('/');
  r.host = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) r.path_prefix = std::string(rest.substr(slash));
  auto norm = NormalizeRequestRules({r}, field);
  if (!norm) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(field) + ": expected 'METHOD[,METHOD] host[/path-prefix]' (" + norm.error().message + ")");
  }
  return norm->front();
}

std::string RequestRulesToJson(const std::vector<RequestRule>& rules) {
  json arr = json::array();
  for (const auto& r : rules) {
    arr.push_back({{"host", r.host}, {"methods", r.methods}, {"pathPrefix", r.path_prefix}});
  }
  return arr.dump();
}

Result<std::vector<RequestRule>> RequestRulesFromJson(std::string_view text, std::string_view field) {
  if (text.empty()) return std::vector<RequestRule>{};
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_array()) return Bad(std::string(field), "must be an array of {host, methods, pathPrefix}");
  std::vector<RequestRule> rules;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    const std::string at = std::string(field) + "[" + std::to_string(i) + "]";
    if (!e.is_object()) return Bad(at, "must be an object {host, methods, pathPrefix}");
    RequestRule r;
    for (auto it = e.begin(); it != e.end(); ++it) {
      if (it.key() == "host") {
        if (!it->is_string()) return Bad(at + ".host", "must be a string");
        r.host = it->get<std::string>();
      } else if (it.key() == "methods") {
        if (!it->is_array()) return Bad(at + ".methods", "must be an array of strings");
        for (const auto& m : *it) {
          if (!m.is_string()) return Bad(at + ".methods", "must be an array of strings");
          r.methods.push_back(m.get<std::string>());
        }
      } else if (it.key() == "pathPrefix") {
        if (!it->is_string()) return Bad(at + ".pathPrefix", "must be a string");
        r.path_prefix = it->get<std::string>();
      } else {
        return Bad(at, "unknown field (use host, methods, pathPrefix)");
      }
    }
    if (r.host.empty()) return Bad(at + ".host", "is required");
    rules.push_back(std::move(r));
  }
  return NormalizeRequestRules(std::move(rules), field);
}

// ---- the sandbox environment ------------------------------------------------

std::vector<SandboxEnvEntry> SandboxEnvFor(SecretKind kind, std::string_view name, const SecretMaterial* material) {
  using Source = SandboxEnvEntry::Source;
  if (kind != SecretKind::kAwsSigV4 || material == nullptr) return {{std::string(name), Source::kToken, ""}};
  std::vector<SandboxEnvEntry> out;
  out.push_back({"AWS_ACCESS_KEY_ID", Source::kPlain, std::string(material->Get("accessKeyId"))});
  out.push_back({"AWS_SECRET_ACCESS_KEY", Source::kToken, ""});
  if (NeedsAuxToken(kind, material)) out.push_back({"AWS_SESSION_TOKEN", Source::kAuxToken, ""});
  if (!material->Get("region").empty()) {
    out.push_back({"AWS_REGION", Source::kPlain, std::string(material->Get("region"))});
    out.push_back({"AWS_DEFAULT_REGION", Source::kPlain, std::string(material->Get("region"))});
  }
  return out;
}

bool NeedsAuxToken(SecretKind kind, const SecretMaterial* material) {
  return kind == SecretKind::kAwsSigV4 && material != nullptr && !material->Get("sessionToken").empty();
}

}  // namespace osb
