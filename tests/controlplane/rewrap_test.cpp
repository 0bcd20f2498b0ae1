// osb rewrap after a key rotation (controlplane/rewrap.h), on the backend
// selected by OSB_TEST_DB (registered for both SQLite and PostgreSQL):
// secrets AND the OAuth state of oauth2-refresh secrets (the access token
// and the rotated refresh token in oauth_tokens, written by the real
// OAuthTokenService) move to the new primary key, so the old key can be
// removed; what rewrap reports never holds a value or a key.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "controlplane/oauth_tokens.h"
#include "controlplane/projects.h"
#include "controlplane/resolution.h"
#include "controlplane/rewrap.h"
#include "controlplane/secrets.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "store_fixture.h"

namespace osb::controlplane {
namespace {

using namespace std::chrono_literals;

constexpr const char* kRefresh = "rt-material-0123456789abcdef";
constexpr const char* kClientSecret = "cs-material-0123456789abcdef";
constexpr const char* kPlain = "plain-value-0123456789abcdef";
constexpr const char* kAccess = "at-issued-0123456789abcdef";
constexpr const char* kRotated = "rt-rotated-0123456789abcdef";

// The control plane's services over one keyring (as a server runs them).
struct ControlPlane {
  ControlPlane(store::Store& store, std::shared_ptr<const crypto::Keyring> k, OAuthTokenService::Clock clock)
      : keyring(std::move(k)), secrets(store, keyring), resolver(store, secrets),
        oauth(store, resolver, *keyring, std::move(clock)) {}
  std::shared_ptr<const crypto::Keyring> keyring;
  SecretService secrets;
  Resolver resolver;
  OAuthTokenService oauth;
};

class RewrapTest : public osb::testing::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    if (HasFatalFailure()) return;
    key_a_ = crypto::GenerateKeyHex();
    key_b_ = crypto::GenerateKeyHex();
    only_a_ = Ring(key_a_, {});
    rotated_ = Ring(key_b_, {{"V1", key_a_}});
    only_b_ = Ring(key_b_, {});
    id_a_ = only_a_->primary_key_id();
    id_b_ = only_b_->primary_key_id();

    // Under key A: a project with an oauth2-refresh secret and a value
    // secret, a sandbox running on w1, and the OAuth state of one refresh
    // (an access token and a rotated refresh token) stored by the writer.
    ControlPlane cp(*store_, only_a_, Clock());
    auto org = store_->EnsureOrg("default");
    ASSERT_TRUE(org.ok());
    ProjectService projects(*store_);
    ProjectFields f;
    f.name = "web";
    auto project = projects.Create(org->id, f);
    ASSERT_TRUE(project.ok()) << project.error().message;
    project_ = project->project.id;
    SecretService::Options o;
    o.kind = "oauth2-refresh";
    const std::string material = std::string(R"({"tokenEndpoint":"https://auth.example.com/token","clientId":"cid",)") +
                                 R"("clientSecret":")" + kClientSecret + R"(","refreshToken":")" + kRefresh + R"("})";
    auto set = cp.secrets.Set(org->id, SecretScope::kProject, project_, "OAUTH", material, {"api.example.com"}, o);
    ASSERT_TRUE(set.ok()) << set.error().message;
    ASSERT_TRUE(cp.secrets.Set(org->id, SecretScope::kProject, project_, "PLAIN", kPlain, {}).ok());
    ASSERT_TRUE(store_->UpsertWorker({"w1", "localhost:1", 1, store::NowRfc3339()}).ok());
    store::SandboxRow row;
    row.id = sandbox_ = "sb-rewrap";
    row.org_id = org->id;
    row.project_id = project_;
    row.worker_id = "w1";
    row.status = "running";
    row.config = "{}";
    row.created_at = store::NowRfc3339();
    ASSERT_TRUE(store_->InsertSandbox(row).ok());

    auto lease = cp.oauth.Acquire("w1", sandbox_, "OAUTH");
    ASSERT_TRUE(lease.ok()) << lease.error().message;
    ASSERT_EQ(lease->kind, OAuthGrant::Kind::kLease);
    auto stored = cp.oauth.Complete("w1", sandbox_, "OAUTH", lease->generation, kAccess, 3600, kRotated);
    ASSERT_TRUE(stored.ok()) << stored.error().message;
    ASSERT_TRUE(*stored);
    EXPECT_EQ(TokenKeyIds(), (std::vector<std::string>{id_a_, id_a_}));
  }

