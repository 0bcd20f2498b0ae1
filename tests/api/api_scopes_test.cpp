// API key scopes and expiry, decided by the router on the matched route
// (never in a handler): a sandbox key creates, uses and deletes sandboxes
// and reads projects, and nothing else — every attack below is what a
// leaked CI key would try. An expired key is refused on every route.
// SQLite and PostgreSQL.
#include <chrono>
#include <optional>
#include <set>
#include <string>

#include "api_harness.h"
#include "controlplane/auth.h"
#include "store/store.h"

namespace osb::testing {
namespace {

using nlohmann::json;

class ScopesTest : public ApiTest {
 protected:
  std::string CreateKey(const json& body) {
    auto r = Call("POST", "/api/api-keys", body);
    EXPECT_EQ(r.status, 201) << r.body;
    return r.Json().value("key", "");
  }

  // A key straight in the store (the API refuses an expiry in the past).
  std::string StoreKey(const std::string& scope, const std::optional<std::string>& expires_at) {
    auto org = cp_->store().EnsureOrg("default");
    EXPECT_TRUE(org.ok());
    const std::string key = controlplane::GenerateApiKey();
    EXPECT_TRUE(cp_->store().AddApiKey(org->id, controlplane::HashApiKey(key), "k", scope, expires_at).ok());
    return key;
  }

  static void ExpectForbidden(const HttpResult& r, const char* scope) {
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_NE(r.Json().value("error", "").find(std::string("scope '") + scope + "'"), std::string::npos) << r.body;
  }
};

TEST_F(ScopesTest, ANewKeyIsSandboxScopedUnlessToldOtherwise) {
  auto r = Call("POST", "/api/api-keys", json{{"name", "ci"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.Json()["scope"], "sandbox");
  auto list = Call("GET", "/api/api-keys");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.Json().size(), 2u);
  EXPECT_EQ(list.Json()[0]["scope"], "admin");  // the bootstrap key
  EXPECT_EQ(list.Json()[1]["scope"], "sandbox");
}

TEST_F(ScopesTest, ASandboxKeyCannotTouchSecretsKeysOrProjectWrites) {
  ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "app"}}).status, 201);
  ASSERT_EQ(Call("POST", "/api/secret-groups", json{{"name", "shared"}}).status, 201);
  const std::string value = "sk-live-scope-test-value-0123456789";
  ASSERT_EQ(Call("PUT", "/api/projects/app/secrets/TOKEN", json{{"value", value}}).status, 200);
  const std::string key = CreateKey({{"name", "ci"}, {"scope", "sandbox"}});
  ASSERT_FALSE(key.empty());

  // What it may do: read projects, list sandboxes (create needs a worker:
  // the 503 proves the route let it through to the handler).
  EXPECT_EQ(Call("GET", "/api/projects", "", key).status, 200);
  EXPECT_EQ(Call("GET", "/api/projects/app", "", key).status, 200);
  EXPECT_EQ(Call("GET", "/api/sandboxes", "", key).status, 200);
  EXPECT_EQ(Call("GET", "/api/sandboxes/sbx_nope", "", key).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/sandboxes/sbx_nope", "", key).status, 404);
  EXPECT_NE(Call("POST", "/api/sandboxes", json{{"project", "app"}}, key).status, 403);

  // Secrets: no writes, no deletes, no reading names or metadata.
  ExpectForbidden(Call("PUT", "/api/projects/app/secrets/TOKEN", json{{"value", "attacker"}}, key), "admin");
  ExpectForbidden(Call("PUT", "/api/projects/app/secrets/NEW", json{{"value", "attacker"}}, key), "admin");
  ExpectForbidden(Call("DELETE", "/api/projects/app/secrets/TOKEN", "", key), "admin");
  ExpectForbidden(Call("GET", "/api/projects/app/secrets", "", key), "admin");
  ExpectForbidden(Call("PUT", "/api/secret-groups/shared/secrets/X", json{{"value", "attacker"}}, key), "admin");
  ExpectForbidden(Call("GET", "/api/secret-groups/shared/secrets", "", key), "admin");
  ExpectForbidden(Call("GET", "/api/secret-groups", "", key), "admin");
  ExpectForbidden(Call("POST", "/api/secret-groups", json{{"name", "mine"}}, key), "admin");
  ExpectForbidden(Call("DELETE", "/api/secret-groups/shared", "", key), "admin");

  // Keys: no creating (least of all an admin key), listing or deleting.
  ExpectForbidden(Call("POST", "/api/api-keys", json{{"name", "escalate"}, {"scope", "admin"}}, key), "admin");
  ExpectForbidden(Call("POST", "/api/api-keys", json{{"name", "another"}}, key), "admin");
  ExpectForbidden(Call("GET", "/api/api-keys", "", key), "admin");
  const std::string admin_id = Call("GET", "/api/api-keys").Json()[0]["id"];
  ExpectForbidden(Call("DELETE", "/api/api-keys/" + admin_id, "", key), "admin");

  // Projects: no create, update or delete.
  ExpectForbidden(Call("POST", "/api/projects", json{{"name", "mine"}}, key), "admin");
  ExpectForbidden(Call("PATCH", "/api/projects/app", json{{"memoryMB", 1024}}, key), "admin");
  ExpectForbidden(Call("PUT", "/api/projects/app", json{{"memoryMB", 1024}}, key), "admin");
  ExpectForbidden(Call("DELETE", "/api/projects/app", "", key), "admin");

  // Nothing changed: the project, its secret and the admin key are intact.
  EXPECT_EQ(Call("GET", "/api/projects/app").status, 200);
  auto secrets = Call("GET", "/api/projects/app/secrets");
  ASSERT_EQ(secrets.status, 200);
  EXPECT_EQ(secrets.Json().size(), 1u);
  EXPECT_EQ(Call("GET", "/api/api-keys").Json().size(), 2u);
  EXPECT_EQ(Call("GET", "/api/secret-groups").Json().size(), 1u);
  ExpectNeverExposed(value);
}

