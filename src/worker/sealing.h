// Sealed tokens: what a sandbox gets instead of a secret value.
//
// A token is "osb_sealed_" followed by 32 lower-case hex characters (128 bits
// from the CSPRNG), 43 bytes in all. Tokens carry no information about the
// value; the proxy maps them back to values only for the sandbox that owns
// them (looked up by the connection's source address).
#pragma once

#include <map>
#include <string>
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

}  // namespace osb::worker