  static std::shared_ptr<const crypto::Keyring> Ring(const std::string& primary,
                                                     const std::vector<std::pair<std::string, std::string>>& old) {
    auto k = crypto::Keyring::FromHex(primary, old);
    EXPECT_TRUE(k.ok());
    return std::make_shared<const crypto::Keyring>(std::move(*k));
  }
  OAuthTokenService::Clock Clock() {
    return [this] { return start_ + offset_; };
  }
  // The key ids of every stored OAuth token (access, refresh per row).
  std::vector<std::string> TokenKeyIds() {
    std::vector<std::string> out;
    auto rows = store_->ListAllOAuthTokens();
    EXPECT_TRUE(rows.ok());
    for (const auto& r : *rows) {
      for (const std::string* ct : {&r.access_ciphertext, &r.refresh_ciphertext}) {
        if (ct->empty()) continue;
        auto id = crypto::Keyring::KeyIdOf(*ct);
        out.push_back(id.ok() ? *id : "?");
      }
    }
    return out;
  }
  void ExpectNoValueIn(const std::string& text) {
    for (const std::string& v : {std::string(kRefresh), std::string(kClientSecret), std::string(kPlain),
                                 std::string(kAccess), std::string(kRotated), key_a_, key_b_}) {
      EXPECT_EQ(text.find(v), std::string::npos) << "a value or key leaked into: " << text;
    }
  }

  std::string key_a_, key_b_, id_a_, id_b_, project_, sandbox_;
  std::shared_ptr<const crypto::Keyring> only_a_, rotated_, only_b_;
  const std::chrono::system_clock::time_point start_ = std::chrono::system_clock::now();
  std::chrono::seconds offset_{0};
};

TEST_F(RewrapTest, OAuthStateMovesToThePrimaryAndDecryptsWithItAlone) {
  auto report = RewrapSecrets(*store_, *rotated_);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_TRUE(report->failures.empty());
  EXPECT_EQ(report->primary_key_id, id_b_);
  EXPECT_EQ(report->moved_by_key_id, (std::map<std::string, int>{{id_a_, 2}}));  // OAUTH, PLAIN
  EXPECT_EQ(report->oauth_moved_by_key_id, (std::map<std::string, int>{{id_a_, 2}}));  // access, refresh
  EXPECT_EQ(report->oauth_already_primary, 0);
  EXPECT_EQ(report->oauth_changed_concurrently, 0);
  const std::string summary = RewrapSummary(*report);
  EXPECT_NE(summary.find("key " + id_a_ + ": 2 oauth token(s) re-encrypted under primary key " + id_b_),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("rewrap: 2 moved, 2 oauth token(s) moved, 0 failed"), std::string::npos) << summary;
  ExpectNoValueIn(summary);

  // No token is left under A.
  EXPECT_EQ(TokenKeyIds(), (std::vector<std::string>{id_b_, id_b_}));

  // Key A retired: the control plane with B alone still serves the stored
  // access token, and, near its expiry, leases with the ROTATED refresh
  // token (not the material's own, which the provider revoked).
  ControlPlane b(*store_, only_b_, Clock());
  auto token = b.oauth.Acquire("w1", sandbox_, "OAUTH");
  ASSERT_TRUE(token.ok()) << token.error().message;
  ASSERT_EQ(token->kind, OAuthGrant::Kind::kToken);
  EXPECT_EQ(token->access_token, kAccess);
  offset_ = 3590s;
  auto lease = b.oauth.Acquire("w1", sandbox_, "OAUTH");
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  ASSERT_EQ(lease->kind, OAuthGrant::Kind::kLease);
  EXPECT_EQ(lease->refresh_token, kRotated);

  // Idempotent: nothing left to move.
  auto again = RewrapSecrets(*store_, *rotated_);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->oauth_moved_by_key_id.empty());
  EXPECT_EQ(again->oauth_already_primary, 2);
  EXPECT_NE(RewrapSummary(*again).find("rewrap: 0 moved, 0 oauth token(s) moved, 0 failed"), std::string::npos);
}

