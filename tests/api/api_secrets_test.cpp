// Secrets over real HTTP: write-only values, ciphertext at rest bound to its
// row, resolution order, concurrency and the change hook; both backends.
#include <fstream>
#include <sstream>
#include <thread>

#include "api_harness.h"
#include "controlplane/secrets.h"
#include "test_db.h"

namespace osb::testing {
namespace {

using nlohmann::json;

std::string ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SecretsTest : public ApiTest {
 protected:
  void SetUp() override {
    ApiTest::SetUp();
    ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "proj"}}).status, 201);
  }

  Result<controlplane::ResolvedSandbox> Resolve(const std::string& project,
                                                std::map<std::string, std::string> envs = {}) {
    auto org = cp_->store().EnsureOrg("default");
    controlplane::SandboxRequest req;
    req.project = project;
    req.envs = std::move(envs);
    return cp_->resolver().ResolveSandbox(org->id, req);
  }

  std::map<std::string, std::string> ResolvedValues(const std::string& project) {
    auto r = Resolve(project);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    std::map<std::string, std::string> out;
    if (r.ok()) {
      for (const auto& s : r->secrets) out[s.name] = s.value;
    }
    return out;
  }
};

TEST_F(SecretsTest, SigningKindMaterialIsValidatedWriteOnlyAndResolved) {
  // Issue 16: a signing kind takes a material object; only its non-secret
  // fields are readable; bad input is a 400 naming the field.
  const std::string key = "hmac-KEY-never-shown-5151";
  const json material = {{"key", key}, {"header", "X-Signature"}, {"hash", "sha512"}};
  const json rules = json::array({json{{"host", "API.test"}, {"methods", {"post"}}, {"pathPrefix", "/v1"}}});
  auto put = Call("PUT", "/api/projects/proj/secrets/SIG",
                  json{{"kind", "hmac"}, {"material", material}, {"allowedHosts", {"api.test"}},
                       {"allowedRequests", rules}, {"onDisallowedRequest", "refuse"}});
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.Json()["kind"], "hmac");
  EXPECT_EQ(put.Json()["material"], json({{"hash", "sha512"}, {"header", "X-Signature"}}));
  EXPECT_EQ(put.Json()["allowedRequests"],
            json::array({json{{"host", "api.test"}, {"methods", {"POST"}}, {"pathPrefix", "/v1"}}}));
  EXPECT_EQ(put.Json()["onDisallowedRequest"], "refuse");
  auto list = Call("GET", "/api/projects/proj/secrets");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.Json()[0]["kind"], "hmac");
  EXPECT_EQ(list.Json()[0]["material"], json({{"hash", "sha512"}, {"header", "X-Signature"}}));

  auto expect_400 = [&](const json& body, const std::string& field) {
    auto r = Call("PUT", "/api/projects/proj/secrets/SIG", body);
    EXPECT_EQ(r.status, 400) << body.dump();
    EXPECT_NE(r.body.find(field), std::string::npos) << r.body;
  };
  expect_400(json{{"kind", "hmac"}, {"material", {{"key", key}}}}, "material.header");
  expect_400(json{{"kind", "hmac"}, {"material", {{"key", key}, {"header", "X"}, {"hash", "md5"}}}}, "material.hash");
  expect_400(json{{"kind", "hmac"}, {"value", key}}, "value");
  expect_400(json{{"kind", "hmac"}}, "material");
  expect_400(json{{"value", key}, {"material", material}}, "material");
  expect_400(json{{"kind", "rsa"}, {"material", material}}, "kind");
  expect_400(json{{"kind", "hmac"}, {"material", "not an object"}}, "material");
  expect_400(json{{"value", "v"}, {"allowedRequests", json::array({json{{"host", "a.test"}, {"pathPrefix", "v1"}}})}},
             "allowedRequests[0].pathPrefix");
  expect_400(json{{"value", "v"}, {"onDisallowedRequest", "drop"}}, "onDisallowedRequest");
  expect_400(json{{"kind", "oauth2-refresh"},
                  {"material", {{"tokenEndpoint", "http://x.test/t"}, {"clientId", "c"}, {"refreshToken", key}}}},
             "material.tokenEndpoint");

  // What sandboxes get: the kind, the whole (canonical) material, the rules.
  auto r = Resolve("proj");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->secrets.size(), 1u);
  const auto& s = r->secrets[0];
  EXPECT_EQ(s.kind, "hmac");
  EXPECT_EQ(json::parse(s.value)["key"], key);
  ASSERT_EQ(s.allowed_requests.size(), 1u);
  EXPECT_EQ(s.allowed_requests[0].Text(), "POST api.test/v1");
  EXPECT_EQ(s.on_disallowed_request, "refuse");
  ExpectNeverExposed(key);
}

