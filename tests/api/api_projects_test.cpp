// Projects, secret groups, auth and org isolation over real HTTP, on the
// backend chosen by OSB_TEST_DB (registered for SQLite and PostgreSQL).
#include "api_harness.h"

namespace osb::testing {
namespace {

using nlohmann::json;

TEST_F(ApiTest, HealthNeedsNoKeyButApiDoes) {
  EXPECT_EQ(Call("GET", "/healthz", "", "").status, 200);
  auto r = Call("GET", "/api/projects", "", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(r.Json().contains("error"));
  EXPECT_EQ(Call("GET", "/api/projects", "", "osb_wrong_key_wrong_key_wrong_key").status, 401);
  // Unknown API paths are not revealed to unauthenticated callers either.
  EXPECT_EQ(Call("GET", "/api/nothing-here", "", "").status, 401);
  EXPECT_EQ(Call("GET", "/api/nothing-here").status, 404);
}

TEST_F(ApiTest, CreateAppliesDefaultsAndGetByIdOrName) {
  auto r = Call("POST", "/api/projects", json{{"name", "web"}});
  ASSERT_EQ(r.status, 201) << r.body;
  const json p = r.Json();
  EXPECT_EQ(p["name"], "web");
  EXPECT_EQ(p["template"], "base");
  EXPECT_EQ(p["cpuCount"], 1);
  EXPECT_EQ(p["memoryMB"], 512);
  EXPECT_EQ(p["timeoutSec"], 300);
  EXPECT_EQ(p["egressAllowlist"], json::array());
  EXPECT_EQ(p["secretGroups"], json::array());
  EXPECT_TRUE(p["createdAt"].get<std::string>().ends_with("Z"));
  EXPECT_EQ(p["createdAt"], p["updatedAt"]);
  EXPECT_FALSE(p["orgId"].get<std::string>().empty());

  const std::string id = p["id"];
  EXPECT_EQ(Call("GET", "/api/projects/" + id).Json()["name"], "web");
  EXPECT_EQ(Call("GET", "/api/projects/web").Json()["id"], id);
  auto list = Call("GET", "/api/projects").Json();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["id"], id);
}

TEST_F(ApiTest, PartialUpdateKeepsUntouchedFields) {
  auto created = Call("POST", "/api/projects",
                      json{{"name", "api"},
                           {"template", "python"},
                           {"cpuCount", 2},
                           {"memoryMB", 2048},
                           {"timeoutSec", 600},
                           {"egressAllowlist", {"API.Example.com.", "*.GitHub.com"}}});
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.Json()["egressAllowlist"], json({"api.example.com", "*.github.com"}));

  auto patched = Call("PATCH", "/api/projects/api", json{{"cpuCount", 4}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  json p = patched.Json();
  EXPECT_EQ(p["cpuCount"], 4);
  EXPECT_EQ(p["template"], "python");
  EXPECT_EQ(p["memoryMB"], 2048);
  EXPECT_EQ(p["timeoutSec"], 600);
  EXPECT_EQ(p["egressAllowlist"], json({"api.example.com", "*.github.com"}));
  EXPECT_EQ(p["createdAt"], created.Json()["createdAt"]);

  // PUT is the same partial merge; an explicit [] clears the allowlist.
  p = Call("PUT", "/api/projects/api", json{{"egressAllowlist", json::array()}}).Json();
  EXPECT_EQ(p["egressAllowlist"], json::array());
  EXPECT_EQ(p["cpuCount"], 4);

  // A GET body can be sent back unchanged (read-only fields are ignored).
  auto echoed = Call("PUT", "/api/projects/api", p);
  EXPECT_EQ(echoed.status, 200) << echoed.body;

  // Rename, then the old name is gone.
  EXPECT_EQ(Call("PATCH", "/api/projects/api", json{{"name", "api2"}}).status, 200);
  EXPECT_EQ(Call("GET", "/api/projects/api").status, 404);
  EXPECT_EQ(Call("GET", "/api/projects/api2").Json()["cpuCount"], 4);
}

TEST_F(ApiTest, DuplicateNamesConflict) {
  ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "a"}}).status, 201);
  ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "b"}}).status, 201);
  auto dup = Call("POST", "/api/projects", json{{"name", "a"}});
  EXPECT_EQ(dup.status, 409);
  EXPECT_NE(dup.Json()["error"].get<std::string>().find("'a'"), std::string::npos);
  EXPECT_EQ(Call("PATCH", "/api/projects/b", json{{"name", "a"}}).status, 409);
  ASSERT_EQ(Call("POST", "/api/secret-groups", json{{"name", "g"}}).status, 201);
  EXPECT_EQ(Call("POST", "/api/secret-groups", json{{"name", "g"}}).status, 409);
}

