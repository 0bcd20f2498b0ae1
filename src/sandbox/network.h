// Per-sandbox network plumbing on the host side: address allocation from a
// private pool, one veth pair (host "<prefix>h<hash>" <-> sandbox "eth0"),
// a named netns (/run/netns/<prefix>-<id>) for the sandbox's namespace.
//
// Each sandbox gets a /30 block: .1 = host side, .2 = sandbox. The addresses
// exist only on this machine's veths. No forwarding is needed: all allowed
// traffic ends at the worker's listeners on 127.0.0.1 (see nft.h).
//
// Thread safety: AddressPool is internally locked; the free functions touch
// only the named sandbox's objects.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/result.h"

namespace osb::sandbox {

struct AddressLease {
  uint32_t block = 0;          // index of the /30 in the pool
  std::string hostAddress;     // dotted quad
  std::string sandboxAddress;
};

class AddressPool {
 public:
  // cidr: IPv4 "a.b.c.d/len", len 8..29. kInvalidArgument otherwise.
  static Result<std::unique_ptr<AddressPool>> Create(const std::string& cidr);
  AddressPool(uint32_t base, uint32_t blocks) : base_(base), blocks_(blocks) {}

  Result<AddressLease> Allocate();               // kUnavailable when exhausted
  bool Reserve(const std::string& sandboxAddress);  // re-adopted sandbox
  void Release(uint32_t block);
  Result<AddressLease> LeaseFor(const std::string& sandboxAddress) const;

 private:
  AddressLease Make(uint32_t block) const;
  mutable std::mutex mu_;
  uint32_t base_;
  uint32_t blocks_;
  uint32_t next_ = 0;
  std::set<uint32_t> used_;
};

struct NetworkNames {
  std::string netns;     // <prefix>-<id>
  std::string hostVeth;  // <prefix>h<8 hex of FNV-1a(id)>, <= 15 chars
  std::string nftTable;  // <prefix>_<id with '-' as '_'>
};

NetworkNames NamesFor(const std::string& prefix, const std::string& id);

// Names the netns of `initPid`, creates the veth pair, addresses both ends,
// brings them up and adds the sandbox's default route via the host side.
Status SetupNetwork(const NetworkNames& names, const AddressLease& lease, pid_t initPid);

// Removes the veth (both ends) and the netns name. Missing parts are fine;
// an empty name in `names` means "not this part".
Status TeardownNetwork(const NetworkNames& names);

}  // namespace osb::sandbox
