#include "api_harness.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "controlplane/auth.h"
#include "test_db.h"
#include <array>

namespace osb::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// Collects formatted log lines from every logger that uses the default.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::string Text() {
    std::lock_guard lock(this->mutex_);
    return text_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    this->formatter_->format(msg, buf);
    text_.append(buf.data(), buf.size());
  }
  void flush_() override {}

 private:
  std::string text_;
};

std::shared_ptr<CaptureSink>& Capture() {
  static auto sink = [] {
    auto s = std::make_shared<CaptureSink>();
    auto logger = std::make_shared<spdlog::logger>("osb-test", s);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::trace);
    return s;
  }();
  return sink;
}

}  // namespace

HttpResult HttpClient::Do(const std::string& method, const std::string& target, const std::string& body,
                          const std::map<std::string, std::string>& headers) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  if (req.method() == http::verb::unknown) req.method_string(method);
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  http::read(stream, buffer, parser);
  HttpResult out;
  out.status = static_cast<int>(parser.get().result_int());
  out.body = parser.get().body();
  for (const auto& f : parser.get()) {
    std::string name(f.name_string());
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    out.headers[name] = std::string(f.value());
  }
  beast::error_code ec;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  return out;
}

std::string HttpClient::Raw(const std::string& bytes) {
  asio::io_context ioc;
  asio::ip::tcp::socket sock(ioc);
  sock.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  asio::write(sock, asio::buffer(bytes));
  std::string out;
  beast::error_code ec;
  std::array<char, 4096> buf;
  for (;;) {
    const size_t n = sock.read_some(asio::buffer(buf), ec);
    out.append(buf.data(), n);
    if (ec) break;
  }
  return out;
}

void ApiTest::SetUp() {
  Capture();
  db_url_ = FreshDatabaseUrl();
  auto ring = crypto::Keyring::FromHex(kTestPrimaryKey);
  ASSERT_TRUE(ring.ok());
  keyring_ = std::make_shared<const crypto::Keyring>(std::move(*ring));
  api::ControlPlaneOptions options;
  options.listen = "127.0.0.1:0";
  options.db_url = db_url_;
  options.bootstrap_api_key = kTestAdminKey;
  auto cp = api::ControlPlane::Create(options, keyring_);
  ASSERT_TRUE(cp.ok()) << cp.error().message;
  cp_ = std::move(*cp);
  auto plane = api::SandboxPlane::Attach(*cp_, PlaneOptions());
  ASSERT_TRUE(plane.ok()) << plane.error().message;
  sandboxes_ = std::move(*plane);
  ASSERT_TRUE(cp_->Start().ok());
  client_ = std::make_unique<HttpClient>(cp_->port());
}

void ApiTest::TearDown() {
  if (cp_) {
    cp_->Stop();
    cp_->Wait();
  }
  if (sandboxes_) sandboxes_->Stop();
}

HttpResult ApiTest::Call(const std::string& method, const std::string& target, const std::string& body,
                         const std::string& api_key) {
  std::map<std::string, std::string> headers;
  if (!api_key.empty()) headers["X-API-Key"] = api_key;
  if (!body.empty()) headers["Content-Type"] = "application/json";
  HttpResult r = client_->Do(method, target, body, headers);
  std::lock_guard lock(responses_mu_);
  responses_.push_back(r.body);
  for (const auto& [k, v] : r.headers) responses_.push_back(k + ": " + v);
  return r;
}

HttpResult ApiTest::Call(const std::string& method, const std::string& target, const nlohmann::json& body,
                         const std::string& api_key) {
  return Call(method, target, body.dump(), api_key);
}

std::string ApiTest::AddOrg(const std::string& name) {
  auto org = cp_->store().EnsureOrg(name);
  EXPECT_TRUE(org.ok());
  const std::string key = controlplane::GenerateApiKey();
  EXPECT_TRUE(cp_->store().AddApiKey(org->id, controlplane::HashApiKey(key), "test").ok());
  return key;
}

std::string ApiTest::Logs() const {
  spdlog::default_logger()->flush();
  return Capture()->Text();
}

void ApiTest::ExpectNeverExposed(const std::string& value) {
  std::lock_guard lock(responses_mu_);
  for (const auto& r : responses_) {
    EXPECT_EQ(r.find(value), std::string::npos) << "a response exposed a secret value";
  }
  EXPECT_EQ(Logs().find(value), std::string::npos) << "the log exposed a secret value";
}

}  // namespace osb::testing
