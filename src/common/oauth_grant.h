// One answer in the oauth2-refresh coordination (issue 16) between a
// worker's token cache and the control plane (ControlPlane.AcquireOAuthToken):
// the deployment's current access token, a refresh lease (the refresh token
// to use and the lease id: only its holder calls the token endpoint), or
// "ask again in N ms". The control plane builds it from the store; the
// worker from the rpc's answer (secretsproxy/oauth_coordinator.h).
// Token fields are wiped when a grant is destroyed.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/secure_memory.h"

namespace osb {

struct OAuthGrant {
  enum class Kind { kToken, kLease, kWait };
  Kind kind = Kind::kWait;
  std::string access_token;                           // kToken
  std::chrono::system_clock::time_point expires_at;   // kToken
  std::string refresh_token;                          // kLease
  int64_t generation = 0;                             // kLease: the lease id
  std::chrono::system_clock::time_point lease_until;  // kLease
  std::chrono::milliseconds retry_after{0};           // kWait
  OAuthGrant() = default;
  OAuthGrant(const OAuthGrant&) = default;
  OAuthGrant(OAuthGrant&&) noexcept = default;
  OAuthGrant& operator=(const OAuthGrant&) = default;
  OAuthGrant& operator=(OAuthGrant&&) noexcept = default;
  ~OAuthGrant() {
    SecureWipe(access_token);
    SecureWipe(refresh_token);
  }
};

}  // namespace osb
