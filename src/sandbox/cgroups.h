// Per-sandbox cgroup: CPU quota, memory (+swap) limit and pids cap.
//
// cgroup v2 is used when /sys/fs/cgroup is a cgroup2 mount (one directory
// /sys/fs/cgroup/<name>); otherwise v1 with one directory per controller
// (/sys/fs/cgroup/{cpu,memory,pids}/<name>). The directory name is
// "<prefix>-<sandbox id>" so ReconcileLeftovers can find it after a crash.
//
// Thread safety: a Cgroup object is used by one thread at a time; distinct
// objects are independent.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"

namespace osb::sandbox {

struct CgroupLimits {
  double cpuCount = 1;
  uint64_t memoryBytes = 0;
  uint64_t pidsMax = 0;
};

class Cgroup {
 public:
  // Creates the directories and writes the limits. Fails (kInternal, naming
  // the file) if a controller is missing or a limit cannot be written.
  static Result<Cgroup> Create(const std::string& root, const std::string& name, const CgroupLimits& limits);
  // An existing cgroup (for Destroy after a restart or leftovers).
  static Cgroup Attach(const std::string& root, const std::string& name);

  // Moves a process (and so its future children) into every controller.
  Status AddProcess(pid_t pid) const;
  // SIGKILLs every member until all are gone and removes the directories.
  // Waits at most `deadlineMs` for exiting processes to leave.
  Status KillAndRemove(int deadlineMs = 5000) const;

  bool IsV2() const { return v2_; }
  const std::vector<std::string>& Dirs() const { return dirs_; }

  // Names "<prefix>-*" present in any controller (for ReconcileLeftovers).
  static std::vector<std::string> ListNames(const std::string& root, const std::string& prefix);
  static bool HostIsV2(const std::string& root);

 private:
  bool v2_ = false;
  std::vector<std::string> dirs_;
};

}  // namespace osb::sandbox
