#include "sandbox/dns_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include <optional>
#include <spdlog/spdlog.h>

#include "common/accept_backoff.h"
#include "common/fd_budget.h"
#include "common/keyed_slots.h"
#include "common/rate_limited_log.h"
#include "sandbox/allowlist.h"
#include "sandbox/dns_message.h"

namespace osb::sandbox {
namespace {


struct Entry {
  uint32_t answer;  // network byte order
  std::vector<std::string> allowlist;
};

struct TcpConn {
  std::vector<uint8_t> in;
  std::vector<uint8_t> out;
  std::chrono::steady_clock::time_point lastActive;
  std::chrono::steady_clock::time_point acceptedAt;
  uint32_t source = 0;  // network byte order
  KeyedSlots::Slot slot;
  FdBudget::Lease fd;
};

std::string AddressText(uint32_t addr) {
  char buf[INET_ADDRSTRLEN] = "?";
  in_addr a{};
  a.s_addr = addr;
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

}  // namespace

struct DnsServer::Impl {
  Options options;
  int udp = -1, tcp = -1, wake = -1;
  uint16_t port = 0;
  std::thread thread;
  std::mutex mu;
  std::map<uint32_t, Entry> sandboxes;  // by source address (network order)
  std::map<int, TcpConn> conns;   // Run thread only
  std::atomic<size_t> connCount{0};
  KeyedSlots perSource;            // by source address
  AcceptBackoff backoff;           // Run thread only
  std::chrono::steady_clock::time_point acceptPausedUntil{};

  ~Impl() {
    for (auto& [fd, c] : conns) close(fd);
    for (int fd : {udp, tcp, wake})
      if (fd >= 0) close(fd);
  }

  std::vector<uint8_t> Answer(std::span<const uint8_t> packet, uint32_t source) {
    auto parsed = dns::ParseQuery(packet);
    if (!parsed.query) {
      if (!parsed.id) return {};
      return dns::BuildErrorResponse(*parsed.id, parsed.opcode, parsed.error);
    }
    const auto& q = *parsed.query;
    std::lock_guard lock(mu);
    auto it = sandboxes.find(source);
    if (it == sandboxes.end()) return dns::BuildResponse(q, dns::Rcode::kRefused, std::nullopt);
    if (q.qclass != dns::kClassIN || !q.nameIsPlain || q.name.empty() || !HostAllowed(it->second.allowlist, q.name))
      return dns::BuildResponse(q, dns::Rcode::kNxDomain, std::nullopt);
    if (q.qtype == dns::kTypeA) return dns::BuildResponse(q, dns::Rcode::kNoError, it->second.answer, options.ttl);
    return dns::BuildResponse(q, dns::Rcode::kNoError, std::nullopt);
  }

  void OnUdp() {
    for (int i = 0; i < 64; ++i) {
      uint8_t buf[1500];
      sockaddr_in from{};
      socklen_t fromLen = sizeof from;
      ssize_t n = recvfrom(udp, buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &fromLen);
      if (n < 0) return;
      auto reply = Answer({buf, static_cast<size_t>(n)}, from.sin_addr.s_addr);
      if (!reply.empty())
        sendto(udp, reply.data(), reply.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), fromLen);
    }
  }

  void OnAccept() {
    sockaddr_in from{};
    socklen_t len = sizeof from;
    int fd = accept4(tcp, reinterpret_cast<sockaddr*>(&from), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (ClassifyAcceptError(err) != AcceptErrorKind::kBackOff) return;
      // The listener stays readable: leave it out of poll() for a while.
      const auto delay = backoff.Next();
      acceptPausedUntil = std::chrono::steady_clock::now() + delay;
      LogLimited(spdlog::level::warn, "dns accept", std::strerror(err),
                 std::string("dns: TCP accept failed: ") + std::strerror(err) + "; retrying in " +
                     std::to_string(delay.count()) + " ms");
      return;
    }
    backoff.Reset();
    const std::string source = AddressText(from.sin_addr.s_addr);
    const char* refused = nullptr;
    auto lease = FdBudget::Process().TryAcquire(1, fd);
    std::optional<KeyedSlots::Slot> slot;
    if (!lease) {
      refused = "worker descriptor budget spent";
    } else if (conns.size() >= options.tcpTotal) {
      refused = "too many DNS TCP connections in all";
    } else if (slot = perSource.TryAcquire(source, options.tcpPerSource); !slot) {
      refused = "too many DNS TCP connections from this sandbox";
    }
    if (refused != nullptr) {
      close(fd);
      LogLimited(spdlog::level::warn, source, refused,
                 std::string("dns: closed a TCP connection from ") + source + ": " + refused);
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    TcpConn& c = conns[fd];
    c.lastActive = now;
    c.acceptedAt = now;
    c.source = from.sin_addr.s_addr;
    c.slot = std::move(*slot);
    c.fd = std::move(*lease);
    connCount = conns.size();
  }

  // Returns false when the connection should be closed.
  bool OnTcp(int fd, TcpConn& c, short revents) {
    if (revents & (POLLERR | POLLNVAL)) return false;
    if (revents & (POLLIN | POLLHUP)) {
      uint8_t buf[4096];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
      if (n > 0) {
        c.in.insert(c.in.end(), buf, buf + n);
        c.lastActive = std::chrono::steady_clock::now();
      }
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len);
      while (c.in.size() >= 2) {
        size_t msgLen = (static_cast<size_t>(c.in[0]) << 8) | c.in[1];
        if (c.in.size() < 2 + msgLen) break;
        auto reply = Answer({c.in.data() + 2, msgLen}, peer.sin_addr.s_addr);
        c.in.erase(c.in.begin(), c.in.begin() + static_cast<std::ptrdiff_t>(2 + msgLen));
        if (reply.empty()) return false;
        c.out.push_back(static_cast<uint8_t>(reply.size() >> 8));
        c.out.push_back(static_cast<uint8_t>(reply.size() & 0xff));
        c.out.insert(c.out.end(), reply.begin(), reply.end());
      }
      if (c.out.size() > 256 * 1024) return false;  // a client that never reads
    }
    if (!c.out.empty()) {
      ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
      if (n > 0) c.out.erase(c.out.begin(), c.out.begin() + n);
    }
    return true;
  }