TEST_F(SecretsTest, ValuesAreWriteOnly) {
  const std::string value = "sk-live-VALUE-never-shown-4242";
  auto put = Call("PUT", "/api/projects/proj/secrets/OPENAI_API_KEY",
                  json{{"value", value}, {"allowedHosts", {"API.openai.com."}}});
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.Json()["name"], "OPENAI_API_KEY");
  EXPECT_EQ(put.Json()["allowedHosts"], json({"api.openai.com"}));
  EXPECT_FALSE(put.Json().contains("value"));

  auto list = Call("GET", "/api/projects/proj/secrets");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.Json().size(), 1u);
  const json item = list.Json()[0];
  EXPECT_EQ(item["name"], "OPENAI_API_KEY");
  EXPECT_TRUE(item.contains("createdAt") && item.contains("updatedAt"));
  EXPECT_FALSE(item.contains("value"));

  // Replace keeps createdAt; GET of the project and errors do not leak it.
  auto again = Call("PUT", "/api/projects/proj/secrets/OPENAI_API_KEY", json{{"value", value + "2"}});
  EXPECT_EQ(again.Json()["createdAt"], put.Json()["createdAt"]);
  EXPECT_EQ(again.Json()["allowedHosts"], json::array());
  Call("GET", "/api/projects/proj");
  Call("PUT", "/api/projects/proj/secrets/BAD-NAME", json{{"value", value}});
  Call("PUT", "/api/projects/proj/secrets/OK", json{{"value", value}, {"allowedHosts", {"bad host"}}});
  Call("PUT", "/api/projects/nope/secrets/OK", json{{"value", value}});

  EXPECT_EQ(ResolvedValues("proj").at("OPENAI_API_KEY"), value + "2");
  ExpectNeverExposed(value);

  EXPECT_EQ(Call("DELETE", "/api/projects/proj/secrets/OPENAI_API_KEY").status, 204);
  EXPECT_EQ(Call("DELETE", "/api/projects/proj/secrets/OPENAI_API_KEY").status, 404);
  EXPECT_EQ(Call("GET", "/api/projects/proj/secrets").Json(), json::array());
}

