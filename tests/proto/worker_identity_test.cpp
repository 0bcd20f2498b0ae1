// Under mutual TLS a worker is its certificate: the control plane refuses a
// worker that registers, heartbeats, fetches secrets or fetches a template's
// image under another id.
// Real gRPC over real mutual TLS, a real SQLite store.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "controlplane/grpc_worker_client.h"
#include "controlplane/projects.h"
#include "controlplane/resolution.h"
#include "controlplane/sandboxes.h"
#include "controlplane/secrets.h"
#include "controlplane/template_fetch.h"
#include "controlplane/templates.h"
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
    for (const char* who : {"control-plane controlplane", "control-plane other-cp", "worker worker-1",
                            "worker worker-2"}) {
      ASSERT_EQ(std::system(("bash " + script + " " + dir_.string() + " " + who + " >/dev/null").c_str()), 0);
    }
    auto store = store::OpenStore("sqlite://" + (dir_ / "osb.db").string());
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    keyring_ = std::make_shared<const crypto::Keyring>(*crypto::Keyring::FromHex(std::string(64, 'a')));
    secrets_ = std::make_unique<SecretService>(*store_, keyring_);
    resolver_ = std::make_unique<Resolver>(*store_, *secrets_);
    connector_ = std::make_unique<GrpcWorkerConnector>(Tls("controlplane"));
    pool_ = std::make_unique<WorkerPool>(*store_, *connector_);
    sandboxes_ = std::make_unique<SandboxService>(*store_, *resolver_, *pool_);
    callbacks_ = std::make_unique<WorkerCallbacks>(*pool_, *sandboxes_);
    templates_ = std::make_unique<TemplateService>(*store_, TemplateOptions{(dir_ / "templates").string()});
    template_fetch_ = std::make_unique<TemplateFetchService>(*templates_);
    grpc::ServerBuilder builder;
    proto::AddGrpcListener(builder, "127.0.0.1:0", Tls("controlplane"), proto::GrpcRole::kWorker, &port_);
    builder.RegisterService(callbacks_.get());
    builder.RegisterService(template_fetch_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    grpc::ServerBuilder plain;
    proto::AddGrpcListener(plain, "127.0.0.1:0", std::nullopt, proto::GrpcRole::kWorker, &plain_port_);
    plain.RegisterService(callbacks_.get());
    plain_server_ = plain.BuildAndStart();
    ASSERT_NE(plain_server_, nullptr);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    if (plain_server_) plain_server_->Shutdown();
    fs::remove_all(dir_);
  }
  proto::GrpcTlsMaterial Tls(const std::string& who) {
    auto m = proto::LoadGrpcTls({(dir_ / "ca.crt").string(), (dir_ / (who + ".crt")).string(),
                                 (dir_ / (who + ".key")).string()});
    EXPECT_TRUE(m.ok());
    return *m;
  }
  // A client that presents `as_cert` and does not check the server's role
  // (what an attacker holding that certificate would run).
  std::shared_ptr<grpc::Channel> Channel(const std::string& as_cert) {
    if (as_cert.empty()) {
      return grpc::CreateChannel("localhost:" + std::to_string(plain_port_), grpc::InsecureChannelCredentials());
    }
    const auto tls = Tls(as_cert);
    grpc::SslCredentialsOptions opts{tls.ca_pem, tls.key_pem, tls.cert_pem};
    return grpc::CreateChannel("localhost:" + std::to_string(port_), grpc::SslCredentials(opts));
  }
  grpc::Status Register(const std::string& as_cert, const std::string& claimed_id) {
    auto stub = v1::ControlPlane::NewStub(Channel(as_cert));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::RegisterWorkerRequest req;
    req.set_worker_id(claimed_id);
    req.set_address("localhost:1");
    req.set_capacity(1);
    v1::RegisterWorkerResponse resp;
    return stub->RegisterWorker(&ctx, req, &resp);
  }
  grpc::Status Fetch(const std::string& as_cert, const std::string& claimed_id,
                     const std::vector<std::string>& ids = {}, v1::FetchSandboxSecretsResponse* out = nullptr) {
    auto stub = v1::ControlPlane::NewStub(Channel(as_cert));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::FetchSandboxSecretsRequest req;
    req.set_worker_id(claimed_id);
    for (const auto& id : ids) req.add_sandbox_ids(id);
    v1::FetchSandboxSecretsResponse resp;
    auto st = stub->FetchSandboxSecrets(&ctx, req, &resp);
    if (out) *out = resp;
    return st;
  }
  // A running sandbox on `worker` whose project holds one secret.
  std::string RunningSandboxWithSecret(const std::string& worker, const std::string& value) {
    auto org = store_->EnsureOrg("default");
    EXPECT_TRUE(org.ok());
    ProjectService projects(*store_);
    auto project = projects.Create(org->id, [] {
      ProjectFields f;
      f.name = "p" + crypto::RandomHex(3);
      return f;
    }());
    EXPECT_TRUE(project.ok()) << (project.ok() ? "" : project.error().message);
    EXPECT_TRUE(secrets_->Set(org->id, SecretScope::kProject, project->project.id, "TOKEN", value, {}).ok());
    EXPECT_TRUE(store_->UpsertWorker({worker, "localhost:1", 1, store::NowRfc3339()}).ok());
    store::SandboxRow row;
    row.id = "sb-" + crypto::RandomHex(6);
    row.org_id = org->id;
    row.project_id = project->project.id;
    row.worker_id = worker;
    row.status = "running";
    row.config = "{}";
    row.created_at = store::NowRfc3339();
    auto inserted = store_->InsertSandbox(row);
    EXPECT_TRUE(inserted.ok()) << (inserted.ok() ? "" : inserted.error().message);
    return row.id;
  }

  // ControlPlaneTemplates.FetchTemplate as `as_cert` claiming `claimed_id`;
  // the streamed bytes go to *data.
  grpc::Status FetchTemplate(const std::string& as_cert, const std::string& claimed_id, const std::string& digest,
                             std::string* data) {
    auto stub = v1::ControlPlaneTemplates::NewStub(Channel(as_cert));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::FetchTemplateRequest req;
    req.set_worker_id(claimed_id);
    req.set_digest(digest);
    auto reader = stub->FetchTemplate(&ctx, req);
    v1::TemplateChunk chunk;
    while (reader->Read(&chunk)) data->append(chunk.data());
    return reader->Finish();
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::shared_ptr<const crypto::Keyring> keyring_;
  std::unique_ptr<SecretService> secrets_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<GrpcWorkerConnector> connector_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<SandboxService> sandboxes_;
  std::unique_ptr<WorkerCallbacks> callbacks_;
  std::unique_ptr<TemplateService> templates_;
  std::unique_ptr<TemplateFetchService> template_fetch_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> plain_server_;
  int plain_port_ = 0;
};

