// Mutual TLS 1.3 between control plane and worker: real gRPC, real OpenSSL,
// certificates made by the documented script.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <map>

#include "proto/tls_credentials.h"
#include "proto/worker.grpc.pb.h"

namespace osb::proto {
namespace {

namespace fs = std::filesystem;

std::string RunShell(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  pclose(p);
  return out;
}

class HealthOnly final : public v1::Worker::Service {
  grpc::Status Health(grpc::ServerContext*, const v1::HealthRequest*,
                      v1::HealthResponse* out) override {
    out->set_worker_id("w-test");
    return grpc::Status::OK;
  }
};

class MutualTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("osb-mtls-" + std::to_string(getpid())));
    const std::string script = std::string(OSB_SOURCE_DIR) + "/scripts/gen-grpc-certs.sh";
    RunShell("bash " + script + " " + dir_->string() + "/good server");
    RunShell("bash " + script + " " + dir_->string() + "/good client");
    RunShell("bash " + script + " " + dir_->string() + "/rogue client");
    RunShell("bash " + script + " " + dir_->string() + "/rogue server");
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }

  static GrpcTlsMaterial Material(const std::string& ca, const std::string& who) {
    auto m = LoadGrpcTls({(*dir_ / ca / "ca.crt").string(), (*dir_ / who).string() + ".crt",
                          (*dir_ / who).string() + ".key"});
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
    return *m;
  }

  void StartServer(const std::optional<GrpcTlsMaterial>& tls) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", MakeServerCredentials(tls), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = v1::Worker::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::HealthRequest req;
    v1::HealthResponse resp;
    return stub->Health(&ctx, req, &resp);
  }
  std::string Target() const { return "localhost:" + std::to_string(port_); }

  static fs::path* dir_;
  HealthOnly service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};
fs::path* MutualTls::dir_ = nullptr;

TEST_F(MutualTls, ClientWithCertificateFromTheCaIsServed) {
  StartServer(Material("good", "good/server"));
  EXPECT_TRUE(Call(MakeChannel(Target(), Material("good", "good/client"))).ok());
}

TEST_F(MutualTls, ClientWithoutCertificateIsRefused) {
  StartServer(Material("good", "good/server"));
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = Material("good", "good/client").ca_pem;
  auto channel = grpc::CreateChannel(Target(), grpc::SslCredentials(opts));
  EXPECT_EQ(Call(channel).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(MutualTls, ClientSignedByAnotherCaIsRefused) {
  StartServer(Material("good", "good/server"));
  // The rogue client trusts the good CA (so it would accept the server) but
  // its own certificate comes from the rogue CA.
  GrpcTlsMaterial rogue = Material("rogue", "rogue/client");
  rogue.ca_pem = Material("good", "good/client").ca_pem;
  EXPECT_EQ(Call(MakeChannel(Target(), rogue)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(MutualTls, PlaintextClientIsRefused) {
  StartServer(Material("good", "good/server"));
  EXPECT_EQ(Call(MakeChannel(Target(), std::nullopt)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(MutualTls, ClientRefusesServerFromAnotherCa) {
  GrpcTlsMaterial rogue_server = Material("rogue", "rogue/server");
  rogue_server.ca_pem = Material("good", "good/client").ca_pem;  // accepts our client
  StartServer(rogue_server);
  EXPECT_EQ(Call(MakeChannel(Target(), Material("good", "good/client"))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(MutualTls, Tls12IsRefusedAndTls13Negotiated) {
  StartServer(Material("good", "good/server"));
  const std::string base = "openssl s_client -connect 127.0.0.1:" + std::to_string(port_) +
                           " -CAfile " + (*dir_ / "good/ca.crt").string() + " -cert " +
                           (*dir_ / "good/client.crt").string() + " -key " +
                           (*dir_ / "good/client.key").string() + " -alpn h2 </dev/null";
  const std::string v13 = RunShell(base + " -tls1_3");
  EXPECT_NE(v13.find("New, TLSv1.3, Cipher is TLS_"), std::string::npos) << v13;
  EXPECT_NE(v13.find("Verify return code: 0 (ok)"), std::string::npos) << v13;
  const std::string v12 = RunShell(base + " -tls1_2");
  // s_client names the protocol it tried even on failure; no cipher means
  // no session was established.
  EXPECT_NE(v12.find("Cipher is (NONE)"), std::string::npos) << v12;
  EXPECT_NE(v12.find("no peer certificate available"), std::string::npos) << v12;
}

TEST_F(MutualTls, PlaintextServerAndClientTalkWhenNoTlsIsConfigured) {
  StartServer(std::nullopt);
  EXPECT_TRUE(Call(MakeChannel(Target(), std::nullopt)).ok());
}

TEST(GrpcTlsEnvironment, NoneSetMeansPlaintextSomeSetIsAnError) {
  std::map<std::string, std::string> env;
  auto get = [&](const char* n) -> const char* {
    auto it = env.find(n);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto none = GrpcTlsFromEnvironment(get);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  env = {{"OPENSANDBOX_GRPC_TLS_CA", "/x/ca.crt"}};
  auto some = GrpcTlsFromEnvironment(get);
  ASSERT_FALSE(some.ok());
  EXPECT_NE(some.error().message.find("OPENSANDBOX_GRPC_TLS_CERT"), std::string::npos);
  EXPECT_NE(some.error().message.find("OPENSANDBOX_GRPC_TLS_KEY"), std::string::npos);

  env = {{"OPENSANDBOX_GRPC_TLS_CA", "/nonexistent/ca.crt"},
         {"OPENSANDBOX_GRPC_TLS_CERT", "/nonexistent/c.crt"},
         {"OPENSANDBOX_GRPC_TLS_KEY", "/nonexistent/c.key"}};
  auto missing = GrpcTlsFromEnvironment(get);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/ca.crt"), std::string::npos);
}

}  // namespace
}  // namespace osb::proto