// Issue 11 item 6: a secret without allowedHosts goes only to the egress
// allowlist's hosts; with an empty allowlist nowhere, and PUT says so.
TEST_F(SecretsTest, HostlessSecretWarnsWhenItWillGoNowhere) {
  const std::string value = "hostless-VALUE-never-shown-77";
  auto put = Call("PUT", "/api/projects/proj/secrets/HOSTLESS", json{{"value", value}});
  ASSERT_EQ(put.status, 200) << put.body;
  ASSERT_TRUE(put.Json().contains("warnings")) << put.body;
  ASSERT_EQ(put.Json()["warnings"].size(), 1u);
  const std::string warning = put.Json()["warnings"][0];
  EXPECT_NE(warning.find("not be sent to any host"), std::string::npos) << warning;
  EXPECT_NE(warning.find("proj"), std::string::npos) << warning;
  EXPECT_EQ(warning.find(value), std::string::npos);

  // Explicit hosts, or "*" (any host, and it stays "*"): no warning.
  auto named = Call("PUT", "/api/projects/proj/secrets/NAMED",
                    json{{"value", value}, {"allowedHosts", {"api.example.com:8443"}}});
  ASSERT_EQ(named.status, 200) << named.body;
  EXPECT_EQ(named.Json()["allowedHosts"], json({"api.example.com:8443"}));
  EXPECT_FALSE(named.Json().contains("warnings"));
  auto any = Call("PUT", "/api/projects/proj/secrets/ANY", json{{"value", value}, {"allowedHosts", {"*"}}});
  ASSERT_EQ(any.status, 200) << any.body;
  EXPECT_EQ(any.Json()["allowedHosts"], json({"*"}));
  EXPECT_FALSE(any.Json().contains("warnings"));

  // "*" must stand alone; a 400 naming the field.
  auto mixed = Call("PUT", "/api/projects/proj/secrets/ANY",
                    json{{"value", value}, {"allowedHosts", {"*", "api.example.com"}}});
  EXPECT_EQ(mixed.status, 400);
  EXPECT_NE(mixed.body.find("allowedHosts"), std::string::npos) << mixed.body;
  auto bad_port = Call("PUT", "/api/projects/proj/secrets/ANY",
                       json{{"value", value}, {"allowedHosts", {"api.example.com:0"}}});
  EXPECT_EQ(bad_port.status, 400);
  // "*" is not an egress allowlist entry (an empty list already admits all).
  auto star_allowlist = Call("PATCH", "/api/projects/proj", json{{"egressAllowlist", {"*"}}});
  EXPECT_EQ(star_allowlist.status, 400);
  EXPECT_NE(star_allowlist.body.find("egressAllowlist"), std::string::npos) << star_allowlist.body;

  // Once the project has an allowlist, the host-less secret goes there: no warning.
  ASSERT_EQ(Call("PATCH", "/api/projects/proj", json{{"egressAllowlist", {"api.example.com:443"}}}).status, 200);
  auto listed = Call("PUT", "/api/projects/proj/secrets/HOSTLESS", json{{"value", value}});
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_FALSE(listed.Json().contains("warnings")) << listed.body;
  // The listing never carries warnings or values.
  auto list = Call("GET", "/api/projects/proj/secrets");
  for (const auto& item : list.Json()) EXPECT_FALSE(item.contains("warnings"));
  ExpectNeverExposed(value);
}

TEST_F(SecretsTest, DatabaseHoldsCiphertextNotTheValue) {
  const std::string value = "plaintext-marker-7f3a9c-do-not-store";
  ASSERT_EQ(Call("PUT", "/api/projects/proj/secrets/TOKEN", json{{"value", value}}).status, 200);
  auto rows = RawQuery(db_url_, "SELECT ciphertext, key_id FROM org_secrets");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0].find(value), std::string::npos);
  EXPECT_EQ(rows[0][1], keyring_->primary_key_id());
  if (TestBackend() == "sqlite") {
    // The whole database, including the WAL, never holds the plaintext.
    const std::string path = db_url_.substr(std::string("sqlite://").size());
    for (const std::string& file : {path, path + "-wal"}) {
      EXPECT_EQ(ReadFileBytes(file).find(value), std::string::npos) << file;
    }
  } else {
    // PostgreSQL text output of bytea is hex; check the hex of the value too.
    std::string hex;
    for (unsigned char c : value) {
      static const char* digits = "0123456789abcdef";
      hex += digits[c >> 4];
      hex += digits[c & 15];
    }
    EXPECT_EQ(rows[0][0].find(hex), std::string::npos);
  }
}

TEST_F(SecretsTest, CiphertextMovedToAnotherRowFailsToDecrypt) {
  ASSERT_EQ(Call("PUT", "/api/projects/proj/secrets/A", json{{"value", "value-of-a"}}).status, 200);
  ASSERT_EQ(Call("PUT", "/api/projects/proj/secrets/B", json{{"value", "value-of-b"}}).status, 200);
  ASSERT_EQ(ResolvedValues("proj").size(), 2u);
  RawQuery(db_url_,
           "UPDATE org_secrets SET ciphertext = (SELECT ciphertext FROM org_secrets WHERE name = 'A') "
           "WHERE name = 'B'");
  auto r = Resolve("proj");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kDataLoss);
  EXPECT_NE(r.error().message.find("'B'"), std::string::npos);
  EXPECT_EQ(r.error().message.find("value-of-a"), std::string::npos);

  // Also across projects: the same name in another project's row.
  ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "proj2"}}).status, 201);
  ASSERT_EQ(Call("PUT", "/api/projects/proj2/secrets/A", json{{"value", "value-2"}}).status, 200);
  RawQuery(db_url_, "DELETE FROM org_secrets WHERE name = 'B'");
  RawQuery(db_url_,
           "UPDATE org_secrets SET ciphertext = (SELECT s.ciphertext FROM org_secrets s JOIN secret_groups g "
           "ON g.id = s.group_id JOIN projects p ON p.id = g.project_id WHERE p.name = 'proj') "
           "WHERE group_id IN (SELECT g.id FROM secret_groups g JOIN projects p ON p.id = g.project_id "
           "WHERE p.name = 'proj2')");
  EXPECT_EQ(Resolve("proj2").error().code, ErrorCode::kDataLoss);
}

