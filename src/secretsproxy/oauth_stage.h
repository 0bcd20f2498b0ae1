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
// Sharing and rotation, with a control plane (a worker: SetCoordinator,
// oauth_coordinator.h): ONE refresh per expiry per project secret across
// the whole deployment. The cache keeps the access token in memory and
// single-flights its own callers; on a miss it asks the control plane,
// which answers with the current access token (refreshed by any worker), a
// refresh lease (only then does this proxy call the token endpoint, with
// the refresh token the control plane gives: the rotated one if the
// provider rotates) or "ask again" (another worker refreshes: bounded
// wait). The outcome — the access token, its lifetime and a rotated
// refresh token — goes back to the control plane's store, so it survives a
// worker restart and serves the other workers. If the control plane cannot
// be asked, the request fails closed (502, fixed reason, audited): the
// cache never refreshes on its own with a refresh token another worker may
// have rotated away (with reuse detection the provider would revoke the
// whole token family).
//
// Without a coordinator (the standalone `osb proxy`): ONE cache per proxy,
// keyed by (project, secret name, material fingerprint); one refresh per
// expiry per project per proxy, and a rotated refresh token is kept in this
// cache's memory only.
//
// Scrubbing: every access token handed out (the current and the previous
// one, including one obtained from the control plane) and a rotated
// refresh token are published to the project's sessions
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
#include "secretsproxy/oauth_coordinator.h"
#include "secretsproxy/signing_stage.h"

namespace osb::secretsproxy {

class OAuthTokenCache {
 public:
  static constexpr std::chrono::seconds kRefreshMargin{30};
  static constexpr std::chrono::milliseconds kRefreshTimeout{15000};
  // One call to the control plane (Acquire, Complete, Fail).
  static constexpr std::chrono::milliseconds kCoordinatorTimeout{5000};

  OAuthTokenCache() = default;
  ~OAuthTokenCache();
  OAuthTokenCache(const OAuthTokenCache&) = delete;
  OAuthTokenCache& operator=(const OAuthTokenCache&) = delete;

  struct Access {
    std::string access_token;
    std::vector<std::string> scrub;  // values to publish for scrubbing
  };
  // Set before the proxy serves (not thread-safe against Get).
  void SetCoordinator(std::shared_ptr<OAuthCoordinator> coordinator) { coordinator_ = std::move(coordinator); }
  // A current access token for this project's secret: cached, or one
  // refresh shared by concurrent callers (and, with a coordinator, by every
  // worker). `sandbox_id` is the requesting sandbox (the control plane
  // checks it runs on this worker). Errors are fixed texts (502).
  boost::asio::awaitable<Result<Access>> Get(const std::string& project_id, const std::string& sandbox_id,
                                             const std::string& name, const SecretMaterial& material,
                                             SigningEnv& env);
  // Refreshes made so far (tests, metrics).
  int refreshes() const;

 private:
  struct Waiter;
  struct Entry;
  struct Fresh {
    std::string access_token;
    std::chrono::system_clock::time_point expires_at;
    std::string rotated;  // a rotated refresh token (scrubbed; kept for reuse only without a coordinator)
    Fresh() = default;
    Fresh(Fresh&&) noexcept = default;
    Fresh& operator=(Fresh&&) noexcept = default;
    ~Fresh();
  };
  boost::asio::awaitable<Result<std::string>> Refresh(const SecretMaterial& material, std::string refresh_token,
                                                       SigningEnv& env, std::string* rotated,
                                                       std::chrono::seconds* lifetime);
  // Through the coordinator: a token, or a refresh under its lease.
  boost::asio::awaitable<Result<Fresh>> Shared(const std::string& sandbox_id, const std::string& name,
                                               const SecretMaterial& material, SigningEnv& env);
  std::shared_ptr<OAuthCoordinator> coordinator_;
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
