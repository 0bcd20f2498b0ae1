// Signing stages (issue 16) over the whole exchange, in memory: hmac
// signatures computed in the proxy, oauth2-refresh access tokens refreshed
// once per expiry per project (shared by two sandboxes) and injected,
// allowedRequests sealing or refusing. Every test also checks, as the
// attacker would, that nothing the client receives (nor the audit) holds
// a key, a client secret, a refresh token or an access token.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <nlohmann/json.hpp>

#include "common/hex.h"
#include "common/hmac.h"
#include "secretsproxy/body_relay.h"
#include "secretsproxy/exchange.h"
#include "secretsproxy/hmac_stage.h"
#include "secretsproxy/oauth_stage.h"

namespace osb::secretsproxy {
namespace {
namespace asio = boost::asio;
using boost::system::error_code;

constexpr Millis kWait{3000};
const std::string kValueToken = "osb_sealed_00000000000000000000000000000001";
const std::string kValue = "plain-VALUE-7f3a";
const std::string kHmacToken = "osb_sealed_00000000000000000000000000000002";
const std::string kHmacKey = "hmac-KEY-never-leaves-9d2c";
const std::string kOAuthToken = "osb_sealed_00000000000000000000000000000003";
const std::string kClientSecret = "client-SECRET-5e1b";
const std::string kRefreshToken = "refresh-TOKEN-0a77";

struct Message {
  std::string head_text;
  RequestHead req;
  ResponseHead resp;
  std::string body;
  bool ok = false;
};

asio::awaitable<Message> ReadMessage(ByteStream& s, std::string& buf, bool is_request) {
  Message m;
  const HeadLimits limits{16 * 1024, 64 * 1024, 200};
  while (true) {
    ParseOutcome r = is_request ? ParseRequestHead(buf, limits, &m.req) : ParseResponseHead(buf, limits, &m.resp);
    if (r.status == ParseStatus::kComplete) {
      m.head_text = buf.substr(0, r.consumed);
      buf.erase(0, r.consumed);
      break;
    }
    if (r.status != ParseStatus::kNeedMore) co_return m;
    char tmp[4096];
    error_code ec;
    const size_t n = co_await s.ReadSome(tmp, sizeof tmp, kWait, ec);
    if (n == 0) co_return m;
    buf.append(tmp, n);
  }
  BodyFraming framing;
  if (is_request ? AnalyzeRequestFraming(m.req, &framing).has_value()
                 : AnalyzeResponseFraming(m.resp, "POST", &framing).has_value()) {
    co_return m;
  }
  BodyReader reader(s, buf, framing, kWait);
  while (true) {
    std::string err;
    auto st = co_await reader.Next(&m.body, &err);
    if (st == BodyReader::Status::kError) co_return m;
    if (st == BodyReader::Status::kDone) break;
  }
  m.ok = true;
  co_return m;
}

std::string Response(int status, std::string_view body, std::string extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\n" + extra + "Content-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + std::string(body);
}

std::string Field(const Message& m, std::string_view name) {
  auto f = FindFields(m.req.fields, name);
  return f.empty() ? std::string("<none>") : f[0]->value;
}

std::string HexHmac(std::string_view key, std::string_view msg) {
  const std::string mac = Hmac(HashAlg::kSha256, key, msg);
  return HexEncode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(mac.data()), mac.size()));
}

using Responder = std::function<std::string(const Message&)>;

// api.test: `upstream`; auth.test: an OAuth token endpoint that counts.
class Dialer final : public UpstreamDialer {
 public:
  explicit Dialer(asio::io_context& io) : io_(io) {}
  asio::awaitable<UpstreamConnection> Dial(Target target, bool) override {
    auto [mine, theirs] = MakeMemoryStreamPair(io_.get_executor());
    const bool auth = target.host == "auth.test";
    asio::co_spawn(io_, Serve(theirs, auth ? token_endpoint : upstream, auth ? &token_requests : &requests),
                   asio::detached);
    co_return UpstreamConnection{mine, 0, ""};
  }
  static asio::awaitable<void> Serve(std::shared_ptr<MemoryStream> s, Responder r, std::vector<Message>* log) {
    std::string buf;
    while (true) {
      Message m = co_await ReadMessage(*s, buf, true);
      if (!m.ok) break;
      log->push_back(m);
      error_code ec;
      co_await s->WriteAll(r(m), kWait, ec);
      if (ec) break;
    }
    s->Close();
  }
  Responder upstream = [](const Message&) { return Response(200, "ok"); };
  Responder token_endpoint;
  std::vector<Message> requests;
  std::vector<Message> token_requests;

