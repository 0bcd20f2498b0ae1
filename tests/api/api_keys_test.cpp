// API keys over the API: a created key works at once and is shown only in
// its creation answer; deleting it locks it out; an org cannot delete its
// last key; orgs never see each other's keys. SQLite and PostgreSQL.
#include "api_harness.h"

namespace osb::testing {
namespace {

using nlohmann::json;

TEST_F(ApiTest, ApiKeysCanBeCreatedUsedListedAndRevoked) {
  auto created = Call("POST", "/api/api-keys", json{{"name", "ci pipeline"}, {"scope", "admin"}});
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.headers["cache-control"], "no-store");
  const std::string key = created.Json()["key"];
  const std::string id = created.Json()["id"];
  EXPECT_EQ(key.rfind("osb_", 0), 0u);
  EXPECT_EQ(key.size(), 68u);
  EXPECT_EQ(id.rfind("key_", 0), 0u);
  EXPECT_EQ(created.Json()["name"], "ci pipeline");
  EXPECT_EQ(created.Json()["scope"], "admin");
  EXPECT_TRUE(created.Json()["expiresAt"].is_null());
  EXPECT_FALSE(created.Json()["createdAt"].get<std::string>().empty());

  // The new key works straight away, for the same org.
  EXPECT_EQ(Call("POST", "/api/projects", json{{"name", "made-with-new-key"}}, key).status, 201);
  EXPECT_EQ(Call("GET", "/api/projects/made-with-new-key").status, 200);

  // Listings never show a key or its hash.
  auto list = Call("GET", "/api/api-keys", "", key);
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.Json().size(), 2u);  // the bootstrap admin key and this one
  EXPECT_EQ(list.Json()[1]["id"], id);
  EXPECT_EQ(list.Json()[1]["name"], "ci pipeline");
  for (const auto& k : list.Json()) EXPECT_FALSE(k.contains("key"));
  EXPECT_EQ(list.body.find(key), std::string::npos);
  EXPECT_EQ(Logs().find(key), std::string::npos);

  // Revoked: the key stops working at once.
  EXPECT_EQ(Call("DELETE", "/api/api-keys/" + id).status, 204);
  EXPECT_EQ(Call("GET", "/api/projects", "", key).status, 401);
  EXPECT_EQ(Call("DELETE", "/api/api-keys/" + id).status, 404);
  EXPECT_EQ(Call("GET", "/api/api-keys").Json().size(), 1u);
}

TEST_F(ApiTest, TheLastKeyOfAnOrgCannotBeDeleted) {
  auto list = Call("GET", "/api/api-keys");
  ASSERT_EQ(list.Json().size(), 1u);
  const std::string admin_id = list.Json()[0]["id"];
  auto refused = Call("DELETE", "/api/api-keys/" + admin_id);
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refused.Json()["error"].get<std::string>().find("last unexpired admin API key"), std::string::npos);
  EXPECT_EQ(Call("GET", "/api/projects").status, 200);  // still in

  // With a second key, the first may go (even the one making the request).
  const std::string second =
      Call("POST", "/api/api-keys", json{{"name", "next"}, {"scope", "admin"}}).Json()["key"];
  EXPECT_EQ(Call("DELETE", "/api/api-keys/" + admin_id).status, 204);
  EXPECT_EQ(Call("GET", "/api/projects").status, 401);
  EXPECT_EQ(Call("GET", "/api/projects", "", second).status, 200);
}

TEST_F(ApiTest, ApiKeyInputIsCheckedAndOrgsAreIsolated) {
  EXPECT_EQ(Call("POST", "/api/api-keys", json::object()).status, 400);
  EXPECT_EQ(Call("POST", "/api/api-keys", json{{"name", ""}}).status, 400);
  EXPECT_EQ(Call("POST", "/api/api-keys", json{{"name", std::string(65, 'x')}}).status, 400);
  EXPECT_EQ(Call("POST", "/api/api-keys", json{{"name", "tab\there"}}).status, 400);
  EXPECT_EQ(Call("POST", "/api/api-keys", json{{"name", "k"}, {"key", "chosen"}}).status, 400);
  EXPECT_EQ(Call("DELETE", "/api/api-keys/key_nope").status, 404);

  const std::string other = AddOrg("other");
  auto theirs = Call("POST", "/api/api-keys", json{{"name", "theirs"}}, other);
  ASSERT_EQ(theirs.status, 201);
  const std::string their_id = theirs.Json()["id"];
  auto mine = Call("GET", "/api/api-keys");
  for (const auto& k : mine.Json()) EXPECT_NE(k["id"], their_id);
  EXPECT_EQ(Call("DELETE", "/api/api-keys/" + their_id).status, 404);
  EXPECT_EQ(Call("GET", "/api/api-keys", "", other).Json().size(), 2u);
}

}  // namespace
}  // namespace osb::testing
