// The whole request path in C++ without sockets: ServeHttp over an
// in-memory client stream, a fake UpstreamDialer that hands out in-memory
// upstream streams served by small scripted upstreams. Checks what the
// upstream receives, what the client receives (never a value), the audit
// line (exactly one per request) and the counters; and re-runs requests and
// responses split at every byte offset.
#include "secretsproxy/exchange.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "secretsproxy/body_relay.h"
#include "secretsproxy/chunked.h"
#include "secretsproxy/content_decoder.h"
#include "secretsproxy/content_encoder.h"

namespace osb::secretsproxy {
namespace {
namespace asio = boost::asio;
using boost::system::error_code;

const std::string kToken = "osb_sealed_0123456789abcdef0123456789abcdef";
const std::string kValue = "s3cr3t-VALUE-42";
const std::string kOtherToken = "osb_sealed_fedcba9876543210fedcba9876543210";
const std::string kOtherValue = "other-host-only-value";
constexpr Millis kWait{3000};
using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------ HTTP helpers

struct Message {
  std::string head_text;  // raw head bytes as received
  RequestHead req;
  ResponseHead resp;
  std::string body;  // decoded (de-chunked) body
  bool ok = false;
};

HeadLimits Limits() { return HeadLimits{16 * 1024, 64 * 1024, 200}; }

// Reads one request (is_request) or response from s; `buf` keeps bytes read
// ahead. ok=false on EOF before a head or on a malformed message.
asio::awaitable<Message> ReadMessage(ByteStream& s, std::string& buf, bool is_request,
                                     std::string_view request_method = "GET") {
  Message m;
  while (true) {
    ParseOutcome r = is_request ? ParseRequestHead(buf, Limits(), &m.req) : ParseResponseHead(buf, Limits(), &m.resp);
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
  if (is_request) {
    if (AnalyzeRequestFraming(m.req, &framing)) co_return m;
  } else {
    if (AnalyzeResponseFraming(m.resp, request_method, &framing)) co_return m;
    if (m.resp.status == 101) framing = {};
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

asio::awaitable<std::string> ReadToEnd(ByteStream& s, std::string buf = {}) {
  char tmp[4096];
  while (true) {
    error_code ec;
    const size_t n = co_await s.ReadSome(tmp, sizeof tmp, kWait, ec);
    if (n == 0) break;
    buf.append(tmp, n);
  }
  co_return buf;
}

std::string Response(int status, std::string_view body, std::string extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " OK\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

// ------------------------------------------------------------ fake upstreams

// What an upstream saw, for the test to inspect.
struct UpstreamLog {
  std::vector<Message> requests;
  int connections = 0;
};

using Responder = std::function<std::string(const Message&)>;

// Answers every request on the connection with responder(request).
asio::awaitable<void> ServeResponses(std::shared_ptr<MemoryStream> s, Responder responder, UpstreamLog* log) {
  log->connections++;
  std::string buf;
  while (true) {
    Message m = co_await ReadMessage(*s, buf, true);
    if (!m.ok) break;
    log->requests.push_back(m);
    const std::string out = responder(m);
    if (out.empty()) break;  // close without answering
    error_code ec;
    co_await s->WriteAll(out, kWait, ec);
    if (ec || out.find("Connection: close") != std::string::npos) break;
  }
  s->Close();
}

// Sends `response` in two writes split at `split` (the proxy has read the
// first part before the second exists), then closes.
asio::awaitable<void> ServeSplit(std::shared_ptr<MemoryStream> s, std::string response, size_t split,
                                 UpstreamLog* log) {
  log->connections++;
  std::string buf;
  Message m = co_await ReadMessage(*s, buf, true);
  if (m.ok) {
    log->requests.push_back(m);
    error_code ec;
    co_await s->WriteAll(std::string_view(response).substr(0, split), kWait, ec);
    const bool drained = co_await s->WaitDrained(kWait);
    (void)drained;
    co_await s->WriteAll(std::string_view(response).substr(split), kWait, ec);
  }
  s->ShutdownSend();
  co_await ReadToEnd(*s);
  s->Close();
}

class FakeDialer final : public UpstreamDialer {
 public:
  using Serve = std::function<asio::awaitable<void>(std::shared_ptr<MemoryStream>)>;
  explicit FakeDialer(asio::io_context& io) : io_(io) {}
  asio::awaitable<UpstreamConnection> Dial(Target target, bool tls) override {
    dials.push_back({target, tls});
    if (fail_status != 0) co_return UpstreamConnection{nullptr, fail_status, "upstream connection failed"};
    auto [proxy_end, upstream_end] = MakeMemoryStreamPair(io_.get_executor());
    asio::co_spawn(io_, serve(upstream_end), asio::detached);
    co_return UpstreamConnection{proxy_end, 0, ""};
  }
  std::vector<std::pair<Target, bool>> dials;
  Serve serve;
  int fail_status = 0;

 private:
  asio::io_context& io_;
};

// ------------------------------------------------------------ harness

class ExchangeTest : public ::testing::Test {
 protected:
  ExchangeTest() : dialer_(io_) {
    audit_path_ = std::filesystem::temp_directory_path() /
                  ("osb_exchange_test_" + std::to_string(getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::remove(audit_path_);
    audit_ = std::make_unique<AuditLog>(audit_path_.string());
    limits_.idle_timeout = Millis(2000);
    limits_.header_timeout = Millis(2000);
    limits_.body_buffer_limit = 1024;
    Session s;
    s.sandbox_id = "sb-test";
    s.egress_allowlist = {"api.test", "other.test", "plain.test", "none.test"};  // none.test: no secret
    s.secrets.push_back({"API_KEY", kToken, kValue, {"api.test", "plain.test"}});
    s.secrets.push_back({"OTHER_KEY", kOtherToken, kOtherValue, {"other.test"}});
    EXPECT_TRUE(sessions_.Register("10.0.0.2", std::move(s)).ok());
    dialer_.serve = [this](std::shared_ptr<MemoryStream> st) {
      return ServeResponses(std::move(st), responder_, &upstream_);
    };
  }
  // Every test: no real value reached the client side or the audit log.
  void TearDown() override {
    EXPECT_FALSE(HasValue(client_bytes_)) << "a real value reached the client";
    for (const auto& line : AuditLines()) EXPECT_FALSE(HasValue(line.dump())) << "a real value reached the audit";
  }
  ~ExchangeTest() override {
    audit_.reset();
    std::filesystem::remove(audit_path_);
  }

  ExchangeEnv Env() {
    return ExchangeEnv{&limits_, 80, &sessions_, &dialer_, audit_.get(), &metrics_};
  }
  static ExchangeOptions Tls(std::string host = "api.test", uint16_t port = 443) {
    ExchangeOptions o;
    o.mode = ExchangeMode::kTls;
    o.fixed_target = Target{std::move(host), port};
    o.source_ip = "10.0.0.2";
    return o;
  }
  static ExchangeOptions Plain(ExchangeMode mode = ExchangeMode::kTransparentPlain) {
    ExchangeOptions o;
    o.mode = mode;
    o.source_ip = "10.0.0.2";
    return o;
  }

  // Runs one connection: `client` drives the client end while ServeHttp
  // serves the other; returns when everything has finished.
  void RunConnection(ExchangeOptions opt, std::function<asio::awaitable<void>(std::shared_ptr<MemoryStream>)> client) {
    auto [client_end, proxy_end] = MakeMemoryStreamPair(io_.get_executor());
    bool served = false;
    asio::co_spawn(io_, ServeHttp(Env(), proxy_end, std::move(opt)), [&](std::exception_ptr e) {
      served = true;
      if (e) ADD_FAILURE() << "ServeHttp threw";
    });
    asio::co_spawn(io_, client(client_end), [](std::exception_ptr e) {
      if (e) ADD_FAILURE() << "client threw";
    });
    io_.restart();
    io_.run();
    EXPECT_TRUE(served);
  }

  // Sends raw request bytes (split at `split` when given), reads `responses`
  // responses, then closes. Returns what the client received, decoded.
  std::vector<Message> Send(ExchangeOptions opt, std::string request, int responses = 1,
                                size_t split = std::string::npos, std::string* raw = nullptr) {
    std::vector<Message> got;
    std::string seen;
    RunConnection(std::move(opt), [&](std::shared_ptr<MemoryStream> c) -> asio::awaitable<void> {
      return ClientScript(c, request, responses, split, &got, &seen);
    });
    client_bytes_ += seen;
    if (raw != nullptr) *raw += seen;
    return got;
  }

  static asio::awaitable<void> ClientScript(std::shared_ptr<MemoryStream> c, std::string request, int responses,
                                            size_t split, std::vector<Message>* got, std::string* raw) {
    error_code ec;
    if (split < request.size()) {
      co_await c->WriteAll(std::string_view(request).substr(0, split), kWait, ec);
      const bool drained = co_await c->WaitDrained(kWait);
      (void)drained;
      co_await c->WriteAll(std::string_view(request).substr(split), kWait, ec);
    } else {
      co_await c->WriteAll(request, kWait, ec);
    }
    std::string buf;
    for (int i = 0; i < responses; ++i) {
      Message m = co_await ReadMessage(*c, buf, false);
      if (raw != nullptr) *raw += m.head_text + m.body;
      got->push_back(m);
      if (!m.ok) break;
    }
    c->ShutdownSend();
    std::string tail = co_await ReadToEnd(*c, buf);
    if (raw != nullptr) *raw += tail;
    c->Close();
  }

  std::vector<nlohmann::json> AuditLines() {
    audit_->Flush();
    std::vector<nlohmann::json> out;
    std::ifstream in(audit_path_);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  static bool HasValue(std::string_view s) {
    return s.find(kValue) != std::string_view::npos || s.find(kOtherValue) != std::string_view::npos;
  }

  static inline int counter_ = 0;
  asio::io_context io_;
  ProxyLimits limits_;
  SessionRegistry sessions_;
  FakeDialer dialer_;
  std::filesystem::path audit_path_;
  std::unique_ptr<AuditLog> audit_;
  Metrics metrics_;
  UpstreamLog upstream_;
  std::string client_bytes_;  // everything any client of the test received
  Responder responder_ = [](const Message&) { return Response(200, "ok"); };
};

std::string Get(std::string target, std::string host = "api.test", std::string extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "\r\n";
}

std::string Post(std::string body, std::string host = "api.test", std::string extra = "") {
  return "POST /v1 HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "Content-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

std::string Chunked(const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) AppendChunk(p, &out);
  out += kLastChunk;
  return out;
}

// ------------------------------------------------------------ tests

TEST_F(ExchangeTest, SubstitutesTargetHeadersAndBody) {
  auto got = Send(Tls(), Post("key=" + kToken + "&x=1", "api.test",
                                  "Authorization: Bearer " + kToken + "\r\nX-Other: " + kOtherToken + "\r\n"));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].ok);
  EXPECT_EQ(got[0].resp.status, 200);
  ASSERT_EQ(upstream_.requests.size(), 1u);
  const Message& up = upstream_.requests[0];
  EXPECT_EQ(up.body, "key=" + kValue + "&x=1");
  EXPECT_EQ(FindFields(up.req.fields, "authorization")[0]->value, "Bearer " + kValue);
  // A secret restricted to another host stays sealed.
  EXPECT_EQ(FindFields(up.req.fields, "x-other")[0]->value, kOtherToken);
  EXPECT_EQ(FindFields(up.req.fields, "content-length")[0]->value, std::to_string(up.body.size()));
  ASSERT_EQ(dialer_.dials.size(), 1u);
  EXPECT_EQ(dialer_.dials[0].first, (Target{"api.test", 443}));
  EXPECT_TRUE(dialer_.dials[0].second);

  auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["action"], "forwarded");
  EXPECT_EQ(lines[0]["sandbox"], "sb-test");
  EXPECT_EQ(lines[0]["secrets"], nlohmann::json::array({"API_KEY"}));
  EXPECT_EQ(lines[0]["status"], 200);
  EXPECT_FALSE(HasValue(lines[0].dump()));
  EXPECT_EQ(metrics_.requests_forwarded.load(), 1u);
  EXPECT_EQ(metrics_.substitutions.load(), 1u);
}

TEST_F(ExchangeTest, SubstitutesInRequestTarget) {
  auto got = Send(Tls(), Get("/q?key=" + kToken));
  ASSERT_EQ(upstream_.requests.size(), 1u);
  EXPECT_EQ(upstream_.requests[0].req.target, "/q?key=" + kValue);
}

TEST_F(ExchangeTest, ChunkedBodyIsSubstitutedAndRechunked) {
  // The token is split across chunks.
  const std::string body = "a=" + kToken + "&b=" + kToken;
  const std::string req = "POST /v1 HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
                          Chunked({body.substr(0, 10), body.substr(10, 20), body.substr(30)});
  auto got = Send(Tls(), req);
  ASSERT_EQ(upstream_.requests.size(), 1u);
  EXPECT_EQ(upstream_.requests[0].body, "a=" + kValue + "&b=" + kValue);
  EXPECT_TRUE(FieldHasToken(upstream_.requests[0].req.fields, "transfer-encoding", "chunked"));
  EXPECT_EQ(got[0].resp.status, 200);
}

TEST_F(ExchangeTest, LargeContentLengthBodyStreamsRechunked) {
  std::string body(5000, 'x');
  body.replace(1020, kToken.size(), kToken);  // across the body_buffer_limit and read boundaries
  auto got = Send(Tls(), Post(body));
  ASSERT_EQ(upstream_.requests.size(), 1u);
  std::string want = body;
  want.replace(1020, kToken.size(), kValue);
  EXPECT_EQ(upstream_.requests[0].body, want);
  EXPECT_TRUE(FieldHasToken(upstream_.requests[0].req.fields, "transfer-encoding", "chunked"));
  EXPECT_FALSE(HasField(upstream_.requests[0].req.fields, "content-length"));
}

TEST_F(ExchangeTest, HostNotOnAllowlistIsRefusedAndAuditedOnce) {
  auto got = Send(Tls("evil.test"), Get("/", "evil.test", "Authorization: " + kToken + "\r\n"));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].resp.status, 403);
  EXPECT_NE(got[0].body.find("allowlist"), std::string::npos);
  EXPECT_TRUE(dialer_.dials.empty());
  auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["action"], "blocked");
  EXPECT_EQ(lines[0]["host"], "evil.test");
  EXPECT_EQ(lines[0]["status"], 403);
  EXPECT_EQ(metrics_.requests_blocked.load(), 1u);
  EXPECT_EQ(metrics_.requests_forwarded.load(), 0u);
}

TEST_F(ExchangeTest, HostMismatchIs421) {
  auto got = Send(Tls("api.test"), Get("/", "other.test", "Authorization: " + kToken + "\r\n"));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].resp.status, 421);
  EXPECT_TRUE(dialer_.dials.empty());
  auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["status"], 421);
}

