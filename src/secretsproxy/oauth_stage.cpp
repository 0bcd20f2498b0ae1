#include "secretsproxy/oauth_stage.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <spdlog/spdlog.h>

#include "common/hex.h"
#include "common/secure_memory.h"
#include "common/hmac.h"
#include "common/percent_encoding.h"
#include "secretsproxy/body_relay.h"
#include "secretsproxy/request_pipeline.h"
#include "secretsproxy/upstream_dialer.h"

namespace osb::secretsproxy {
namespace asio = boost::asio;
using Clock = std::chrono::system_clock;

namespace {

constexpr size_t kMaxTokenResponse = 64 * 1024;

// (project, name, fingerprint of the material): a changed secret is a new entry.
std::string CacheKey(const std::string& project_id, const std::string& name, const SecretMaterial& m) {
  std::string json = m.ToJson();
  std::string mac = Hmac(HashAlg::kSha256, "osb-oauth-cache", json);
  SecureWipe(json);
  return project_id + '\0' + name + '\0' +
         HexEncode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(mac.data()), mac.size()));
}

void WipeJson(nlohmann::json& j) {
  if (j.is_string()) {
    SecureWipe(j.get_ref<std::string&>());
  } else if (j.is_object() || j.is_array()) {
    for (auto& v : j) WipeJson(v);
  }
}

}  // namespace

struct OAuthTokenCache::Waiter {
  std::shared_ptr<asio::steady_timer> timer;
};

struct OAuthTokenCache::Entry {
  std::string access_token;
  std::string previous_token;  // still valid at the upstream for a while: still scrubbed
  Clock::time_point expires_at{};
  std::string rotated_refresh_token;  // "" = the material's
  bool refreshing = false;
  std::vector<Waiter> waiters;
  ~Entry() {
    SecureWipe(access_token);
    SecureWipe(previous_token);
    SecureWipe(rotated_refresh_token);
  }
  std::vector<std::string> Scrub() const {
    std::vector<std::string> v;
    if (!access_token.empty()) v.push_back(access_token);
    if (!previous_token.empty()) v.push_back(previous_token);
    if (!rotated_refresh_token.empty()) v.push_back(rotated_refresh_token);
    return v;
  }
};

OAuthTokenCache::~OAuthTokenCache() = default;

int OAuthTokenCache::refreshes() const {
  std::lock_guard lock(mu_);
  return refreshes_;
}

OAuthTokenCache::Fresh::~Fresh() {
  SecureWipe(access_token);
  SecureWipe(rotated);
}

namespace {

// Awaits a callback-style call (OAuthCoordinator): nullopt when `timeout`
// passed first. The callback may run on any thread: it stores the value
// under a lock and wakes the timer on the timer's own executor; a wake that
// comes before the wait still ends it (the expiry is in the past).
template <typename T, typename Start>
asio::awaitable<std::optional<T>> AwaitCallback(Start start, std::chrono::milliseconds timeout) {
  struct State {
    std::mutex mu;
    std::optional<T> value;
    std::shared_ptr<asio::steady_timer> timer;
  };
  auto ex = co_await asio::this_coro::executor;
  auto st = std::make_shared<State>();
  st->timer = std::make_shared<asio::steady_timer>(ex, timeout);
  start([st](T v) {
    {
      std::lock_guard lock(st->mu);
      st->value.emplace(std::move(v));
    }
    auto t = st->timer;
    asio::post(t->get_executor(), [t] { t->expires_at(asio::steady_timer::time_point::min()); });
  });
  boost::system::error_code ec;
  co_await st->timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  std::lock_guard lock(st->mu);
  std::optional<T> out = std::move(st->value);
  st->value.reset();
  co_return out;
}

constexpr const char* kCoordinatorDown =
    "oauth2-refresh: the control plane cannot be asked for the token (refusing to refresh alone)";

}  // namespace