TEST_F(SecretsTest, ResolutionOrderGroupsThenProjectEnvsWin) {
  ASSERT_EQ(Call("POST", "/api/secret-groups", json{{"name", "first"}}).status, 201);
  ASSERT_EQ(Call("POST", "/api/secret-groups", json{{"name", "second"}}).status, 201);
  ASSERT_EQ(Call("PUT", "/api/secret-groups/first/secrets/SHARED", json{{"value", "from-first"}}).status, 200);
  ASSERT_EQ(Call("PUT", "/api/secret-groups/first/secrets/ONLY_FIRST",
                 json{{"value", "f"}, {"allowedHosts", {"a.example.com"}}}).status, 200);
  ASSERT_EQ(Call("PUT", "/api/secret-groups/second/secrets/SHARED", json{{"value", "from-second"}}).status, 200);
  ASSERT_EQ(Call("PUT", "/api/secret-groups/second/secrets/OVERRIDE", json{{"value", "group"}}).status, 200);
  ASSERT_EQ(Call("PUT", "/api/projects/proj/secrets/OVERRIDE", json{{"value", "project"}}).status, 200);
  ASSERT_EQ(Call("PUT", "/api/projects/proj/secrets/PLAIN", json{{"value", "secret-plain"}}).status, 200);
  EXPECT_EQ(Call("GET", "/api/secret-groups/first/secrets").Json().size(), 2u);

  ASSERT_EQ(Call("PATCH", "/api/projects/proj", json{{"secretGroups", {"first", "second"}}}).status, 200);
  auto v = ResolvedValues("proj");
  EXPECT_EQ(v["SHARED"], "from-second");  // later group wins
  EXPECT_EQ(v["OVERRIDE"], "project");    // the project's own secrets win over groups
  EXPECT_EQ(v["ONLY_FIRST"], "f");

  ASSERT_EQ(Call("PATCH", "/api/projects/proj", json{{"secretGroups", {"second", "first"}}}).status, 200);
  EXPECT_EQ(ResolvedValues("proj")["SHARED"], "from-first");

  // A plaintext env of the same name wins and the secret is dropped.
  auto r = Resolve("proj", {{"PLAIN", "env-value"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->envs.at("PLAIN"), "env-value");
  for (const auto& s : r->secrets) {
    EXPECT_NE(s.name, "PLAIN");
    if (s.name == "ONLY_FIRST") {
      EXPECT_EQ(s.allowed_hosts, std::vector<std::string>{"a.example.com"});
    }
  }
  ExpectNeverExposed("from-second");
  ExpectNeverExposed("secret-plain");
}

TEST_F(SecretsTest, SixteenConcurrentClientsLeaveOneConsistentValue) {
  std::vector<std::thread> clients;
  std::vector<int> statuses(16, 0);
  for (int i = 0; i < 16; ++i) {
    clients.emplace_back([&, i] {
      HttpClient c(cp_->port());
      statuses[i] = c.Do("PUT", "/api/projects/proj/secrets/RACE",
                         json{{"value", "value-from-client-" + std::to_string(i)}}.dump(),
                         {{"X-API-Key", kTestAdminKey}})
                        .status;
    });
  }
  for (auto& t : clients) t.join();
  for (int s : statuses) EXPECT_EQ(s, 200);
  auto list = Call("GET", "/api/projects/proj/secrets").Json();
  ASSERT_EQ(list.size(), 1u);
  const std::string value = ResolvedValues("proj").at("RACE");
  EXPECT_TRUE(value.starts_with("value-from-client-")) << "decrypts to one client's whole value";
  EXPECT_EQ(RawQuery(db_url_, "SELECT COUNT(*) FROM org_secrets")[0][0], "1");
}

TEST_F(SecretsTest, ChangeHookGetsNamesNeverValues) {
  std::vector<controlplane::SecretChange> changes;
  std::mutex mu;
  // Configured before traffic, as the worker integration does.
  cp_->secrets().SetListener([&](const controlplane::SecretChange& c,
                                 std::shared_ptr<controlplane::RefreshTicket> ticket) {
    std::lock_guard lock(mu);
    changes.push_back(c);
    ticket->Complete({});
  });
  ASSERT_EQ(Call("POST", "/api/secret-groups", json{{"name", "g"}}).status, 201);
  const std::string pid = Call("PATCH", "/api/projects/proj", json{{"secretGroups", {"g"}}}).Json()["id"];
  ASSERT_EQ(Call("PUT", "/api/projects/proj/secrets/A", json{{"value", "hook-value"}}).status, 200);
  ASSERT_EQ(Call("PUT", "/api/secret-groups/g/secrets/B", json{{"value", "hook-value"}}).status, 200);
  ASSERT_EQ(Call("DELETE", "/api/projects/proj/secrets/A").status, 204);
  std::lock_guard lock(mu);
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].kind, controlplane::SecretChange::Kind::kSet);
  EXPECT_EQ(changes[0].name, "A");
  EXPECT_EQ(changes[0].project_id, pid);
  EXPECT_EQ(changes[0].affected_project_ids, std::vector<std::string>{pid});
  EXPECT_FALSE(changes[1].project_id.has_value());
  EXPECT_TRUE(changes[1].group_id.has_value());
  EXPECT_EQ(changes[1].affected_project_ids, std::vector<std::string>{pid});
  EXPECT_EQ(changes[2].kind, controlplane::SecretChange::Kind::kDelete);
}