TEST_F(ExchangeTest, SniMismatchIs421) {
  auto opt = Tls();
  opt.sni_mismatch = true;
  auto got = Send(opt, Get("/"));
  EXPECT_EQ(got[0].resp.status, 421);
  EXPECT_TRUE(dialer_.dials.empty());
  EXPECT_EQ(AuditLines().size(), 1u);
}

TEST_F(ExchangeTest, UnknownSourceIs403) {
  auto opt = Tls();
  opt.source_ip = "10.9.9.9";
  auto got = Send(opt, Get("/"));
  EXPECT_EQ(got[0].resp.status, 403);
  auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["sandbox"], "");
}

TEST_F(ExchangeTest, PlaintextGuardRefusesTokensInHeadAndBody) {
  auto head = Send(Plain(), Get("/", "plain.test", "Authorization: " + kToken + "\r\n"));
  EXPECT_EQ(head[0].resp.status, 403);
  auto body = Send(Plain(), Post("k=" + kToken, "plain.test"));
  EXPECT_EQ(body[0].resp.status, 403);
  std::string chunked = "POST / HTTP/1.1\r\nHost: plain.test\r\nTransfer-Encoding: chunked\r\n\r\n" +
                        Chunked({kToken.substr(0, 20), kToken.substr(20)});
  auto split = Send(Plain(), chunked);
  EXPECT_EQ(split[0].resp.status, 403);
  EXPECT_TRUE(dialer_.dials.empty());
  EXPECT_EQ(AuditLines().size(), 3u);
  // Without a token plain HTTP is forwarded, without TLS.
  auto ok = Send(Plain(), Post("hello", "plain.test"));
  EXPECT_EQ(ok[0].resp.status, 200);
  ASSERT_EQ(dialer_.dials.size(), 1u);
  EXPECT_EQ(dialer_.dials[0].first, (Target{"plain.test", 80}));
  EXPECT_FALSE(dialer_.dials[0].second);
  EXPECT_EQ(upstream_.requests[0].body, "hello");
}

