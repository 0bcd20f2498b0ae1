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

}  // namespace osb::worker