 private:
  asio::io_context& io_;
};

class SigningTest : public ::testing::Test {
 protected:
  SigningTest() : dialer_(io_) {
    audit_path_ = std::filesystem::temp_directory_path() / ("osb_signing_test_" + std::to_string(getpid()) + "_" +
                                                            std::to_string(counter_++));
    audit_ = std::make_unique<AuditLog>(audit_path_.string());
    limits_.idle_timeout = Millis(2000);
    limits_.header_timeout = Millis(2000);
    limits_.body_buffer_limit = 4096;
    signing_.limits = &limits_;
    signing_.dialer = &dialer_;
    signing_.sessions = &sessions_;
    signing_.oauth = &oauth_;
    signing_.now = [this] { return now_; };
    dialer_.token_endpoint = [this](const Message& m) {
      const int n = static_cast<int>(dialer_.token_requests.size());
      if (token_status_ != 200) return Response(token_status_, R"({"error":"invalid_grant","echo":")" + m.body + "\"}");
      return Response(200, R"({"access_token":"access-TOKEN-)" + std::to_string(n) +
                               R"(","token_type":"Bearer","expires_in":600,"refresh_token":"rotated-REFRESH-)" +
                               std::to_string(n) + "\"}",
                      "Content-Type: application/json\r\n");
    };
    Register("10.0.0.2", "sb-1");
    Register("10.0.0.3", "sb-2");
  }
  ~SigningTest() override {
    audit_.reset();
    std::filesystem::remove(audit_path_);
  }
  void TearDown() override {
    for (const std::string& secret : Secrets()) {
      EXPECT_EQ(client_bytes_.find(secret), std::string::npos) << "the client received " << secret;
      for (const auto& line : AuditLines()) EXPECT_EQ(line.dump().find(secret), std::string::npos);
    }
  }
  std::vector<std::string> Secrets() const {
    std::vector<std::string> s = {kValue, kHmacKey, kClientSecret, kRefreshToken};
    for (int i = 1; i <= 5; ++i) {
      s.push_back("access-TOKEN-" + std::to_string(i));
      s.push_back("rotated-REFRESH-" + std::to_string(i));
    }
    return s;
  }

  void Register(const std::string& source, const std::string& id, std::vector<RequestRule> rules = {},
                bool refuse = false) {
    Session s;
    s.sandbox_id = id;
    s.project_id = "proj-1";
    s.egress_allowlist = {"api.test", "other.test", "auth.test"};
    SecretBinding v{"VALUE_KEY", kValueToken, kValue, {"api.test", "other.test"}};
    v.allowed_requests = rules;
    v.refuse_disallowed = refuse;
    s.secrets.push_back(v);
    SecretBinding h{"SIGNING_KEY", kHmacToken, "", {"api.test"}};
    h.kind = "hmac";
    h.material = nlohmann::json{{"key", kHmacKey},
                                {"header", "X-Signature"},
                                {"prefix", "sha256="},
                                {"message", "{method}\n{path}\n{timestamp}\n{body}"},
                                {"timestampHeader", "X-Timestamp"}}
                     .dump();
    s.secrets.push_back(h);
    SecretBinding o{"API_TOKEN", kOAuthToken, "", {"api.test"}};
    o.kind = "oauth2-refresh";
    o.material = nlohmann::json{{"tokenEndpoint", "https://auth.test/oauth/token"},
                                {"clientId", "client-1"},
                                {"clientSecret", kClientSecret},
                                {"refreshToken", kRefreshToken},
                                {"scopes", {"read", "write"}}}
                     .dump();
    s.secrets.push_back(o);
    ASSERT_TRUE(sessions_.Register(source, std::move(s)).ok());
  }

  ExchangeOptions Tls(std::string source = "10.0.0.2", std::string host = "api.test") {
    ExchangeOptions o;
    o.mode = ExchangeMode::kTls;
    o.fixed_target = Target{std::move(host), 443};
    o.source_ip = std::move(source);
    return o;
  }

  // One request on a fresh connection; the client's response.
  Message Send(ExchangeOptions opt, std::string request) {
    auto [client_end, proxy_end] = MakeMemoryStreamPair(io_.get_executor());
    ExchangeEnv env{&limits_, 80, &sessions_, &dialer_, audit_.get(), &metrics_, &signing_};
    Message got;
    asio::co_spawn(io_, ServeHttp(env, proxy_end, std::move(opt)), asio::detached);
    asio::co_spawn(
        io_,
        [&, c = client_end]() -> asio::awaitable<void> {
          error_code ec;
          co_await c->WriteAll(request, kWait, ec);
          std::string buf;
          got = co_await ReadMessage(*c, buf, false);
          c->ShutdownSend();
          c->Close();
        },
        asio::detached);
    io_.restart();
    io_.run();
    client_bytes_ += got.head_text + got.body;
    return got;
  }

  std::vector<nlohmann::json> AuditLines() {
    audit_->Flush();
    std::vector<nlohmann::json> out;
    std::ifstream in(audit_path_);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  static std::string Request(std::string method, std::string target, std::string headers, std::string body = "",
                             std::string host = "api.test") {
    return method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + headers +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  static inline int counter_ = 0;
  asio::io_context io_;
  ProxyLimits limits_;
  SessionRegistry sessions_;
  Dialer dialer_;
  OAuthTokenCache oauth_;
  SigningEnv signing_;
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
  std::filesystem::path audit_path_;
  std::unique_ptr<AuditLog> audit_;
  Metrics metrics_;
  std::string client_bytes_;
  int token_status_ = 200;
};

// ------------------------------------------------------------------ hmac

TEST_F(SigningTest, HmacSignatureIsComputedInTheProxyOverMethodPathTimestampAndBody) {
  const std::string body = R"({"amount":5,"auth":")" + kValueToken + "\"}";
  auto got = Send(Tls(), Request("POST", "/v1/pay?x=1", "X-Timestamp: 1700000000\r\nX-Signature: " + kHmacToken + "\r\n",
                                 body));
  ASSERT_TRUE(got.ok);
  EXPECT_EQ(got.resp.status, 200);
  ASSERT_EQ(dialer_.requests.size(), 1u);
  const Message& up = dialer_.requests[0];
  // Signed over the body as sent: the value secret already substituted.
  const std::string sent_body = R"({"amount":5,"auth":")" + kValue + "\"}";
  EXPECT_EQ(up.body, sent_body);
  EXPECT_EQ(Field(up, "x-signature"), "sha256=" + HexHmac(kHmacKey, "POST\n/v1/pay\n1700000000\n" + sent_body));
  const auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].dump().find("SIGNING_KEY"), std::string::npos);
}