asio::awaitable<Result<OAuthTokenCache::Access>> OAuthTokenCache::Get(const std::string& project_id,
                                                                      const std::string& sandbox_id,
                                                                      const std::string& name,
                                                                      const SecretMaterial& material, SigningEnv& env) {
  const std::string key = CacheKey(project_id, name, material);
  for (int round = 0; round < 4; ++round) {
    std::shared_ptr<asio::steady_timer> wait;
    std::string refresh_token;
    std::shared_ptr<Entry> entry;
    {
      std::lock_guard lock(mu_);
      auto& slot = entries_[key];
      if (!slot) slot = std::make_shared<Entry>();
      entry = slot;
      if (!entry->access_token.empty() && env.now() + kRefreshMargin < entry->expires_at) {
        co_return Access{entry->access_token, entry->Scrub()};
      }
      if (entry->refreshing) {
        // One refresh per expiry: wait for the one in flight. The timer is
        // woken on its own executor (one thread per io_context), so a wake
        // cannot be lost between here and the wait.
        auto ex = co_await asio::this_coro::executor;
        wait = std::make_shared<asio::steady_timer>(ex, kRefreshTimeout + kCoordinatorTimeout * 2 +
                                                            std::chrono::seconds(5));
        entry->waiters.push_back({wait});
      } else {
        entry->refreshing = true;
        refresh_token = entry->rotated_refresh_token.empty() ? std::string(material.Get("refreshToken"))
                                                             : entry->rotated_refresh_token;
      }
    }
    if (wait) {
      boost::system::error_code ec;
      co_await wait->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;  // woken (or timed out): look again
    }
    Result<Fresh> fresh = MakeError(ErrorCode::kUnavailable, "");
    if (coordinator_) {
      SecureWipe(refresh_token);  // the control plane's is the current one
      auto shared = co_await Shared(sandbox_id, name, material, env);
      fresh = std::move(shared);
    } else {
      Fresh f;
      std::chrono::seconds lifetime{0};
      auto got = co_await Refresh(material, std::move(refresh_token), env, &f.rotated, &lifetime);
      if (got) {
        std::lock_guard lock(mu_);
        ++refreshes_;
        f.access_token = std::move(*got);
        f.expires_at = env.now() + lifetime;
        fresh = std::move(f);
      } else {
        fresh = got.error();
      }
    }
    std::vector<Waiter> waiters;
    Result<Access> out = MakeError(ErrorCode::kUnavailable, "");
    {
      std::lock_guard lock(mu_);
      entry->refreshing = false;
      waiters.swap(entry->waiters);
      if (fresh) {
        if (entry->access_token != fresh->access_token) {
          if (!entry->access_token.empty()) {
            SecureWipe(entry->previous_token);
            entry->previous_token = std::move(entry->access_token);
          }
          entry->access_token = fresh->access_token;
        }
        entry->expires_at = fresh->expires_at;
        if (!fresh->rotated.empty()) {
          SecureWipe(entry->rotated_refresh_token);
          entry->rotated_refresh_token = fresh->rotated;
        }
        out = Access{entry->access_token, entry->Scrub()};
      } else {
        out = fresh.error();
      }
    }
    for (auto& w : waiters) {
      auto t = w.timer;
      asio::post(t->get_executor(), [t] { t->expires_at(asio::steady_timer::time_point::min()); });
    }
    co_return out;
  }
  co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: the token refresh did not finish in time");
}