TEST_F(WorkerIdentity, WorkerIdMustBeTheCertificateCommonName) {
  EXPECT_TRUE(Register("worker-1", "worker-1").ok());
  EXPECT_EQ(Register("worker-2", "worker-1").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Fetch("worker-1", "worker-1").ok());
  EXPECT_EQ(Fetch("worker-2", "worker-1").error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(WorkerIdentity, AnEmptyWorkerIdMatchesNothing) {
  const std::string value = "empty-id-secret-value-0123456789";
  const std::string id = RunningSandboxWithSecret("worker-1", value);
  // The owner gets it (sanity) ...
  v1::FetchSandboxSecretsResponse mine;
  ASSERT_TRUE(Fetch("worker-1", "worker-1", {id}, &mine).ok());
  ASSERT_EQ(mine.sandboxes_size(), 1);
  // ... an empty id gets nothing, with or without TLS.
  v1::FetchSandboxSecretsResponse got;
  EXPECT_EQ(Fetch("", "", {id}, &got).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(got.sandboxes_size(), 0);
  EXPECT_EQ(got.SerializeAsString().find(value), std::string::npos);
  EXPECT_EQ(Register("", "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto direct = sandboxes_->SecretsForWorker("", {id});
  ASSERT_TRUE(direct.ok());
  EXPECT_TRUE(direct->empty());
}

TEST_F(WorkerIdentity, OnlyWorkerCertificatesMayCallTheControlPlane) {
  // A control-plane certificate (of another replica, or stolen) is no
  // worker: it can neither register nor fetch.
  EXPECT_EQ(Register("other-cp", "other-cp").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Fetch("other-cp", "other-cp").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  const std::string id = RunningSandboxWithSecret("worker-1", "cp-cert-secret-value-0123456789");
  v1::FetchSandboxSecretsResponse got;
  EXPECT_EQ(Fetch("other-cp", "worker-1", {id}, &got).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(got.sandboxes_size(), 0);
}

// A worker holding its own valid worker certificate (worker-2) asks for the
// image that a sandbox being created on worker-1 resolved to, claiming to
// be worker-1: refused, not a byte of the image sent.
TEST_F(WorkerIdentity, AnotherWorkersCertificateCannotFetchItsTemplate) {
  const std::string digest = "sha256:" + std::string(64, 'c');
  const std::string image = "org-private-image-bytes-" + crypto::RandomHex(8);
  fs::create_directories(dir_ / "templates" / "sha256");
  {
    std::FILE* f = std::fopen((dir_ / "templates" / "sha256" / (digest.substr(7) + ".tar")).c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(image.data(), 1, image.size(), f), image.size());
    std::fclose(f);
  }
  auto org = store_->EnsureOrg("default");
  ASSERT_TRUE(org.ok());
  ASSERT_TRUE(store_->InsertTemplate({"tpl-1", org->id, "private", digest, static_cast<int64_t>(image.size()),
                                      store::NowRfc3339()}).ok());
  const std::string now = store::NowRfc3339();
  ASSERT_TRUE(store_->UpsertWorker({"worker-1", "localhost:1", 5, now, 0, 0, now}).ok());
  ASSERT_TRUE(store_->UpsertWorker({"worker-2", "localhost:2", 5, now, 0, 0, now}).ok());
  store::SandboxRow row{"sb-" + crypto::RandomHex(6), org->id, std::nullopt, "worker-1", "creating",
                        R"({"templateID":"private"})", now, std::nullopt, 1, 64};
  row.template_name = "private";
  ASSERT_TRUE(store_->InsertSandbox(row).ok());

  // The owner's worker gets it (sanity: the image is fetchable) ...
  std::string mine;
  auto ok = FetchTemplate("worker-1", "worker-1", digest, &mine);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(mine, image);
  // ... worker-2 under its own id has no sandbox of it ...
  std::string own;
  EXPECT_EQ(FetchTemplate("worker-2", "worker-2", digest, &own).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(own.empty());
  // ... and claiming worker-1's id with worker-2's certificate is refused.
  std::string stolen;
  auto refused = FetchTemplate("worker-2", "worker-1", digest, &stolen);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("worker_id"), std::string::npos) << refused.error_message();
  EXPECT_TRUE(stolen.empty());
  EXPECT_EQ(stolen.find(image), std::string::npos);
  // A control-plane certificate is no worker either.
  std::string cp;
  EXPECT_EQ(FetchTemplate("other-cp", "worker-1", digest, &cp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(cp.empty());
}

TEST_F(WorkerIdentity, CommonNameIsReadFromThePem) {
  EXPECT_EQ(proto::CertificateCommonName(Tls("worker-2").cert_pem), "worker-2");
  EXPECT_FALSE(proto::CertificateCommonName("not a certificate").has_value());
}

}  // namespace
}  // namespace osb::controlplane
