// DnsServer over real UDP/TCP sockets on loopback of the test's netns.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "sandbox/dns_message.h"

namespace osb::sandbox::testing {
namespace {

std::vector<uint8_t> Query(const std::string& name, uint16_t qtype) {
  std::vector<uint8_t> q = {0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<uint8_t>(dot - start));
    q.insert(q.end(), name.begin() + static_cast<std::ptrdiff_t>(start), name.begin() + static_cast<std::ptrdiff_t>(dot));
    start = dot + 1;
  }
  q.insert(q.end(), {0, static_cast<uint8_t>(qtype >> 8), static_cast<uint8_t>(qtype), 0, 1});
  return q;
}

struct Reply {
  int rcode = -1;
  int answers = -1;
  std::string address;  // of the last A record
};

Reply Decode(const std::vector<uint8_t>& r) {
  Reply out;
  if (r.size() < 12) return out;
  out.rcode = r[3] & 0xf;
  out.answers = (r[6] << 8) | r[7];
  if (out.answers > 0 && r.size() >= 4) {
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, r.data() + r.size() - 4, buf, sizeof buf);
    out.address = buf;
  }
  return out;
}

class DnsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "runs in the private netns set up for root";
    auto s = DnsServer::Start({"127.0.0.1", 0, 5});
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(*s);
    ASSERT_TRUE(server_->SetSandbox("127.0.0.1", "10.200.0.1", {"api.example.com", "*.ok.test"}).ok());
  }

  std::vector<uint8_t> Udp(const std::vector<uint8_t>& q, const char* from = "127.0.0.1") {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, from, &src.sin_addr);
    bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(server_->Port());
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    sendto(fd, q.data(), q.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
    std::vector<uint8_t> buf(1500);
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    close(fd);
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return buf;
  }

  std::unique_ptr<DnsServer> server_;
};

TEST_F(DnsServerTest, UdpAnswersFollowTheAllowlist) {
  auto a = Decode(Udp(Query("API.EXAMPLE.COM.", dns::kTypeA)));
  EXPECT_EQ(a.rcode, 0);
  EXPECT_EQ(a.answers, 1);
  EXPECT_EQ(a.address, "10.200.0.1");
  auto aaaa = Decode(Udp(Query("api.example.com", dns::kTypeAAAA)));
  EXPECT_EQ(aaaa.rcode, 0);
  EXPECT_EQ(aaaa.answers, 0);
  EXPECT_EQ(Decode(Udp(Query("x.ok.test", dns::kTypeA))).address, "10.200.0.1");
  EXPECT_EQ(Decode(Udp(Query("ok.test", dns::kTypeA))).rcode, 3);
  EXPECT_EQ(Decode(Udp(Query("evil.example", dns::kTypeA))).rcode, 3);
}

TEST_F(DnsServerTest, UnknownSourcesAreRefusedAndGarbageIsSurvived) {
  EXPECT_EQ(Decode(Udp(Query("api.example.com", dns::kTypeA), "127.0.0.2")).rcode, 5);
  std::vector<uint8_t> bad = {0x12, 0x34, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(Decode(Udp(bad)).rcode, 1);  // FORMERR
  server_->RemoveSandbox("127.0.0.1");
  EXPECT_EQ(Decode(Udp(Query("api.example.com", dns::kTypeA))).rcode, 5);
  EXPECT_FALSE(server_->SetSandbox("nonsense", "10.0.0.1", {}).ok());
}

TEST_F(DnsServerTest, TcpCarriesSeveralQueriesOnOneConnection) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(server_->Port());
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst), 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::vector<uint8_t> both;
  for (const char* name : {"api.example.com", "nope.example.com"}) {
    auto q = Query(name, dns::kTypeA);
    both.push_back(static_cast<uint8_t>(q.size() >> 8));
    both.push_back(static_cast<uint8_t>(q.size()));
    both.insert(both.end(), q.begin(), q.end());
  }
  ASSERT_EQ(send(fd, both.data(), both.size(), 0), static_cast<ssize_t>(both.size()));
  std::vector<int> rcodes;
  std::vector<uint8_t> in;
  while (rcodes.size() < 2) {
    uint8_t buf[512];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    in.insert(in.end(), buf, buf + n);
    while (in.size() >= 2 && in.size() >= 2u + ((in[0] << 8) | in[1])) {
      size_t len = (in[0] << 8) | in[1];
      rcodes.push_back(Decode({in.begin() + 2, in.begin() + 2 + static_cast<std::ptrdiff_t>(len)}).rcode);
      in.erase(in.begin(), in.begin() + 2 + static_cast<std::ptrdiff_t>(len));
    }
  }
  EXPECT_EQ(rcodes, (std::vector<int>{0, 3}));
  close(fd);
}

int TcpConnect(uint16_t port, const char* from) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, from, &src.sin_addr);
  bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// One TCP query on fd; the reply's rcode, or -1 if the connection was closed.
int TcpQuery(int fd, const std::string& name) {
  auto q = Query(name, dns::kTypeA);
  std::vector<uint8_t> msg = {static_cast<uint8_t>(q.size() >> 8), static_cast<uint8_t>(q.size())};
  msg.insert(msg.end(), q.begin(), q.end());
  if (send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) return -1;
  std::vector<uint8_t> in;
  while (in.size() < 2 || in.size() < 2u + ((in[0] << 8) | in[1])) {
    uint8_t buf[512];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return -1;
    in.insert(in.end(), buf, buf + n);
  }
  return Decode({in.begin() + 2, in.end()}).rcode;
}

TEST_F(DnsServerTest, TcpSlotsAreCountedPerSandboxFromAccept) {
  ASSERT_TRUE(server_->SetSandbox("127.0.0.2", "10.200.0.5", {"api.example.com"}).ok());
  const size_t cap = 16;  // the documented per-sandbox default
  // The attacker's sandbox opens connections and never sends a byte.
  std::vector<int> held;
  for (size_t i = 0; i < cap; ++i) {
    int fd = TcpConnect(server_->Port(), "127.0.0.1");
    ASSERT_GE(fd, 0);
    held.push_back(fd);
  }
  // Beyond its cap, its next connection is closed at once ...
  int extra = TcpConnect(server_->Port(), "127.0.0.1");
  ASSERT_GE(extra, 0);
  EXPECT_EQ(TcpQuery(extra, "api.example.com"), -1);
  close(extra);
  // ... while the slots it holds still count (none was given up) ...
  EXPECT_EQ(TcpQuery(held.back(), "api.example.com"), 0);
  EXPECT_EQ(server_->TcpConnections(), cap);
  // ... and another sandbox's TCP queries are answered.
  int other = TcpConnect(server_->Port(), "127.0.0.2");
  ASSERT_GE(other, 0);
  EXPECT_EQ(TcpQuery(other, "api.example.com"), 0);
  close(other);
  for (int fd : held) close(fd);
}

}  // namespace
}  // namespace osb::sandbox::testing