TEST_F(ExchangeTest, ExplicitPlainNeedsAbsoluteUrl) {
  auto bad = Send(Plain(ExchangeMode::kExplicitPlain), Get("/x", "plain.test"));
  EXPECT_EQ(bad[0].resp.status, 400);
  auto ok = Send(Plain(ExchangeMode::kExplicitPlain), Get("http://plain.test:8080/x", "plain.test:8080"));
  EXPECT_EQ(ok[0].resp.status, 200);
  ASSERT_EQ(dialer_.dials.size(), 1u);
  EXPECT_EQ(dialer_.dials[0].first, (Target{"plain.test", 8080}));
  EXPECT_EQ(upstream_.requests[0].req.target, "/x");
}

TEST_F(ExchangeTest, ResponsesAreScrubbedInEveryFraming) {
  const std::string leak = "you sent " + kValue + " and " + kOtherValue;
  const std::string want = "you sent " + kToken + " and " + kOtherToken;
  for (int framing = 0; framing < 4; ++framing) {
    responder_ = [&, framing](const Message&) {
      const std::string h = "X-Echo: " + kValue + "\r\n";
      switch (framing) {
        case 0: return Response(200, leak, h);
        case 1: return "HTTP/1.1 200 OK\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n" +
                       Chunked({leak.substr(0, 12), leak.substr(12, 7), leak.substr(19)});
        case 2: return Response(200, leak + std::string(3000, 'z'), h);  // above body_buffer_limit: streamed
        default: return "HTTP/1.1 200 " + kValue + "\r\n" + h + "Connection: close\r\n\r\n" + leak;
      }
    };
    std::string raw;
    auto got = Send(Tls(), Get("/"), 1, std::string::npos, &raw);
    ASSERT_TRUE(got[0].ok) << framing;
    EXPECT_EQ(got[0].body.substr(0, want.size()), want) << framing;
    EXPECT_EQ(FindFields(got[0].resp.fields, "x-echo")[0]->value, kToken) << framing;
    EXPECT_FALSE(HasValue(raw)) << framing;
  }
  auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 4u);
  for (const auto& l : lines) EXPECT_TRUE(l["scrubbed"].get<bool>());
  EXPECT_EQ(metrics_.scrubbed_responses.load(), 4u);
}

TEST_F(ExchangeTest, KeepAliveReusesTheUpstream) {
  std::string two = Get("/one", "api.test", "Authorization: " + kToken + "\r\n") + Get("/two");
  auto got = Send(Tls(), two, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].resp.status, 200);
  EXPECT_EQ(got[1].resp.status, 200);
  EXPECT_EQ(dialer_.dials.size(), 1u);
  EXPECT_EQ(upstream_.connections, 1);
  ASSERT_EQ(upstream_.requests.size(), 2u);
  EXPECT_EQ(upstream_.requests[1].req.target, "/two");
  auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["secrets"].size(), 1u);
  EXPECT_EQ(lines[1]["secrets"].size(), 0u);
}

