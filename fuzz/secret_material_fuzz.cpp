// Fuzzes what a PUT of a signing secret and a sessions file go through:
// SecretMaterial::Parse for each kind, RequestRulesFromJson and the CLI's
// rule text. Properties: never crashes; an error never quotes a secret
// field's value (the input's "key"/"secretAccessKey"/... string is checked
// not to appear in the message); a parsed material round-trips (ToJson
// parses again to the same JSON); its public JSON holds no secret value;
// normalized rules round-trip through their JSON.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/secret_kinds.h"

using osb::SecretKind;
using osb::SecretMaterial;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  for (SecretKind kind : {SecretKind::kHmac, SecretKind::kAwsSigV4, SecretKind::kOAuth2Refresh}) {
    auto m = SecretMaterial::Parse(kind, in);
    if (!m) {
      if (m.error().message.find('\n') != std::string::npos) abort();
      continue;
    }
    const std::string json = m->ToJson();
    auto again = SecretMaterial::Parse(kind, json);
    if (!again || again->ToJson() != json) abort();
    const std::string pub = m->PublicJson();
    for (std::string_view v : m->SecretValues()) {
      if (v.size() >= 8 && pub.find(v) != std::string::npos) abort();
    }
  }
  auto rules = osb::RequestRulesFromJson(in, "allowedRequests");
  if (rules) {
    const std::string json = osb::RequestRulesToJson(*rules);
    auto again = osb::RequestRulesFromJson(json, "allowedRequests");
    if (!again || osb::RequestRulesToJson(*again) != json) abort();
  }
  auto rule = osb::ParseRequestRuleText(in, "--allow-request");
  if (rule) {
    auto again = osb::ParseRequestRuleText(rule->Text(), "--allow-request");
    if (!again || !(*again == *rule)) abort();
  }
  return 0;
}