asio::awaitable<Result<OAuthTokenCache::Fresh>> OAuthTokenCache::Shared(const std::string& sandbox_id,
                                                                        const std::string& name,
                                                                        const SecretMaterial& material,
                                                                        SigningEnv& env) {
  // Bounded: another worker's refresh is waited for at most this long.
  const auto give_up = std::chrono::steady_clock::now() + kRefreshTimeout + std::chrono::seconds(5);
  auto coordinator = coordinator_;
  while (true) {
    auto grant = co_await AwaitCallback<Result<OAuthGrant>>(
        [&](auto done) { coordinator->Acquire(sandbox_id, name, std::move(done)); }, kCoordinatorTimeout);
    if (!grant || !*grant) {
      if (grant) spdlog::warn("oauth2-refresh {}: the control plane refused: {}", name, (*grant).error().message);
      co_return MakeError(ErrorCode::kUnavailable, kCoordinatorDown);
    }
    OAuthGrant& g = **grant;
    if (g.kind == OAuthGrant::Kind::kToken) {
      Fresh f;
      f.access_token = std::move(g.access_token);
      f.expires_at = g.expires_at;
      co_return f;
    }
    if (g.kind == OAuthGrant::Kind::kWait) {
      const auto pause = std::clamp(g.retry_after, std::chrono::milliseconds(20), std::chrono::milliseconds(2000));
      if (std::chrono::steady_clock::now() + pause > give_up) {
        co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: the token refresh did not finish in time");
      }
      auto ex = co_await asio::this_coro::executor;
      asio::steady_timer timer(ex, pause);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    // The lease is ours: refresh with the control plane's refresh token.
    const int64_t generation = g.generation;
    Fresh f;
    std::chrono::seconds lifetime{0};
    auto got = co_await Refresh(material, std::move(g.refresh_token), env, &f.rotated, &lifetime);
    if (!got) {
      auto released = co_await AwaitCallback<Status>(
          [&](auto done) { coordinator->Fail(sandbox_id, name, generation, std::move(done)); }, kCoordinatorTimeout);
      (void)released;  // the lease runs out by itself otherwise
      co_return got.error();
    }
    {
      std::lock_guard lock(mu_);
      ++refreshes_;
    }
    f.access_token = std::move(*got);
    f.expires_at = env.now() + lifetime;
    auto stored = co_await AwaitCallback<Result<bool>>(
        [&](auto done) {
          coordinator->Complete(sandbox_id, name, generation, f.access_token, lifetime.count(), f.rotated,
                                std::move(done));
        },
        kCoordinatorTimeout);
    if (!stored || !*stored || !**stored) {
      // The access token is good (the provider just issued it); only the
      // sharing failed. A rotated refresh token not stored is lost: log it.
      spdlog::warn("oauth2-refresh {}: the control plane did not store the refreshed token{}", name,
                   f.rotated.empty() ? "" : " (the rotated refresh token is lost; set the secret again if refreshes fail)");
    }
    co_return f;
  }
}

asio::awaitable<Result<std::string>> OAuthTokenCache::Refresh(const SecretMaterial& m, std::string refresh_token,
                                                              SigningEnv& env, std::string* rotated,
                                                              std::chrono::seconds* lifetime) {
  struct Wipe {
    std::string& s;
    ~Wipe() { SecureWipe(s); }
  } wipe_refresh{refresh_token};
  auto url = ParseAbsoluteUrl(m.Get("tokenEndpoint"));
  if (!url || url->scheme != "https") co_return MakeError(ErrorCode::kInvalidArgument, "oauth2-refresh: tokenEndpoint is not an https URL");
  if (env.dialer == nullptr) co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: no dialer for the token endpoint");
  auto conn = co_await env.dialer->Dial(url->target, true);
  if (!conn.stream) {
    co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: token endpoint unreachable (" + conn.reason + ")");
  }
  std::string body = "grant_type=refresh_token&refresh_token=" + PercentEncode(refresh_token) +
                     "&client_id=" + PercentEncode(m.Get("clientId"));
  if (!m.Get("clientSecret").empty()) body += "&client_secret=" + PercentEncode(m.Get("clientSecret"));
  if (!m.Get("scopes").empty()) body += "&scope=" + PercentEncode(m.Get("scopes"));
  std::string host = url->target.host.find(':') != std::string::npos ? "[" + url->target.host + "]" : url->target.host;
  if (url->target.port != 443) host += ":" + std::to_string(url->target.port);
  std::string wire = "POST " + url->origin_form + " HTTP/1.1\r\nHost: " + host +
                     "\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n"
                     "Connection: close\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body;
  SecureWipe(body);
  boost::system::error_code ec;
  const Millis timeout = std::chrono::duration_cast<Millis>(kRefreshTimeout);
  co_await conn.stream->WriteAll(wire, timeout, ec);
  SecureWipe(wire);
  if (ec) co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: token endpoint closed the connection");
  // The answer: a bounded head and body; never relayed anywhere.
  std::string buf;
  ResponseHead head;
  HeadLimits limits;
  while (true) {
    auto out = ParseResponseHead(buf, limits, &head);
    if (out.status == ParseStatus::kComplete) {
      buf.erase(0, out.consumed);
      break;
    }
    if (out.status != ParseStatus::kNeedMore) co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: invalid response from the token endpoint");
    char tmp[8192];
    const size_t n = co_await conn.stream->ReadSome(tmp, sizeof(tmp), timeout, ec);
    if (n == 0) co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: token endpoint closed without a response");
    buf.append(tmp, n);
    if (buf.size() > kMaxTokenResponse) co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: token endpoint response too large");
  }
  BodyFraming framing;
  if (AnalyzeResponseFraming(head, "POST", &framing)) {
    co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: invalid response framing from the token endpoint");
  }
  BodyReader reader(*conn.stream, buf, framing, timeout);
  std::string resp;
  struct WipeResp {
    std::string& s;
    ~WipeResp() { SecureWipe(s); }
  } wipe_resp{resp};
  while (true) {
    std::string err;
    auto s = co_await reader.Next(&resp, &err);
    if (s == BodyReader::Status::kError) co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: token endpoint response body unreadable");
    if (resp.size() > kMaxTokenResponse) co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: token endpoint response too large");
    if (s == BodyReader::Status::kDone) break;
  }
  conn.stream->Close();
  if (head.status != 200) {
    co_return MakeError(ErrorCode::kUnavailable,
                        "oauth2-refresh: token endpoint answered " + std::to_string(head.status));
  }
  nlohmann::json j = nlohmann::json::parse(resp, nullptr, false);
  struct WipeJ {
    nlohmann::json& j;
    ~WipeJ() { WipeJson(j); }
  } wipe_j{j};
  if (!j.is_object() || !j.contains("access_token") || !j["access_token"].is_string() ||
      j["access_token"].get_ref<const std::string&>().empty() ||
      j["access_token"].get_ref<const std::string&>().size() > 16 * 1024) {
    co_return MakeError(ErrorCode::kUnavailable, "oauth2-refresh: token endpoint answer has no access_token");
  }
  int64_t expires_in = 3600;
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) expires_in = j["expires_in"].get<int64_t>();
  expires_in = std::clamp<int64_t>(expires_in, 1, 366 * 24 * 3600);
  *lifetime = std::chrono::seconds(expires_in);
  if (j.contains("refresh_token") && j["refresh_token"].is_string()) {
    const auto& r = j["refresh_token"].get_ref<const std::string&>();
    if (!r.empty() && r.size() <= 16 * 1024) *rotated = r;
  }
  co_return std::string(j["access_token"].get_ref<const std::string&>());
}

