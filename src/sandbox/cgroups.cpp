#include "sandbox/cgroups.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace osb::sandbox {
namespace {

const char* kV1Controllers[] = {"cpu", "memory", "pids"};

Status WriteFile(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  if (!f) return MakeError(ErrorCode::kInternal, "cgroup: cannot open " + path);
  f << value;
  f.flush();
  if (!f) return MakeError(ErrorCode::kInternal, "cgroup: cannot write " + path + ": " + std::strerror(errno));
  return {};
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::vector<pid_t> ReadPids(const std::string& dir) {
  std::vector<pid_t> pids;
  std::ifstream f(dir + "/cgroup.procs");
  pid_t p;
  while (f >> p) pids.push_back(p);
  return pids;
}

}  // namespace

bool Cgroup::HostIsV2(const std::string& root) {
  struct statfs st {};
  return statfs(root.c_str(), &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}

Cgroup Cgroup::Attach(const std::string& root, const std::string& name) {
  Cgroup cg;
  cg.v2_ = HostIsV2(root);
  if (cg.v2_) {
    cg.dirs_.push_back(root + "/" + name);
  } else {
    for (const char* c : kV1Controllers) cg.dirs_.push_back(root + "/" + c + "/" + name);
  }
  return cg;
}

Result<Cgroup> Cgroup::Create(const std::string& root, const std::string& name, const CgroupLimits& limits) {
  Cgroup cg = Attach(root, name);
  for (const auto& d : cg.dirs_) {
    if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
      auto err = MakeError(ErrorCode::kInternal, "cgroup: cannot create " + d + ": " + std::strerror(errno));
      (void)cg.KillAndRemove();
      return err;
    }
  }
  const uint64_t period = 100000;
  const auto quota = static_cast<uint64_t>(std::llround(limits.cpuCount * period));
  std::vector<std::pair<std::string, std::string>> writes;
  if (cg.v2_) {
    // Enable the controllers for children of the root (idempotent).
    (void)WriteFile(root + "/cgroup.subtree_control", "+cpu +memory +pids");
    const auto& d = cg.dirs_[0];
    writes = {{d + "/cpu.max", std::to_string(quota) + " " + std::to_string(period)},
              {d + "/memory.max", std::to_string(limits.memoryBytes)},
              {d + "/pids.max", std::to_string(limits.pidsMax)}};
    if (Exists(d + "/memory.swap.max")) writes.push_back({d + "/memory.swap.max", "0"});
    if (Exists(d + "/memory.oom.group")) writes.push_back({d + "/memory.oom.group", "0"});
  } else {
    const auto& cpu = cg.dirs_[0];
    const auto& mem = cg.dirs_[1];
    const auto& pids = cg.dirs_[2];
    writes = {{cpu + "/cpu.cfs_period_us", std::to_string(period)},
              {cpu + "/cpu.cfs_quota_us", std::to_string(quota)},
              {mem + "/memory.limit_in_bytes", std::to_string(limits.memoryBytes)},
              {pids + "/pids.max", std::to_string(limits.pidsMax)}};
    // memsw >= limit must hold; equal means swap cannot extend the limit.
    if (Exists(mem + "/memory.memsw.limit_in_bytes"))
      writes.push_back({mem + "/memory.memsw.limit_in_bytes", std::to_string(limits.memoryBytes)});
    if (Exists(mem + "/memory.swappiness")) writes.push_back({mem + "/memory.swappiness", "0"});
  }
  for (const auto& [path, value] : writes) {
    if (auto s = WriteFile(path, value); !s) {
      (void)cg.KillAndRemove();
      return s.error();
    }
  }
  return cg;
}

Status Cgroup::AddProcess(pid_t pid) const {
  for (const auto& d : dirs_)
    if (auto s = WriteFile(d + "/cgroup.procs", std::to_string(pid)); !s) return s;
  return {};
}

Status Cgroup::KillAndRemove(int deadlineMs) const {
  if (v2_ && Exists(dirs_[0] + "/cgroup.kill")) (void)WriteFile(dirs_[0] + "/cgroup.kill", "1");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadlineMs);
  for (;;) {
    bool allGone = true;
    for (const auto& d : dirs_) {
      if (!Exists(d)) continue;
      for (pid_t p : ReadPids(d)) kill(p, SIGKILL);
      if (rmdir(d.c_str()) != 0 && errno != ENOENT) allGone = false;
    }
    if (allGone) return {};
    if (std::chrono::steady_clock::now() > deadline)
      return MakeError(ErrorCode::kInternal, "cgroup: processes did not exit in time: " + dirs_[0]);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::vector<std::string> Cgroup::ListNames(const std::string& root, const std::string& prefix) {
  std::vector<std::string> bases;
  if (HostIsV2(root)) {
    bases.push_back(root);
  } else {
    for (const char* c : kV1Controllers) bases.push_back(root + "/" + c);
  }
  std::vector<std::string> names;
  for (const auto& b : bases) {
    DIR* d = opendir(b.c_str());
    if (!d) continue;
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (e->d_type == DT_DIR && n.rfind(prefix + "-", 0) == 0) {
        bool seen = false;
        for (const auto& x : names) seen |= (x == n);
        if (!seen) names.push_back(n);
      }
    }
    closedir(d);
  }
  return names;
}

}  // namespace osb::sandbox
