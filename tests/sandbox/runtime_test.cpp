// Exec semantics: identity, env, cwd, stdin, exit codes, timeout, output caps.
#include <signal.h>

#include <condition_variable>
#include <fstream>
#include <future>
#include <map>
#include <sstream>

#include "harness.h"

namespace osb::sandbox::testing {
namespace {

class RuntimeTest : public SandboxTest {};

TEST_F(RuntimeTest, CommandsRunAsTheUnprivilegedSandboxUser) {
  auto info = CreateOrDie(MakeSpec("id"));
  auto r = Run(info.id, {"id"});
  EXPECT_EQ(r.exitCode, 0) << r.stderrData;
  EXPECT_EQ(r.stdoutData, "uid=1000(sandbox) gid=1000(sandbox) groups=1000(sandbox)\n");
  auto host = Run(info.id, {"hostname"});
  EXPECT_EQ(host.stdoutData, info.id + "\n");
}

TEST_F(RuntimeTest, EnvIsExactlyTheGivenOnePlusDocumentedDefaults) {
  auto spec = MakeSpec("env");
  // Realistic size: the host's system bundle plus a (fake) worker CA.
  std::ifstream system("/etc/ssl/certs/ca-certificates.crt");
  spec.caBundlePem = std::string((std::istreambuf_iterator<char>(system)), std::istreambuf_iterator<char>()) +
                     "-----BEGIN CERTIFICATE-----\nTESTCA\n-----END CERTIFICATE-----\n";
  auto info = CreateOrDie(spec);
  ExecRequest req;
  req.cmd = "/usr/bin/env";
  req.env = {{"EXTRA", "1"}, {"GREETING", "overridden"}};
  auto r = runtime_->Exec(info.id, req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::map<std::string, std::string> got;
  std::istringstream lines(r->stdoutData);
  for (std::string line; std::getline(lines, line);) got[line.substr(0, line.find('='))] = line.substr(line.find('=') + 1);
  const std::string ca = "/etc/ssl/certs/ca-certificates.crt";
  std::map<std::string, std::string> want = {
      {"GREETING", "overridden"},
      {"API_TOKEN", spec.env["API_TOKEN"]},
      {"EXTRA", "1"},
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", "/home/sandbox"},
      {"SSL_CERT_FILE", ca},
      {"REQUESTS_CA_BUNDLE", ca},
      {"NODE_EXTRA_CA_CERTS", ca}};
  const std::string proxy = "http://" + info.hostAddress + ":" + std::to_string(explicitProxy_->port());
  for (const char* k : {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"}) want[k] = proxy;
  for (const char* k : {"NO_PROXY", "no_proxy"}) want[k] = "localhost,127.0.0.1,::1";
  EXPECT_EQ(got, want);
  auto bundle = Run(info.id, {"cat", ca});
  EXPECT_TRUE(bundle.stdoutData == spec.caBundlePem) << "bundle differs, " << bundle.stdoutData.size() << " bytes";
  // OpenSSL-based tools inside find it through SSL_CERT_FILE.
  auto py = Run(info.id, {"/usr/bin/python3", "-c", "import ssl; print(ssl.get_default_verify_paths().cafile)"});
  EXPECT_EQ(py.stdoutData, ca + "\n") << py.stderrData;
}

TEST_F(RuntimeTest, CwdStdinAndExitCodes) {
  auto info = CreateOrDie(MakeSpec("cwd"));
  ExecRequest req;
  req.cmd = "pwd";
  req.cwd = "/tmp";
  auto r = runtime_->Exec(info.id, req);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stdoutData, "/tmp\n");
  EXPECT_EQ(Run(info.id, {"pwd"}).stdoutData, "/home/sandbox\n");

  EXPECT_EQ(Run(info.id, {"sh", "-c", "echo out; echo err >&2; exit 7"}).exitCode, 7);
  auto both = Run(info.id, {"sh", "-c", "echo out; echo err >&2"});
  EXPECT_EQ(both.stdoutData, "out\n");
  EXPECT_EQ(both.stderrData, "err\n");

  ExecRequest cat;
  cat.cmd = "cat";
  cat.stdinData = "from stdin";
  auto c = runtime_->Exec(info.id, cat);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->stdoutData, "from stdin");

  auto missing = Run(info.id, {"no-such-command"});
  EXPECT_EQ(missing.exitCode, 127);
  EXPECT_NE(missing.stderrData.find("no-such-command"), std::string::npos);
  auto killed = Run(info.id, {"sh", "-c", "kill -9 $$"});
  EXPECT_EQ(killed.exitCode, 137);
  EXPECT_EQ(killed.termSignal, 9);
  ExecRequest badCwd;
  badCwd.cmd = "true";
  badCwd.cwd = "/nonexistent";
  EXPECT_EQ(runtime_->Exec(info.id, badCwd)->exitCode, 126);
}

TEST_F(RuntimeTest, TimeoutKillsTheCommandAndItsGroup) {
  auto info = CreateOrDie(MakeSpec("tmo"));
  auto r = Run(info.id, {"sh", "-c", "sleep 300 & echo started; sleep 300"}, 1);
  EXPECT_TRUE(r.timedOut);
  EXPECT_EQ(r.exitCode, 124);
  EXPECT_EQ(r.stdoutData, "started\n");
  // Nothing of it survives: only this ps (and no sleep) runs as the user.
  // (Live processes only: a killed one may be a zombie for a moment.)
  auto ps = Run(info.id, {"sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null | grep -v ') Z '"});
  EXPECT_EQ(ps.stdoutData.find("(sleep)"), std::string::npos) << ps.stdoutData;
  EXPECT_EQ(Run(info.id, {"echo", "still-alive"}).stdoutData, "still-alive\n");
}

TEST_F(RuntimeTest, AProcessThatEscapesItsGroupCannotHoldExecOpen) {
  auto info = CreateOrDie(MakeSpec("escape"));
  // setsid leaves the process group init kills; the sleeper keeps stdout.
  // (The marker file is written after setsid, so the shell exits only once
  // the sleeper has left the group.)
  auto r = Run(info.id, {"sh", "-c",
                         "setsid sh -c 'touch /tmp/escaped; exec sleep 300' & "
                         "while [ ! -e /tmp/escaped ]; do :; done; echo bye"},
               120);
  EXPECT_FALSE(r.timedOut);
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_EQ(r.stdoutData, "bye\n");
  // It still lives inside the sandbox (and dies with it).
  auto ps = Run(info.id, {"sh", "-c", "cat /proc/[0-9]*/comm"});
  EXPECT_NE(ps.stdoutData.find("sleep"), std::string::npos);
}

TEST_F(RuntimeTest, OutputIsCappedAndMarkedTruncated) {
  auto info = CreateOrDie(MakeSpec("trunc"));
  auto r = Run(info.id, {"sh", "-c", "head -c 3000000 /dev/zero; head -c 1500000 /dev/zero >&2; echo done >&2"});
  EXPECT_EQ(r.exitCode, 0);
  EXPECT_EQ(r.stdoutData.size(), kMaxOutputBytes);
  EXPECT_EQ(r.stderrData.size(), kMaxOutputBytes);
  EXPECT_TRUE(r.stdoutTruncated);
  EXPECT_TRUE(r.stderrTruncated);
  auto small = Run(info.id, {"echo", "x"});
  EXPECT_FALSE(small.stdoutTruncated);
}

TEST_F(RuntimeTest, ConcurrentExecsInOneSandbox) {
  auto info = CreateOrDie(MakeSpec("conc"));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      ExecRequest req;
      req.cmd = "sh";
      req.args = {"-c", "sleep 0.2; echo " + std::to_string(i)};
      auto r = runtime_->Exec(info.id, req);
      if (r.ok() && r->stdoutData == std::to_string(i) + "\n") ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
}

TEST_F(RuntimeTest, ErrorsForUnknownAndDuplicateSandboxes) {
  ExecRequest req;
  req.cmd = "true";
  EXPECT_EQ(runtime_->Exec("missing", req).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(runtime_->Destroy("missing").error().code, ErrorCode::kNotFound);
  auto spec = MakeSpec("dup");
  CreateOrDie(spec);
  EXPECT_EQ(runtime_->Create(spec).error().code, ErrorCode::kAlreadyExists);
  auto bad = MakeSpec("bad");
  bad.id = "Bad_Id";
  EXPECT_EQ(runtime_->Create(bad).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(RuntimeTest, DestroyLeavesNothingBehind) {
  auto info = CreateOrDie(MakeSpec("gone"));
  EXPECT_EQ(Run(info.id, {"true"}).exitCode, 0);
  ASSERT_EQ(runtime_->List().size(), 1u);
  auto names = NamesFor(prefix_, info.id);
  EXPECT_NE(HostOutput({"nft", "list", "tables"}).find(names.nftTable), std::string::npos);
  ASSERT_TRUE(runtime_->Destroy(info.id).ok());
  EXPECT_TRUE(runtime_->List().empty());
  ExpectNoLeftovers(prefix_, info);
}

TEST_F(RuntimeTest, SandboxIsKilledAtItsTimeout) {
  std::mutex mu;
  std::condition_variable cv;
  std::string endedId, endedReason;
  runtime_.reset();
  RuntimeConfig cfg = BaseConfig();
  cfg.onSandboxEnded = [&](const std::string& id, const std::string& reason) {
    std::lock_guard lock(mu);
    endedId = id;
    endedReason = reason;
    cv.notify_all();
  };
  runtime_ = SandboxRuntime::Create(cfg).value();
  auto spec = MakeSpec("life");
  spec.timeoutSec = 2;
  auto info = CreateOrDie(spec);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return !endedId.empty(); }));
  }
  EXPECT_EQ(endedId, info.id);
  EXPECT_EQ(endedReason, "timeout");
  EXPECT_TRUE(runtime_->List().empty());
  ExpectNoLeftovers(prefix_, info);
}

}  // namespace
}  // namespace osb::sandbox::testing

