// ReconcileLeftovers removes what a crashed worker left behind.
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

namespace osb::sandbox::testing {
namespace {

TEST(ReconcileTest, LeftoversOfACrashedWorkerAreRemoved) {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  // Own prefix: reconciling must not touch sandboxes of tests running in
  // parallel under "osbt".
  const std::string prefix = "osbr";
  RuntimeConfig cfg;
  cfg.namePrefix = prefix;
  cfg.runDir = "/run/" + prefix;
  cfg.initBinary = OSB_SANDBOX_INIT;
  SandboxInfo info;
  info.id = "crash-" + std::to_string(getpid());
  // Orphaned inits are re-parented to us, so we can reap them afterwards.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t worker = fork();
  if (worker == 0) {
    // The "worker": create a sandbox, then die without any cleanup.
    auto rt = SandboxRuntime::Create(cfg);
    if (!rt) _exit(2);
    SandboxSpec spec;
    spec.id = info.id;
    spec.network = {3128, 3129, 3130, 5353};
    auto created = (*rt)->Create(spec);
    if (!created) _exit(3);
    int64_t pid = created->initPid;
    ssize_t ignored = write(pipefd[1], &pid, sizeof pid);
    (void)ignored;
    _exit(0);
  }
  close(pipefd[1]);
  int64_t initPid = 0;
  ASSERT_EQ(read(pipefd[0], &initPid, sizeof initPid), static_cast<ssize_t>(sizeof initPid));
  close(pipefd[0]);
  int status = 0;
  waitpid(worker, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  info.initPid = initPid;
  auto names = NamesFor(prefix, info.id);
  ASSERT_NE(HostOutput({"nft", "list", "tables"}).find(names.nftTable), std::string::npos);
  ASSERT_EQ(access(("/run/netns/" + names.netns).c_str(), F_OK), 0);

  auto rt = SandboxRuntime::Create(cfg);
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  auto report = (*rt)->ReconcileLeftovers();
  EXPECT_TRUE(report.errors.empty()) << report.errors.front();
  EXPECT_GE(report.removed.size(), 4u);
  waitpid(static_cast<pid_t>(initPid), nullptr, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  SandboxTestAccess::ExpectNoLeftovers(prefix, info);
  // A second pass finds nothing.
  EXPECT_TRUE((*rt)->ReconcileLeftovers().removed.empty());
}

}  // namespace
}  // namespace osb::sandbox::testing
