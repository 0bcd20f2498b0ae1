// diskMB (issue 14 item 1): a project default and a per-sandbox override on
// POST /api/sandboxes, validated, resolved like memoryMB, sent to the worker
// as SandboxConfig.disk_mb and returned in the sandbox's JSON. Real REST
// server, fake workers behind the WorkerClient seam.
#include "api_harness.h"
#include "fake_worker.h"

namespace osb::testing {
namespace {

using nlohmann::json;

class DiskTest : public ApiTest {
 protected:
  api::SandboxPlaneOptions PlaneOptions() override {
    api::SandboxPlaneOptions o{"127.0.0.1:0", std::nullopt};
    o.connector = &workers_;
    return o;
  }
  void SetUp() override {
    ApiTest::SetUp();
    ASSERT_TRUE(sandboxes_->workers().Register("w1", "w1:8082", 100).ok());
  }
  // Creates a sandbox; returns its JSON after checking what the worker got.
  json Create(const json& body, int expect_disk) {
    auto r = Call("POST", "/api/sandboxes", body);
    EXPECT_EQ(r.status, 201) << r.body;
    json j = r.Json();
    const std::string id = j.value("sandboxID", "");
    EXPECT_EQ(j["diskMB"], expect_disk) << r.body;
    EXPECT_EQ(workers_.Get("w1")->DiskMb(id), expect_disk);
    EXPECT_EQ(Call("GET", "/api/sandboxes/" + id).Json()["diskMB"], expect_disk);
    return j;
  }

  FakeWorkers workers_;
};

TEST_F(DiskTest, ProjectDefaultIsStoredUpdatedAndReturned) {
  auto r = Call("POST", "/api/projects", json{{"name", "plain"}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.Json()["diskMB"], 1024);

  r = Call("POST", "/api/projects", json{{"name", "big"}, {"diskMB", 4096}});
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.Json()["diskMB"], 4096);
  EXPECT_EQ(Call("GET", "/api/projects/big").Json()["diskMB"], 4096);

  r = Call("PATCH", "/api/projects/big", json{{"cpuCount", 2}});
  EXPECT_EQ(r.Json()["diskMB"], 4096);  // untouched by a partial update
  r = Call("PATCH", "/api/projects/big", json{{"diskMB", 2048}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["diskMB"], 2048);
  EXPECT_EQ(Call("GET", "/api/projects/big").Json()["diskMB"], 2048);
}

TEST_F(DiskTest, ResolvedLikeTheOtherDefaultsAndSentToTheWorker) {
  ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "big"}, {"diskMB", 4096}}).status, 201);
  Create(json::object(), 1024);                                   // no project: the default
  Create(json{{"diskMB", 300}}, 300);                             // request only
  Create(json{{"project", "big"}}, 4096);                         // the project's default
  Create(json{{"project", "big"}, {"diskMB", 64}}, 64);           // the request wins
  Create(json{{"project", "big"}, {"diskMB", 65536}}, 65536);
}

TEST_F(DiskTest, OutOfRangeOrMistypedIsA400NamingTheField) {
  ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "p"}}).status, 201);
  for (const json& bad : {json(63), json(65537), json(0), json(-1), json("big"), json(1.5)}) {
    for (auto [method, path] : {std::pair{"POST", "/api/sandboxes"}, std::pair{"PATCH", "/api/projects/p"}}) {
      auto r = Call(method, path, json{{"diskMB", bad}});
      EXPECT_EQ(r.status, 400) << method << " " << path << " " << bad.dump() << ": " << r.body;
      EXPECT_NE(r.body.find("diskMB"), std::string::npos) << r.body;
    }
    auto r = Call("POST", "/api/projects", json{{"name", "q"}, {"diskMB", bad}});
    EXPECT_EQ(r.status, 400) << bad.dump() << ": " << r.body;
    EXPECT_NE(r.body.find("diskMB"), std::string::npos) << r.body;
  }
  EXPECT_EQ(Call("GET", "/api/projects/p").Json()["diskMB"], 1024);  // nothing changed
  EXPECT_TRUE(Call("GET", "/api/sandboxes").Json().empty());         // nothing created
}

}  // namespace
}  // namespace osb::testing
