// Sealed tokens: what a sandbox gets instead of a secret value.
//
// A token is "osb_sealed_" followed by 32 lower-case hex characters (128 bits
// from the CSPRNG), 43 bytes in all. Tokens carry no information about the
// value; the proxy maps them back to values only for the sandbox that owns
// them (looked up by the connection's source address).
#pragma once

#include <map>
#include <string>

#include "common/result.h"
#include "common/secret_kinds.h"
#include <string_view>
#include <vector>

namespace osb::worker {

inline constexpr std::string_view kTokenPrefix = "osb_sealed_";
inline constexpr size_t kTokenHexChars = 32;
inline constexpr size_t kTokenSize = kTokenPrefix.size() + kTokenHexChars;

// A fresh random token.
std::string MintToken();

// True for exactly the token shape above.
bool IsSealedToken(std::string_view s);

// The secrets part of a sandbox environment: plain envs (project defaults
// merged with the request, already resolved) plus one token per secret under
// the secret's name, unless a plain env of that name exists (plaintext wins;
// the control plane already drops such secrets, this keeps the rule true if
// it does not). The runtime adds PATH, HOME, proxy and CA variables.
std::map<std::string, std::string> ComposeSandboxEnv(
    const std::map<std::string, std::string>& plain_envs,
    const std::map<std::string, std::string>& name_to_token);

// One secret sealed for a sandbox: its token(s) and the environment
// variables the sandbox gets for it — per kind, as common/secret_kinds.h
// (SandboxEnvFor) says: NAME=token for value/hmac/oauth2-refresh; the AWS_*
// variables for aws-sigv4 (real access key id, token as secret key, aux
// token as session token, region).
struct SealedSecretEnv {
  std::string token;
  std::string aux_token;  // aws-sigv4 with a sessionToken
  std::vector<std::pair<std::string, std::string>> env;
};
// kind: "" or "value" = a value secret; material_json: a non-value
// secret's material (validated here: errors name "material.<field>").
// Tokens are minted unless given (a restored sandbox keeps its tokens).
Result<SealedSecretEnv> SealSecret(std::string_view kind, std::string_view name, std::string_view material_json,
                                   std::string token = "", std::string aux_token = "");

}  // namespace osb::worker