TEST_F(SigningTest, HmacWithoutTheTimestampHeaderIs400AndNothingIsSent) {
  auto got = Send(Tls(), Request("POST", "/v1/pay", "X-Signature: " + kHmacToken + "\r\n", "x"));
  EXPECT_EQ(got.resp.status, 400);
  EXPECT_TRUE(dialer_.requests.empty());
}

TEST_F(SigningTest, HmacBodyOverTheBufferLimitIs413) {
  auto got = Send(Tls(), Request("POST", "/v1/pay", "X-Timestamp: 1\r\nX-Signature: " + kHmacToken + "\r\n",
                                 std::string(limits_.body_buffer_limit + 1, 'b')));
  EXPECT_EQ(got.resp.status, 413);
  EXPECT_TRUE(dialer_.requests.empty());
}

TEST_F(SigningTest, HmacTokenTowardAHostNotAllowedStaysSealedAndAudited) {
  auto got = Send(Tls("10.0.0.2", "other.test"),
                  Request("POST", "/v1/pay", "X-Timestamp: 1\r\nX-Signature: " + kHmacToken + "\r\n", "x",
                          "other.test"));
  EXPECT_EQ(got.resp.status, 200);
  ASSERT_EQ(dialer_.requests.size(), 1u);
  EXPECT_EQ(Field(dialer_.requests[0], "x-signature"), kHmacToken);
  const auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].dump().find("host_not_in_allowed_hosts"), std::string::npos) << lines[0].dump();
}

