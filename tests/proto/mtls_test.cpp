// Mutual TLS 1.3 between control plane and worker: real gRPC, real OpenSSL,
// certificates made by the documented script (and by osb dev's generator).
// The server here plays a worker: it serves only control-plane certificates.
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
  grpc::Status Exec(grpc::ServerContext*, const v1::ExecRequest*, v1::ExecResponse* out) override {
    out->set_stdout("uid=0(root)");
    return grpc::Status::OK;
  }
  grpc::Status ListSandboxes(grpc::ServerContext*, const v1::ListSandboxesRequest*,
                             v1::ListSandboxesResponse* out) override {
    out->add_sandboxes()->set_sandbox_id("sb-1");
    return grpc::Status::OK;
  }
};

class MutualTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("osb-mtls-" + std::to_string(getpid())));
    const std::string script = std::string(OSB_SOURCE_DIR) + "/scripts/gen-grpc-certs.sh";
    RunShell("bash " + script + " " + dir_->string() + "/good worker server");
    RunShell("bash " + script + " " + dir_->string() + "/good control-plane client");
    RunShell("bash " + script + " " + dir_->string() + "/good worker other-worker");
    RunShell("bash " + script + " " + dir_->string() + "/rogue control-plane client");
    RunShell("bash " + script + " " + dir_->string() + "/rogue worker server");
    // A certificate from the good CA without any role (the old script's kind).
    const std::string g = dir_->string() + "/good";
    RunShell("openssl ecparam -name prime256v1 -genkey -noout -out " + g + "/norole.key && openssl req -new -key " +
             g + "/norole.key -subj /CN=norole -out " + g + "/norole.csr && openssl x509 -req -in " + g +
             "/norole.csr -CA " + g + "/ca.crt -CAkey " + g + "/ca.key -CAcreateserial -days 1 -out " + g +
             "/norole.crt");
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
    AddGrpcListener(builder, "127.0.0.1:0", tls, GrpcRole::kControlPlane, &port_);
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
  // Exec and ListSandboxes, what a rogue caller would want from a worker.
  grpc::Status CallExec(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = v1::Worker::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ExecRequest req;
    req.set_sandbox_id("sb-1");
    req.set_cmd("id");
    v1::ExecResponse resp;
    return stub->Exec(&ctx, req, &resp);
  }
  grpc::Status CallList(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = v1::Worker::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListSandboxesRequest req;
    v1::ListSandboxesResponse resp;
    return stub->ListSandboxes(&ctx, req, &resp);
  }
  // A client channel that presents `who`'s certificate and trusts the good
  // CA, without checking the server's role (an attacker's client).
  std::shared_ptr<grpc::Channel> RawClient(const std::string& ca, const std::string& who) {
    grpc::SslCredentialsOptions opts;
    opts.pem_root_certs = Material("good", "good/client").ca_pem;
    const GrpcTlsMaterial m = Material(ca, who);
    opts.pem_cert_chain = m.cert_pem;
    opts.pem_private_key = m.key_pem;
    return grpc::CreateChannel(Target(), grpc::SslCredentials(opts));
  }
  std::string Target() const { return "localhost:" + std::to_string(port_); }

  static fs::path* dir_;
  HealthOnly service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};
fs::path* MutualTls::dir_ = nullptr;

// ctest runs each test in its own process: here the channel is the
// process's first gRPC object (as the worker's template channel is), and
// MakeChannel must initialise gRPC itself (it crashed in the event engine).
TEST_F(MutualTls, AChannelMadeBeforeAnyOtherGrpcObjectWorks) {
  auto first = MakeChannel("127.0.0.1:1", Material("good", "good/client"), GrpcRole::kWorker);
  ASSERT_NE(first, nullptr);
  StartServer(Material("good", "good/server"));
  EXPECT_TRUE(Call(MakeChannel(Target(), Material("good", "good/client"), GrpcRole::kWorker)).ok());
}

