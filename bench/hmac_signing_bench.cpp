// Re-signing cost per request for the hmac kind (issue 16), as a ratio to
// plain token substitution in the same run: N keep-alive requests through
// the whole in-memory exchange (ServeHttp over MemoryStream, a fake dialer
// and an upstream that answers 200), once with a value secret substituted
// in a header, once with an hmac secret signing method/path/timestamp/body.
// Reports microseconds per request (google benchmark's time / iterations).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "secretsproxy/body_relay.h"
#include "secretsproxy/exchange.h"

namespace osb::secretsproxy {
namespace {
namespace asio = boost::asio;
using boost::system::error_code;

constexpr Millis kWait{10000};
const std::string kValueToken = "osb_sealed_00000000000000000000000000000001";
const std::string kHmacToken = "osb_sealed_00000000000000000000000000000002";

// Reads requests (Content-Length bodies) and answers each with a tiny 200.
asio::awaitable<void> Upstream(std::shared_ptr<MemoryStream> s) {
  std::string buf;
  RequestHead head;
  const HeadLimits limits;
  while (true) {
    ParseOutcome r;
    while ((r = ParseRequestHead(buf, limits, &head)).status == ParseStatus::kNeedMore) {
      char tmp[16384];
      error_code ec;
      const size_t n = co_await s->ReadSome(tmp, sizeof tmp, kWait, ec);
      if (n == 0) co_return;
      buf.append(tmp, n);
    }
    if (r.status != ParseStatus::kComplete) co_return;
    buf.erase(0, r.consumed);
    BodyFraming framing;
    if (AnalyzeRequestFraming(head, &framing)) co_return;
    BodyReader reader(*s, buf, framing, kWait);
    std::string body;
    while (true) {
      std::string err;
      auto st = co_await reader.Next(&body, &err);
      if (st == BodyReader::Status::kError) co_return;
      if (st == BodyReader::Status::kDone) break;
    }
    error_code ec;
    co_await s->WriteAll("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", kWait, ec);
    if (ec) co_return;
  }
}

class Dialer final : public UpstreamDialer {
 public:
  explicit Dialer(asio::io_context& io) : io_(io) {}
  asio::awaitable<UpstreamConnection> Dial(Target, bool) override {
    auto [mine, theirs] = MakeMemoryStreamPair(io_.get_executor());
    asio::co_spawn(io_, Upstream(theirs), asio::detached);
    co_return UpstreamConnection{mine, 0, ""};
  }

 private:
  asio::io_context& io_;
};

void Run(benchmark::State& state, bool hmac) {
  asio::io_context io;
  SessionRegistry sessions;
  Session s;
  s.sandbox_id = "sb";
  s.project_id = "p";
  s.egress_allowlist = {"api.test"};
  s.secrets.push_back({"KEY", kValueToken, "sk-live-0123456789abcdef0123456789abcdef", {"api.test"}});
  SecretBinding h{"SIG", kHmacToken, "", {"api.test"}};
  h.kind = "hmac";
  h.material = nlohmann::json{{"key", "whsec_0123456789abcdef0123456789abcdef"},
                              {"header", "X-Signature"},
                              {"prefix", "sha256="},
                              {"message", "{method}\n{path}\n{timestamp}\n{body}"},
                              {"timestampHeader", "X-Timestamp"}}
                   .dump();
  s.secrets.push_back(h);
  if (!sessions.Register("10.0.0.2", std::move(s)).ok()) state.SkipWithError("register");
  Dialer dialer(io);
  ProxyLimits limits;
  Metrics metrics;
  const std::string audit_path =
      (std::filesystem::temp_directory_path() / ("osb_hmac_bench_audit_" + std::to_string(getpid()))).string();
  AuditLog audit(audit_path);
  SigningEnv signing;
  signing.limits = &limits;
  ExchangeEnv env{&limits, 80, &sessions, &dialer, &audit, &metrics, &signing};
  const std::string body(static_cast<size_t>(state.range(0)), 'b');
  const std::string header = hmac ? "X-Timestamp: 1700000000\r\nX-Signature: " + kHmacToken + "\r\n"
                                  : "Authorization: Bearer " + kValueToken + "\r\n";
  const std::string request = "POST /v1/messages HTTP/1.1\r\nHost: api.test\r\n" + header +
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  ExchangeOptions opt;
  opt.mode = ExchangeMode::kTls;
  opt.fixed_target = Target{"api.test", 443};
  opt.source_ip = "10.0.0.2";
  auto [client, proxy] = MakeMemoryStreamPair(io.get_executor());
  asio::co_spawn(io, ServeHttp(env, proxy, opt), asio::detached);
  const int64_t n = state.max_iterations;
  asio::co_spawn(
      io,
      [&, c = client]() -> asio::awaitable<void> {
        std::string buf;
        for (auto _ : state) {
          error_code ec;
          co_await c->WriteAll(request, kWait, ec);
          // Each response is exactly one small head + "ok".
          while (buf.find("\r\n\r\nok") == std::string::npos) {
            char tmp[4096];
            const size_t got = co_await c->ReadSome(tmp, sizeof tmp, kWait, ec);
            if (got == 0) co_return;
            buf.append(tmp, got);
          }
          buf.erase(0, buf.find("\r\n\r\nok") + 6);
        }
        c->Close();
      },
      asio::detached);
  (void)n;
  io.run();
  state.SetLabel(hmac ? "hmac re-signed" : "plain substitution");
  std::filesystem::remove(audit_path);
}

void BM_PlainSubstitution(benchmark::State& state) { Run(state, false); }
void BM_HmacSigned(benchmark::State& state) { Run(state, true); }
BENCHMARK(BM_PlainSubstitution)->Arg(256)->Arg(64 * 1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_HmacSigned)->Arg(256)->Arg(64 * 1024)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace osb::secretsproxy

BENCHMARK_MAIN();
