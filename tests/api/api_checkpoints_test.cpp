// Checkpoints, forks, hibernate/wake and timeouts through the real REST
// server and store (SQLite and PostgreSQL), with fake workers behind the
// WorkerClient seam: placement on the checkpoint's worker, CURRENT secret
// values at every restore, the lifetime bound, status transitions, and
// that no API answer carries a value. (The real proxy path is
// tests/e2e/checkpoint_e2e_test.py.)
#include "api_harness.h"
#include "fake_worker.h"

namespace osb::testing {
namespace {

using nlohmann::json;

constexpr int kMaxLifetime = 7200;

class CheckpointsApiTest : public ApiTest {
 protected:
  api::SandboxPlaneOptions PlaneOptions() override {
    api::SandboxPlaneOptions o{"127.0.0.1:0", std::nullopt};
    o.connector = &workers_;
    o.limits.max_lifetime_sec = kMaxLifetime;
    return o;
  }

  void SetUp() override {
    ApiTest::SetUp();
    ASSERT_TRUE(sandboxes_->workers().Register("w1", "w1:8082", 100).ok());
    workers_.Get("w1")->UseRealClock();
    ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "proj"}}).status, 201);
    SetValue("value-one");
  }

  void SetValue(const std::string& v) {
    auto r = Call("PUT", "/api/projects/proj/secrets/API_KEY", json{{"value", v}});
    ASSERT_EQ(r.status, 200) << r.body;
  }

  std::string Create(const json& body) {
    auto r = Call("POST", "/api/sandboxes", body);
    EXPECT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(r.body.find("value-"), std::string::npos);
    return r.Json().value("sandboxID", "");
  }

  FakeWorkers workers_;
};

TEST_F(CheckpointsApiTest, ForksRestoreOnTheCheckpointsWorkerWithCurrentValuesAndTheSavedConfig) {
  const std::string parent = Create(json{{"project", "proj"}, {"envs", {{"MODE", "x"}}}, {"memoryMB", 256}});
  auto ck = Call("POST", "/api/sandboxes/" + parent + "/checkpoints", "");
  ASSERT_EQ(ck.status, 201) << ck.body;
  const std::string cid = ck.Json().value("checkpointID", "");
  EXPECT_EQ(ck.Json()["envNames"], json::array({"MODE"}));
  EXPECT_EQ(ck.Json()["memoryMB"], 256);
  EXPECT_EQ(ck.body.find("value-"), std::string::npos);
  ASSERT_TRUE(workers_.Get("w1")->HasCheckpoint(cid));
  // A second, emptier worker joins: forks still go where the files are.
  ASSERT_TRUE(sandboxes_->workers().Register("w2", "w2:8082", 100).ok());
  SetValue("value-two");
  for (int i = 0; i < 3; ++i) {
    auto r = Call("POST", "/api/sandboxes", json{{"fromCheckpoint", cid}, {"envs", {{"EXTRA", "1"}}}});
    ASSERT_EQ(r.status, 201) << r.body;
    const std::string child = r.Json().value("sandboxID", "");
    EXPECT_EQ(r.Json()["memoryMB"], 256);
    EXPECT_EQ(r.Json()["projectId"], Call("GET", "/api/projects/proj").Json()["id"]);
    EXPECT_EQ(workers_.Get("w1")->RestoredFrom(child), cid);
    EXPECT_EQ(workers_.Get("w1")->SecretIn(child, "API_KEY"), "value-two");  // resolved again
    EXPECT_EQ(workers_.Get("w1")->EnvsOf(child), (std::map<std::string, std::string>{{"EXTRA", "1"}, {"MODE", "x"}}));
  }
  EXPECT_TRUE(workers_.Get("w2")->Running().empty());
  auto list = Call("GET", "/api/sandboxes/" + parent + "/checkpoints");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.Json().size(), 1u);
  EXPECT_EQ(Call("GET", "/api/checkpoints").Json().size(), 1u);
  // Deleting the parent keeps its checkpoints; deleting one frees the worker's copy.
  EXPECT_EQ(Call("DELETE", "/api/sandboxes/" + parent).status, 204);
  EXPECT_EQ(Call("GET", "/api/sandboxes/" + parent + "/checkpoints").Json().size(), 1u);
  EXPECT_EQ(Call("DELETE", "/api/sandboxes/other/checkpoints/" + cid).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/sandboxes/" + parent + "/checkpoints/" + cid).status, 204);
  EXPECT_FALSE(workers_.Get("w1")->HasCheckpoint(cid));
  auto gone = Call("POST", "/api/sandboxes", json{{"fromCheckpoint", cid}});
  EXPECT_EQ(gone.status, 404);
  EXPECT_NE(gone.body.find("fromCheckpoint"), std::string::npos) << gone.body;
}