TEST_F(ScopesTest, EveryRouteOpenToSandboxKeysIsListedHere) {
  // The whole sandbox-scope table: a route joins it only deliberately
  // (Router::Add defaults to admin). Public routes are not in it.
  const std::set<std::pair<std::string, std::string>> expected = {
      {"GET", "/api/projects"},          {"GET", "/api/projects/{project}"},
      {"POST", "/api/sandboxes"},        {"GET", "/api/sandboxes"},
      {"GET", "/api/sandboxes/{id}"},    {"DELETE", "/api/sandboxes/{id}"},
      {"POST", "/api/sandboxes/{id}/exec/run"},
      // Streaming exec, background commands, terminals (issue 15).
      {"GET", "/api/sandboxes/{id}/exec/stream"},
      {"GET", "/api/sandboxes/{id}/pty"},
      {"POST", "/api/sandboxes/{id}/commands"},
      {"GET", "/api/sandboxes/{id}/commands"},
      {"GET", "/api/sandboxes/{id}/commands/{cmd}"},
      {"GET", "/api/sandboxes/{id}/commands/{cmd}/attach"},
      {"POST", "/api/sandboxes/{id}/commands/{cmd}/kill"},
      {"POST", "/api/sandboxes/{id}/commands/{cmd}/wait"},
      // Files (issue 15).
      {"GET", "/api/sandboxes/{id}/files"},
      {"PUT", "/api/sandboxes/{id}/files"},
      {"DELETE", "/api/sandboxes/{id}/files"},
      {"GET", "/api/sandboxes/{id}/files/list"},
      {"POST", "/api/sandboxes/{id}/files/mkdir"},
      // Checkpoints, forks and lifetime (issue 14).
      {"POST", "/api/sandboxes/{id}/checkpoints"},
      {"GET", "/api/sandboxes/{id}/checkpoints"},
      {"DELETE", "/api/sandboxes/{id}/checkpoints/{checkpoint}"},
      {"GET", "/api/checkpoints"},
      {"POST", "/api/sandboxes/{id}/timeout"},
      {"POST", "/api/sandboxes/{id}/hibernate"},
      {"POST", "/api/sandboxes/{id}/wake"},
      // Image templates (issue 14): listing only; import and delete are admin.
      {"GET", "/api/templates"},
      {"GET", "/api/templates/{name}"},
  };
  std::set<std::pair<std::string, std::string>> actual;
  for (const auto& [method, pattern] : cp_->router().Routes()) {
    if (cp_->router().RequiredScope(method, pattern) == api::KeyScope::kSandbox) actual.emplace(method, pattern);
  }
  EXPECT_EQ(actual, expected);
}

TEST_F(ScopesTest, AnExpiredKeyIsRefusedOnEveryRoute) {
  ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "app"}}).status, 201);
  const std::string expired_admin = StoreKey(store::kScopeAdmin, "2001-01-01T00:00:00.000Z");
  const std::string expired_sandbox = StoreKey(store::kScopeSandbox, "2001-01-01T00:00:00.000Z");
  for (const std::string& key : {expired_admin, expired_sandbox}) {
    for (const auto& [method, pattern] : cp_->router().Routes()) {
      if (!cp_->router().RequiredScope(method, pattern)) continue;  // public
      std::string target = pattern;
      for (const char* param : {"{project}", "{id}", "{name}", "{group}", "{cmd}", "{checkpoint}"}) {
        for (auto at = target.find(param); at != std::string::npos; at = target.find(param)) {
          target.replace(at, std::string(param).size(), "app");
        }
      }
      auto r = Call(method, target, "{}", key);
      EXPECT_EQ(r.status, 401) << method << " " << target << ": " << r.body;
      EXPECT_NE(r.Json().value("error", "").find("expired at 2001-01-01T00:00:00.000Z"), std::string::npos) << r.body;
    }
    EXPECT_EQ(Call("GET", "/api/nowhere", "", key).status, 401);  // unknown paths too
  }
  // A key that has not expired yet works.
  EXPECT_EQ(Call("GET", "/api/projects", "", StoreKey(store::kScopeSandbox, "9999-01-01T00:00:00.000Z")).status, 200);
}

