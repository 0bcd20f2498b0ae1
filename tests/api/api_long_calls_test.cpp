// The real REST server with fake workers behind the WorkerClient seam: long
// execs never hold a handler thread (the server has 8), an org over its exec
// cap gets 429 + Retry-After, and a secret PUT reports its live refresh.
#include <chrono>
#include <future>
#include <thread>

#include "api_harness.h"
#include "fake_worker.h"

namespace osb::testing {
namespace {

using nlohmann::json;

constexpr int kExecs = 50;
constexpr std::chrono::milliseconds kRefreshDeadline{3000};

class LongCallsTest : public ApiTest {
 protected:
  api::SandboxPlaneOptions PlaneOptions() override {
    api::SandboxPlaneOptions o{"127.0.0.1:0", std::nullopt};
    o.connector = &workers_;
    o.limits.long_calls.per_org = kExecs;
    o.limits.refresh_deadline = kRefreshDeadline;
    return o;
  }

  std::string CreateSandbox() {
    auto r = Call("POST", "/api/sandboxes", json{{"project", "proj"}});
    EXPECT_EQ(r.status, 201) << r.body;
    return r.Json().value("sandboxID", "");
  }

  void SetUp() override {
    ApiTest::SetUp();
    ASSERT_TRUE(sandboxes_->workers().Register("w1", "w1:8082", 100).ok());
    ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "proj"}}).status, 201);
  }

  FakeWorkers workers_;
};

TEST_F(LongCallsTest, HealthAndOtherRoutesAnswerWhileManyExecsRun) {
  const std::string id = CreateSandbox();
  ASSERT_FALSE(id.empty());
  std::vector<std::future<HttpResult>> execs;
  // Declared after `execs`, so destroyed first: whatever fails below, the
  // blocked execs end before the futures are waited for.
  struct Release {
    FakeWorker* w;
    ~Release() { w->ReleaseExecs(); }
  } release{workers_.Get("w1").get()};
  for (int i = 0; i < kExecs; ++i) {
    execs.push_back(std::async(std::launch::async, [&] {
      return Call("POST", "/api/sandboxes/" + id + "/exec/run", json{{"cmd", "sleep"}, {"args", {"600"}}});
    }));
  }
  // All 50 are running at once on an 8-thread REST server: none holds a
  // handler thread.
  ASSERT_TRUE(workers_.Get("w1")->WaitForExecs(kExecs, std::chrono::seconds(20)))
      << "only " << workers_.Get("w1")->ExecsRunning() << " execs running";
  for (const char* path : {"/healthz", "/api/sandboxes", "/api/projects"}) {
    const auto start = std::chrono::steady_clock::now();
    auto r = Call("GET", path, "", path == std::string("/healthz") ? "" : kTestAdminKey);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_LT(ms.count(), 2000) << path;
  }
  // One more for this org: over its cap.
  auto over = Call("POST", "/api/sandboxes/" + id + "/exec/run", json{{"cmd", "sleep"}});
  EXPECT_EQ(over.status, 429) << over.body;
  EXPECT_EQ(over.headers["retry-after"], "1");
  EXPECT_NE(over.body.find("limit"), std::string::npos) << over.body;

  workers_.Get("w1")->ReleaseExecs();
  for (auto& f : execs) {
    auto r = f.get();
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Json().value("stdout", ""), "ran sleep");
  }
}

TEST_F(LongCallsTest, SecretPutReportsRefreshedAndFailedSandboxes) {
  ASSERT_EQ(Call("PUT", "/api/projects/proj/secrets/TOKEN", json{{"value", "first-value-123"}}).status, 200);
  const std::string a = CreateSandbox();
  const std::string b = CreateSandbox();
  auto put = Call("PUT", "/api/projects/proj/secrets/TOKEN", json{{"value", "second-value-456"}});
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.Json()["refreshed"], 2);
  EXPECT_EQ(put.Json()["refreshFailed"], json::array());
  EXPECT_EQ(workers_.Get("w1")->SecretIn(a, "TOKEN"), "second-value-456");

  workers_.Get("w1")->SetMode(FakeWorker::Mode::kUnreachable);
  put = Call("PUT", "/api/projects/proj/secrets/TOKEN", json{{"value", "third-value-789"}});
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.Json()["refreshed"], 0);
  auto failed = put.Json()["refreshFailed"].get<std::vector<std::string>>();
  std::sort(failed.begin(), failed.end());
  std::vector<std::string> expected{a, b};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(failed, expected);
  for (const char* v : {"first-value-123", "second-value-456", "third-value-789"}) ExpectNeverExposed(v);
}

// A worker that hangs on the push: more secret PUTs than the server has
// handler threads wait for it at once, and every other route still answers
// at once (the push runs on the refresh executor; no handler thread waits).
// Each PUT answers within the refresh deadline, naming the sandbox it could
// not refresh.
TEST_F(LongCallsTest, SecretPushesToAHangingWorkerHoldNoHandlerThread) {
  ASSERT_EQ(Call("PUT", "/api/projects/proj/secrets/TOKEN", json{{"value", "first-value-123"}}).status, 200);
  const std::string id = CreateSandbox();
  workers_.Get("w1")->SetMode(FakeWorker::Mode::kHang);
  constexpr int kPuts = 12;  // > the server's 8 handler threads
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::future<HttpResult>> puts;
  for (int i = 0; i < kPuts; ++i) {
    puts.push_back(std::async(std::launch::async, [this, i] {
      return Call("PUT", "/api/projects/proj/secrets/T" + std::to_string(i), json{{"value", "hang-value-" + std::to_string(i)}});
    }));
  }
  // Every PUT is in: the secrets are stored before the push starts.
  for (int i = 0; i < 200; ++i) {
    if (Call("GET", "/api/projects/proj/secrets").Json().size() == kPuts + 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const char* path : {"/healthz", "/api/projects", "/api/sandboxes"}) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = Call("GET", path);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_LT(ms.count(), 1000) << path << " waited for the pushes";
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, kRefreshDeadline) << "the checks above ran while pushes hung";
  for (auto& f : puts) {
    auto r = f.get();
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.Json()["refreshed"], 0);
    EXPECT_EQ(r.Json()["refreshFailed"], json::array({id}));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, kRefreshDeadline + std::chrono::milliseconds(2000))
      << "every PUT answered within the refresh deadline";
  workers_.Get("w1")->ReleaseExecs();
  for (int i = 0; i < kPuts; ++i) ExpectNeverExposed("hang-value-" + std::to_string(i));
}

}  // namespace
}  // namespace osb::testing
