// Under mutual TLS a worker is its certificate: the control plane refuses a
// worker that registers, heartbeats or fetches secrets under another id.
// Real gRPC over real mutual TLS, a real SQLite store.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "controlplane/resolution.h"
#include "controlplane/sandboxes.h"
#include "controlplane/secrets.h"
#include "controlplane/worker_callbacks.h"
#include "controlplane/worker_pool.h"
#include "crypto/keyring.h"
#include "crypto/random.h"
#include "proto/tls_credentials.h"
#include "store/store.h"

namespace osb::controlplane {
namespace {

namespace fs = std::filesystem;

class WorkerIdentity : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("osb-wid-" + crypto::RandomHex(6));
    const std::string script = std::string(OSB_SOURCE_DIR) + "/scripts/gen-grpc-certs.sh";
    for (const char* who : {"controlplane", "worker-1", "worker-2"}) {
      ASSERT_EQ(std::system(("bash " + script + " " + dir_.string() + " " + who + " >/dev/null").c_str()), 0);
    }
    auto store = store::OpenStore("sqlite://" + (dir_ / "osb.db").string());
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    keyring_ = std::make_shared<const crypto::Keyring>(*crypto::Keyring::FromHex(std::string(64, 'a')));
    secrets_ = std::make_unique<SecretService>(*store_, keyring_);
    resolver_ = std::make_unique<Resolver>(*store_, *secrets_);
    pool_ = std::make_unique<WorkerPool>(*store_, Tls("controlplane"));
    sandboxes_ = std::make_unique<SandboxService>(*store_, *resolver_, *pool_);
    callbacks_ = std::make_unique<WorkerCallbacks>(*pool_, *sandboxes_);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", proto::MakeServerCredentials(Tls("controlplane")), &port_);
    builder.RegisterService(callbacks_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    fs::remove_all(dir_);
  }
  proto::GrpcTlsMaterial Tls(const std::string& who) {
    auto m = proto::LoadGrpcTls({(dir_ / "ca.crt").string(), (dir_ / (who + ".crt")).string(),
                                 (dir_ / (who + ".key")).string()});
    EXPECT_TRUE(m.ok());
    return *m;
  }
  grpc::Status Register(const std::string& as_cert, const std::string& claimed_id) {
    auto stub = v1::ControlPlane::NewStub(proto::MakeChannel("localhost:" + std::to_string(port_), Tls(as_cert)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::RegisterWorkerRequest req;
    req.set_worker_id(claimed_id);
    req.set_address("localhost:1");
    req.set_capacity(1);
    v1::RegisterWorkerResponse resp;
    return stub->RegisterWorker(&ctx, req, &resp);
  }
  grpc::Status Fetch(const std::string& as_cert, const std::string& claimed_id) {
    auto stub = v1::ControlPlane::NewStub(proto::MakeChannel("localhost:" + std::to_string(port_), Tls(as_cert)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::FetchSandboxSecretsRequest req;
    req.set_worker_id(claimed_id);
    v1::FetchSandboxSecretsResponse resp;
    return stub->FetchSandboxSecrets(&ctx, req, &resp);
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::shared_ptr<const crypto::Keyring> keyring_;
  std::unique_ptr<SecretService> secrets_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<SandboxService> sandboxes_;
  std::unique_ptr<WorkerCallbacks> callbacks_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(WorkerIdentity, WorkerIdMustBeTheCertificateCommonName) {
  EXPECT_TRUE(Register("worker-1", "worker-1").ok());
  EXPECT_EQ(Register("worker-2", "worker-1").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Fetch("worker-1", "worker-1").ok());
  EXPECT_EQ(Fetch("worker-2", "worker-1").error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(WorkerIdentity, CommonNameIsReadFromThePem) {
  EXPECT_EQ(proto::CertificateCommonName(Tls("worker-2").cert_pem), "worker-2");
  EXPECT_FALSE(proto::CertificateCommonName("not a certificate").has_value());
}

}  // namespace
}  // namespace osb::controlplane
