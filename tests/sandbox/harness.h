// Shared fixture for the sandbox integration tests.
//
// The test process moves itself into a private network namespace before
// main() (harness.cpp), so the "host" side of every veth, the nft tables,
// the test listeners and the DNS responder live in a namespace that has
// only loopback and our veths: nothing can reach any other address.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/dns_server.h"
#include "sandbox/network.h"
#include "sandbox/runtime.h"

namespace osb::sandbox::testing {

bool IsRoot();

// Name prefix of a test's host objects: `dflt`, or with OSB_TEST_PREFIX set
// (to run beside another copy of these tests), that value plus the last
// letter of `dflt` unless dflt is the fixture's "osbt".
std::string TestPrefix(const std::string& dflt);

// A TCP listener on <address>:<ephemeral> in the test's netns (loopback
// by default, like the worker's proxy listeners). Each accepted
// connection gets one line "peer=<ip> orig=<ip>:<port>\n" (orig from
// SO_ORIGINAL_DST) and is closed; the peers are recorded.
class TestListener {
 public:
  explicit TestListener(const char* address = "127.0.0.1", uint16_t port = 0);
  ~TestListener();
  uint16_t port() const { return port_; }
  std::vector<std::string> Peers() const;

 private:
  int fd_ = -1;
  int wake_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> peers_;
};

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The config SetUp uses (prefix, run dir, init binary, DNS server).
  RuntimeConfig BaseConfig();
  static std::string UniqueId(const std::string& tag);
  SandboxSpec MakeSpec(const std::string& tag);
  // Creates a sandbox and remembers it for cleanup; fails the test on error.
  SandboxInfo CreateOrDie(const SandboxSpec& spec);
  ExecResult Run(const std::string& id, std::vector<std::string> argv, uint64_t timeoutSec = 30);
  // Asserts that no host object of sandbox `info` is left.
  static void ExpectNoLeftovers(const std::string& prefix, const SandboxInfo& info);

  std::unique_ptr<DnsServer> dns_;
  std::unique_ptr<TestListener> explicitProxy_, tlsProxy_, httpProxy_, forbidden_;
  std::unique_ptr<SandboxRuntime> runtime_;
  std::string prefix_ = TestPrefix("osbt");
};

// Lets plain TESTs use the fixture's leftover check.
struct SandboxTestAccess : SandboxTest {
  using SandboxTest::ExpectNoLeftovers;
  void TestBody() override {}
};

// Output of a host command (stdout+stderr).
std::string HostOutput(const std::vector<std::string>& argv);

}  // namespace osb::sandbox::testing