namespace osb::sandbox::testing {
namespace {

TEST_F(RuntimeTest, DestroyDuringExecEndsTheExecWithAnError) {
  auto info = CreateOrDie(MakeSpec("midexec"));
  auto pending = std::async(std::launch::async, [&] {
    ExecRequest req;
    req.cmd = "sleep";
    req.args = {"600"};
    req.timeoutSec = 600;
    return runtime_->Exec(info.id, req);
  });
  // Destroy once the command is running (poll for it, bounded).
  const std::string procs = "/sys/fs/cgroup/pids/" + prefix_ + "-" + info.id + "/cgroup.procs";
  for (int i = 0; i < 1000; ++i) {
    std::ifstream f(procs);
    int n = 0;
    for (std::string line; std::getline(f, line);) ++n;
    if (n >= 2) break;  // init + sleep
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(runtime_->Destroy(info.id).ok());
  auto r = pending.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  ExpectNoLeftovers(prefix_, info);
}

TEST_F(RuntimeTest, ASandboxWhoseInitDiesIsCleanedUpAndReported) {
  std::mutex mu;
  std::condition_variable cv;
  std::string reason;
  runtime_.reset();
  auto cfg = BaseConfig();
  cfg.onSandboxEnded = [&](const std::string&, const std::string& why) {
    std::lock_guard lock(mu);
    reason = why;
    cv.notify_all();
  };
  runtime_ = SandboxRuntime::Create(cfg).value();
  auto info = CreateOrDie(MakeSpec("dies"));
  kill(static_cast<pid_t>(info.initPid), SIGKILL);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return !reason.empty(); }));
  }
  EXPECT_EQ(reason, "exited");
  EXPECT_TRUE(runtime_->List().empty());
  ExpectNoLeftovers(prefix_, info);
}

}  // namespace
}  // namespace osb::sandbox::testing
