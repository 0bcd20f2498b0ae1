// The small record a runtime keeps per sandbox in <runDir>/<id>/meta
// (root-only, on /run's tmpfs) so that a restarted worker can re-adopt a
// sandbox that is still running. It holds no env and no secret: only ids,
// addresses, the init's pid + start time, the host uid range (idBase; 0 or
// absent for sandboxes of a worker older than user namespaces), limits and
// the DNS allowlist.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "sandbox/spec.h"

namespace osb::sandbox {

struct SandboxMeta {
  SandboxInfo info;
  uint64_t initStartTime = 0;  // /proc/<pid>/stat field 22: guards against pid reuse
  NetworkSpec network;
  std::vector<std::string> dnsAllowlist;
};

Status WriteMeta(const std::string& path, const SandboxMeta& meta);  // atomic (rename)
std::optional<SandboxMeta> ReadMeta(const std::string& path);
// 0 if the process does not exist.
uint64_t ProcessStartTime(pid_t pid);

}  // namespace osb::sandbox