TEST_F(ScopesTest, ExpiryIsChosenAtCreationAndShownInListings) {
  auto in = Call("POST", "/api/api-keys", json{{"name", "month"}, {"scope", "sandbox"}, {"expiresIn", "30d"}});
  ASSERT_EQ(in.status, 201) << in.body;
  const std::string in_at = in.Json()["expiresAt"];
  const auto month = std::chrono::system_clock::now() + std::chrono::hours(24 * 30);
  EXPECT_GE(in_at, store::Rfc3339Ms(month - std::chrono::minutes(5)));
  EXPECT_LE(in_at, store::Rfc3339Ms(month + std::chrono::minutes(5)));
  EXPECT_EQ(Call("GET", "/api/sandboxes", "", in.Json()["key"].get<std::string>()).status, 200);

  auto at = Call("POST", "/api/api-keys",
                 json{{"name", "fixed"}, {"scope", "admin"}, {"expiresAt", "2099-06-01T12:00:00+02:00"}});
  ASSERT_EQ(at.status, 201) << at.body;
  EXPECT_EQ(at.Json()["expiresAt"], "2099-06-01T10:00:00.000Z");
  auto list = Call("GET", "/api/api-keys");
  ASSERT_EQ(list.Json().size(), 3u);
  EXPECT_EQ(list.Json()[1]["expiresAt"], in_at);
  EXPECT_EQ(list.Json()[2]["expiresAt"], "2099-06-01T10:00:00.000Z");
  EXPECT_EQ(list.Json()[2]["scope"], "admin");
}

TEST_F(ScopesTest, BadScopeOrExpiryIsA400NamingTheField) {
  auto field_of = [&](const json& body) {
    auto r = Call("POST", "/api/api-keys", body);
    EXPECT_EQ(r.status, 400) << body.dump() << " -> " << r.body;
    const std::string error = r.Json().value("error", "");
    return error.substr(0, error.find(':'));
  };
  EXPECT_EQ(field_of({{"name", "k"}, {"scope", "root"}}), "scope");
  EXPECT_EQ(field_of({{"name", "k"}, {"scope", "Admin"}}), "scope");
  EXPECT_EQ(field_of({{"name", "k"}, {"scope", 1}}), "scope");
  EXPECT_EQ(field_of({{"name", "k"}, {"expiresAt", "tomorrow"}}), "expiresAt");
  EXPECT_EQ(field_of({{"name", "k"}, {"expiresAt", "2001-01-01T00:00:00Z"}}), "expiresAt");  // past
  EXPECT_EQ(field_of({{"name", "k"}, {"expiresAt", "2030-02-30T00:00:00Z"}}), "expiresAt");
  EXPECT_EQ(field_of({{"name", "k"}, {"expiresAt", "2999-01-01T00:00:00Z"}}), "expiresAt");  // past 2199
  EXPECT_EQ(field_of({{"name", "k"}, {"expiresIn", "30"}}), "expiresIn");
  EXPECT_EQ(field_of({{"name", "k"}, {"expiresIn", "0d"}}), "expiresIn");
  EXPECT_EQ(field_of({{"name", "k"}, {"expiresIn", "-1d"}}), "expiresIn");
  EXPECT_EQ(field_of({{"name", "k"}, {"expiresIn", "1w"}}), "expiresIn");
  EXPECT_EQ(field_of({{"name", "k"}, {"expiresIn", "99999999d"}}), "expiresIn");
  EXPECT_EQ(field_of({{"name", "k"}, {"expiresIn", "1d"}, {"expiresAt", "2999-01-01T00:00:00Z"}}),
            "expiresAt, expiresIn");
  EXPECT_EQ(Call("GET", "/api/api-keys").Json().size(), 1u);  // nothing was created
}

TEST_F(ScopesTest, TheLastUsableAdminKeyCannotBeDeleted) {
  // A sandbox key and an expired admin key do not count: deleting the only
  // usable admin key would leave nobody able to manage keys.
  StoreKey(store::kScopeAdmin, "2001-01-01T00:00:00.000Z");
  CreateKey({{"name", "ci"}, {"scope", "sandbox"}});
  auto list = Call("GET", "/api/api-keys");
  ASSERT_EQ(list.Json().size(), 3u);
  std::string bootstrap_id;
  for (const auto& k : list.Json()) {
    if (k["scope"] == "admin" && k["expiresAt"].is_null()) bootstrap_id = k["id"];
  }
  EXPECT_EQ(Call("DELETE", "/api/api-keys/" + bootstrap_id).status, 409);
  for (const auto& k : list.Json()) {
    if (k["id"] != bootstrap_id) {
      EXPECT_EQ(Call("DELETE", "/api/api-keys/" + k["id"].get<std::string>()).status, 204);
    }
  }
}

}  // namespace
}  // namespace osb::testing
