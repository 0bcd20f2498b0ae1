// Key material out of core dumps, keys out of the environment, and the
// process flag that keeps other processes out (common/secure_memory.h).
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/secure_memory.h"

extern char** environ;

namespace osb {
namespace {

// The VmFlags line of the mapping that contains `p`, from /proc/self/smaps.
std::string VmFlagsOf(const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      inside = addr >= lo && addr < hi;
    } else if (inside && line.starts_with("VmFlags:")) {
      return line;
    }
  }
  return "";
}

TEST(SecureMemory, DontDumpAllocatorPagesAreExcludedFromCoreDumps) {
  std::vector<uint64_t, DontDumpAllocator<uint64_t>> keys(4, 0x5eed);
  const std::string flags = VmFlagsOf(keys.data());
  ASSERT_FALSE(flags.empty());
  EXPECT_NE(flags.find(" dd"), std::string::npos) << flags;
  // Ordinary heap memory is not (the check can tell the difference).
  std::vector<uint64_t> plain(4, 1);
  EXPECT_EQ(VmFlagsOf(plain.data()).find(" dd"), std::string::npos);
}

TEST(SecureMemory, RemoveFromEnvironmentUnsetsAndWipesTheBytes) {
  ASSERT_EQ(setenv("OSB_TEST_SECRET_ENV", "value-to-forget-0123", 1), 0);
  char* entry = nullptr;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "OSB_TEST_SECRET_ENV=", 20) == 0) entry = *e;
  }
  ASSERT_NE(entry, nullptr);
  const size_t len = std::strlen(entry);
  RemoveFromEnvironment("OSB_TEST_SECRET_ENV");
  EXPECT_EQ(getenv("OSB_TEST_SECRET_ENV"), nullptr);
  for (size_t i = 0; i < len; ++i) EXPECT_EQ(entry[i], '\0') << "byte " << i << " survived";
  RemoveFromEnvironment("OSB_TEST_NOT_SET_AT_ALL");  // absent: nothing happens
}

TEST(SecureMemory, MakeProcessUndumpableClearsTheDumpableFlag) {
  const pid_t child = fork();
  if (child == 0) {
    const bool ok = MakeProcessUndumpable();
    _exit(ok && prctl(PR_GET_DUMPABLE) == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace osb
