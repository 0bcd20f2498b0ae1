// HttpServer over HTTPS (`osb server --tls-cert/--tls-key`): a certificate
// made in the test with the openssl CLI; a verifying client and curl get
// answers, a TLS 1.1 client and plain HTTP get none, bad files fail Start().
#include <gtest/gtest.h>

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "api/http_server.h"
#include "api_harness.h"

namespace osb::api {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

// stdout of a shell command, and its exit status.
std::pair<int, std::string> Sh(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, out};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class HttpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/osb-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    cert_ = (dir_ / "cert.pem").string();
    key_ = (dir_ / "key.pem").string();
    auto [rc, out] = Sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1"
                        " -subj /CN=osb-test -addext subjectAltName=IP:127.0.0.1,DNS:localhost"
                        " -keyout " + key_ + " -out " + cert_);
    ASSERT_EQ(rc, 0) << out;
    router_ = std::make_shared<Router>();
    router_->AddPublic("GET", "/ping", [this](Request&) {
      ++handled_;
      return Response{200, "{\"pong\":true}"};
    });
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<HttpServer> StartServer() {
    HttpServerOptions options;
    options.port = 0;
    options.io_timeout = std::chrono::seconds(2);
    options.tls_cert_file = cert_;
    options.tls_key_file = key_;
    auto server = std::make_unique<HttpServer>(options, router_);
    auto st = server->Start();
    EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
    return server;
  }

  // One TLS handshake + GET /ping with the given client context; "" when
  // the handshake failed, else the raw response.
  std::string TlsGet(uint16_t port, asio::ssl::context& ctx, boost::system::error_code& ec) {
    asio::io_context ioc;
    asio::ssl::stream<asio::ip::tcp::socket> s(ioc, ctx);
    s.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
    s.handshake(asio::ssl::stream_base::client, ec);
    if (ec) return "";
    asio::write(s, asio::buffer(std::string("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")), ec);
    std::string out;
    char buf[4096];
    for (;;) {
      boost::system::error_code rec;
      size_t n = s.read_some(asio::buffer(buf), rec);
      out.append(buf, n);
      if (rec) break;
    }
    return out;
  }

  fs::path dir_;
  std::string cert_, key_;
  std::shared_ptr<Router> router_;
  std::atomic<int> handled_{0};
};

TEST_F(HttpsServerTest, VerifyingClientGetsAnswer) {
  auto server = StartServer();
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(cert_);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  boost::system::error_code ec;
  const std::string resp = TlsGet(server->port(), ctx, ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(resp.starts_with("HTTP/1.1 200")) << resp;
  EXPECT_NE(resp.find("{\"pong\":true}"), std::string::npos) << resp;
  EXPECT_EQ(handled_, 1);
}

TEST_F(HttpsServerTest, CurlWithCaCertSucceedsAndWithoutFailsVerification) {
  auto server = StartServer();
  const std::string url = "https://127.0.0.1:" + std::to_string(server->port()) + "/ping";
  auto [rc, out] = Sh("curl -sS --max-time 10 --cacert " + cert_ + " " + url);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "{\"pong\":true}");
  // Not trusted by the system store: curl refuses (60 = peer certificate).
  auto [rc2, out2] = Sh("curl -sS --max-time 10 " + url);
  EXPECT_EQ(rc2, 60) << out2;
  // Even with TLS 1.1 forced as curl's maximum, nothing older than 1.2.
  auto [rc3, out3] = Sh("curl -sS --max-time 10 --cacert " + cert_ + " --tls-max 1.1 --ciphers DEFAULT@SECLEVEL=0 " + url);
  EXPECT_NE(rc3, 0) << out3;
  EXPECT_EQ(handled_, 1);
}

TEST_F(HttpsServerTest, Tls11ClientIsRefused) {
  auto server = StartServer();
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  // A client that offers only TLS 1.1 (and would accept any cipher).
  SSL_CTX_set_security_level(ctx.native_handle(), 0);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_1_VERSION);
  SSL_CTX_set_max_proto_version(ctx.native_handle(), TLS1_1_VERSION);
  SSL_CTX_set_cipher_list(ctx.native_handle(), "ALL:@SECLEVEL=0");
  ctx.set_verify_mode(asio::ssl::verify_none);
  boost::system::error_code ec;
  const std::string resp = TlsGet(server->port(), ctx, ec);
  EXPECT_TRUE(ec) << "TLS 1.1 handshake succeeded: " << resp;
  EXPECT_EQ(handled_, 0);
}

TEST_F(HttpsServerTest, PlainHttpToTheTlsPortGetsNoApiResponse) {
  auto server = StartServer();
  testing::HttpClient plain(server->port());
  std::string resp;
  try {
    resp = plain.Raw("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  } catch (const std::exception&) {
    // A reset connection is fine too.
  }
  EXPECT_EQ(resp.find("HTTP/"), std::string::npos) << resp;
  EXPECT_EQ(resp.find("pong"), std::string::npos) << resp;
  EXPECT_EQ(handled_, 0);
}

TEST_F(HttpsServerTest, UnusableCertificateOrKeyFailsStartNamingTheFlag) {
  HttpServerOptions options;
  options.port = 0;
  options.tls_cert_file = (dir_ / "missing.pem").string();
  options.tls_key_file = key_;
  HttpServer missing(options, router_);
  auto st = missing.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find("--tls-cert"), std::string::npos) << st.error().message;

  // A key that does not belong to the certificate.
  const std::string other = (dir_ / "other.pem").string();
  auto [rc, out] = Sh("openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out " + other);
  ASSERT_EQ(rc, 0) << out;
  options.tls_cert_file = cert_;
  options.tls_key_file = other;
  HttpServer mismatched(options, router_);
  st = mismatched.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("--tls-key"), std::string::npos) << st.error().message;
  // The key's content never appears in the message.
  std::ifstream in(other);
  std::string pem((std::istreambuf_iterator<char>(in)), {});
  const auto body_start = pem.find('\n') + 1;
  EXPECT_EQ(st.error().message.find(pem.substr(body_start, 40)), std::string::npos);

  options.tls_key_file.clear();
  HttpServer half(options, router_);
  EXPECT_FALSE(half.Start().ok());
}

}  // namespace
}  // namespace osb::api
