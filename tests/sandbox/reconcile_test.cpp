// ReconcileLeftovers after a worker crash: re-adopts running sandboxes, or
// removes everything when asked not to adopt.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>

#include "harness.h"

namespace osb::sandbox::testing {
namespace {

// A port free for both TCP and UDP on 127.0.0.1 (bound, read, released).
uint16_t FreePort() {
  for (;;) {
    int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(t, reinterpret_cast<sockaddr*>(&a), &len);
    int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool udpFree = bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(u);
    close(t);
    if (udpFree) return ntohs(a.sin_port);
  }
}

// Runs a "worker" in a forked child that creates a runtime, runs
// `create_sandbox` (which returns the sandbox's init pid, or <= 0 on
// failure) and then dies without any cleanup, as a crashed worker would.
// Returns the init pid (0 after a reported failure). Call with no other
// threads running: a child of a multi-threaded process can deadlock.
int64_t RunCrashingWorker(const RuntimeConfig& cfg, const std::function<int64_t(SandboxRuntime&)>& create_sandbox) {
  int pipefd[2];
  if (pipe(pipefd) != 0) {
    ADD_FAILURE() << "pipe failed";
    return 0;
  }
  pid_t worker = fork();
  if (worker == 0) {
    alarm(120);  // a stuck child fails the test instead of hanging it
    auto rt = SandboxRuntime::Create(cfg);
    if (!rt) _exit(2);
    const int64_t pid = create_sandbox(**rt);
    if (pid <= 0) _exit(3);
    ssize_t ignored = write(pipefd[1], &pid, sizeof pid);
    (void)ignored;
    _exit(0);
  }
  close(pipefd[1]);
  int64_t init_pid = 0;
  const bool got = read(pipefd[0], &init_pid, sizeof init_pid) == static_cast<ssize_t>(sizeof init_pid);
  close(pipefd[0]);
  int status = 0;
  waitpid(worker, &status, 0);
  if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ADD_FAILURE() << "crashing worker failed, status " << status;
    return 0;
  }
  return init_pid;
}

TEST(ReconcileTest, LeftoversOfACrashedWorkerAreRemoved) {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  // Own prefix: reconciling must not touch sandboxes of tests running in
  // parallel under "osbt".
  const std::string prefix = TestPrefix("osbr");
  RuntimeConfig cfg;
  cfg.namePrefix = prefix;
  cfg.runDir = "/run/" + prefix;
  cfg.initBinary = OSB_SANDBOX_INIT;
  SandboxInfo info;
  info.id = "crash-" + std::to_string(getpid());
  // Orphaned inits are re-parented to us, so we can reap them afterwards.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  // The "worker": create a sandbox, then die without any cleanup.
  const int64_t initPid = RunCrashingWorker(cfg, [&](SandboxRuntime& rt) -> int64_t {
    SandboxSpec spec;
    spec.id = info.id;
    spec.network = {3128, 3129, 3130, 5353};
    auto created = rt.Create(spec);
    return created ? created->initPid : 0;
  });
  ASSERT_GT(initPid, 0);
  info.initPid = initPid;
  auto names = NamesFor(prefix, info.id);
  ASSERT_NE(HostOutput({"nft", "list", "tables"}).find(names.nftTable), std::string::npos);
  ASSERT_EQ(access(("/run/netns/" + names.netns).c_str(), F_OK), 0);

  auto rt = SandboxRuntime::Create(cfg);
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  auto report = (*rt)->ReconcileLeftovers(/*adoptRunning=*/false);
  EXPECT_TRUE(report.adopted.empty());
  EXPECT_TRUE(report.errors.empty()) << report.errors.front();
  EXPECT_GE(report.removed.size(), 4u);
  waitpid(static_cast<pid_t>(initPid), nullptr, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  SandboxTestAccess::ExpectNoLeftovers(prefix, info);
  // A second pass finds nothing.
  EXPECT_TRUE((*rt)->ReconcileLeftovers().removed.empty());
}

TEST(ReconcileTest, ARestartedWorkerReadoptsRunningSandboxes) {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  const std::string prefix = TestPrefix("osba");  // own prefix, see above
  // No thread may exist when we fork (a child of a multi-threaded process
  // can deadlock on locks held by other threads), so the listeners start
  // after the fork, on ports picked now. Nothing else binds in this netns.
  const uint16_t dnsPort = FreePort(), proxyPort = FreePort();
  RuntimeConfig cfg;
  cfg.namePrefix = prefix;
  cfg.runDir = "/run/" + prefix;
  cfg.initBinary = OSB_SANDBOX_INIT;
  const std::string id = "restart-" + std::to_string(getpid());
  const std::string token = "osb_sealed_00112233445566778899aabbccddeeff";
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  // The first worker: a sandbox with state, then a crash.
  const int64_t initPid = RunCrashingWorker(cfg, [&](SandboxRuntime& rt) -> int64_t {
    SandboxSpec spec;
    spec.id = id;
    spec.env = {{"TOKEN", token}};
    spec.dnsAllowlist = {"api.example.com"};
    spec.network = {proxyPort, proxyPort, proxyPort, dnsPort};
    auto created = rt.Create(spec);
    if (!created) return 0;
    ExecRequest req;
    req.cmd = "sh";
    req.args = {"-c", "echo kept > /tmp/state"};
    auto r = rt.Exec(id, req);
    if (!r || r->exitCode != 0) return 0;
    return created->initPid;
  });
  ASSERT_GT(initPid, 0);

  // The restarted worker, listening on the same ports as the first one.
  auto dns = DnsServer::Start({"127.0.0.1", dnsPort, 5});
  ASSERT_TRUE(dns.ok()) << dns.error().message;
  TestListener proxy("127.0.0.1", proxyPort);
  cfg.dns = dns->get();
  auto rt = SandboxRuntime::Create(cfg);
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  auto report = (*rt)->ReconcileLeftovers();
  ASSERT_EQ(report.adopted.size(), 1u);
  EXPECT_TRUE(report.removed.empty());
  const SandboxInfo info = report.adopted[0];
  EXPECT_EQ(info.id, id);
  EXPECT_EQ(info.initPid, initPid);
  ASSERT_EQ((*rt)->List().size(), 1u);
  auto run = [&](std::vector<std::string> argv) {
    ExecRequest req;
    req.cmd = argv[0];
    req.args.assign(argv.begin() + 1, argv.end());
    auto r = (*rt)->Exec(id, req);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : ExecResult{-1};
  };
  EXPECT_EQ(run({"cat", "/tmp/state"}).stdoutData, "kept\n");        // same processes and files
  // Its host uid range is still its own: a sandbox created now gets another.
  std::ifstream status("/proc/" + std::to_string(initPid) + "/status");
  const std::string st((std::istreambuf_iterator<char>(status)), std::istreambuf_iterator<char>());
  EXPECT_NE(st.find("\nUid:\t" + std::to_string(info.hostIdBase) + "\t"), std::string::npos) << st;
  SandboxSpec second;
  second.id = id + "-2";
  second.network = {proxyPort, proxyPort, proxyPort, dnsPort};
  auto created = (*rt)->Create(second);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_NE(created->hostIdBase, info.hostIdBase) << "two sandboxes share a host uid range";
  EXPECT_TRUE((*rt)->Destroy(second.id).ok());
  EXPECT_EQ(run({"sh", "-c", "echo $TOKEN"}).stdoutData, token + "\n");  // same env, same token
  auto resolved = run({"getent", "ahostsv4", "api.example.com"});     // DNS registered again
  EXPECT_EQ(resolved.stdoutData.rfind(info.hostAddress + " ", 0), 0u) << resolved.stdoutData;
  EXPECT_EQ(run({"getent", "ahostsv4", "other.example.com"}).exitCode, 2);
  auto viaProxy = run({"/usr/bin/python3", "-c",
                       "import socket\nprint(socket.create_connection(('203.0.113.9', 443), 3).makefile().readline().strip())\n"});
  EXPECT_EQ(viaProxy.stdoutData, "peer=" + info.sandboxAddress + " orig=203.0.113.9:443\n") << viaProxy.stderrData;

  ASSERT_TRUE((*rt)->Destroy(id).ok());
  waitpid(static_cast<pid_t>(initPid), nullptr, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  SandboxTestAccess::ExpectNoLeftovers(prefix, info);
}

}  // namespace
}  // namespace osb::sandbox::testing