TEST_F(SigningTest, AttackerCannotRecoverTheKeyFromEchoesNorReplayASignatureForAnotherRequest) {
  // The upstream echoes the whole request, headers included, and even the
  // key itself (a hostile or buggy upstream): the key comes back sealed.
  dialer_.upstream = [](const Message& m) {
    return Response(200, m.head_text + m.body + "|key=" + kHmacKey, "X-Echo-Sig: " + Field(m, "x-signature") + "\r\n");
  };
  auto got = Send(Tls(), Request("POST", "/v1/pay", "X-Timestamp: 1\r\nX-Signature: " + kHmacToken + "\r\n", "a"));
  ASSERT_TRUE(got.ok);
  EXPECT_NE(got.body.find("|key=" + kHmacToken), std::string::npos);
  // The sandbox saw the signature of THIS request; replayed on another
  // method and path it does not verify for them.
  const std::string seen = FindFields(got.resp.fields, "x-echo-sig")[0]->value;
  auto replay = Send(Tls(), Request("DELETE", "/v1/accounts", "X-Timestamp: 1\r\nX-Signature: " + seen + "\r\n", "a"));
  ASSERT_EQ(dialer_.requests.size(), 2u);
  EXPECT_EQ(Field(dialer_.requests[1], "x-signature"), seen);  // passed as-is (no token): not re-signed
  EXPECT_NE(seen, "sha256=" + HexHmac(kHmacKey, "DELETE\n/v1/accounts\n1\na"));
}

// ------------------------------------------------------------------ oauth2-refresh

TEST_F(SigningTest, OAuthRefreshesOncePerExpiryPerProjectAcrossSandboxes) {
  for (int i = 0; i < 3; ++i) {
    for (const char* source : {"10.0.0.2", "10.0.0.3"}) {
      auto got = Send(Tls(source), Request("GET", "/v1/me", "Authorization: Bearer " + kOAuthToken + "\r\n"));
      EXPECT_EQ(got.resp.status, 200);
    }
  }
  ASSERT_EQ(dialer_.token_requests.size(), 1u) << "one refresh for six requests from two sandboxes";
  const Message& t = dialer_.token_requests[0];
  EXPECT_EQ(t.req.method, "POST");
  EXPECT_EQ(t.req.target, "/oauth/token");
  EXPECT_NE(t.body.find("grant_type=refresh_token"), std::string::npos);
  EXPECT_NE(t.body.find("refresh_token=" + kRefreshToken), std::string::npos);
  EXPECT_NE(t.body.find("client_secret=" + kClientSecret), std::string::npos);
  EXPECT_NE(t.body.find("scope=read%20write"), std::string::npos);
  ASSERT_EQ(dialer_.requests.size(), 6u);
  for (const auto& up : dialer_.requests) EXPECT_EQ(Field(up, "authorization"), "Bearer access-TOKEN-1");

  // Near expiry (600 s, refreshed 30 s early): one more refresh, with the
  // rotated refresh token the endpoint returned.
  now_ += std::chrono::seconds(580);
  for (const char* source : {"10.0.0.2", "10.0.0.3"}) {
    auto got = Send(Tls(source), Request("GET", "/v1/me", "Authorization: Bearer " + kOAuthToken + "\r\n"));
    EXPECT_EQ(got.resp.status, 200);
  }
  ASSERT_EQ(dialer_.token_requests.size(), 2u);
  EXPECT_NE(dialer_.token_requests[1].body.find("refresh_token=rotated-REFRESH-1"), std::string::npos);
  EXPECT_EQ(Field(dialer_.requests.back(), "authorization"), "Bearer access-TOKEN-2");
  EXPECT_EQ(oauth_.refreshes(), 2);
}

TEST_F(SigningTest, AnEchoedAccessTokenIsScrubbedBackToTheToken) {
  dialer_.upstream = [](const Message& m) {
    return Response(200, "you sent " + Field(m, "authorization"), "X-Token: " + Field(m, "authorization") + "\r\n");
  };
  for (const char* source : {"10.0.0.2", "10.0.0.3"}) {
    auto got = Send(Tls(source), Request("GET", "/v1/me", "Authorization: Bearer " + kOAuthToken + "\r\n"));
    ASSERT_TRUE(got.ok);
    EXPECT_EQ(got.body, "you sent Bearer " + kOAuthToken);
    EXPECT_EQ(FindFields(got.resp.fields, "x-token")[0]->value, "Bearer " + kOAuthToken);
  }
}