  void Run() {
    for (;;) {
      auto now = std::chrono::steady_clock::now();
      const bool acceptPaused = now < acceptPausedUntil;
      // A negative fd is ignored by poll(): that is how the listener pauses.
      std::vector<pollfd> fds = {{wake, POLLIN, 0}, {udp, POLLIN, 0}, {acceptPaused ? -1 : tcp, POLLIN, 0}};
      for (auto& [fd, c] : conns) fds.push_back({fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
      int timeout = 1000;
      if (acceptPaused) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(acceptPausedUntil - now).count();
        timeout = static_cast<int>(std::clamp<long long>(left + 1, 1, 1000));
      }
      int n = poll(fds.data(), fds.size(), timeout);
      if (n < 0 && errno != EINTR) return;
      if (fds[0].revents) return;
      if (fds[1].revents) OnUdp();
      if (fds[2].revents) OnAccept();
      now = std::chrono::steady_clock::now();
      for (size_t i = 3; i < fds.size(); ++i) {
        auto it = conns.find(fds[i].fd);
        if (it == conns.end()) continue;
        bool keep = fds[i].revents ? OnTcp(it->first, it->second, fds[i].revents) : true;
        if (!keep || now - it->second.lastActive > options.tcpIdle || now - it->second.acceptedAt > options.tcpLifetime) {
          close(it->first);
          conns.erase(it);
        }
      }
      connCount = conns.size();
    }
  }
};

DnsServer::DnsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

DnsServer::~DnsServer() {
  uint64_t one = 1;
  ssize_t ignored = write(impl_->wake, &one, sizeof one);
  (void)ignored;
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::unique_ptr<DnsServer>> DnsServer::Start(const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(options.port);
  if (inet_pton(AF_INET, options.listenAddress.c_str(), &addr.sin_addr) != 1)
    return MakeError(ErrorCode::kInvalidArgument, "dns listenAddress: not an IPv4 address");
  auto fail = [](const std::string& what) {
    return MakeError(ErrorCode::kUnavailable, "dns: " + what + ": " + std::strerror(errno));
  };
  impl->tcp = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int on = 1;
  setsockopt(impl->tcp, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (bind(impl->tcp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(impl->tcp, 64) != 0)
    return fail("cannot listen on TCP " + options.listenAddress);
  socklen_t len = sizeof addr;
  getsockname(impl->tcp, reinterpret_cast<sockaddr*>(&addr), &len);
  impl->port = ntohs(addr.sin_port);
  impl->udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (bind(impl->udp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return fail("cannot bind UDP " + options.listenAddress + ":" + std::to_string(impl->port));
  impl->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->wake < 0) return fail("eventfd");
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<DnsServer>(new DnsServer(std::move(impl)));
}

uint16_t DnsServer::Port() const { return impl_->port; }

size_t DnsServer::TcpConnections() const { return impl_->connCount.load(); }

Status DnsServer::SetSandbox(const std::string& sandboxAddress, const std::string& answerAddress,
                             std::vector<std::string> allowlist) {
  in_addr src{}, ans{};
  if (inet_pton(AF_INET, sandboxAddress.c_str(), &src) != 1)
    return MakeError(ErrorCode::kInvalidArgument, "sandboxAddress: not an IPv4 address");
  if (inet_pton(AF_INET, answerAddress.c_str(), &ans) != 1)
    return MakeError(ErrorCode::kInvalidArgument, "answerAddress: not an IPv4 address");
  std::lock_guard lock(impl_->mu);
  impl_->sandboxes[src.s_addr] = Entry{ans.s_addr, std::move(allowlist)};
  return {};
}

void DnsServer::RemoveSandbox(const std::string& sandboxAddress) {
  in_addr src{};
  if (inet_pton(AF_INET, sandboxAddress.c_str(), &src) != 1) return;
  std::lock_guard lock(impl_->mu);
  impl_->sandboxes.erase(src.s_addr);
}

}  // namespace osb::sandbox