TEST_F(ExchangeTest, ConnectionCloseEndsTheConnection) {
  std::string two = Get("/one", "api.test", "Connection: close\r\n") + Get("/two");
  auto got = Send(Tls(), two, 2);
  EXPECT_EQ(got[0].resp.status, 200);
  EXPECT_TRUE(FieldHasToken(got[0].resp.fields, "connection", "close"));
  EXPECT_EQ(upstream_.requests.size(), 1u);
  EXPECT_EQ(AuditLines().size(), 1u);
}

TEST_F(ExchangeTest, ErrorPathsAreAuditedOnce) {
  struct Case {
    std::string request;
    int status;
  };
  const std::vector<Case> cases = {
      {"GARBAGE\r\n\r\n", 400},
      {"TRACE / HTTP/1.1\r\nHost: api.test\r\n\r\n", 405},
      {"GET / HTTP/1.1\r\nHost: api.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: api.test\r\nX-Bad: " + std::string(70000, 'a') + "\r\n\r\n", 431},
  };
  int n = 0;
  for (const auto& c : cases) {
    auto got = Send(Tls(), c.request);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].resp.status, c.status) << c.request.substr(0, 40);
    ++n;
  }
  // Dial failure.
  dialer_.fail_status = 502;
  auto dial = Send(Tls(), Get("/"));
  EXPECT_EQ(dial[0].resp.status, 502);
  dialer_.fail_status = 0;
  ++n;
  // Upstream closes without a response.
  responder_ = [](const Message&) { return std::string(); };
  auto closed = Send(Tls(), Post("k=" + kToken));
  EXPECT_EQ(closed[0].resp.status, 502);
  ++n;
  // Upstream answers garbage.
  responder_ = [](const Message&) { return std::string("NOT HTTP\r\n\r\n"); };
  auto garbage = Send(Tls(), Get("/"));
  EXPECT_EQ(garbage[0].resp.status, 502);
  ++n;
  auto lines = AuditLines();
  ASSERT_EQ(static_cast<int>(lines.size()), n);
  for (const auto& l : lines) {
    EXPECT_EQ(l["action"], "blocked");
    EXPECT_FALSE(HasValue(l.dump()));
  }
  EXPECT_EQ(metrics_.requests_blocked.load(), static_cast<uint64_t>(n));
  EXPECT_EQ(metrics_.upstream_errors.load(), 2u);  // the closed and the garbage upstream
  // The refused request that reached the upstream names the secret it carried.
  EXPECT_EQ(lines[n - 2]["secrets"], nlohmann::json::array({"API_KEY"}));
}

TEST_F(ExchangeTest, ValueInRequestTargetWithSpaceIsRefused) {
  Session s;
  s.sandbox_id = "sb-space";
  s.egress_allowlist = {"api.test"};
  s.secrets.push_back({"SPACE", "osb_sealed_00000000000000000000000000000000", "has space", {"api.test"}});
  ASSERT_TRUE(sessions_.Register("10.0.0.3", std::move(s)).ok());
  auto opt = Tls();
  opt.source_ip = "10.0.0.3";
  auto got = Send(opt, Get("/x?k=osb_sealed_00000000000000000000000000000000"));
  EXPECT_EQ(got[0].resp.status, 400);
  EXPECT_TRUE(dialer_.dials.empty());
  EXPECT_EQ(AuditLines().size(), 1u);
}

TEST_F(ExchangeTest, ExpectContinueIsAnsweredByTheProxy) {
  std::string raw;
  auto got = Send(Tls(), Post("k=" + kToken, "api.test", "Expect: 100-continue\r\n"), 1, std::string::npos, &raw);
  // The client first reads the interim 100, then the real answer.
  ASSERT_TRUE(got[0].ok);
  EXPECT_EQ(got[0].resp.status, 100);
  EXPECT_NE(raw.find("200 OK"), std::string::npos);
  ASSERT_EQ(upstream_.requests.size(), 1u);
  EXPECT_FALSE(HasField(upstream_.requests[0].req.fields, "expect"));
  EXPECT_EQ(upstream_.requests[0].body, "k=" + kValue);
}

// Payloads of the (masked or unmasked) websocket frames in `wire`, joined.
std::string FramePayloads(std::string_view wire) {
  std::string out;
  size_t i = 0;
  while (i + 2 <= wire.size()) {
    const auto b1 = static_cast<unsigned char>(wire[i + 1]);
    uint64_t n = b1 & 0x7f;
    size_t h = 2;
    if (n == 126) {
      n = (static_cast<unsigned char>(wire[i + 2]) << 8) | static_cast<unsigned char>(wire[i + 3]);
      h = 4;
    } else if (n == 127) {
      n = 0;
      for (int k = 0; k < 8; ++k) n = (n << 8) | static_cast<unsigned char>(wire[i + 2 + k]);
      h = 10;
    }
    const bool masked = (b1 & 0x80) != 0;
    const size_t mask_at = i + h;
    if (masked) h += 4;
    if (i + h + n > wire.size()) break;
    for (uint64_t k = 0; k < n; ++k) {
      char c = wire[i + h + k];
      if (masked) c = static_cast<char>(c ^ wire[mask_at + k % 4]);
      out += c;
    }
    i += h + n;
  }
  return out;
}

std::string MaskedTextFrame(std::string_view payload) {
  const char mask[4] = {0x11, 0x22, 0x33, 0x44};
  std::string f;
  f += static_cast<char>(0x81);
  f += static_cast<char>(0x80 | payload.size());
  f.append(mask, 4);
  for (size_t k = 0; k < payload.size(); ++k) f += static_cast<char>(payload[k] ^ mask[k % 4]);
  return f;
}

// Upgrade: 101 then a two-way tunnel; server frames are scrubbed, tokens in
// client frames substituted.
asio::awaitable<void> ServeWebSocket(std::shared_ptr<MemoryStream> s, UpstreamLog* log, std::string* from_client) {
  log->connections++;
  std::string buf;
  Message m = co_await ReadMessage(*s, buf, true);
  if (!m.ok) co_return;
  log->requests.push_back(m);
  // One unmasked text frame carrying the value.
  const std::string payload = "ws:" + kValue;
  std::string frame;
  frame += static_cast<char>(0x81);
  frame += static_cast<char>(payload.size());
  frame += payload;
  const std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + frame;
  error_code ec;
  co_await s->WriteAll(head, kWait, ec);
  // Echo what the client sends until it closes.
  *from_client = co_await ReadToEnd(*s, buf);
  s->Close();
}

