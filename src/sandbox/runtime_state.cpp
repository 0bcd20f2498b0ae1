// SandboxRuntime: checkpoint capture/restore and deadline changes.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "sandbox/image_root.h"
#include "sandbox/runtime.h"
#include "sandbox/runtime_internal.h"
#include "sandbox/sandbox_meta.h"

namespace osb::sandbox {
namespace {

Result<std::shared_ptr<Sandbox>> Find(SandboxRuntime::Impl& im, const std::string& id) {
  std::lock_guard lock(im.mu);
  auto it = im.sandboxes.find(id);
  if (it == im.sandboxes.end()) return MakeError(ErrorCode::kNotFound, "sandbox " + id + " not found");
  return it->second;
}

bool WriteSmall(const std::string& path, const char* text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text, std::strlen(text)) == static_cast<ssize_t>(std::strlen(text));
  close(fd);
  return ok;
}

// Freezes the sandbox's processes (cgroup v2) for the object's lifetime, so
// a capture sees one consistent state. Waits (bounded) for "frozen 1" in
// cgroup.events, which the kernel signals with POLLPRI.
class Freeze {
 public:
  explicit Freeze(const Cgroup& cg) {
    if (!cg.IsV2() || cg.Dirs().empty()) return;
    dir_ = cg.Dirs().front();
    if (!WriteSmall(dir_ + "/cgroup.freeze", "1")) {
      dir_.clear();
      return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    int fd = open((dir_ + "/cgroup.events").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    for (;;) {
      char buf[256];
      ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
      if (n > 0) {
        buf[n] = 0;
        if (std::strstr(buf, "frozen 1")) break;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd, POLLPRI, 0};
      (void)poll(&p, 1, static_cast<int>(left.count()));
    }
    close(fd);
  }
  ~Freeze() {
    if (!dir_.empty()) (void)WriteSmall(dir_ + "/cgroup.freeze", "0");
  }
  Freeze(const Freeze&) = delete;
  Freeze& operator=(const Freeze&) = delete;

 private:
  std::string dir_;
};

}  // namespace

Result<StateStats> SandboxRuntime::CaptureState(const std::string& id, int outFd) {
  auto sb = Find(*impl_, id);
  if (!sb) return sb.error();
  std::lock_guard control((*sb)->controlMu);  // no Exec starts while the state is read
  Freeze frozen((*sb)->cgroup);
  if (!(*sb)->imageRoot) return sandbox::CaptureState(impl_->config.initBinary, (*sb)->initPid, outFd);
  // An image sandbox: its overlay upper dir first, walked by us on the host
  // (see CaptureUpperDir for why that is safe), then its scratch roots by
  // the helper inside, appended.
  const std::string upper = UpperDirOf((*sb)->runDir);
  int upperFd = open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (upperFd < 0) return MakeError(ErrorCode::kInternal, "sandbox " + id + ": cannot open its upper dir: " +
                                                              std::strerror(errno));
  auto upperStats = CaptureUpperDir(upperFd, (*sb)->info.hostIdBase, outFd);
  close(upperFd);
  if (!upperStats) return upperStats.error();
  auto rootStats = sandbox::CaptureState(impl_->config.initBinary, (*sb)->initPid, outFd, /*append=*/true);
  if (!rootStats) return rootStats.error();
  rootStats->entries += upperStats->entries;
  rootStats->dataBytes += upperStats->dataBytes;
  rootStats->skipped += upperStats->skipped;
  return rootStats;
}

Result<StateStats> SandboxRuntime::RestoreState(const std::string& id, int inFd) {
  auto sb = Find(*impl_, id);
  if (!sb) return sb.error();
  std::lock_guard control((*sb)->controlMu);
  return sandbox::RestoreState(impl_->config.initBinary, (*sb)->initPid, inFd, (*sb)->cgroup.Dirs());
}

Result<SandboxInfo> SandboxRuntime::SetDeadline(const std::string& id, int64_t endsAtUnix) {
  const int64_t now = std::time(nullptr);
  if (endsAtUnix <= now) return MakeError(ErrorCode::kInvalidArgument, "endsAt: must be in the future");
  auto sb = Find(*impl_, id);
  if (!sb) return sb.error();
  SandboxInfo info;
  {
    std::lock_guard lock(impl_->mu);
    (*sb)->info.endsAtUnix = endsAtUnix;
    (*sb)->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(endsAtUnix - now);
    info = (*sb)->info;
  }
  impl_->supervisorCv.notify_all();
  // A restarted worker re-adopts it with the new deadline.
  const std::string metaPath = (*sb)->runDir + "/meta";
  if (auto meta = ReadMeta(metaPath)) {
    meta->info.endsAtUnix = endsAtUnix;
    if (auto s = WriteMeta(metaPath, *meta); !s) return s.error();
  }
  return info;
}

}  // namespace osb::sandbox