TEST_F(CheckpointsApiTest, BadInputIsAClear400) {
  EXPECT_EQ(Call("POST", "/api/sandboxes", json{{"fromCheckpoint", ""}}).status, 400);
  EXPECT_EQ(Call("POST", "/api/sandboxes", json{{"fromCheckpoint", 5}}).status, 400);
  const std::string id = Create(json{{"project", "proj"}});
  for (const json& body : {json{{"timeoutSec", "x"}}, json::object(), json{{"timeoutSec", 0}},
                           json{{"timeoutSec", 60}, {"other", 1}}}) {
    auto r = Call("POST", "/api/sandboxes/" + id + "/timeout", body);
    EXPECT_EQ(r.status, 400) << body.dump() << " " << r.body;
  }
  EXPECT_EQ(Call("POST", "/api/sandboxes/" + id + "/checkpoints", json{{"x", 1}}).status, 400);
  EXPECT_EQ(Call("POST", "/api/sandboxes/nope/checkpoints", "").status, 404);
  EXPECT_EQ(Call("POST", "/api/sandboxes/nope/timeout", json{{"timeoutSec", 5}}).status, 404);
}

TEST_F(CheckpointsApiTest, TimeoutExtendsWithinTheServersMaximumLifetime) {
  const std::string id = Create(json{{"project", "proj"}, {"timeout", 60}});
  auto ok = Call("POST", "/api/sandboxes/" + id + "/timeout", json{{"timeoutSec", kMaxLifetime - 100}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Call("GET", "/api/sandboxes/" + id).Json()["endAt"], ok.Json()["endAt"]);
  auto over = Call("POST", "/api/sandboxes/" + id + "/timeout", json{{"timeoutSec", kMaxLifetime + 100}});
  EXPECT_EQ(over.status, 400);
  EXPECT_NE(over.body.find("timeoutSec"), std::string::npos) << over.body;
  EXPECT_NE(over.body.find("max-sandbox-lifetime"), std::string::npos) << over.body;
  auto create = Call("POST", "/api/sandboxes", json{{"project", "proj"}, {"timeout", kMaxLifetime + 1}});
  EXPECT_EQ(create.status, 400);
  EXPECT_NE(create.body.find("timeout"), std::string::npos) << create.body;
}

TEST_F(CheckpointsApiTest, HibernateFreesTheWorkerAndWakeRestoresTheSameIdWithCurrentValues) {
  const std::string id = Create(json{{"project", "proj"}});
  auto h = Call("POST", "/api/sandboxes/" + id + "/hibernate", "");
  ASSERT_EQ(h.status, 200) << h.body;
  EXPECT_EQ(h.Json()["status"], "hibernated");
  EXPECT_TRUE(workers_.Get("w1")->Running().empty());  // nothing held on the worker
  EXPECT_EQ(Call("GET", "/api/sandboxes/" + id).Json()["status"], "hibernated");
  EXPECT_EQ(Call("POST", "/api/sandboxes/" + id + "/exec/run", json{{"cmd", "true"}}).status, 409);
  EXPECT_EQ(Call("POST", "/api/sandboxes/" + id + "/hibernate", "").status, 409);
  EXPECT_EQ(Call("POST", "/api/sandboxes/" + id + "/timeout", json{{"timeoutSec", 5}}).status, 409);
  EXPECT_TRUE(Call("GET", "/api/sandboxes/" + id + "/checkpoints").Json().empty());  // internal
  SetValue("value-three");
  auto w = Call("POST", "/api/sandboxes/" + id + "/wake", "");
  ASSERT_EQ(w.status, 200) << w.body;
  EXPECT_EQ(w.Json()["sandboxID"], id);
  EXPECT_EQ(w.Json()["status"], "running");
  EXPECT_EQ(workers_.Get("w1")->SecretIn(id, "API_KEY"), "value-three");
  const std::string used = workers_.Get("w1")->RestoredFrom(id);
  EXPECT_NE(used, "");
  EXPECT_FALSE(workers_.Get("w1")->HasCheckpoint(used));  // the hibernation copy is gone
  EXPECT_EQ(Call("POST", "/api/sandboxes/" + id + "/wake", "").status, 409);
  EXPECT_EQ(Call("POST", "/api/sandboxes/" + id + "/exec/run", json{{"cmd", "true"}}).status, 200);
  // Deleting a hibernated sandbox deletes its checkpoint.
  ASSERT_EQ(Call("POST", "/api/sandboxes/" + id + "/hibernate", "").status, 200);
  EXPECT_EQ(Call("DELETE", "/api/sandboxes/" + id).status, 204);
  EXPECT_EQ(Call("GET", "/api/sandboxes/" + id).status, 404);
}

// An image sandbox's checkpoint pins its image by digest and keeps its
// disk: forks and a wake ask the worker for that digest and diskMB, even
// after the template name points at another image.
TEST_F(CheckpointsApiTest, ImageSandboxCheckpointsPinTheImageDigestAndDiskMB) {
  workers_.Get("w1")->SetImage("busy", "sha256:1111");
  const std::string parent = Create(json{{"project", "proj"}, {"templateID", "busy"}, {"diskMB", 96}});
  auto ck = Call("POST", "/api/sandboxes/" + parent + "/checkpoints", "");
  ASSERT_EQ(ck.status, 201) << ck.body;
  EXPECT_EQ(ck.Json()["templateDigest"], "sha256:1111");
  EXPECT_EQ(ck.Json()["diskMB"], 96);
  const std::string cid = ck.Json().value("checkpointID", "");
  EXPECT_EQ(Call("GET", "/api/sandboxes/" + parent + "/checkpoints").Json()[0]["templateDigest"], "sha256:1111");
  workers_.Get("w1")->SetImage("busy", "sha256:2222");  // re-imported under the same name
  auto r = Call("POST", "/api/sandboxes", json{{"fromCheckpoint", cid}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string child = r.Json().value("sandboxID", "");
  EXPECT_EQ(workers_.Get("w1")->TemplateDigest(child), "sha256:1111");
  EXPECT_EQ(workers_.Get("w1")->DiskMb(child), 96);
  EXPECT_EQ(r.Json()["diskMB"], 96);
  // A fork may ask for a bigger disk.
  auto big = Call("POST", "/api/sandboxes", json{{"fromCheckpoint", cid}, {"diskMB", 128}});
  ASSERT_EQ(big.status, 201) << big.body;
  EXPECT_EQ(workers_.Get("w1")->DiskMb(big.Json().value("sandboxID", "")), 128);
  // Hibernate + wake: the same image and disk.
  ASSERT_EQ(Call("POST", "/api/sandboxes/" + parent + "/hibernate", "").status, 200);
  ASSERT_EQ(Call("POST", "/api/sandboxes/" + parent + "/wake", "").status, 200);
  EXPECT_EQ(workers_.Get("w1")->TemplateDigest(parent), "sha256:1111");
  EXPECT_EQ(workers_.Get("w1")->DiskMb(parent), 96);
  // A base sandbox's checkpoint pins nothing.
  const std::string base = Create(json{{"project", "proj"}});
  auto bck = Call("POST", "/api/sandboxes/" + base + "/checkpoints", "");
  ASSERT_EQ(bck.status, 201);
  EXPECT_TRUE(bck.Json()["templateDigest"].is_null());
  EXPECT_EQ(bck.Json()["diskMB"], 0);
}

}  // namespace
}  // namespace osb::testing
