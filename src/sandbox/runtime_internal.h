// Internal state of SandboxRuntime shared by runtime.cpp, exec.cpp and
// reconcile.cpp. Not part of the public interface.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "sandbox/cgroups.h"
#include "sandbox/id_registry.h"
#include "sandbox/network.h"
#include "sandbox/runtime.h"

namespace osb::sandbox {

struct Sandbox {
  SandboxInfo info;
  NetworkNames names;
  AddressLease lease;
  Cgroup cgroup;
  std::string runDir;  // <config.runDir>/<id>
  bool holdsIds = false;  // info.hostIdBase is registered to runDir
  bool imageRoot = false;  // <runDir>/root is an overlay over its own disk (image_root.h)
  pid_t initPid = -1;
  int pidfd = -1;
  int controlFd = -1;  // closed when the last Exec holding this object is done
  std::mutex controlMu;
  std::chrono::steady_clock::time_point deadline;

  ~Sandbox();
};

struct SandboxRuntime::Impl {
  RuntimeConfig config;
  std::unique_ptr<IdRegistry> ids;
  std::unique_ptr<AddressPool> pool;

  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<Sandbox>> sandboxes;
  std::set<std::string> creating;  // ids reserved by an in-flight Create

  std::condition_variable supervisorCv;
  bool stopping = false;
  std::thread supervisor;

  void SupervisorLoop();
  // Kills and removes everything of `sb`; collects every failure.
  Status Teardown(Sandbox& sb);
  Result<ExecResult> RunExec(Sandbox& sb, const ExecRequest& req);

};

}  // namespace osb::sandbox