TEST_F(ApiTest, DeleteRemovesProjectAndItsSecrets) {
  ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "gone"}}).status, 201);
  ASSERT_EQ(Call("PUT", "/api/projects/gone/secrets/A", json{{"value", "x1"}}).status, 200);
  EXPECT_EQ(Call("DELETE", "/api/projects/gone").status, 204);
  EXPECT_EQ(Call("GET", "/api/projects/gone").status, 404);
  EXPECT_EQ(Call("DELETE", "/api/projects/gone").status, 404);
  EXPECT_EQ(Call("GET", "/api/projects/gone/secrets").status, 404);
  EXPECT_EQ(RawQuery(db_url_, "SELECT COUNT(*) FROM org_secrets")[0][0], "0");
  EXPECT_EQ(RawQuery(db_url_, "SELECT COUNT(*) FROM secret_groups")[0][0], "0");
}

TEST_F(ApiTest, SecretGroupsCrudAndAttachment) {
  auto g = Call("POST", "/api/secret-groups", json{{"name", "shared"}});
  ASSERT_EQ(g.status, 201) << g.body;
  const std::string gid = g.Json()["id"];
  ASSERT_EQ(Call("POST", "/api/secret-groups", json{{"name", "other"}}).status, 201);
  EXPECT_EQ(Call("GET", "/api/secret-groups").Json().size(), 2u);
  EXPECT_EQ(Call("GET", "/api/secret-groups/" + gid).Json()["name"], "shared");

  auto p = Call("POST", "/api/projects", json{{"name", "p"}, {"secretGroups", {"other", "shared"}}});
  ASSERT_EQ(p.status, 201) << p.body;
  EXPECT_EQ(p.Json()["secretGroups"], json({"other", "shared"}));
  // Order is kept as given; a partial update leaves it alone.
  EXPECT_EQ(Call("PATCH", "/api/projects/p", json{{"cpuCount", 3}}).Json()["secretGroups"],
            json({"other", "shared"}));

  auto missing = Call("PATCH", "/api/projects/p", json{{"secretGroups", {"nope"}}});
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.Json()["error"].get<std::string>().find("nope"), std::string::npos);
  EXPECT_EQ(Call("PATCH", "/api/projects/p", json{{"secretGroups", {"shared", "shared"}}}).status, 400);

  // An attached group cannot be deleted; detach first.
  auto blocked = Call("DELETE", "/api/secret-groups/shared");
  EXPECT_EQ(blocked.status, 409);
  EXPECT_NE(blocked.Json()["error"].get<std::string>().find("'p'"), std::string::npos);
  EXPECT_EQ(Call("PATCH", "/api/projects/p", json{{"secretGroups", {"other"}}}).status, 200);
  EXPECT_EQ(Call("DELETE", "/api/secret-groups/shared").status, 204);
  EXPECT_EQ(Call("GET", "/api/secret-groups/shared").status, 404);

  // Rename keeps attachments (they are by id).
  auto renamed = Call("PATCH", "/api/secret-groups/other", json{{"name", "renamed"}});
  EXPECT_EQ(renamed.status, 200) << renamed.body;
  EXPECT_EQ(Call("GET", "/api/projects/p").Json()["secretGroups"], json({"renamed"}));
}