TEST_F(ExchangeTest, UpgradeBecomesAScrubbedTunnel) {
  std::string from_client;
  dialer_.serve = [this, &from_client](std::shared_ptr<MemoryStream> st) {
    return ServeWebSocket(std::move(st), &upstream_, &from_client);
  };
  std::string received;
  RunConnection(Tls(), [&](std::shared_ptr<MemoryStream> c) -> asio::awaitable<void> {
    return [](std::shared_ptr<MemoryStream> c, std::string* received) -> asio::awaitable<void> {
      const std::string req =
          "GET /ws HTTP/1.1\r\nHost: api.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
      error_code ec;
      co_await c->WriteAll(req, kWait, ec);
      std::string buf;
      Message m = co_await ReadMessage(*c, buf, false);
      *received = m.head_text;
      // Read the frame that follows the head.
      while (buf.find("ws:") == std::string::npos || buf.size() < 2 + 3 + kToken.size()) {
        char tmp[1024];
        const size_t n = co_await c->ReadSome(tmp, sizeof tmp, kWait, ec);
        if (n == 0) break;
        buf.append(tmp, n);
      }
      *received += buf;
      co_await c->WriteAll(MaskedTextFrame("tok:" + kToken), kWait, ec);
      c->Close();
    }(c, &received);
  });
  client_bytes_ += received;
  EXPECT_NE(received.find("101"), std::string::npos);
  EXPECT_NE(received.find("ws:" + kToken), std::string::npos);
  EXPECT_FALSE(HasValue(received));
  EXPECT_EQ(FramePayloads(from_client), "tok:" + kValue);
  ASSERT_EQ(upstream_.requests.size(), 1u);
  EXPECT_FALSE(HasField(upstream_.requests[0].req.fields, "sec-websocket-extensions"));
  auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["status"], 101);
}

// The request split at every byte offset reaches the upstream identically.
TEST_F(ExchangeTest, RequestSplitAtEveryOffset) {
  const std::string req = "POST /p?k=" + kToken + " HTTP/1.1\r\nHost: api.test\r\nAuthorization: " + kToken +
                          "\r\nTransfer-Encoding: chunked\r\n\r\n" +
                          Chunked({"a=" + kToken.substr(0, 17), kToken.substr(17) + "&z"});
  std::string reference;
  for (size_t split = 1; split < req.size(); ++split) {
    upstream_.requests.clear();
    auto got = Send(Tls(), req, 1, split);
    ASSERT_EQ(got.size(), 1u) << split;
    ASSERT_EQ(got[0].resp.status, 200) << split;
    ASSERT_EQ(upstream_.requests.size(), 1u) << split;
    const Message& up = upstream_.requests[0];
    const std::string seen = up.head_text + "|" + up.body;
    if (reference.empty()) reference = seen;
    ASSERT_EQ(seen, reference) << split;
  }
  EXPECT_NE(reference.find("/p?k=" + kValue), std::string::npos);
  EXPECT_NE(reference.find("Authorization: " + kValue), std::string::npos);
  EXPECT_NE(reference.find("|a=" + kValue + "&z"), std::string::npos);
}

// The response split at every byte offset reaches the client identically
// and scrubbed, for a buffered and a streamed body.
TEST_F(ExchangeTest, ResponseSplitAtEveryOffset) {
  for (bool chunked : {false, true}) {
    const std::string body = "v=" + kValue + "&w=" + kOtherValue;
    const std::string resp =
        chunked ? "HTTP/1.1 200 OK\r\nX-Echo: " + kValue + "\r\nTransfer-Encoding: chunked\r\n\r\n" +
                      Chunked({body.substr(0, 5), body.substr(5)})
                : Response(200, body, "X-Echo: " + kValue + "\r\n");
    std::string reference;
    for (size_t split = 1; split < resp.size(); ++split) {
      dialer_.serve = [this, resp, split](std::shared_ptr<MemoryStream> st) {
        return ServeSplit(std::move(st), resp, split, &upstream_);
      };
      std::string raw;
      auto got = Send(Tls(), Get("/"), 1, std::string::npos, &raw);
      ASSERT_TRUE(got[0].ok) << split;
      const std::string seen = got[0].head_text + "|" + got[0].body;
      ASSERT_FALSE(HasValue(raw)) << split;
      if (reference.empty()) reference = seen;
      ASSERT_EQ(seen, reference) << split;
    }
    EXPECT_NE(reference.find("|v=" + kToken + "&w=" + kOtherToken), std::string::npos);
    EXPECT_NE(reference.find("X-Echo: " + kToken), std::string::npos);
  }
}

// Item 1: content codings.
TEST_F(ExchangeTest, AcceptEncodingOnlyNamesCodingsTheProxyDecodes) {
  Send(Tls(), Get("/", "api.test", "Accept-Encoding: br;q=0.5, compress, gzip\r\n"));
  Send(Tls(), Get("/"));
  ASSERT_EQ(upstream_.requests.size(), 2u);
  EXPECT_EQ(FindFields(upstream_.requests[0].req.fields, "accept-encoding")[0]->value, "gzip, br");
  EXPECT_EQ(FindFields(upstream_.requests[1].req.fields, "accept-encoding")[0]->value, "identity");
  // A range of a coded body cannot be decoded alone: ranges ask for identity.
  Send(Tls(), Get("/", "api.test", "Accept-Encoding: gzip\r\nRange: bytes=10-20\r\n"));
  ASSERT_EQ(upstream_.requests.size(), 3u);
  EXPECT_EQ(FindFields(upstream_.requests[2].req.fields, "accept-encoding")[0]->value, "identity");
}

TEST_F(ExchangeTest, CodedPartialResponsesAre502AndETagsWeakened) {
  auto encoded = EncodeAll({Coding::kGzip}, "part of " + kValue);
  ASSERT_TRUE(encoded);
  const std::string wire = *encoded;
  responder_ = [wire](const Message&) {
    return "HTTP/1.1 206 Partial\r\nContent-Encoding: gzip\r\nContent-Length: " + std::to_string(wire.size()) +
           "\r\n\r\n" + wire;
  };
  auto partial = Send(Tls(), Get("/"));
  EXPECT_EQ(partial[0].resp.status, 502);
  responder_ = [wire](const Message&) { return Response(200, wire, "Content-Encoding: gzip\r\nETag: \"abc\"\r\n"); };
  auto tagged = Send(Tls(), Get("/"));
  ASSERT_TRUE(tagged[0].ok);
  EXPECT_EQ(FindFields(tagged[0].resp.fields, "etag")[0]->value, "W/\"abc\"");
  EXPECT_EQ(tagged[0].body, "part of " + kToken);
}

