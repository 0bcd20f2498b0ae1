// exec through the real gRPC WorkerClient against an in-process fake worker
// (a gRPC callback service that answers Exec only when the test releases
// it): ten times as many long execs as the REST server has handler threads
// run at once, /healthz and the other routes answer promptly meanwhile, and
// the server's thread count does not grow with the number of execs — neither
// a handler thread nor a long-call executor thread waits for a command
// (issue 12, item 4). The org's exec cap still answers 429 + Retry-After.
//
// The client side uses no threads either (raw sockets, requests written
// first, responses read after the release), so the process's thread count
// is the server's.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "api_harness.h"
#include "proto/worker.grpc.pb.h"

namespace osb::testing {
namespace {

using nlohmann::json;

constexpr unsigned kHandlerThreads = 8;            // api::HttpServerOptions' default, which the harness uses
constexpr int kExecs = 10 * kHandlerThreads;       // all at once
constexpr int kThreadSlack = kHandlerThreads / 2;  // gRPC may start a poller or two; never one per exec

int ThreadCount() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// A worker whose Exec of "sleep" completes only on Release(); everything
// else it answers at once. No thread of its own waits for anything.
class FakeGrpcWorker final : public v1::Worker::CallbackService {
 public:
  grpc::ServerUnaryReactor* CreateSandbox(grpc::CallbackServerContext* ctx, const v1::CreateSandboxRequest*,
                                          v1::SandboxInfo* info) override {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
    info->set_started_at_unix_ms(now);
    info->set_end_at_unix_ms(now + 3600 * 1000);
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerUnaryReactor* DestroySandbox(grpc::CallbackServerContext* ctx, const v1::DestroySandboxRequest*,
                                           v1::DestroySandboxResponse*) override {
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  grpc::ServerUnaryReactor* Exec(grpc::CallbackServerContext* ctx, const v1::ExecRequest* req,
                                 v1::ExecResponse* resp) override {
    auto* r = ctx->DefaultReactor();
    resp->set_stdout("ran " + req->cmd());
    if (req->cmd() != "sleep") {
      r->Finish(grpc::Status::OK);
      return r;
    }
    std::lock_guard lock(mu_);
    if (released_) {
      r->Finish(grpc::Status::OK);
    } else {
      held_.push_back(r);
      cv_.notify_all();
    }
    return r;
  }

  bool WaitForHeld(size_t n, std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return held_.size() >= n; });
  }
  size_t Held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  void Release() {
    std::vector<grpc::ServerUnaryReactor*> held;
    {
      std::lock_guard lock(mu_);
      released_ = true;
      held.swap(held_);
    }
    for (auto* r : held) r->Finish(grpc::Status::OK);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<grpc::ServerUnaryReactor*> held_;
  bool released_ = false;
};

// One HTTP/1.1 request written now, its response read later.
class PendingRequest {
 public:
  PendingRequest(uint16_t port, const std::string& target, const std::string& body) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    const std::string req = "POST " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " + kTestAdminKey +
                            "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                            "\r\nConnection: close\r\n\r\n" + body;
    sent_ = ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
  }
  ~PendingRequest() {
    if (fd_ >= 0) ::close(fd_);
  }
  PendingRequest(PendingRequest&& o) noexcept : fd_(o.fd_), sent_(o.sent_) { o.fd_ = -1; }
  bool sent() const { return sent_; }
  // The whole response (the server closes: Connection: close).
  std::string Read() {
    std::string out;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool sent_ = false;
};

class AsyncExecTest : public ApiTest {
 protected:
  api::SandboxPlaneOptions PlaneOptions() override {
    api::SandboxPlaneOptions o{"127.0.0.1:0", std::nullopt};  // the real gRPC WorkerClient
    o.limits.long_calls.per_org = kExecs;
    return o;
  }

  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &worker_port_);
    builder.RegisterService(&worker_);
    worker_server_ = builder.BuildAndStart();
    ASSERT_TRUE(worker_server_ && worker_port_ > 0);
    ApiTest::SetUp();
    ASSERT_TRUE(sandboxes_->workers().Register("w1", "127.0.0.1:" + std::to_string(worker_port_), 100).ok());
  }

  void TearDown() override {
    worker_.Release();  // the server's Stop waits for deferred responses
    ApiTest::TearDown();
    if (worker_server_) worker_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  FakeGrpcWorker worker_;
  int worker_port_ = 0;
  std::unique_ptr<grpc::Server> worker_server_;
};

TEST_F(AsyncExecTest, TenTimesTheHandlerThreadsOfLongExecsHoldNoThread) {
  auto created = Call("POST", "/api/sandboxes", json::object());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.Json().value("sandboxID", "");
  const std::string target = "/api/sandboxes/" + id + "/exec/run";
  // Warm up: the channel to the worker and gRPC's own threads exist before
  // the baseline is taken.
  auto warm = Call("POST", target, json{{"cmd", "echo"}});
  ASSERT_EQ(warm.status, 200) << warm.body;
  EXPECT_EQ(warm.Json().value("stdout", ""), "ran echo");
  const int baseline = ThreadCount();

  std::vector<PendingRequest> execs;
  execs.reserve(kExecs);
  for (int i = 0; i < kExecs; ++i) {
    execs.emplace_back(cp_->port(), target, json{{"cmd", "sleep"}, {"args", {"600"}}}.dump());
    ASSERT_TRUE(execs.back().sent()) << "request " << i;
  }
  ASSERT_TRUE(worker_.WaitForHeld(kExecs, std::chrono::seconds(30)))
      << "only " << worker_.Held() << " of " << kExecs << " execs reached the worker at once";
  const int during = ThreadCount();
  std::cout << "threads: " << baseline << " before, " << during << " with " << kExecs << " execs running\n";
  EXPECT_LE(during - baseline, kThreadSlack) << "the thread count grew with the number of running execs";

  for (const char* path : {"/healthz", "/readyz", "/api/sandboxes", "/api/projects"}) {
    const auto start = std::chrono::steady_clock::now();
    auto r = Call("GET", path, "", path == std::string("/healthz") || path == std::string("/readyz") ? "" : kTestAdminKey);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    EXPECT_LT(ms.count(), 1000) << path << " waited behind the execs";
  }
  // The org is at its cap: one more is a 429 with Retry-After, at once.
  auto over = Call("POST", target, json{{"cmd", "sleep"}});
  EXPECT_EQ(over.status, 429) << over.body;
  EXPECT_EQ(over.headers["retry-after"], "1");

  worker_.Release();
  for (auto& e : execs) {
    const std::string resp = e.Read();
    EXPECT_EQ(resp.rfind("HTTP/1.1 200", 0), 0u) << resp.substr(0, 200);
    EXPECT_NE(resp.find("ran sleep"), std::string::npos) << resp.substr(0, 400);
  }
  // Admission was released with each answer: the org can exec again.
  auto again = Call("POST", target, json{{"cmd", "echo"}});
  EXPECT_EQ(again.status, 200) << again.body;
}

// A worker that is not there: the asynchronous call fails by itself (no
// thread waits for a connection), as a 503 naming no secret.
TEST_F(AsyncExecTest, UnreachableWorkerAnswers503) {
  auto created = Call("POST", "/api/sandboxes", json::object());
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = created.Json().value("sandboxID", "");
  worker_server_->Shutdown(std::chrono::system_clock::now());
  auto r = Call("POST", "/api/sandboxes/" + id + "/exec/run", json{{"cmd", "echo"}});
  EXPECT_EQ(r.status, 503) << r.body;
}

}  // namespace
}  // namespace osb::testing