TEST_F(SecretsTest, ResolutionDefaultsAndOverrides) {
  auto org = cp_->store().EnsureOrg("default");
  controlplane::SandboxRequest bare;
  auto r = cp_->resolver().ResolveSandbox(org->id, bare);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->project_id.has_value());
  EXPECT_EQ(r->template_id, "base");
  EXPECT_EQ(r->cpu_count, 1);
  EXPECT_EQ(r->memory_mb, 512);
  EXPECT_EQ(r->timeout_sec, 300);
  EXPECT_TRUE(r->secrets.empty());

  ASSERT_EQ(Call("PATCH", "/api/projects/proj",
                 json{{"template", "node"}, {"cpuCount", 2}, {"memoryMB", 1024}, {"egressAllowlist", {"a.com"}}})
                .status, 200);
  controlplane::SandboxRequest req;
  req.project = "proj";
  req.cpu_count = 8;
  r = cp_->resolver().ResolveSandbox(org->id, req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->template_id, "node");
  EXPECT_EQ(r->cpu_count, 8);  // explicit wins
  EXPECT_EQ(r->memory_mb, 1024);
  EXPECT_EQ(r->egress_allowlist, std::vector<std::string>{"a.com"});
  req.egress_allowlist = std::vector<std::string>{};
  EXPECT_TRUE(cp_->resolver().ResolveSandbox(org->id, req)->egress_allowlist.empty());

  req.cpu_count = 65;
  auto bad = cp_->resolver().ResolveSandbox(org->id, req);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("cpuCount"), std::string::npos);

  req.cpu_count.reset();
  req.envs = {{"1BAD", "x"}};
  EXPECT_NE(cp_->resolver().ResolveSandbox(org->id, req).error().message.find("envs"), std::string::npos);

  controlplane::SandboxRequest unknown;
  unknown.project = "missing";
  EXPECT_EQ(cp_->resolver().ResolveSandbox(org->id, unknown).error().code, ErrorCode::kNotFound);
  auto other = cp_->store().EnsureOrg("other");
  EXPECT_EQ(cp_->resolver().ResolveSandbox(other->id, req).error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace osb::testing
