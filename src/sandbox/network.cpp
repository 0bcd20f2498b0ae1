#include "sandbox/network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "sandbox/host_command.h"

namespace osb::sandbox {
namespace {

std::string Dotted(uint32_t addr) {
  in_addr a{htonl(addr)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

void WriteSysctl(const std::string& path, const char* value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t ignored = write(fd, value, std::strlen(value));
  (void)ignored;
  close(fd);
}

}  // namespace

Result<std::unique_ptr<AddressPool>> AddressPool::Create(const std::string& cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string::npos) return MakeError(ErrorCode::kInvalidArgument, "addressPool: expected a.b.c.d/len");
  in_addr a{};
  if (inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &a) != 1)
    return MakeError(ErrorCode::kInvalidArgument, "addressPool: bad IPv4 address");
  int len = 0;
  try {
    len = std::stoi(cidr.substr(slash + 1));
  } catch (...) {
    return MakeError(ErrorCode::kInvalidArgument, "addressPool: bad prefix length");
  }
  if (len < 8 || len > 29) return MakeError(ErrorCode::kInvalidArgument, "addressPool: prefix length must be 8..29");
  uint32_t base = ntohl(a.s_addr) & ~((1u << (32 - len)) - 1);
  return std::make_unique<AddressPool>(base, 1u << (30 - len));
}

AddressLease AddressPool::Make(uint32_t block) const {
  uint32_t net = base_ + block * 4;
  return AddressLease{block, Dotted(net + 1), Dotted(net + 2)};
}

Result<AddressLease> AddressPool::Allocate() {
  std::lock_guard lock(mu_);
  for (uint32_t i = 0; i < blocks_; ++i) {
    uint32_t b = (next_ + i) % blocks_;
    if (used_.count(b)) continue;
    used_.insert(b);
    next_ = b + 1;  // round-robin: a just-freed address is not reused at once
    return Make(b);
  }
  return MakeError(ErrorCode::kUnavailable, "address pool exhausted");
}

Result<AddressLease> AddressPool::LeaseFor(const std::string& sandboxAddress) const {
  in_addr a{};
  if (inet_pton(AF_INET, sandboxAddress.c_str(), &a) != 1)
    return MakeError(ErrorCode::kInvalidArgument, "sandboxAddress: bad IPv4 address");
  uint32_t addr = ntohl(a.s_addr);
  if (addr < base_ || (addr - base_) / 4 >= blocks_ || (addr - base_) % 4 != 2)
    return MakeError(ErrorCode::kInvalidArgument, "sandboxAddress: not in the pool");
  return Make((addr - base_) / 4);
}

bool AddressPool::Reserve(const std::string& sandboxAddress) {
  auto lease = LeaseFor(sandboxAddress);
  if (!lease) return false;
  std::lock_guard lock(mu_);
  return used_.insert(lease->block).second;
}

void AddressPool::Release(uint32_t block) {
  std::lock_guard lock(mu_);
  used_.erase(block);
}

NetworkNames NamesFor(const std::string& prefix, const std::string& id) {
  uint32_t h = 2166136261u;
  for (unsigned char c : id) h = (h ^ c) * 16777619u;
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", h);
  std::string table = prefix + "_" + id;
  for (auto& c : table)
    if (c == '-') c = '_';
  return NetworkNames{prefix + "-" + id, prefix + "h" + hex, table};
}

Status SetupNetwork(const NetworkNames& names, const AddressLease& lease, pid_t initPid) {
  // Two `ip` runs in total (each spawn costs milliseconds): one batch in the
  // host netns, one inside the sandbox's netns.
  const std::string host = "netns attach " + names.netns + " " + std::to_string(initPid) + "\n" +
                           "link add " + names.hostVeth + " type veth peer name eth0 netns " + names.netns + "\n" +
                           "addr add " + lease.hostAddress + "/30 dev " + names.hostVeth + "\n" +
                           "link set " + names.hostVeth + " up\n";
  if (auto s = RunHostCommandOk({"ip", "-batch", "-"}, host); !s) return s;
  // No IPv6 on the host end (this also drops the link-local address it just
  // got); the guard chain drops IPv6 from the veth anyway.
  WriteSysctl("/proc/sys/net/ipv6/conf/" + names.hostVeth + "/disable_ipv6", "1");
  // Lets the nft rules DNAT the sandbox's flows to listeners on 127.0.0.1
  // (and the replies leave with that source); the guard chain still drops
  // anything not from the sandbox's own address.
  WriteSysctl("/proc/sys/net/ipv4/conf/" + names.hostVeth + "/route_localnet", "1");
  const std::string inside = "link set lo up\naddr add " + lease.sandboxAddress + "/30 dev eth0\nlink set eth0 up\n"
                             "route add default via " + lease.hostAddress + " dev eth0\n";
  return RunHostCommandOk({"ip", "-n", names.netns, "-batch", "-"}, inside);
}

Status TeardownNetwork(const NetworkNames& names) {
  Status result;
  // Empty or path-like names must never reach umount2/unlink below: an
  // empty name would address /run/netns itself.
  auto safe = [](const std::string& n) { return !n.empty() && n.find('/') == std::string::npos && n != "." && n != ".."; };
  if (safe(names.hostVeth) && if_nametoindex(names.hostVeth.c_str()) != 0) {
    if (auto s = RunHostCommandOk({"ip", "link", "del", names.hostVeth}); !s) result = s;
  }
  if (!safe(names.netns)) return result;
  std::string path = "/run/netns/" + names.netns;
  if (access(path.c_str(), F_OK) == 0) {
    if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
      result = MakeError(ErrorCode::kInternal, "netns: cannot unmount " + path + ": " + std::strerror(errno));
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
      result = MakeError(ErrorCode::kInternal, "netns: cannot remove " + path + ": " + std::strerror(errno));
  }
  return result;
}

}  // namespace osb::sandbox