TEST_F(SigningTest, ARefreshErrorIs502AuditedAndNeverShowsTheEndpointsAnswer) {
  token_status_ = 400;  // the endpoint even echoes the refresh request (client secret, refresh token)
  auto got = Send(Tls(), Request("GET", "/v1/me", "Authorization: Bearer " + kOAuthToken + "\r\n"));
  EXPECT_EQ(got.resp.status, 502);
  EXPECT_TRUE(dialer_.requests.empty());
  const auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].dump().find("token endpoint answered 400"), std::string::npos) << lines[0].dump();
}

TEST_F(SigningTest, OAuthTokenTowardAnotherHostIsNotInjected) {
  auto got = Send(Tls("10.0.0.2", "other.test"),
                  Request("GET", "/", "Authorization: Bearer " + kOAuthToken + "\r\n", "", "other.test"));
  EXPECT_EQ(got.resp.status, 200);
  EXPECT_TRUE(dialer_.token_requests.empty());
  ASSERT_EQ(dialer_.requests.size(), 1u);
  EXPECT_EQ(Field(dialer_.requests[0], "authorization"), "Bearer " + kOAuthToken);
}

// ------------------------------------------------------------------ oauth2-refresh through a control plane

// The control plane's side of the seam (controlplane/oauth_tokens.h, tested
// on its own in worker_identity_test and store_oauth_test), in memory: one
// access token, the current refresh token and one lease for the deployment.
class FakeCoordinator final : public OAuthCoordinator {
 public:
  explicit FakeCoordinator(std::function<std::chrono::system_clock::time_point()> now) : now_(std::move(now)) {}
  void Acquire(const std::string& sandbox_id, const std::string& name,
               std::function<void(Result<OAuthGrant>)> done) override {
    ++acquires;
    if (down) return done(MakeError(ErrorCode::kUnavailable, "control plane unreachable"));
    if (!known_sandboxes.count(sandbox_id) || name != "API_TOKEN") {
      return done(MakeError(ErrorCode::kNotFound, "sandbox does not run on this worker"));
    }
    OAuthGrant g;
    if (!access.empty() && now_() + std::chrono::seconds(30) < expires_at) {
      g.kind = OAuthGrant::Kind::kToken;
      g.access_token = access;
      g.expires_at = expires_at;
    } else if (leased) {
      g.kind = OAuthGrant::Kind::kWait;
      g.retry_after = std::chrono::milliseconds(20);
      if (on_wait) on_wait();
    } else {
      leased = true;
      g.kind = OAuthGrant::Kind::kLease;
      g.generation = ++generation;
      g.refresh_token = refresh;
    }
    done(std::move(g));
  }
  void Complete(const std::string&, const std::string&, int64_t gen, const std::string& access_token,
                int64_t expires_in_sec, const std::string& rotated, std::function<void(Result<bool>)> done) override {
    if (!leased || gen != generation) return done(false);
    leased = false;
    access = access_token;
    expires_at = now_() + std::chrono::seconds(expires_in_sec);
    if (!rotated.empty()) refresh = rotated;
    done(true);
  }
  void Fail(const std::string&, const std::string&, int64_t gen, std::function<void(Status)> done) override {
    if (gen == generation) leased = false;
    done(Status{});
  }
  std::function<std::chrono::system_clock::time_point()> now_;
  std::set<std::string> known_sandboxes = {"sb-1", "sb-2"};
  bool down = false;
  bool leased = false;
  int64_t generation = 0;
  int acquires = 0;
  std::string access;
  std::chrono::system_clock::time_point expires_at;
  std::string refresh = kRefreshToken;
  std::function<void()> on_wait;
};

class SharedOAuthTest : public SigningTest {
 protected:
  SharedOAuthTest() {
    coordinator_ = std::make_shared<FakeCoordinator>([this] { return now_; });
    oauth_.SetCoordinator(coordinator_);
    other_worker_.SetCoordinator(coordinator_);
    // A provider with rotation and reuse detection: each refresh token works
    // once; presenting a revoked one is recorded (and revokes the family).
    dialer_.token_endpoint = [this](const Message& m) {
      const int n = static_cast<int>(dialer_.token_requests.size());
      const auto at = m.body.find("refresh_token=");
      const std::string presented = m.body.substr(at + 14, m.body.find('&', at) - at - 14);
      if (presented != live_refresh_) {
        ++reuse_;
        return Response(400, R"({"error":"invalid_grant"})", "Content-Type: application/json\r\n");
      }
      live_refresh_ = "rotated-REFRESH-" + std::to_string(n);
      return Response(200, R"({"access_token":"access-TOKEN-)" + std::to_string(n) +
                               R"(","expires_in":600,"refresh_token":")" + live_refresh_ + "\"}",
                      "Content-Type: application/json\r\n");
    };
  }
  // A request from `source` through the proxy of worker `cache`.
  Message Through(OAuthTokenCache& cache, const char* source) {
    signing_.oauth = &cache;
    auto got = Send(Tls(source), Request("GET", "/v1/me", "Authorization: Bearer " + kOAuthToken + "\r\n"));
    signing_.oauth = &oauth_;
    return got;
  }
  std::shared_ptr<FakeCoordinator> coordinator_;
  OAuthTokenCache other_worker_;
  std::string live_refresh_ = kRefreshToken;
  int reuse_ = 0;
};