TEST_F(RewrapTest, UndecryptableOAuthStateIsReportedAndLeftAlone) {
  // The operator forgot the old key: nothing can be re-encrypted.
  auto before = store_->ListAllOAuthTokens();
  ASSERT_TRUE(before.ok());
  auto report = RewrapSecrets(*store_, *only_b_);
  ASSERT_TRUE(report.ok()) << report.error().message;
  int oauth_failures = 0;
  for (const auto& f : report->failures) {
    if (f.starts_with("oauth " + project_ + "/OAUTH ")) ++oauth_failures;
    ExpectNoValueIn(f);
  }
  EXPECT_EQ(oauth_failures, 2) << "access and refresh";
  EXPECT_TRUE(report->oauth_moved_by_key_id.empty());
  ExpectNoValueIn(RewrapSummary(*report));
  auto after = store_->ListAllOAuthTokens();
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ(after->front().access_ciphertext, before->front().access_ciphertext);
  EXPECT_EQ(after->front().refresh_ciphertext, before->front().refresh_ciphertext);
}

TEST_F(RewrapTest, ARowWithOnlySomeTokensUnderTheOldKeyMovesOnlyThose) {
  // A refresh under the rotated keyring (primary B) without a new refresh
  // token: the access token is under B, the rotated refresh token under A.
  ControlPlane cp(*store_, rotated_, Clock());
  offset_ = 3590s;
  auto lease = cp.oauth.Acquire("w1", sandbox_, "OAUTH");
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  ASSERT_EQ(lease->kind, OAuthGrant::Kind::kLease);
  ASSERT_TRUE(*cp.oauth.Complete("w1", sandbox_, "OAUTH", lease->generation, "at-second-0123456789", 3600, ""));
  EXPECT_EQ(TokenKeyIds(), (std::vector<std::string>{id_b_, id_a_}));
  auto report = RewrapSecrets(*store_, *rotated_);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_TRUE(report->failures.empty());
  EXPECT_EQ(report->oauth_moved_by_key_id, (std::map<std::string, int>{{id_a_, 1}}));
  EXPECT_EQ(report->oauth_already_primary, 1);
  EXPECT_EQ(TokenKeyIds(), (std::vector<std::string>{id_b_, id_b_}));
}

TEST_F(RewrapTest, ARefreshBetweenReadAndWriteIsKeptAndCountedAsConcurrent) {
  auto read = store_->ListAllOAuthTokens();  // what rewrap read
  ASSERT_TRUE(read.ok());
  // Meanwhile a worker refreshes through a replica already on primary B.
  ControlPlane cp(*store_, rotated_, Clock());
  offset_ = 3590s;
  auto lease = cp.oauth.Acquire("w1", sandbox_, "OAUTH");
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  ASSERT_EQ(lease->kind, OAuthGrant::Kind::kLease);
  ASSERT_TRUE(*cp.oauth.Complete("w1", sandbox_, "OAUTH", lease->generation, "at-meanwhile-0123456789", 3600,
                                 "rt-meanwhile-0123456789"));
  RewrapReport report;
  report.primary_key_id = id_b_;
  RewrapOAuthTokens(*store_, *rotated_, *read, report);
  EXPECT_TRUE(report.failures.empty());
  EXPECT_EQ(report.oauth_changed_concurrently, 1);
  EXPECT_TRUE(report.oauth_moved_by_key_id.empty());
  EXPECT_NE(RewrapSummary(report).find("1 oauth token row(s) were refreshed concurrently"), std::string::npos);
  // The refresh's tokens stay (not overwritten with the re-encrypted old
  // ones). The secret itself is still under A here (only the OAuth half ran).
  auto token = cp.oauth.Acquire("w1", sandbox_, "OAUTH");
  ASSERT_TRUE(token.ok()) << token.error().message;
  ASSERT_EQ(token->kind, OAuthGrant::Kind::kToken);
  EXPECT_EQ(token->access_token, "at-meanwhile-0123456789");
  EXPECT_EQ(TokenKeyIds(), (std::vector<std::string>{id_b_, id_b_}));
}

}  // namespace
}  // namespace osb::controlplane