TEST_F(ExchangeTest, CompressedResponsesAreDecodedScrubbedAndDeliveredAsIdentity) {
  const std::string leak = "echo " + kValue + " / " + kOtherValue + std::string(3000, '.');
  for (Coding c : {Coding::kGzip, Coding::kDeflate, Coding::kBrotli, Coding::kZstd}) {
    for (bool chunked : {false, true}) {
      auto encoded = EncodeAll({c}, leak);
      ASSERT_TRUE(encoded);
      const std::string wire = *encoded;
      responder_ = [&, c, chunked, wire](const Message&) {
        const std::string h = "Content-Encoding: " + std::string(CodingName(c)) + "\r\n";
        if (!chunked) return Response(200, wire, h);
        return "HTTP/1.1 200 OK\r\n" + h + "Transfer-Encoding: chunked\r\n\r\n" +
               Chunked({wire.substr(0, 7), wire.substr(7)});
      };
      std::string raw;
      auto got = Send(Tls(), Get("/", "api.test", "Accept-Encoding: gzip\r\n"), 1, std::string::npos, &raw);
      ASSERT_TRUE(got[0].ok) << CodingName(c);
      EXPECT_FALSE(HasField(got[0].resp.fields, "content-encoding"));
      EXPECT_EQ(got[0].body, "echo " + kToken + " / " + kOtherToken + std::string(3000, '.')) << CodingName(c);
      EXPECT_FALSE(HasValue(raw));
    }
  }
}

TEST_F(ExchangeTest, UndecodableResponseCodingIs502AndCorruptBodiesAreCut) {
  responder_ = [](const Message&) { return Response(200, "whatever " + kValue, "Content-Encoding: compress\r\n"); };
  std::string raw;
  auto got = Send(Tls(), Get("/"), 1, std::string::npos, &raw);
  EXPECT_EQ(got[0].resp.status, 502);
  EXPECT_FALSE(HasValue(raw));
  auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0]["reason"].get<std::string>().find("content-coding"), std::string::npos);
  // A gzip body that is truncated: whatever was decoded is scrubbed, then the
  // connection is cut (no final chunk).
  auto encoded = EncodeAll({Coding::kGzip}, kValue + std::string(100000, 'q'));
  ASSERT_TRUE(encoded);
  const std::string cut = encoded->substr(0, encoded->size() - 8);
  responder_ = [cut](const Message&) { return Response(200, cut, "Content-Encoding: gzip\r\n"); };
  raw.clear();
  auto bad = Send(Tls(), Get("/"), 1, std::string::npos, &raw);
  EXPECT_FALSE(bad[0].ok);
  EXPECT_FALSE(HasValue(raw));
}

TEST_F(ExchangeTest, ContentEncodedRequestBodiesAreSubstitutedAndReencoded) {
  for (Coding c : {Coding::kGzip, Coding::kBrotli, Coding::kZstd}) {
    upstream_.requests.clear();
    auto encoded = EncodeAll({c}, "key=" + kToken + "&x=1");
    ASSERT_TRUE(encoded);
    auto got = Send(Tls(), Post(*encoded, "api.test", "Content-Encoding: " + std::string(CodingName(c)) + "\r\n"));
    ASSERT_EQ(got[0].resp.status, 200);
    ASSERT_EQ(upstream_.requests.size(), 1u);
    const Message& up = upstream_.requests[0];
    EXPECT_EQ(FindFields(up.req.fields, "content-encoding")[0]->value, CodingName(c));
    auto decoded = DecodeAll({c}, up.body, 1 << 20);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, "key=" + kValue + "&x=1");
  }
  // Undecodable coding toward a host a token may reach: 415, nothing sent.
  upstream_.requests.clear();
  auto refused = Send(Tls(), Post("key=" + kToken, "api.test", "Content-Encoding: compress\r\n"));
  EXPECT_EQ(refused[0].resp.status, 415);
  EXPECT_TRUE(upstream_.requests.empty());
  // Corrupt gzip: 400.
  auto corrupt = Send(Tls(), Post("not gzip at all " + kToken, "api.test", "Content-Encoding: gzip\r\n"));
  EXPECT_EQ(corrupt[0].resp.status, 400);
}

// A token of a secret that may not go to the target passes sealed and is
// audited as withheld; inside a content-coded body just as in a plain one.
// Both paths: the body is decoded anyway (another secret is substituted
// toward api.test), and no secret at all may go to none.test (the body is
// forwarded unchanged, decoded beside for the audit only).
TEST_F(ExchangeTest, WithheldTokensInContentCodedBodiesAreAudited) {
  struct Case {
    std::string host;
    std::string body;
    std::string withheld_name;
  };
  const std::vector<Case> cases = {
      {"api.test", "a=" + kToken + "&b=" + kOtherToken, "OTHER_KEY"},
      {"none.test", "b=" + kOtherToken + "&pad=" + std::string(3000, 'p'), "OTHER_KEY"},
  };
  for (Coding c : {Coding::kGzip, Coding::kDeflate, Coding::kBrotli, Coding::kZstd}) {
    for (const auto& tc : cases) {
      SCOPED_TRACE(std::string(CodingName(c)) + " toward " + tc.host);
      upstream_.requests.clear();
      const size_t lines_before = AuditLines().size();
      auto encoded = EncodeAll({c}, tc.body);
      ASSERT_TRUE(encoded);
      auto got = Send(Tls(tc.host),
                      Post(*encoded, tc.host, "Content-Encoding: " + std::string(CodingName(c)) + "\r\n"));
      ASSERT_EQ(got[0].resp.status, 200);
      ASSERT_EQ(upstream_.requests.size(), 1u);
      auto decoded = DecodeAll({c}, upstream_.requests[0].body, 1 << 20);
      ASSERT_TRUE(decoded);
      EXPECT_NE(decoded->find(kOtherToken), std::string::npos) << "the withheld token passes sealed";
      EXPECT_EQ(decoded->find(kOtherValue), std::string::npos);
      if (tc.host == "none.test") {
        EXPECT_EQ(upstream_.requests[0].body, *encoded) << "forwarded unchanged";
      }
      auto lines = AuditLines();
      ASSERT_EQ(lines.size(), lines_before + 1);
      const auto& line = lines.back();
      ASSERT_TRUE(line.contains("withheld")) << line.dump();
      ASSERT_EQ(line["withheld"].size(), 1u);
      EXPECT_EQ(line["withheld"][0]["name"], tc.withheld_name);
      EXPECT_EQ(line["withheld"][0]["reason"], "host_not_in_allowed_hosts");
    }
  }
  // A body that does not decode, toward a host no secret may reach: forwarded
  // as it is (nothing is substituted into it), not refused.
  upstream_.requests.clear();
  auto junk = Send(Tls("none.test"), Post("not gzip " + kOtherToken, "none.test", "Content-Encoding: gzip\r\n"));
  EXPECT_EQ(junk[0].resp.status, 200);
  ASSERT_EQ(upstream_.requests.size(), 1u);
  EXPECT_EQ(upstream_.requests[0].body, "not gzip " + kOtherToken);
}

