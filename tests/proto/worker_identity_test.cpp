// Under mutual TLS a worker is its certificate: the control plane refuses a
// worker that registers, heartbeats, fetches secrets or fetches a template's
// image under another id.
// Real gRPC over real mutual TLS, a real SQLite store.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

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
#include "worker/oauth_coordinator_client.h"
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
    oauth_ = std::make_unique<OAuthTokenService>(*store_, *resolver_, *keyring_);
    callbacks_->SetOAuth(oauth_.get());
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
  // A running sandbox on `worker` whose project holds an oauth2-refresh
  // secret OAUTH (refresh token kRefresh) and a value secret PLAIN.
  static constexpr const char* kRefresh = "rt-initial-0123456789abcdef";
  static constexpr const char* kClientSecret = "cs-0123456789abcdef";
  std::string RunningSandboxWithOAuth(const std::string& worker, std::string* project_id = nullptr) {
    const std::string id = RunningSandboxWithSecret(worker, "plain-value-0123456789");
    auto org = store_->EnsureOrg("default");
    std::string project;
    const auto running = store_->ListRunningSandboxes(worker, std::nullopt);
    for (const auto& r : *running) {
      if (r.id == id) project = *r.project_id;
    }
    SecretService::Options o;
    o.kind = "oauth2-refresh";
    const std::string material = std::string(R"({"tokenEndpoint":"https://auth.example.com/token","clientId":"cid",)") +
                                 R"("clientSecret":")" + kClientSecret + R"(","refreshToken":")" + kRefresh + R"("})";
    auto set = secrets_->Set(org->id, SecretScope::kProject, project, "OAUTH", material, {"api.example.com"}, o);
    EXPECT_TRUE(set.ok()) << (set.ok() ? "" : set.error().message);
    if (project_id) *project_id = project;
    return id;
  }
  grpc::Status Acquire(const std::string& as_cert, const std::string& claimed_id, const std::string& sandbox_id,
                       const std::string& name, v1::AcquireOAuthTokenResponse* out) {
    auto stub = v1::ControlPlane::NewStub(Channel(as_cert));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::AcquireOAuthTokenRequest req;
    req.set_worker_id(claimed_id);
    req.set_sandbox_id(sandbox_id);
    req.set_name(name);
    return stub->AcquireOAuthToken(&ctx, req, out);
  }
  grpc::Status Complete(const std::string& as_cert, const std::string& sandbox_id, int64_t generation,
                        const std::string& access, const std::string& rotated, bool* stored) {
    auto stub = v1::ControlPlane::NewStub(Channel(as_cert));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::CompleteOAuthRefreshRequest req;
    req.set_worker_id(as_cert);
    req.set_sandbox_id(sandbox_id);
    req.set_name("OAUTH");
    req.set_generation(generation);
    req.set_access_token(access);
    req.set_expires_in_sec(3600);
    req.set_refresh_token(rotated);
    v1::CompleteOAuthRefreshResponse resp;
    auto st = stub->CompleteOAuthRefresh(&ctx, req, &resp);
    if (stored) *stored = resp.stored();
    return st;
  }

  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::shared_ptr<const crypto::Keyring> keyring_;
  std::unique_ptr<SecretService> secrets_;
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<GrpcWorkerConnector> connector_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<SandboxService> sandboxes_;
  std::unique_ptr<OAuthTokenService> oauth_;
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

// ---- oauth2-refresh coordination (issue 16) ----

TEST_F(WorkerIdentity, OAuthLeaseThenStoredTokenAndRotatedRefreshTokenAcrossWorkers) {
  std::string project;
  const std::string sb1 = RunningSandboxWithOAuth("worker-1", &project);
  v1::AcquireOAuthTokenResponse first;
  ASSERT_TRUE(Acquire("worker-1", "worker-1", sb1, "OAUTH", &first).ok());
  ASSERT_TRUE(first.has_lease());
  EXPECT_EQ(first.lease().refresh_token(), kRefresh);  // the secret's own at first
  // While the lease runs, the same worker (another request) is told to wait.
  v1::AcquireOAuthTokenResponse again;
  ASSERT_TRUE(Acquire("worker-1", "worker-1", sb1, "OAUTH", &again).ok());
  EXPECT_GT(again.retry_after_ms(), 0);
  bool stored = false;
  ASSERT_TRUE(Complete("worker-1", sb1, first.lease().generation(), "at-1-abcdef", "rt-rotated-1", &stored).ok());
  EXPECT_TRUE(stored);
  v1::AcquireOAuthTokenResponse shared;
  ASSERT_TRUE(Acquire("worker-1", "worker-1", sb1, "OAUTH", &shared).ok());
  ASSERT_TRUE(shared.has_token());
  EXPECT_EQ(shared.token().access_token(), "at-1-abcdef");
  // A late second completion of the same lease stores nothing.
  ASSERT_TRUE(Complete("worker-1", sb1, first.lease().generation(), "at-x", "rt-x", &stored).ok());
  EXPECT_FALSE(stored);
  // At rest: only ciphertexts.
  auto row = store_->GetOAuthToken(project, "OAUTH");
  ASSERT_TRUE(row.ok());
  EXPECT_EQ(row->access_ciphertext.find("at-1-abcdef"), std::string::npos);
  EXPECT_EQ(row->refresh_ciphertext.find("rt-rotated-1"), std::string::npos);
  EXPECT_FALSE(row->refresh_ciphertext.empty());
}

TEST_F(WorkerIdentity, OAuthTokenOnlyForTheWorkerRunningTheSandboxAndOnlyOAuthSecrets) {
  const std::string sb1 = RunningSandboxWithOAuth("worker-1");
  EXPECT_TRUE(store_->UpsertWorker({"worker-2", "localhost:2", 1, store::NowRfc3339()}).ok());
  v1::AcquireOAuthTokenResponse got;
  // The attack: worker-2 (a valid worker certificate) asks for worker-1's sandbox.
  auto st = Acquire("worker-2", "worker-2", sb1, "OAUTH", &got);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(got.SerializeAsString().find(kRefresh), std::string::npos);
  // ... or claims to be worker-1.
  EXPECT_EQ(Acquire("worker-2", "worker-1", sb1, "OAUTH", &got).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Acquire("other-cp", "worker-1", sb1, "OAUTH", &got).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Acquire("", "", sb1, "OAUTH", &got).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A value secret is no oauth2-refresh secret; an unknown name neither.
  EXPECT_EQ(Acquire("worker-1", "worker-1", sb1, "TOKEN", &got).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Acquire("worker-1", "worker-1", sb1, "NOPE", &got).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(got.SerializeAsString().find(kRefresh), std::string::npos);
  // A stopped sandbox: refused too.
  ASSERT_TRUE(store_->StopSandbox(sb1, store::NowRfc3339()).ok());
  EXPECT_EQ(Acquire("worker-1", "worker-1", sb1, "OAUTH", &got).error_code(), grpc::StatusCode::NOT_FOUND);
  // Completing for a sandbox not on this worker is refused before the store.
  bool stored = true;
  EXPECT_EQ(Complete("worker-2", sb1, 1, "at", "rt", &stored).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(WorkerIdentity, TwoConcurrentAcquirersOnTwoWorkersGetExactlyOneLease) {
  std::string project;
  const std::string sb1 = RunningSandboxWithOAuth("worker-1", &project);
  // A second sandbox of the same project on worker-2.
  store::SandboxRow row = *store_->GetSandbox(store_->EnsureOrg("default")->id, sb1);
  row.id = "sb-" + crypto::RandomHex(6);
  row.worker_id = "worker-2";
  EXPECT_TRUE(store_->UpsertWorker({"worker-2", "localhost:2", 1, store::NowRfc3339()}).ok());
  ASSERT_TRUE(store_->InsertSandbox(row).ok());
  v1::AcquireOAuthTokenResponse a, b;
  grpc::Status sa, sb;
  std::thread ta([&] { sa = Acquire("worker-1", "worker-1", sb1, "OAUTH", &a); });
  std::thread tb([&] { sb = Acquire("worker-2", "worker-2", row.id, "OAUTH", &b); });
  ta.join();
  tb.join();
  ASSERT_TRUE(sa.ok()) << sa.error_message();
  ASSERT_TRUE(sb.ok()) << sb.error_message();
  EXPECT_EQ(int(a.has_lease()) + int(b.has_lease()), 1);
  EXPECT_EQ(int(a.retry_after_ms() > 0) + int(b.retry_after_ms() > 0), 1);
  // The holder's token then serves the other worker's sandbox.
  auto& holder = a.has_lease() ? a : b;
  const std::string holder_worker = a.has_lease() ? "worker-1" : "worker-2";
  const std::string holder_sb = a.has_lease() ? sb1 : row.id;
  bool stored = false;
  ASSERT_TRUE(Complete(holder_worker, holder_sb, holder.lease().generation(), "at-shared", "", &stored).ok());
  ASSERT_TRUE(stored);
  v1::AcquireOAuthTokenResponse other;
  ASSERT_TRUE(Acquire(holder_worker == "worker-1" ? "worker-2" : "worker-1",
                      holder_worker == "worker-1" ? "worker-2" : "worker-1", holder_worker == "worker-1" ? row.id : sb1,
                      "OAUTH", &other)
                  .ok());
  ASSERT_TRUE(other.has_token());
  EXPECT_EQ(other.token().access_token(), "at-shared");
}

TEST_F(WorkerIdentity, SettingTheOAuthSecretAgainResetsTheSharedState) {
  std::string project;
  const std::string sb1 = RunningSandboxWithOAuth("worker-1", &project);
  v1::AcquireOAuthTokenResponse first;
  ASSERT_TRUE(Acquire("worker-1", "worker-1", sb1, "OAUTH", &first).ok());
  ASSERT_TRUE(first.has_lease());
  bool stored = false;
  ASSERT_TRUE(Complete("worker-1", sb1, first.lease().generation(), "at-old", "rt-old-rotated", &stored).ok());
  // The user sets a new refresh token: the old access and rotated tokens are not used.
  auto org = store_->EnsureOrg("default");
  SecretService::Options o;
  o.kind = "oauth2-refresh";
  ASSERT_TRUE(secrets_->Set(org->id, SecretScope::kProject, project, "OAUTH",
                            R"({"tokenEndpoint":"https://auth.example.com/token","clientId":"cid",)"
                            R"("refreshToken":"rt-new-from-user-0123456789"})",
                            {"api.example.com"}, o)
                  .ok());
  v1::AcquireOAuthTokenResponse after;
  ASSERT_TRUE(Acquire("worker-1", "worker-1", sb1, "OAUTH", &after).ok());
  ASSERT_TRUE(after.has_lease());
  EXPECT_EQ(after.lease().refresh_token(), "rt-new-from-user-0123456789");
}

// The worker's side of the rpcs (worker/oauth_coordinator_client.h) over
// real mutual TLS: two workers, one lease, the rotated refresh token handed
// to a restarted worker, and no token for a worker not running the sandbox.
TEST_F(WorkerIdentity, WorkerCoordinatorClientsShareOneLeaseAndTheRotatedRefreshToken) {
  using secretsproxy::OAuthGrant;
  std::string project;
  const std::string sb1 = RunningSandboxWithOAuth("worker-1", &project);
  store::SandboxRow row = *store_->GetSandbox(store_->EnsureOrg("default")->id, sb1);
  row.id = "sb-" + crypto::RandomHex(6);
  row.worker_id = "worker-2";
  ASSERT_TRUE(store_->UpsertWorker({"worker-2", "localhost:2", 1, store::NowRfc3339()}).ok());
  ASSERT_TRUE(store_->InsertSandbox(row).ok());
  const std::string sb2 = row.id;
  auto client = [&](const std::string& worker) {
    return std::make_unique<worker::GrpcOAuthCoordinator>(
        proto::MakeChannel("localhost:" + std::to_string(port_), Tls(worker), proto::GrpcRole::kControlPlane), worker);
  };
  auto acquire = [](worker::GrpcOAuthCoordinator& c, const std::string& sb) {
    std::promise<Result<OAuthGrant>> p;
    c.Acquire(sb, "OAUTH", [&](Result<OAuthGrant> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  auto complete = [](worker::GrpcOAuthCoordinator& c, const std::string& sb, int64_t gen, int64_t expires_in,
                     const std::string& access, const std::string& rotated) {
    std::promise<Result<bool>> p;
    c.Complete(sb, "OAUTH", gen, access, expires_in, rotated, [&](Result<bool> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  auto w1 = client("worker-1");
  auto w2 = client("worker-2");
  auto a = acquire(*w1, sb1);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_EQ(a->kind, OAuthGrant::Kind::kLease);
  EXPECT_EQ(a->refresh_token, kRefresh);
  auto b = acquire(*w2, sb2);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->kind, OAuthGrant::Kind::kWait);
  EXPECT_GT(b->retry_after.count(), 0);
  // Expiring within the refresh margin (10 s < 30 s): the next ask is a new lease.
  auto stored = complete(*w1, sb1, a->generation, 10, "at-1-0123456789", "rt-rotated-1");
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  EXPECT_TRUE(*stored);
  // worker-1 restarts: a new client, nothing in memory; it gets the ROTATED token.
  w1 = client("worker-1");
  auto c = acquire(*w1, sb1);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->kind, OAuthGrant::Kind::kLease);
  EXPECT_EQ(c->refresh_token, "rt-rotated-1");
  ASSERT_TRUE(*complete(*w1, sb1, c->generation, 600, "at-2-0123456789", ""));
  auto d = acquire(*w2, sb2);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->kind, OAuthGrant::Kind::kToken);
  EXPECT_EQ(d->access_token, "at-2-0123456789");
  EXPECT_GT(d->expires_at, std::chrono::system_clock::now() + std::chrono::seconds(500));
  // worker-2 asking for worker-1's sandbox: refused, nothing handed out.
  auto stolen = acquire(*w2, sb1);
  ASSERT_FALSE(stolen.ok());
  EXPECT_EQ(stolen.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace osb::controlplane
