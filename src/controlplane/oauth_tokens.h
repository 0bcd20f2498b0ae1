// oauth2-refresh coordination (issue 16): one access-token refresh per
// expiry per project secret across every worker and control-plane replica,
// and rotated refresh tokens kept in the store (so a worker restart does not
// present a revoked one).
//
// The control plane never calls the token endpoint (a user-supplied URL:
// dialing it from here would be SSRF into the control plane's network). It
// hands out either the current access token or a refresh LEASE (30 s) with
// the refresh token to use; only the lease holder refreshes, through its
// proxy's dialer, and reports back with Complete (or Fail). Everything is
// state in the store (oauth_tokens, migration 12), so replicas agree:
// the lease is a compare-and-set there (store.h AcquireOAuthLease).
//
// Authorisation: the sandbox must be "running" on the calling worker (whose
// id the gRPC layer checked against its certificate), and its project must
// resolve `name` to an oauth2-refresh secret. Otherwise kNotFound, naming
// nothing secret.
//
// At rest: access and rotated refresh tokens are keyring ciphertexts whose
// associated data binds the project, the name and which token it is. The
// row is tied to the secret's material generation (an HMAC of its
// material): setting the secret again resets it.
// Thread safety: all methods may be called concurrently.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "common/oauth_grant.h"
#include "common/result.h"
#include "controlplane/resolution.h"
#include "crypto/keyring.h"
#include "store/store.h"

namespace osb::controlplane {

// The associated data of the stored access / rotated refresh token of
// secret `name` in `project_id` (which token it is is part of it: one
// cannot be replayed as the other). The one rule for writers, readers and
// osb rewrap.
std::string OAuthAccessAad(const std::string& project_id, const std::string& name);
std::string OAuthRefreshAad(const std::string& project_id, const std::string& name);

class OAuthTokenService {
 public:
  // Same margin as the worker's cache (secretsproxy/oauth_stage.h).
  static constexpr std::chrono::seconds kRefreshMargin{30};
  static constexpr std::chrono::seconds kLease{30};
  static constexpr std::chrono::milliseconds kRetryAfter{250};
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  OAuthTokenService(store::Store& store, Resolver& resolver, const crypto::Keyring& keyring, Clock now = nullptr);

  using Grant = OAuthGrant;  // common/oauth_grant.h, the worker's type too
  Result<Grant> Acquire(const std::string& worker_id, const std::string& sandbox_id, const std::string& name);
  // Stores the refresh's outcome if the caller still holds lease
  // `generation`; returns whether it did. expires_in_sec is clamped to
  // [1 s, 366 days].
  Result<bool> Complete(const std::string& worker_id, const std::string& sandbox_id, const std::string& name,
                        int64_t generation, const std::string& access_token, int64_t expires_in_sec,
                        const std::string& rotated_refresh_token);
  Status Fail(const std::string& worker_id, const std::string& sandbox_id, const std::string& name,
              int64_t generation);

 private:
  struct Target;
  Result<Target> Authorize(const std::string& worker_id, const std::string& sandbox_id, const std::string& name);

  store::Store& store_;
  Resolver& resolver_;
  const crypto::Keyring& keyring_;
  Clock now_;
};

}  // namespace osb::controlplane
