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
    const std::map<std::string, std::string>& name_to_token, const SandboxNetworkEnv& net) {
  std::map<std::string, std::string> env = plain_envs;
  for (const auto& [name, token] : name_to_token) env.emplace(name, token);  // plain wins
  for (const char* var : {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"}) {
    env[var] = net.proxy_url;
  }
  env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1";
  for (const char* var : {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
                          "CURL_CA_BUNDLE"}) {
    env[var] = net.ca_bundle_path;
  }
  return env;
}

}  // namespace osb::worker
