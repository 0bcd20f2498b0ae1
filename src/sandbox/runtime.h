// SandboxRuntime: creates, runs commands in, and destroys sandboxes on this
// host. The worker's only entry point into src/sandbox (plus DnsServer).
//
// Each sandbox = a PID-1 process (osb-sandbox-init) in its own user, mount,
// PID, UTS, IPC, network and cgroup namespaces, inside a cgroup with
// CPU/memory/pids limits, behind a veth pair with host-side nftables rules;
// see docs/sandbox.md. Its user namespace maps to a host uid/gid range of
// its own. Commands run as an unprivileged uid with no capabilities,
// no_new_privs and an allowlist seccomp filter.
//
// Requires root (CAP_SYS_ADMIN + CAP_NET_ADMIN + write access to cgroups)
// and the `ip` and `nft` tools.
//
// Thread safety: every method may be called concurrently from any thread;
// calls on different sandboxes proceed in parallel, and several Exec calls
// may run in the same sandbox at once. Exec blocks the calling thread until
// the command ends (at most its timeoutSec plus a short drain).
//
// Lifetime: the destructor destroys every sandbox this runtime owns. After a
// crash (or kill -9) of the worker, sandboxes keep running; a new runtime's
// ReconcileLeftovers re-adopts them and removes whatever else was left.
//
// Errors (osb::Error, message safe to show; never contains env values):
//   kInvalidArgument  a spec/request field is invalid (named in the message)
//   kAlreadyExists    Create with an id that exists
//   kNotFound         unknown sandbox id
//   kUnavailable      address pool or uid ranges exhausted, or the sandbox ended mid-Exec
//   kTooLarge         Exec request over 1 MiB
//   kInternal         the host refused a step (mount, cgroup, ip, nft, ...)
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "sandbox/file_ops.h"
#include "sandbox/spec.h"
#include "sandbox/state_archive.h"

namespace osb::sandbox {

class DnsServer;
class CommandHandle;
struct CommandRequest;

struct RuntimeConfig {
  // Prefix of every host object: cgroups "<p>-<id>", netns "<p>-<id>",
  // veths "<p>h<hash>", nft tables "<p>_<id>", run dir entries. [a-z]{1,6}.
  std::string namePrefix = "osb";
  std::string addressPool = "10.200.0.0/16";  // IPv4, /8../29, split in /30s
  std::string runDir = "/run/osb";            // per-sandbox mount point + control socket
  std::string cgroupRoot = "/sys/fs/cgroup";
  std::string initBinary;                     // empty = osb-sandbox-init beside /proc/self/exe
  // Host paths that must never be visible in a sandbox: the worker passes
  // its state dir, database, key files and CA key. The default root only
  // binds system dirs and /etc entries, so these matter when such a path
  // lives under /etc or /usr (binding a dir that contains one is refused).
  std::vector<std::string> hiddenPaths;
  uid_t uid = 1000;                           // the sandbox user ("sandbox" in its /etc/passwd),
  gid_t gid = 1000;                           // ids inside the sandbox's user namespace
  // Host uid/gid ranges of the sandboxes' user namespaces: the n-th free
  // slot maps inside ids 0..65535 to host ids idRangeStart + n*65536 + 0..
  // 65535, so root inside is an unprivileged host uid and no two sandboxes
  // share one. The range must not overlap a host user or group (checked
  // against /etc/passwd and /etc/group). Runtimes on one host may share the
  // range: idRegistryDir records which sandbox holds which part of it (see
  // id_registry.h). At most idRangeCount sandboxes at once (kUnavailable).
  uint32_t idRangeStart = 100000;
  uint32_t idRangeCount = 1024;
  std::string idRegistryDir = "/run/osb-ids";
  // Where image sandboxes' disks (sparse ext4 files, unlinked once attached
  // to a loop device) are created: on a real disk, not /run's tmpfs.
  std::string diskDir = "/var/lib/osb/disks";
  // Optional: Create registers the sandbox's address + dnsAllowlist here,
  // Destroy unregisters. Not owned; must outlive the runtime.
  DnsServer* dns = nullptr;
  // Optional: called (from the runtime's supervisor thread, no locks held)
  // after a sandbox was destroyed without a Destroy call: reason "timeout"
  // or "exited" (its init died, e.g. killed from outside).
  std::function<void(const std::string& id, const std::string& reason)> onSandboxEnded;
};

struct ReconcileReport {
  std::vector<SandboxInfo> adopted;  // still-running sandboxes now owned by this runtime
  std::vector<std::string> removed;  // host objects removed, e.g. "cgroup osb-abc"
  std::vector<std::string> errors;   // what could not be removed
};

class SandboxRuntime {
 public:
  // Validates the config (kInvalidArgument), finds the init binary
  // (kFailedPrecondition) and starts the supervisor thread.
  static Result<std::unique_ptr<SandboxRuntime>> Create(RuntimeConfig config);
  ~SandboxRuntime();
  SandboxRuntime(const SandboxRuntime&) = delete;
  SandboxRuntime& operator=(const SandboxRuntime&) = delete;