TEST_F(MutualTls, ClientWithCertificateFromTheCaIsServed) {
  StartServer(Material("good", "good/server"));
  EXPECT_TRUE(Call(MakeChannel(Target(), Material("good", "good/client"), GrpcRole::kWorker)).ok());
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
  EXPECT_EQ(Call(MakeChannel(Target(), rogue, GrpcRole::kWorker)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(MutualTls, PlaintextClientIsRefused) {
  StartServer(Material("good", "good/server"));
  EXPECT_EQ(Call(MakeChannel(Target(), std::nullopt, GrpcRole::kWorker)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(MutualTls, ClientRefusesServerFromAnotherCa) {
  GrpcTlsMaterial rogue_server = Material("rogue", "rogue/server");
  rogue_server.ca_pem = Material("good", "good/client").ca_pem;  // accepts our client
  StartServer(rogue_server);
  EXPECT_EQ(Call(MakeChannel(Target(), Material("good", "good/client"), GrpcRole::kWorker)).error_code(),
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
  EXPECT_TRUE(Call(MakeChannel(Target(), std::nullopt, GrpcRole::kWorker)).ok());
}

TEST_F(MutualTls, AWorkerCertificateCannotDriveAnotherWorker) {
  // A compromised worker holds a valid certificate from the same CA: the
  // TLS handshake succeeds, every call is refused by role.
  StartServer(Material("good", "good/server"));
  const auto worker = RawClient("good", "good/other-worker");
  EXPECT_EQ(Call(worker).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CallExec(worker).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CallList(worker).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // The control plane's certificate is served.
  EXPECT_TRUE(CallExec(RawClient("good", "good/client")).ok());
  EXPECT_TRUE(CallList(RawClient("good", "good/client")).ok());
}

TEST_F(MutualTls, ACertificateWithoutARoleIsRefused) {
  StartServer(Material("good", "good/server"));
  const auto norole = RawClient("good", "good/norole");
  EXPECT_EQ(CallExec(norole).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_FALSE(CertificateRole(Material("good", "good/norole").cert_pem).has_value());
}

TEST_F(MutualTls, NoCertificateOrAnotherCaCannotExecOrList) {
  StartServer(Material("good", "good/server"));
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = Material("good", "good/client").ca_pem;
  const auto anonymous = grpc::CreateChannel(Target(), grpc::SslCredentials(opts));
  EXPECT_EQ(CallExec(anonymous).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(CallList(anonymous).error_code(), grpc::StatusCode::UNAVAILABLE);
  const auto rogue = RawClient("rogue", "rogue/client");
  EXPECT_EQ(CallExec(rogue).error_code(), grpc::StatusCode::UNAVAILABLE);
  const auto plain = grpc::CreateChannel(Target(), grpc::InsecureChannelCredentials());
  EXPECT_EQ(CallList(plain).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(MutualTls, ClientRefusesAServerWithTheWrongRole) {
  // The server presents a control-plane certificate where a worker is
  // expected (e.g. something else answering on the worker's address).
  GrpcTlsMaterial impostor = Material("good", "good/client");
  StartServer(impostor);
  EXPECT_EQ(Call(MakeChannel(Target(), Material("good", "good/client"), GrpcRole::kWorker)).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(MutualTls, OwnRoleIsCheckedAtStartup) {
  EXPECT_TRUE(CheckOwnRole(Material("good", "good/client"), GrpcRole::kControlPlane).ok());
  EXPECT_TRUE(CheckOwnRole(Material("good", "good/server"), GrpcRole::kWorker).ok());
  const auto wrong = CheckOwnRole(Material("good", "good/server"), GrpcRole::kControlPlane);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("OPENSANDBOX_GRPC_TLS_CERT"), std::string::npos) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find("osb-control-plane"), std::string::npos) << wrong.error().message;
  EXPECT_FALSE(CheckOwnRole(Material("good", "good/norole"), GrpcRole::kWorker).ok());
}

TEST_F(MutualTls, ASecondListenerOnTheSamePortFailsToStart) {
  StartServer(Material("good", "good/server"));
  grpc::ServerBuilder builder;
  int second_port = 0;
  AddGrpcListener(builder, "127.0.0.1:" + std::to_string(port_), Material("good", "good/server"),
                  GrpcRole::kControlPlane, &second_port);
  HealthOnly service;
  builder.RegisterService(&service);
  auto second = builder.BuildAndStart();
  EXPECT_TRUE(second == nullptr || second_port == 0) << "two servers share port " << port_;
  if (second) second->Shutdown();
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