TEST_F(ApiTest, OrgsAreIsolatedWith404s) {
  auto p = Call("POST", "/api/projects", json{{"name", "private"}});
  ASSERT_EQ(p.status, 201);
  const std::string id = p.Json()["id"];
  ASSERT_EQ(Call("PUT", "/api/projects/private/secrets/TOKEN", json{{"value", "org-a-value"}}).status, 200);
  ASSERT_EQ(Call("POST", "/api/secret-groups", json{{"name", "g"}}).status, 201);

  const std::string other = AddOrg("other");
  EXPECT_EQ(Call("GET", "/api/projects", "", other).Json(), json::array());
  for (const std::string& ref : {id, std::string("private")}) {
    EXPECT_EQ(Call("GET", "/api/projects/" + ref, "", other).status, 404);
    EXPECT_EQ(Call("PATCH", "/api/projects/" + ref, json{{"cpuCount", 2}}, other).status, 404);
    EXPECT_EQ(Call("GET", "/api/projects/" + ref + "/secrets", "", other).status, 404);
    EXPECT_EQ(Call("PUT", "/api/projects/" + ref + "/secrets/TOKEN", json{{"value", "x"}}, other).status, 404);
    EXPECT_EQ(Call("DELETE", "/api/projects/" + ref + "/secrets/TOKEN", "", other).status, 404);
    EXPECT_EQ(Call("DELETE", "/api/projects/" + ref, "", other).status, 404);
  }
  EXPECT_EQ(Call("GET", "/api/secret-groups/g", "", other).status, 404);
  EXPECT_EQ(Call("GET", "/api/secret-groups", "", other).Json(), json::array());
  // Another org's group cannot be attached by name.
  EXPECT_EQ(Call("POST", "/api/projects", json{{"name", "x"}, {"secretGroups", {"g"}}}, other).status, 400);
  // Names are per org.
  EXPECT_EQ(Call("POST", "/api/projects", json{{"name", "private"}}, other).status, 201);
  // Org A still has its project and secret intact.
  EXPECT_EQ(Call("GET", "/api/projects/private").Json()["id"], id);
  EXPECT_EQ(Call("GET", "/api/projects/private/secrets").Json().size(), 1u);
  ExpectNeverExposed("org-a-value");
}

}  // namespace
}  // namespace osb::testing

namespace osb::testing {
namespace {

using nlohmann::json;

// Running sandboxes are refreshed when a project's groups change: the hook
// fires after every committed change of the attached list (attach, detach,
// reorder: order decides which group's secret wins), with every group
// involved, and never for updates that leave the list alone.
TEST_F(ApiTest, GroupChangesReachTheRefreshHookWithEveryGroupInvolved) {
  std::vector<std::vector<std::string>> calls;
  std::string project_id;
  cp_->projects().SetGroupsChanged(
      [&](const std::string&, const std::string& pid, const std::vector<std::string>& groups) {
        project_id = pid;
        calls.push_back(groups);
      });
  const std::string a = Call("POST", "/api/secret-groups", json{{"name", "a"}}).Json()["id"];
  const std::string b = Call("POST", "/api/secret-groups", json{{"name", "b"}}).Json()["id"];
  const std::string pid = Call("POST", "/api/projects", json{{"name", "p"}, {"secretGroups", {"a"}}}).Json()["id"];
  EXPECT_TRUE(calls.empty());  // a new project has no running sandboxes

  ASSERT_EQ(Call("PATCH", "/api/projects/p", json{{"cpuCount", 2}}).status, 200);
  ASSERT_EQ(Call("PATCH", "/api/projects/p", json{{"secretGroups", {"a"}}}).status, 200);
  EXPECT_TRUE(calls.empty());

  ASSERT_EQ(Call("PATCH", "/api/projects/p", json{{"secretGroups", {"a", "b"}}}).status, 200);
  ASSERT_EQ(Call("PATCH", "/api/projects/p", json{{"secretGroups", {"b", "a"}}}).status, 200);
  ASSERT_EQ(Call("PATCH", "/api/projects/p", json{{"secretGroups", json::array()}}).status, 200);
  ASSERT_EQ(Call("PATCH", "/api/projects/p", json{{"secretGroups", {"nope"}}}).status, 400);  // nothing committed
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(project_id, pid);
  EXPECT_EQ(calls[0], (std::vector<std::string>{a, b}));
  EXPECT_EQ(calls[1], (std::vector<std::string>{a, b}));
  EXPECT_EQ(calls[2], (std::vector<std::string>{b, a}));
}

}  // namespace
}  // namespace osb::testing
