// Host-wide registry of the uid/gid ranges sandboxes' user namespaces map
// to, so that no two sandboxes on a host share a host uid even when several
// runtimes (workers, test processes) allocate from the same range.
//
// One file per range in `dir` (root-only, on /run's tmpfs), named by the
// range's first host id and holding its owner: the sandbox's run dir
// ("<runDir>/<id>"). A range whose owner dir no longer exists is stale
// (its sandbox is gone) and may be claimed again. Every operation holds an
// exclusive flock on `dir`, which serialises runtimes in different
// processes as well as threads of one.
//
// The owner dir must exist before Claim (the runtime creates it first), so a
// range being set up is never mistaken for a stale one.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace osb::sandbox {

class IdRegistry {
 public:
  // Ranges are first + n * 65536 for n in [0, count).
  IdRegistry(std::string dir, uint32_t first, uint32_t count) : dir_(std::move(dir)), first_(first), count_(count) {}

  // Claims the lowest free range for `owner`; returns its first host id.
  // kUnavailable when all are taken, kInternal if `dir` is unusable.
  Result<uint32_t> Claim(const std::string& owner) const;
  // Claims the range starting at `base` for `owner` (re-adoption after a
  // restart): true if it was free, stale or already `owner`'s.
  bool ClaimExact(uint32_t base, const std::string& owner) const;
  // Frees the range if `owner` holds it.
  void Release(uint32_t base, const std::string& owner) const;

 private:
  std::string dir_;
  uint32_t first_;
  uint32_t count_;
};

}  // namespace osb::sandbox
