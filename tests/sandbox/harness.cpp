#include "harness.h"

#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "sandbox/host_command.h"
#include "sandbox/network.h"

namespace osb::sandbox::testing {
namespace {

// Runs before main() and before any thread exists, so the whole process
// (and every tool it spawns) uses the private namespace.
const bool kInPrivateNetns = [] {
  if (geteuid() != 0) return false;
  if (unshare(CLONE_NEWNET) != 0) return false;
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  ioctl(s, SIOCGIFFLAGS, &ifr);
  ifr.ifr_flags |= IFF_UP;
  ioctl(s, SIOCSIFFLAGS, &ifr);
  close(s);
  return true;
}();

}  // namespace

bool IsRoot() { return geteuid() == 0 && kInPrivateNetns; }

std::string TestPrefix(const std::string& dflt) {
  const char* env = std::getenv("OSB_TEST_PREFIX");
  if (!env || !*env) return dflt;
  return std::string(env) + (dflt == "osbt" ? "" : dflt.substr(dflt.size() - 1));
}

std::string HostOutput(const std::vector<std::string>& argv) {
  auto r = RunHostCommand(argv);
  return r ? r->out : "";
}

TestListener::TestListener(const char* address, uint16_t port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  // Loopback only: the sandbox's allowed flows are DNATed to 127.0.0.1.
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, address, &a.sin_addr);
  a.sin_port = htons(port);
  int on = 1;
  setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(listen(fd_, 16), 0);
  socklen_t len = sizeof a;
  getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  wake_ = eventfd(0, EFD_CLOEXEC);
  thread_ = std::thread([this] {
    for (;;) {
      pollfd p[2] = {{fd_, POLLIN, 0}, {wake_, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) continue;
      if (p[1].revents) return;
      sockaddr_in peer{};
      socklen_t plen = sizeof peer;
      int c = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
      if (c < 0) continue;
      sockaddr_in orig{};
      socklen_t olen = sizeof orig;
      std::string origStr = "none";
      if (getsockopt(c, SOL_IP, SO_ORIGINAL_DST, &orig, &olen) == 0)
        origStr = std::string(inet_ntoa(orig.sin_addr)) + ":" + std::to_string(ntohs(orig.sin_port));
      std::string peerStr = inet_ntoa(peer.sin_addr);
      {
        std::lock_guard lock(mu_);
        peers_.push_back(peerStr);
      }
      std::string line = "peer=" + peerStr + " orig=" + origStr + "\n";
      ssize_t ignored = send(c, line.data(), line.size(), MSG_NOSIGNAL);
      (void)ignored;
      close(c);
    }
  });
}

TestListener::~TestListener() {
  uint64_t one = 1;
  ssize_t ignored = write(wake_, &one, sizeof one);
  (void)ignored;
  thread_.join();
  close(fd_);
  close(wake_);
}

std::vector<std::string> TestListener::Peers() const {
  std::lock_guard lock(mu_);
  return peers_;
}

void SandboxTest::SetUp() {
  if (!IsRoot()) GTEST_SKIP() << "needs root (namespaces, cgroups, nftables)";
  auto dns = DnsServer::Start({"127.0.0.1", 0, 5});
  ASSERT_TRUE(dns.ok()) << dns.error().message;
  dns_ = std::move(*dns);
  explicitProxy_ = std::make_unique<TestListener>();
  tlsProxy_ = std::make_unique<TestListener>();
  httpProxy_ = std::make_unique<TestListener>();
  // Listens on every address, so only the rules keep sandboxes away from it.
  forbidden_ = std::make_unique<TestListener>("0.0.0.0");
  auto rt = SandboxRuntime::Create(BaseConfig());
  ASSERT_TRUE(rt.ok()) << rt.error().message;
  runtime_ = std::move(*rt);
}

RuntimeConfig SandboxTest::BaseConfig() {
  RuntimeConfig cfg;
  cfg.namePrefix = prefix_;
  cfg.runDir = "/run/" + prefix_;
  cfg.initBinary = OSB_SANDBOX_INIT;
  cfg.dns = dns_.get();
  return cfg;
}

void SandboxTest::TearDown() {
  if (!runtime_) return;
  auto left = runtime_->List();
  runtime_.reset();  // destroys whatever a failed test left
  for (const auto& info : left) ExpectNoLeftovers(prefix_, info);
}

std::string SandboxTest::UniqueId(const std::string& tag) {
  static std::atomic<int> counter{0};
  return tag + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

SandboxSpec SandboxTest::MakeSpec(const std::string& tag) {
  SandboxSpec s;
  s.id = UniqueId(tag);
  s.cpuCount = 1;
  s.memoryMB = 128;
  s.pidsMax = 64;
  s.timeoutSec = 600;
  s.env = {{"GREETING", "hello"}, {"API_TOKEN", "osb_sealed_0123456789abcdef0123456789abcdef"}};
  s.network = {explicitProxy_->port(), tlsProxy_->port(), httpProxy_->port(), dns_->Port()};
  return s;
}

SandboxInfo SandboxTest::CreateOrDie(const SandboxSpec& spec) {
  auto r = runtime_->Create(spec);
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r.ok()) throw std::runtime_error("create failed: " + r.error().message);
  return *r;
}

ExecResult SandboxTest::Run(const std::string& id, std::vector<std::string> argv, uint64_t timeoutSec) {
  ExecRequest req;
  req.cmd = argv.at(0);
  req.args.assign(argv.begin() + 1, argv.end());
  req.timeoutSec = timeoutSec;
  auto r = runtime_->Exec(id, req);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return r.ok() ? *r : ExecResult{-1};
}

void SandboxTest::ExpectNoLeftovers(const std::string& prefix, const SandboxInfo& info) {
  auto names = NamesFor(prefix, info.id);
  EXPECT_EQ(HostOutput({"ip", "link"}).find(names.hostVeth), std::string::npos) << "veth left";
  EXPECT_EQ(HostOutput({"nft", "list", "tables"}).find(names.nftTable), std::string::npos) << "nft table left";
  EXPECT_NE(access(("/run/netns/" + names.netns).c_str(), F_OK), 0) << "netns left";
  for (const char* c : {"cpu", "memory", "pids"})
    EXPECT_NE(access(("/sys/fs/cgroup/" + std::string(c) + "/" + prefix + "-" + info.id).c_str(), F_OK), 0)
        << "cgroup left in " << c;
  EXPECT_NE(access(("/sys/fs/cgroup/" + prefix + "-" + info.id).c_str(), F_OK), 0) << "v2 cgroup left";
  std::ifstream mounts("/proc/mounts");
  std::string all((std::istreambuf_iterator<char>(mounts)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all.find("/run/" + prefix + "/" + info.id), std::string::npos) << "mount left";
  EXPECT_NE(access(("/run/" + prefix + "/" + info.id).c_str(), F_OK), 0) << "run dir left";
  if (info.initPid > 0) {
    EXPECT_NE(kill(static_cast<pid_t>(info.initPid), 0), 0) << "init still alive";
  }
}

}  // namespace osb::sandbox::testing