  // Builds and starts a sandbox; returns once it can Exec. On error nothing
  // of it is left behind.
  Result<SandboxInfo> Create(const SandboxSpec& spec);

  // Runs one command in the sandbox and waits for it. Output beyond
  // kMaxOutputBytes per stream is discarded and flagged. When the command
  // exits, whatever it left in its process group is killed. On timeout the
  // group is killed and the result has timedOut=true, exitCode=124.
  Result<ExecResult> Exec(const std::string& id, const ExecRequest& request);

  // Starts a command whose I/O the caller relays (sandbox/commands.h);
  // returns once the init forked it. kNotFound for an unknown sandbox.
  Result<std::unique_ptr<CommandHandle>> StartCommand(const std::string& id, const CommandRequest& request);

  // Kills every process and removes cgroups, mounts, netns, veth, nft table
  // and run dir of the sandbox. kNotFound if unknown.
  Status Destroy(const std::string& id);

  std::vector<SandboxInfo> List() const;

  // Checkpoints (runtime_state.cpp). CaptureState writes the sandbox's
  // writable file-system state (state_archive.h) to outFd, with its
  // processes frozen meanwhile on cgroup v2 (a consistent snapshot) and
  // thawed after; process memory is not saved. For an image sandbox that
  // is its overlay upper dir (with whiteouts and opaque dirs, read by the
  // worker on the host without following anything) and its scratch roots.
  // RestoreState fills a sandbox's scratch roots from such an archive (call
  // it right after Create, before the first Exec); an archive of an image
  // sandbox is refused there (kFailedPrecondition): restore it through
  // SandboxSpec.restoreFd, which fills the upper dir before the overlay is
  // mounted. kNotFound, kTooLarge, kDataLoss.
  Result<StateStats> CaptureState(const std::string& id, int outFd);
  Result<StateStats> RestoreState(const std::string& id, int inFd);
  // Moves the sandbox's deadline (when the runtime kills it) to
  // endsAtUnix; kInvalidArgument if it is not in the future.
  Result<SandboxInfo> SetDeadline(const std::string& id, int64_t endsAtUnix);
  // THE per-sandbox writable state: the host path of the overlay's upper
  // dir of an image sandbox (<runDir>/<id>/disk/upper), i.e. every file the
  // sandbox created or changed over its image, with overlayfs whiteouts
  // (char 0:0 nodes) for deletions and trusted.overlay.* xattrs for opaque
  // dirs. Owned by host ids info.hostIdBase + 0..65535 (ids inside + base).
  // Valid while the sandbox exists; read it (e.g. to archive a checkpoint)
  // only while its processes are frozen or stopped for a consistent copy.
  // kNotFound for an unknown id; kFailedPrecondition for a sandbox without
  // a writable root (base / rootfsTemplate: its writable state is the
  // /tmp + /home/sandbox tmpfs inside its mount namespace).
  Result<std::string> WritableDir(const std::string& id) const;

  // Call once at worker start, before Create. With adoptRunning, every
  // sandbox of a previous worker (same prefix and runDir) whose init still
  // runs is re-adopted: it keeps its processes, files, env, address, rules
  // and deadline; Exec/Destroy/List work on it and its DNS allowlist is
  // registered again. The worker must then re-register its proxy session
  // (by SandboxInfo.sandboxAddress). Everything else with this prefix that
  // this runtime does not own is removed (processes killed).
  ReconcileReport ReconcileLeftovers(bool adoptRunning = true);

  // --- files (sandbox_files.cpp; the rules are in file_ops.h) --------------
  // Every operation is done inside the sandbox by a helper its init forks as
  // the sandbox user; the worker only moves bytes over descriptors. Errors:
  // kNotFound (sandbox or path), kInvalidArgument (bad path, special file,
  // magic link), kAlreadyExists, kConflict (not empty), kFailedPrecondition
  // (permission denied), kTooLarge (disk quota full), kUnavailable.
  class FileUpload {
   public:
    virtual ~FileUpload() = default;  // without Commit: the temp file is removed
    // Appends bytes (blocks while the helper writes). kTooLarge when the
    // sandbox's disk is full; the upload is then dead.
    virtual Status Write(const char* data, size_t size) = 0;
    // Moves the complete file into place; returns its size.
    virtual Result<int64_t> Commit() = 0;
  };
  // A regular file opened for reading (fd owned by the caller) and its size.
  Result<std::pair<int, int64_t>> OpenFileForRead(const std::string& id, const std::string& path);
  Result<std::unique_ptr<FileUpload>> BeginFileUpload(const std::string& id, const std::string& path,
                                                      uint32_t mode);
  Result<std::vector<FileEntry>> ListFiles(const std::string& id, const std::string& path, bool* truncated);
  Status MakeDirectory(const std::string& id, const std::string& path, bool parents, uint32_t mode);
  Status RemoveFile(const std::string& id, const std::string& path, bool recursive);

  struct Impl;

 private:
  explicit SandboxRuntime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace osb::sandbox