// A Content-Length body that nothing may change is streamed through with
// its own length: toward a host no secret may reach (request) and to a
// sandbox with no values to scrub (response). Stating 0 instead left the
// body on the connection to be read as the next request (desync).
TEST_F(ExchangeTest, UnchangedBodiesKeepTheirContentLength) {
  const std::string body = "k=" + kOtherToken + std::string(3000, 'x');
  auto got = Send(Tls("none.test"), Post(body, "none.test") + Get("/second", "none.test"), 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].resp.status, 200);
  EXPECT_EQ(got[1].resp.status, 200);
  ASSERT_EQ(upstream_.requests.size(), 2u);
  EXPECT_EQ(upstream_.requests[0].body, body);
  EXPECT_EQ(upstream_.requests[1].req.target, "/second");
  Session s;
  s.sandbox_id = "sb-novalues";
  s.egress_allowlist = {"api.test"};
  ASSERT_TRUE(sessions_.Register("10.0.0.3", std::move(s)).ok());
  responder_ = [](const Message&) { return Response(200, std::string(5000, 'r')); };
  auto opt = Tls();
  opt.source_ip = "10.0.0.3";
  auto resp = Send(opt, Get("/"));
  ASSERT_TRUE(resp[0].ok);
  EXPECT_EQ(resp[0].body, std::string(5000, 'r'));
}

// Item 8: bodies held whole in memory are charged to the sandbox's budget.
TEST_F(ExchangeTest, OverBudgetBodiesStreamInsteadOfBuffering) {
  limits_.session_body_budget = 100;
  const std::string body = "k=" + kToken + std::string(400, 'b');  // < body_buffer_limit, > budget
  responder_ = [&](const Message&) { return Response(200, "echo " + kValue + std::string(400, 'r')); };
  auto got = Send(Tls(), Post(body));
  ASSERT_EQ(upstream_.requests.size(), 1u);
  // Streamed (re-chunked), still substituted.
  EXPECT_TRUE(FieldHasToken(upstream_.requests[0].req.fields, "transfer-encoding", "chunked"));
  EXPECT_EQ(upstream_.requests[0].body.substr(0, 2 + kValue.size()), "k=" + kValue);
  // The response too: chunked, scrubbed.
  ASSERT_TRUE(got[0].ok);
  EXPECT_TRUE(FieldHasToken(got[0].resp.fields, "transfer-encoding", "chunked"));
  EXPECT_EQ(got[0].body.substr(0, 5 + kToken.size()), "echo " + kToken);
  // Within the budget: exact Content-Length as before.
  limits_.session_body_budget = 16 << 20;
  upstream_.requests.clear();
  auto within = Send(Tls(), Post(body));
  EXPECT_EQ(FindFields(upstream_.requests[0].req.fields, "content-length").size(), 1u);
  EXPECT_EQ(FindFields(within[0].resp.fields, "content-length").size(), 1u);
  EXPECT_EQ(sessions_.Lookup("10.0.0.2")->buffered_body_bytes().load(), 0u);
}

// A sends all but the end of its body (its proxy side has then charged the
// whole Content-Length), B sends a whole body, then A finishes.
asio::awaitable<void> TwoPlainClients(std::shared_ptr<MemoryStream> a, std::shared_ptr<MemoryStream> b,
                                      std::string request, std::vector<Message>* a_got,
                                      std::vector<Message>* b_got) {
  error_code ec;
  co_await a->WriteAll(std::string_view(request).substr(0, request.size() - 100), kWait, ec);
  const bool drained = co_await a->WaitDrained(kWait);
  EXPECT_TRUE(drained);
  co_await b->WriteAll(request, kWait, ec);
  std::string buf;
  b_got->push_back(co_await ReadMessage(*b, buf, false));
  b->Close();
  co_await a->WriteAll(std::string_view(request).substr(request.size() - 100), kWait, ec);
  buf.clear();
  a_got->push_back(co_await ReadMessage(*a, buf, false));
  a->Close();
}

TEST_F(ExchangeTest, PlainBodiesOverTheBudgetGet503) {
  limits_.session_body_budget = 600;
  const std::string req = Post(std::string(500, 'a'), "plain.test");
  auto [a_client, a_proxy] = MakeMemoryStreamPair(io_.get_executor());
  auto [b_client, b_proxy] = MakeMemoryStreamPair(io_.get_executor());
  std::vector<Message> a_got, b_got;
  int served = 0;
  asio::co_spawn(io_, ServeHttp(Env(), a_proxy, Plain()), [&](std::exception_ptr) { ++served; });
  asio::co_spawn(io_, ServeHttp(Env(), b_proxy, Plain()), [&](std::exception_ptr) { ++served; });
  asio::co_spawn(io_, TwoPlainClients(a_client, b_client, req, &a_got, &b_got), asio::detached);
  io_.run();
  EXPECT_EQ(served, 2);
  ASSERT_EQ(b_got.size(), 1u);
  EXPECT_EQ(b_got[0].resp.status, 503);
  EXPECT_NE(b_got[0].body.find("memory budget"), std::string::npos);
  ASSERT_EQ(a_got.size(), 1u);
  EXPECT_EQ(a_got[0].resp.status, 200);
  ASSERT_EQ(upstream_.requests.size(), 1u);
  EXPECT_EQ(upstream_.requests[0].body, std::string(500, 'a'));
  auto lines = AuditLines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["status"], 503);
  EXPECT_EQ(lines[1]["status"], 200);
  EXPECT_EQ(sessions_.Lookup("10.0.0.2")->buffered_body_bytes().load(), 0u);
}

