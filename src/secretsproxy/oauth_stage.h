// The oauth2-refresh signing stage (signing_stage.h) and its access-token
// cache.
//
// The sandbox holds a token standing for the access token and sends it as
// a bearer ("Authorization: Bearer osb_sealed_..."; any header value works).
// When a request carries the token of a usable oauth2-refresh secret in a
// header, the proxy puts a current access token in its place — refreshing
// it first when there is none or it expires within kRefreshMargin.
//
// Refresh (RFC 6749 section 6): POST tokenEndpoint, form body grant_type=
// refresh_token, refresh_token, client_id, client_secret (when set),
// scope (when set), over the same dialer as any upstream (DNS, address
// policy, verified TLS). The answer must be 200 JSON with access_token and
// expires_in (default 3600 s). Nothing of it reaches the sandbox. A failure
// refuses the request with 502 and a fixed reason (audited) — never a value.
//
// Sharing: ONE cache per worker's proxy, keyed by (project, secret name,
// material fingerprint). Every sandbox of a project on that worker shares
// the access token: one refresh per expiry per project per worker (each
// worker refreshes once for its own sandboxes). Concurrent requests wait for
// the one refresh in flight.
//
// Rotating refresh tokens: when the endpoint returns a new refresh_token it
// replaces the stored one IN THIS CACHE (the worker's memory; used for every
// later refresh of that project on this worker). It is not written back to
// the control plane's store: after a worker restart the stored refresh token
// is used again (docs/secrets.md says so).
//
// Scrubbing: every access token handed out (the current and the previous
// one) and a rotated refresh token are published to the project's sessions
// (SessionRegistry::SetDerivedValues): an upstream echoing one gets the
// sandbox's token back in its place.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "secretsproxy/signing_stage.h"

namespace osb::secretsproxy {

class OAuthTokenCache {
 public:
  static constexpr std::chrono::seconds kRefreshMargin{30};
  static constexpr std::chrono::milliseconds kRefreshTimeout{15000};

  OAuthTokenCache() = default;
  ~OAuthTokenCache();
  OAuthTokenCache(const OAuthTokenCache&) = delete;
  OAuthTokenCache& operator=(const OAuthTokenCache&) = delete;

  struct Access {
    std::string access_token;
    std::vector<std::string> scrub;  // values to publish for scrubbing
  };
  // A current access token for this project's secret: cached, or one
  // refresh shared by concurrent callers. Errors are fixed texts (502).
  boost::asio::awaitable<Result<Access>> Get(const std::string& project_id, const std::string& name,
                                             const SecretMaterial& material, SigningEnv& env);
  // Refreshes made so far (tests, metrics).
  int refreshes() const;

 private:
  struct Waiter;
  struct Entry;
  boost::asio::awaitable<Result<std::string>> Refresh(const SecretMaterial& material, std::string refresh_token,
                                                       SigningEnv& env, std::string* rotated,
                                                       std::chrono::seconds* lifetime);
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
  int refreshes_ = 0;
};

class OAuthStage final : public SigningStage {
 public:
  std::string_view name() const override { return "oauth2-refresh"; }
  SecretKind kind() const override { return SecretKind::kOAuth2Refresh; }
  boost::asio::awaitable<StageResult> OnHead(SigningCall& call, std::unique_ptr<SigningAction>* action) const override;
};

const SigningStage* OAuthSigningStage();

}  // namespace osb::secretsproxy
