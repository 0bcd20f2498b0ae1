// The sandbox's network: only the proxy ports, 443/80 redirects and DNS.
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <future>

#include "harness.h"

namespace osb::sandbox::testing {
namespace {

class NetworkTest : public SandboxTest {};

// Connects to host:port from inside and prints the first line received.
const char* kConnect =
    "import socket, sys\n"
    "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n"
    "print(s.makefile().readline().strip())\n";

ExecResult Connect(SandboxTest* t, SandboxRuntime& rt, const std::string& id, const std::string& host, uint16_t port) {
  (void)t;
  ExecRequest req;
  req.cmd = "/usr/bin/python3";
  req.args = {"-c", kConnect, host, std::to_string(port)};
  req.timeoutSec = 30;
  auto r = rt.Exec(id, req);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : ExecResult{-1};
}

TEST_F(NetworkTest, Ports443And80AreRedirectedToTheTransparentListeners) {
  auto info = CreateOrDie(MakeSpec("redir"));
  // 203.0.113.7 (TEST-NET-3) never leaves: the redirect delivers locally,
  // and this test's namespace has no route anywhere else.
  auto tls = Connect(this, *runtime_, info.id, "203.0.113.7", 443);
  EXPECT_EQ(tls.stdoutData, "peer=" + info.sandboxAddress + " orig=203.0.113.7:443\n") << tls.stderrData;
  auto http = Connect(this, *runtime_, info.id, "203.0.113.8", 80);
  EXPECT_EQ(http.stdoutData, "peer=" + info.sandboxAddress + " orig=203.0.113.8:80\n") << http.stderrData;
  auto proxy = Connect(this, *runtime_, info.id, info.hostAddress, explicitProxy_->port());
  EXPECT_EQ(proxy.stdoutData.rfind("peer=" + info.sandboxAddress + " ", 0), 0u) << proxy.stderrData;
  // The proxy named by the env the runtime sets is that same listener.
  auto viaEnv = Run(info.id, {"/usr/bin/python3", "-c",
                              "import os, socket, urllib.parse\n"
                              "u = urllib.parse.urlparse(os.environ['HTTPS_PROXY'])\n"
                              "s = socket.create_connection((u.hostname, u.port), timeout=3)\n"
                              "print(s.makefile().readline().strip())\n"});
  EXPECT_EQ(viaEnv.stdoutData.rfind("peer=" + info.sandboxAddress + " ", 0), 0u) << viaEnv.stderrData;
  EXPECT_EQ(explicitProxy_->Peers().size(), 2u);
}

TEST_F(NetworkTest, EverythingElseIsDropped) {
  auto info = CreateOrDie(MakeSpec("drop"));
  auto r = Connect(this, *runtime_, info.id, info.hostAddress, forbidden_->port());
  EXPECT_NE(r.exitCode, 0);
  auto other = Connect(this, *runtime_, info.id, "203.0.113.7", 8443);
  EXPECT_NE(other.exitCode, 0);
  auto loop = Connect(this, *runtime_, info.id, "127.0.0.1", forbidden_->port());  // its own loopback
  EXPECT_NE(loop.exitCode, 0);
  EXPECT_TRUE(forbidden_->Peers().empty());
  // ICMP echo sockets are not available to the sandbox user (the new
  // netns keeps the default ping_group_range), and raw sockets need caps.
  auto icmp = Run(info.id, {"/usr/bin/python3", "-c",
                            "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)\n"});
  EXPECT_NE(icmp.exitCode, 0);
  // No IPv6 inside at all.
  EXPECT_EQ(Run(info.id, {"cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"}).stdoutData, "1\n");
}

TEST_F(NetworkTest, DnsAnswersAllowedNamesWithTheHostSideAddress) {
  auto spec = MakeSpec("dns");
  spec.dnsAllowlist = {"api.example.com", "*.allowed.test"};
  auto info = CreateOrDie(spec);
  auto ok = Run(info.id, {"getent", "ahostsv4", "API.example.com"});
  EXPECT_EQ(ok.exitCode, 0) << ok.stderrData;
  EXPECT_EQ(ok.stdoutData.rfind(info.hostAddress + " ", 0), 0u) << ok.stdoutData;
  EXPECT_EQ(Run(info.id, {"getent", "ahostsv4", "deep.sub.allowed.test"}).exitCode, 0);
  EXPECT_EQ(Run(info.id, {"getent", "ahostsv4", "blocked.example.org"}).exitCode, 2);
  EXPECT_EQ(Run(info.id, {"getent", "ahostsv4", "allowed.test"}).exitCode, 2);
  // Python's resolver and a connect by name both land on the proxy listener.
  auto byName = Connect(this, *runtime_, info.id, "api.example.com", 443);
  EXPECT_EQ(byName.stdoutData, "peer=" + info.sandboxAddress + " orig=" + info.hostAddress + ":443\n")
      << byName.stderrData;
}

TEST_F(NetworkTest, SpoofedSourceAddressesAreDropped) {
  // The proxy port here is served on every address, and the host routes the
  // spoofed address back through the sandbox's veth: without the rules a
  // spoofed connection would complete, so only the rules can stop it.
  TestListener proxy("0.0.0.0");
  auto spec = MakeSpec("spoof");
  spec.network.proxyExplicitPort = proxy.port();
  auto info = CreateOrDie(spec);
  const std::string spoofed = "10.200.250.9";
  // The sandbox cannot add addresses (no CAP_NET_ADMIN); the harness can.
  ASSERT_EQ(HostOutput({"ip", "-n", info.netnsName, "addr", "add", spoofed + "/32", "dev", "eth0"}), "");
  ASSERT_EQ(HostOutput({"ip", "route", "add", spoofed + "/32", "dev", NamesFor(prefix_, info.id).hostVeth}), "");
  const std::string script =
      "import socket, sys\n"
      "s = socket.socket()\n"
      "s.settimeout(3)\n"
      "s.bind((sys.argv[1], 0))\n"
      "s.connect((sys.argv[2], int(sys.argv[3])))\n"
      "print('connected')\n";
  const auto port = std::to_string(proxy.port());
  auto genuine = HostOutput({"ip", "netns", "exec", info.netnsName, "/usr/bin/python3", "-c", script,
                             info.sandboxAddress, info.hostAddress, port});
  EXPECT_EQ(genuine, "connected\n");
  auto spoof = HostOutput({"ip", "netns", "exec", info.netnsName, "/usr/bin/python3", "-c", script, spoofed,
                           info.hostAddress, port});
  EXPECT_EQ(spoof.find("connected"), std::string::npos) << spoof;
  EXPECT_EQ(proxy.Peers(), std::vector<std::string>{info.sandboxAddress});
}

// Accepts one connection on port 8080 inside netns `ns` (the harness's
// stand-in for a server some sandbox runs).
int ListenInNetns(const std::string& ns) {
  int nsFd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int fd = -1;
  if (setns(nsFd, CLONE_NEWNET) == 0) {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(8080);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd, 4);
    setns(self, CLONE_NEWNET);
  }
  close(nsFd);
  close(self);
  return fd;
}

TEST_F(NetworkTest, SandboxesCannotReachEachOther) {
  // Forwarding on, as on many hosts (this is the test's own netns): only the
  // rules keep sandboxes apart.
  std::ofstream("/proc/sys/net/ipv4/ip_forward") << "1";
  auto a = CreateOrDie(MakeSpec("peer-a"));
  auto b = CreateOrDie(MakeSpec("peer-b"));
  int listener = std::async(std::launch::async, ListenInNetns, b.netnsName).get();
  ASSERT_GE(listener, 0);
  // B reaches its own server, so the server is there...
  EXPECT_EQ(Run(b.id, {"/usr/bin/python3", "-c", "import socket\nsocket.create_connection(('127.0.0.1', 8080), 3)\n"})
                .exitCode,
            0);
  // ...but A cannot reach it, nor B's host side proxy address.
  auto direct = Run(a.id, {"/usr/bin/python3", "-c",
                           "import socket, sys\nsocket.create_connection((sys.argv[1], 8080), 3)\n", b.sandboxAddress});
  EXPECT_NE(direct.exitCode, 0);
  auto viaHost = Connect(this, *runtime_, a.id, b.hostAddress, explicitProxy_->port());
  EXPECT_NE(viaHost.exitCode, 0);
  close(listener);
}

}  // namespace
}  // namespace osb::sandbox::testing

namespace osb::sandbox::testing {
namespace {

TEST_F(NetworkTest, UdpOtherThanDnsIsDropped) {
  auto info = CreateOrDie(MakeSpec("udp"));
  // A UDP socket on every address of the host side.
  int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ASSERT_EQ(bind(udp, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(udp, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string port = std::to_string(ntohs(a.sin_port));
  // Send to it first, then do a DNS round trip over the same path: once the
  // DNS answer is back, the earlier datagram would have arrived if allowed.
  auto r = Run(info.id, {"/usr/bin/python3", "-c",
                         "import socket, sys\n"
                         "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                         "s.sendto(b'leak', (sys.argv[1], int(sys.argv[2])))\n"
                         "print(socket.gethostbyname('any.example'))\n",
                         info.hostAddress, port});
  EXPECT_EQ(r.stdoutData, info.hostAddress + "\n") << r.stderrData;
  char buf[16];
  EXPECT_LT(recv(udp, buf, sizeof buf, MSG_DONTWAIT), 0);
  close(udp);
}

}  // namespace
}  // namespace osb::sandbox::testing
