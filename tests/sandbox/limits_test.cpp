// cgroup limits hold and the worker survives what the sandbox does.
#include <fstream>

#include "harness.h"

namespace osb::sandbox::testing {
namespace {

class LimitsTest : public SandboxTest {};

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

TEST_F(LimitsTest, LimitsAreWrittenToTheCgroup) {
  auto spec = MakeSpec("cg");
  spec.cpuCount = 1.5;
  spec.memoryMB = 96;
  spec.pidsMax = 40;
  auto info = CreateOrDie(spec);
  const std::string name = prefix_ + "-" + info.id;
  EXPECT_EQ(ReadFile("/sys/fs/cgroup/cpu/" + name + "/cpu.cfs_quota_us"), "150000\n");
  EXPECT_EQ(ReadFile("/sys/fs/cgroup/memory/" + name + "/memory.limit_in_bytes"), std::to_string(96 << 20) + "\n");
  if (access(("/sys/fs/cgroup/memory/" + name + "/memory.memsw.limit_in_bytes").c_str(), F_OK) == 0) {
    EXPECT_EQ(ReadFile("/sys/fs/cgroup/memory/" + name + "/memory.memsw.limit_in_bytes"),
              std::to_string(96 << 20) + "\n");
  }
  EXPECT_EQ(ReadFile("/sys/fs/cgroup/pids/" + name + "/pids.max"), "40\n");
  EXPECT_NE(ReadFile("/sys/fs/cgroup/pids/" + name + "/cgroup.procs"), "");
}

TEST_F(LimitsTest, AllocationLoopIsKilledAndTheSandboxSurvives) {
  auto spec = MakeSpec("oom");
  spec.memoryMB = 64;
  auto info = CreateOrDie(spec);
  auto r = Run(info.id, {"/usr/bin/python3", "-c", "a = []\nwhile True:\n    a.append(bytearray(1 << 20))\n"}, 120);
  EXPECT_FALSE(r.timedOut);
  EXPECT_EQ(r.exitCode, 137) << r.stderrData;  // SIGKILL from the cgroup's OOM killer
  EXPECT_EQ(Run(info.id, {"echo", "alive"}).stdoutData, "alive\n");
}

TEST_F(LimitsTest, ForkBombIsContainedByThePidsLimit) {
  auto spec = MakeSpec("bomb");
  spec.pidsMax = 32;
  auto info = CreateOrDie(spec);
  auto r = Run(info.id, {"bash", "-c", "bomb() { bomb | bomb & }; bomb; sleep 3; echo survived"}, 20);
  const std::string events = ReadFile("/sys/fs/cgroup/pids/" + prefix_ + "-" + info.id + "/pids.events");
  EXPECT_NE(events.find("max "), std::string::npos);
  EXPECT_EQ(events.find("max 0"), std::string::npos) << "the limit was never hit: " << events;
  // After the command ended its process group is gone and commands run again.
  EXPECT_EQ(Run(info.id, {"echo", "alive"}).stdoutData, "alive\n");
  EXPECT_EQ(ReadFile("/sys/fs/cgroup/pids/" + prefix_ + "-" + info.id + "/pids.max"), "32\n");
}

}  // namespace
}  // namespace osb::sandbox::testing
