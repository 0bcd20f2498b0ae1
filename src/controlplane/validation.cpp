#include "controlplane/validation.h"

#include <algorithm>
#include <cctype>

#include "common/host_pattern.h"

namespace osb::controlplane {
namespace {

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

Error Invalid(std::string_view field, const std::string& why) {
  return MakeError(ErrorCode::kInvalidArgument, std::string(field) + ": " + why);
}

// Quotes user input in messages, truncated and with control bytes escaped so
// a message stays one readable line.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (s.size() > 80) out += "...";
  return out + "'";
}


}  // namespace

Status ValidateName(std::string_view field, std::string_view name) {
  if (name.empty()) return Invalid(field, "is required");
  bool ok = name.size() <= 63 && IsAlnum(name[0]);
  for (char c : name) ok = ok && (IsAlnum(c) || c == '.' || c == '_' || c == '-');
  if (!ok) {
    return Invalid(field, Quote(name) +
                              " is not a valid name (1-63 chars: letters, digits, '.', '_', '-'; "
                              "starting with a letter or digit)");
  }
  return {};
}

Status ValidateReference(std::string_view what, std::string_view ref) {
  if (!ValidateName(what, ref).ok()) {
    return MakeError(ErrorCode::kInvalidArgument, "invalid " + std::string(what) + " id or name " + Quote(ref));
  }
  return {};
}

Status ValidateSecretName(std::string_view field, std::string_view name) {
  bool ok = !name.empty() && name.size() <= 128 &&
            (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_');
  for (char c : name) ok = ok && (IsAlnum(c) || c == '_');
  if (!ok) {
    return Invalid(field, Quote(name) +
                              " is not a valid name (an environment variable name: "
                              "[A-Za-z_][A-Za-z0-9_]*, at most 128 chars)");
  }
  return {};
}

Status ValidateSecretValue(std::string_view value) {
  if (value.empty()) return Invalid("value", "must not be empty");
  if (value.size() > kMaxSecretValueBytes) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "value: too large (" + std::to_string(value.size()) + " bytes; the limit is " +
                         std::to_string(kMaxSecretValueBytes) + ")");
  }
  return {};
}

Status ValidateRange(std::string_view field, int value, int min, int max) {
  if (value < min || value > max) {
    return Invalid(field, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
  return {};
}

Result<std::string> NormalizeHostPattern(std::string_view field, std::string_view entry, HostPatterns any) {
  auto spec = ParseHostPattern(entry, field, any == HostPatterns::kAllowAny);
  if (!spec) return spec.error();
  return spec->Text();
}

Result<std::vector<std::string>> NormalizeHostPatterns(std::string_view field,
                                                       const std::vector<std::string>& entries,
                                                       HostPatterns any) {
  std::vector<std::string> out;
  for (const auto& e : entries) {
    auto n = NormalizeHostPattern(field, e, any);
    if (!n) return n.error();
    bool dup = false;
    for (const auto& o : out) dup = dup || o == *n;
    if (!dup) out.push_back(std::move(*n));
  }
  if (out.size() > 1 && std::find(out.begin(), out.end(), "*") != out.end()) {
    return Invalid(field, "'*' (any host) must be the only entry");
  }
  return out;
}

}  // namespace osb::controlplane