TEST_F(SharedOAuthTest, TwoWorkersShareOneRefreshPerExpiry) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Through(oauth_, "10.0.0.2").resp.status, 200);
    EXPECT_EQ(Through(other_worker_, "10.0.0.3").resp.status, 200);
  }
  ASSERT_EQ(dialer_.token_requests.size(), 1u) << "one refresh for two workers";
  EXPECT_EQ(oauth_.refreshes() + other_worker_.refreshes(), 1);
  ASSERT_EQ(dialer_.requests.size(), 6u);
  for (const auto& up : dialer_.requests) EXPECT_EQ(Field(up, "authorization"), "Bearer access-TOKEN-1");
  // Each worker then answers from its memory: the control plane is asked once per worker per expiry.
  EXPECT_EQ(coordinator_->acquires, 2);

  // Near expiry: ONE more refresh, by whichever worker comes first, with the rotated token.
  now_ += std::chrono::seconds(580);
  EXPECT_EQ(Through(other_worker_, "10.0.0.3").resp.status, 200);
  EXPECT_EQ(Through(oauth_, "10.0.0.2").resp.status, 200);
  ASSERT_EQ(dialer_.token_requests.size(), 2u);
  EXPECT_NE(dialer_.token_requests[1].body.find("refresh_token=rotated-REFRESH-1"), std::string::npos);
  EXPECT_EQ(Field(dialer_.requests[6], "authorization"), "Bearer access-TOKEN-2");
  EXPECT_EQ(Field(dialer_.requests[7], "authorization"), "Bearer access-TOKEN-2");
  EXPECT_EQ(reuse_, 0);
}

TEST_F(SharedOAuthTest, ARestartedWorkerUsesTheRotatedRefreshTokenNotTheRevokedOne) {
  EXPECT_EQ(Through(oauth_, "10.0.0.2").resp.status, 200);
  ASSERT_EQ(dialer_.token_requests.size(), 1u);
  now_ += std::chrono::seconds(700);  // expired
  // The worker restarts: a new cache, nothing in memory.
  OAuthTokenCache restarted;
  restarted.SetCoordinator(coordinator_);
  auto got = Through(restarted, "10.0.0.2");
  EXPECT_EQ(got.resp.status, 200);
  ASSERT_EQ(dialer_.token_requests.size(), 2u);
  EXPECT_NE(dialer_.token_requests[1].body.find("refresh_token=rotated-REFRESH-1"), std::string::npos);
  EXPECT_EQ(reuse_, 0) << "the provider saw a revoked refresh token again";
  EXPECT_EQ(Field(dialer_.requests.back(), "authorization"), "Bearer access-TOKEN-2");
}

TEST_F(SharedOAuthTest, AWorkerWaitsForAnotherWorkersRefreshInsteadOfRefreshing) {
  coordinator_->leased = true;  // another worker holds the lease
  int waits = 0;
  coordinator_->on_wait = [&] {
    if (++waits == 3) {  // ... and completes it meanwhile
      coordinator_->leased = false;
      coordinator_->access = "access-TOKEN-5";
      coordinator_->expires_at = now_ + std::chrono::seconds(600);
    }
  };
  auto got = Through(oauth_, "10.0.0.2");
  EXPECT_EQ(got.resp.status, 200);
  EXPECT_TRUE(dialer_.token_requests.empty());
  EXPECT_EQ(oauth_.refreshes(), 0);
  ASSERT_EQ(dialer_.requests.size(), 1u);
  EXPECT_EQ(Field(dialer_.requests[0], "authorization"), "Bearer access-TOKEN-5");
  // Published for scrubbing although this worker did not refresh it.
  dialer_.upstream = [](const Message& m) { return Response(200, "echo " + Field(m, "authorization")); };
  auto echo = Through(oauth_, "10.0.0.3");
  EXPECT_EQ(echo.body, "echo Bearer " + kOAuthToken);
}

