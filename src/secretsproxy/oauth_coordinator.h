// The seam between a worker's OAuthTokenCache (oauth_stage.h) and the
// control plane's oauth2-refresh coordination (controlplane/oauth_tokens.h,
// the ControlPlane rpcs AcquireOAuthToken / CompleteOAuthRefresh /
// FailOAuthRefresh). The worker implements it over gRPC
// (worker/oauth_coordinator_client.h); tests implement it in memory.
//
// Acquire answers with the deployment's current access token, a refresh
// lease (the refresh token to use and the lease id: only the holder calls
// the token endpoint, then Complete or Fail), or "ask again in N ms". Any
// error (the control plane unreachable, the sandbox not on this worker)
// makes the cache fail closed: it never refreshes on its own with a refresh
// token that another worker may already have rotated away.
//
// Every method calls `done` exactly once, on any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "common/oauth_grant.h"
#include "common/result.h"

namespace osb::secretsproxy {

// The grant type lives in common/ (the control plane builds the same answer).
using osb::OAuthGrant;

class OAuthCoordinator {
 public:
  virtual ~OAuthCoordinator() = default;
  virtual void Acquire(const std::string& sandbox_id, const std::string& name,
                       std::function<void(Result<OAuthGrant>)> done) = 0;
  // Result: whether the control plane stored them (false: the lease was
  // no longer this worker's).
  virtual void Complete(const std::string& sandbox_id, const std::string& name, int64_t generation,
                        const std::string& access_token, int64_t expires_in_sec, const std::string& rotated_refresh_token,
                        std::function<void(Result<bool>)> done) = 0;
  virtual void Fail(const std::string& sandbox_id, const std::string& name, int64_t generation,
                    std::function<void(Status)> done) = 0;
};

}  // namespace osb::secretsproxy
