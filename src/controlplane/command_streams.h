// CommandService (control plane): commands in a sandbox — streaming exec,
// background commands, terminals — for the REST layer. Every call first
// finds the sandbox by (org, id) in the store (another org's sandbox is
// kNotFound, exactly like an unknown one), requires it to be running
// (kConflict otherwise), and forwards to its worker; command ids are then
// looked up by the worker under that sandbox only, so a command id of
// another sandbox is kNotFound as well.
//
// Caps: at most `max_streams_per_org` open streams (exec/stream, pty,
// attach) per org at once → kResourceExhausted (429). The worker caps
// running commands per sandbox (429 too).
//
// Thread-safe. Streams returned by Open* hold a slot until destroyed.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "controlplane/command_types.h"
#include "controlplane/long_calls.h"
#include "controlplane/worker_pool.h"
#include "store/store.h"

namespace osb::controlplane {

struct CommandLimits {
  size_t max_streams_per_org = 256;
  std::chrono::seconds call_deadline{15};
};

class CommandService {
 public:
  CommandService(store::Store& store, WorkerPool& workers, CommandLimits limits = CommandLimits())
      : store_(store), workers_(workers), limits_(limits) {}

  // Starts `spec` and streams it (spec.detach decides whether it outlives the stream).
  Result<std::unique_ptr<CommandStream>> Open(const std::string& org_id, const std::string& sandbox_id,
                                              const CommandSpec& spec);
  // Replays the command's retained output, then follows it.
  Result<std::unique_ptr<CommandStream>> Attach(const std::string& org_id, const std::string& sandbox_id,
                                                const std::string& command_id);
  // The same two without a thread per stream (command_types.h); the org's
  // slot is held until the stream is destroyed.
  Result<std::shared_ptr<AsyncCommandStream>> OpenAsync(const std::string& org_id, const std::string& sandbox_id,
                                                        const CommandSpec& spec);
  Result<std::shared_ptr<AsyncCommandStream>> AttachAsync(const std::string& org_id, const std::string& sandbox_id,
                                                          const std::string& command_id);
  Result<CommandInfo> Start(const std::string& org_id, const std::string& sandbox_id, CommandSpec spec);
  Result<std::vector<CommandInfo>> List(const std::string& org_id, const std::string& sandbox_id);
  Result<CommandInfo> Get(const std::string& org_id, const std::string& sandbox_id, const std::string& command_id);
  Result<CommandInfo> Kill(const std::string& org_id, const std::string& sandbox_id, const std::string& command_id,
                           int signal);
  // Blocks up to `wait` (callers run it off request threads).
  Result<CommandInfo> Wait(const std::string& org_id, const std::string& sandbox_id, const std::string& command_id,
                           std::chrono::milliseconds wait);

  // Wait on the long-call executor; `done` runs there. kResourceExhausted
  // at once (→ 429) when the org waits on too many already.
  Status WaitAsync(const std::string& org_id, const std::string& sandbox_id, const std::string& command_id,
                   std::chrono::milliseconds wait, std::function<void(Result<CommandInfo>)> done);
  // Checks that the org has this sandbox and it runs (before an upgrade).
  Status CheckSandbox(const std::string& org_id, const std::string& sandbox_id);

  size_t OpenStreams(const std::string& org_id);

 private:
  Result<std::shared_ptr<WorkerClient>> ClientFor(const std::string& org_id, const std::string& sandbox_id);
  Result<std::unique_ptr<CommandStream>> Counted(const std::string& org_id,
                                                 Result<std::unique_ptr<CommandStream>> stream);
  Result<std::shared_ptr<AsyncCommandStream>> CountedAsync(const std::string& org_id,
                                                           Result<std::shared_ptr<AsyncCommandStream>> stream);
  Status AdmitOrRefuse(const std::string& org_id);
  bool Admit(const std::string& org_id);
  void Release(const std::string& org_id);
  Deadline After(std::chrono::milliseconds d) const { return std::chrono::system_clock::now() + d; }

  store::Store& store_;
  WorkerPool& workers_;
  const CommandLimits limits_;
  std::mutex mu_;
  std::map<std::string, size_t> streams_;  // org -> open streams
  LongCalls waits_{LongCallLimits{32, 16, 256}};  // last: waits for the calls that use the members above
};

}  // namespace osb::controlplane