// Counts the proxy's writes toward the client (write coalescing).
class CountingStream final : public ByteStream {
 public:
  explicit CountingStream(std::shared_ptr<MemoryStream> inner) : inner_(std::move(inner)) {}
  asio::awaitable<size_t> ReadSome(char* data, size_t size, Millis timeout, error_code& ec) override {
    co_return co_await inner_->ReadSome(data, size, timeout, ec);
  }
  asio::awaitable<void> WriteAll(std::string_view data, Millis timeout, error_code& ec) override {
    ++writes;
    co_await inner_->WriteAll(data, timeout, ec);
  }
  asio::awaitable<void> GracefulClose() override { co_await inner_->GracefulClose(); }
  void Close() override { inner_->Close(); }
  asio::any_io_executor get_executor() override { return inner_->get_executor(); }
  int writes = 0;

 private:
  void CancelIo() override {}
  std::shared_ptr<MemoryStream> inner_;
};

// A streamed response whose body came with its head reaches the client in
// one write (one TLS record), head, scrubbed body and chunked terminator
// together; and a head whose body is not there yet is never held back for it.
TEST_F(ExchangeTest, StreamedResponseHeadAndBufferedBodyGoOutInOneWrite) {
  const std::string leak = "you sent " + kValue + " ok";
  for (int framing = 0; framing < 3; ++framing) {
    responder_ = [&, framing](const Message&) -> std::string {
      switch (framing) {
        case 0: return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                       Chunked({leak.substr(0, 12), leak.substr(12)});
        case 1: return Response(200, leak + std::string(1200, 'z'));  // above body_buffer_limit: streamed
        default: return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + leak;  // until close
      }
    };
    auto [client_end, proxy_end] = MakeMemoryStreamPair(io_.get_executor());
    auto counting = std::make_shared<CountingStream>(proxy_end);
    asio::co_spawn(io_, ServeHttp(Env(), counting, Tls()), asio::detached);
    std::vector<Message> got;
    std::string raw;
    asio::co_spawn(io_, ClientScript(client_end, Get("/"), 1, std::string::npos, &got, &raw), asio::detached);
    io_.restart();
    io_.run();
    client_bytes_ += raw;
    ASSERT_EQ(got.size(), 1u);
    ASSERT_TRUE(got[0].ok) << framing;
    EXPECT_EQ(got[0].body.substr(0, 9 + kToken.size()), "you sent " + kToken) << framing;
    if (framing == 2) {
      // Until close: the end of the body is the upstream's EOF, read later
      // (the scrubber's held-back tail may follow in a second write).
      EXPECT_LE(counting->writes, 2) << framing;
    } else {
      EXPECT_EQ(counting->writes, 1) << framing;
    }
  }
  // The body arrives only after the client has seen the head: the head
  // went out alone, at once.
  auto head_seen = std::make_shared<asio::steady_timer>(io_, Clock::time_point::max());
  bool body_before_head = false;
  const std::string late_head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string late_body = Chunked({"late body"});
  dialer_.serve = [&, head_seen](std::shared_ptr<MemoryStream> st) -> asio::awaitable<void> {
    std::string buf;
    const Message m = co_await ReadMessage(*st, buf, true);
    EXPECT_TRUE(m.ok);
    error_code ec;
    co_await st->WriteAll(late_head, kWait, ec);
    head_seen->expires_after(kWait);  // woken (cancelled) by the client
    error_code wait_ec;
    co_await head_seen->async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
    body_before_head = wait_ec != asio::error::operation_aborted;
    co_await st->WriteAll(late_body, kWait, ec);
    st->ShutdownSend();
    co_await ReadToEnd(*st);
    st->Close();
  };
  std::string seen;
  RunConnection(Tls(), [&, head_seen](std::shared_ptr<MemoryStream> c) -> asio::awaitable<void> {
    error_code ec;
    const std::string request = Get("/");
    co_await c->WriteAll(request, kWait, ec);
    std::string tmp(4096, '\0');
    while (seen.find("\r\n\r\n") == std::string::npos) {
      const size_t n = co_await c->ReadSome(tmp.data(), tmp.size(), kWait, ec);
      if (n == 0) break;
      seen.append(tmp.data(), n);
    }
    head_seen->cancel();
    while (seen.find("late body") == std::string::npos || seen.find("\r\n0\r\n\r\n") == std::string::npos) {
      const size_t n = co_await c->ReadSome(tmp.data(), tmp.size(), kWait, ec);
      if (n == 0) break;
      seen.append(tmp.data(), n);
    }
    c->Close();
  });
  client_bytes_ += seen;
  EXPECT_FALSE(body_before_head) << "the proxy held the head until body bytes arrived";
  EXPECT_NE(seen.find("late body"), std::string::npos);
}

TEST_F(ExchangeTest, MemoryStreamPairBasics) {
  auto [a, b] = MakeMemoryStreamPair(io_.get_executor(), 4);
  std::string got;
  error_code write_ec, read_ec;
  asio::co_spawn(
      io_,
      [](std::shared_ptr<MemoryStream> a, error_code* ec) -> asio::awaitable<void> {
        co_await a->WriteAll("hello world", kWait, *ec);  // waits for room: capacity 4
        a->ShutdownSend();
      }(a, &write_ec),
      asio::detached);
  asio::co_spawn(
      io_,
      [](std::shared_ptr<MemoryStream> b, std::string* got, error_code* ec) -> asio::awaitable<void> {
        char tmp[3];
        while (true) {
          const size_t n = co_await b->ReadSome(tmp, sizeof tmp, kWait, *ec);
          if (n == 0) break;
          got->append(tmp, n);
        }
      }(b, &got, &read_ec),
      asio::detached);
  io_.run();
  EXPECT_FALSE(write_ec);
  EXPECT_EQ(got, "hello world");
  EXPECT_EQ(read_ec, asio::error::eof);
  // Timeout and broken pipe.
  auto [c, d] = MakeMemoryStreamPair(io_.get_executor());
  error_code timeout_ec, pipe_ec;
  asio::co_spawn(
      io_,
      [](std::shared_ptr<MemoryStream> c, std::shared_ptr<MemoryStream> d, error_code* t,
         error_code* p) -> asio::awaitable<void> {
        char tmp[4];
        co_await c->ReadSome(tmp, sizeof tmp, Millis(10), *t);
        d->Close();
        co_await c->WriteAll("x", kWait, *p);
      }(c, d, &timeout_ec, &pipe_ec),
      asio::detached);
  io_.restart();
  io_.run();
  EXPECT_EQ(timeout_ec, asio::error::timed_out);
  EXPECT_EQ(pipe_ec, asio::error::broken_pipe);
}

}  // namespace
}  // namespace osb::secretsproxy