TEST_F(SharedOAuthTest, ControlPlaneUnreachableFailsClosedWithoutRefreshing) {
  coordinator_->down = true;
  auto got = Through(oauth_, "10.0.0.2");
  EXPECT_EQ(got.resp.status, 502);
  EXPECT_TRUE(dialer_.token_requests.empty()) << "refreshed alone with a possibly revoked refresh token";
  EXPECT_TRUE(dialer_.requests.empty());
  const auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].dump().find("the control plane cannot be asked"), std::string::npos) << lines[0].dump();
}

TEST_F(SharedOAuthTest, ASandboxTheControlPlaneDoesNotPlaceHereGetsNoToken) {
  coordinator_->known_sandboxes = {"sb-2"};  // sb-1 (10.0.0.2) does not run on this worker
  auto got = Through(oauth_, "10.0.0.2");
  EXPECT_EQ(got.resp.status, 502);
  EXPECT_TRUE(dialer_.token_requests.empty());
  EXPECT_TRUE(dialer_.requests.empty());
}

TEST_F(SharedOAuthTest, AFailedRefreshGivesTheLeaseBack) {
  live_refresh_ = "something-else";  // the endpoint refuses our refresh token
  EXPECT_EQ(Through(oauth_, "10.0.0.2").resp.status, 502);
  EXPECT_FALSE(coordinator_->leased);
  EXPECT_EQ(reuse_, 1);
}

// ------------------------------------------------------------------ allowedRequests

TEST_F(SigningTest, AllowedRequestsSealTheTokenOutsideTheRulesAndAuditTheRule) {
  ASSERT_TRUE(sessions_.Unregister("sb-1").ok());
  Register("10.0.0.2", "sb-1", {{"api.test", {"POST"}, "/v1/messages"}});
  auto ok = Send(Tls(), Request("POST", "/v1/messages", "Authorization: Bearer " + kValueToken + "\r\n", "{}"));
  EXPECT_EQ(ok.resp.status, 200);
  auto other_path = Send(Tls(), Request("POST", "/v1/admin", "Authorization: Bearer " + kValueToken + "\r\n", "{}"));
  EXPECT_EQ(other_path.resp.status, 200);
  auto other_method = Send(Tls(), Request("GET", "/v1/messages", "Authorization: Bearer " + kValueToken + "\r\n"));
  EXPECT_EQ(other_method.resp.status, 200);
  ASSERT_EQ(dialer_.requests.size(), 3u);
  EXPECT_EQ(Field(dialer_.requests[0], "authorization"), "Bearer " + kValue);
  EXPECT_EQ(Field(dialer_.requests[1], "authorization"), "Bearer " + kValueToken);
  EXPECT_EQ(Field(dialer_.requests[2], "authorization"), "Bearer " + kValueToken);
  const auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 3u);
  for (size_t i : {1u, 2u}) {
    EXPECT_NE(lines[i].dump().find("request_not_allowed (allowedRequests: POST api.test/v1/messages)"),
              std::string::npos)
        << lines[i].dump();
  }
}

TEST_F(SigningTest, AllowedRequestsRefuseWith403WhenConfigured) {
  ASSERT_TRUE(sessions_.Unregister("sb-1").ok());
  Register("10.0.0.2", "sb-1", {{"api.test", {"POST"}, "/v1/messages"}}, /*refuse=*/true);
  auto got = Send(Tls(), Request("POST", "/v1/messagesX", "X-Key: " + kValueToken + "\r\n", "{}"));
  EXPECT_EQ(got.resp.status, 403);
  EXPECT_TRUE(dialer_.requests.empty());
  auto in_body = Send(Tls(), Request("PUT", "/v1/messages", "", "key=" + kValueToken));
  EXPECT_EQ(in_body.resp.status, 403);
  EXPECT_TRUE(dialer_.requests.empty());
  // A request without the token is not this secret's business.
  auto plain = Send(Tls(), Request("GET", "/v1/other", ""));
  EXPECT_EQ(plain.resp.status, 200);
  const auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].dump().find("VALUE_KEY: request_not_allowed"), std::string::npos) << lines[0].dump();
}

}  // namespace
}  // namespace osb::secretsproxy