asio::awaitable<StageResult> OAuthStage::OnHead(SigningCall& call, std::unique_ptr<SigningAction>* action) const {
  (void)action;
  auto& c = call.ctx;
  for (size_t i : call.usable) {
    const auto sec = c.session->secrets()[i];  // a copy: c.session may be replaced below
    if (!sec.material) continue;
    bool present = false;
    for (const auto& f : c.head.fields) present = present || f.value.find(sec.token) != std::string::npos;
    if (!present) continue;
    if (call.env.oauth == nullptr) co_return StageResult{502, "oauth2-refresh: no token cache in this proxy"};
    auto access =
        co_await call.env.oauth->Get(c.session->project_id(), c.session->sandbox_id(), sec.name, *sec.material, call.env);
    if (!access) co_return StageResult{502, "secret " + sec.name + ": " + access.error().message};
    // Scrubbed from now on in every session of the project (this one too:
    // the response is scrubbed with the snapshot looked up again).
    if (call.env.sessions != nullptr) {
      call.env.sessions->SetDerivedValues(c.session->project_id(), sec.name, access->scrub);
      auto fresh = call.env.sessions->Lookup(c.conn.source_ip);
      if (fresh) c.session = std::move(fresh);
    }
    for (auto& f : c.head.fields) {
      size_t pos = 0;
      while ((pos = f.value.find(sec.token, pos)) != std::string::npos) {
        f.value.replace(pos, sec.token.size(), access->access_token);
        pos += access->access_token.size();
      }
    }
    SecureWipe(access->access_token);
    for (auto& v : access->scrub) SecureWipe(v);
    if (call.used_names) call.used_names->push_back(sec.name);
  }
  co_return StageResult{};
}

const SigningStage* OAuthSigningStage() {
  static const OAuthStage stage;
  return &stage;
}

}  // namespace osb::secretsproxy
