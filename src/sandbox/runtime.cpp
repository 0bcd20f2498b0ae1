#include "sandbox/runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <future>
#include <system_error>

#include "sandbox/dns_server.h"
#include "sandbox/image_root.h"
#include "sandbox/init_launcher.h"
#include "sandbox/init_protocol.h"
#include "sandbox/nft.h"
#include "sandbox/runtime_internal.h"
#include "sandbox/sandbox_meta.h"

namespace osb::sandbox {
namespace {

constexpr const char* kCaPath = "/etc/ssl/certs/ca-certificates.crt";
constexpr auto kSetupTimeout = std::chrono::seconds(30);

Status MkdirIfMissing(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    return MakeError(ErrorCode::kInternal, "cannot create " + path + ": " + std::strerror(errno));
  return {};
}

// Waits for the init's reply to the setup message ('R' or 'F' <error>).
Status AwaitReady(int fd, int pidfd) {
  auto deadline = std::chrono::steady_clock::now() + kSetupTimeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return MakeError(ErrorCode::kInternal, "sandbox init did not become ready in time");
    pollfd fds[2] = {{fd, POLLIN, 0}, {pidfd, POLLIN, 0}};
    int n = poll(fds, pidfd >= 0 ? 2 : 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (fds[0].revents) break;
    if (n > 0 && fds[1].revents) return MakeError(ErrorCode::kInternal, "sandbox init exited during setup");
  }
  auto rec = RecvRecord(fd);
  if (!rec) return MakeError(ErrorCode::kInternal, "sandbox init exited during setup");
  WireReader r(*rec);
  char tag = r.Tag();
  if (tag == 'R') return {};
  auto msg = r.Str();
  return MakeError(ErrorCode::kInternal, "sandbox setup failed: " + (msg ? *msg : std::string("unknown error")));
}

// The host's CA bundle is read on every Create (it may be updated): read(2)
// into a sized buffer, not a per-character stream.
std::string ReadWholeFile(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st {};
  if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (64 << 20)) out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  out.resize(got);
  return out;
}

// The name of a host user or group whose id lies in [first, last], or "".
std::string HostIdInRange(uint64_t first, uint64_t last) {
  for (const char* file : {"/etc/passwd", "/etc/group"}) {
    std::ifstream f(file);
    for (std::string line; std::getline(f, line);) {
      // name:x:id:...
      auto c1 = line.find(':');
      auto c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
      auto c3 = c2 == std::string::npos ? c2 : line.find(':', c2 + 1);
      if (c3 == std::string::npos) continue;
      const std::string id = line.substr(c2 + 1, c3 - c2 - 1);
      if (id.empty() || id.size() > 10 || id.find_first_not_of("0123456789") != std::string::npos) continue;
      const uint64_t v = std::stoull(id);
      if (v >= first && v <= last) return line.substr(0, c1) + " (" + file + ")";
    }
  }
  return "";
}

std::vector<GeneratedFile> EtcFiles(const SandboxSpec& spec, const SandboxInfo& info, const RuntimeConfig& cfg) {
  const std::string uid = std::to_string(cfg.uid), gid = std::to_string(cfg.gid);
  std::vector<GeneratedFile> files = {
      {"/etc/passwd",
       "root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:" + uid + ":" + gid +
           ":sandbox:/home/sandbox:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
      {"/etc/group", "root:x:0:\nsandbox:x:" + gid + ":\nnogroup:x:65534:\n"},
      {"/etc/hostname", spec.id + "\n"},
      {"/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n" + info.sandboxAddress + "\t" + spec.id + "\n"},
      {"/etc/resolv.conf", "nameserver " + info.hostAddress + "\noptions ndots:0 timeout:2 attempts:2\n"},
      {"/etc/nsswitch.conf",
       "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\n"
       "services: files\nethers: files\nrpc: files\n"},
  };
  // Nothing of the host's /etc is bound: the system trust bundle is copied.
  files.push_back({kCaPath, spec.caBundlePem.empty() ? ReadWholeFile(kCaPath) : spec.caBundlePem});
  return files;
}

std::map<std::string, std::string> BaseEnv(const SandboxSpec& spec, const SandboxInfo& info) {
  std::map<std::string, std::string> env;
  // The proxy's address is allocated here, so the runtime sets these.
  const std::string proxy = "http://" + info.hostAddress + ":" + std::to_string(spec.network.proxyExplicitPort);
  for (const char* k : {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"}) env[k] = proxy;
  for (const char* k : {"NO_PROXY", "no_proxy"}) env[k] = "localhost,127.0.0.1,::1";
  env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  env["HOME"] = "/home/sandbox";
  if (!spec.caBundlePem.empty()) {
    env["SSL_CERT_FILE"] = kCaPath;
    env["REQUESTS_CA_BUNDLE"] = kCaPath;
    env["NODE_EXTRA_CA_CERTS"] = kCaPath;
  }
  // The explicit proxy lives on the host side of this sandbox's veth, whose
  // address is only known once the lease is taken, so the runtime (not the
  // worker) writes the proxy variables.
  if (spec.network.proxyExplicitPort != 0) {
    const std::string url =
        "http://" + info.hostAddress + ":" + std::to_string(spec.network.proxyExplicitPort);
    for (const char* var : {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"}) env[var] = url;
    env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1";
  }
  for (const auto& [k, v] : spec.env) env[k] = v;  // the worker's values win
  return env;
}

bool ValidPrefix(const std::string& p) {
  if (p.empty() || p.size() > 6) return false;
  for (char c : p)
    if (c < 'a' || c > 'z') return false;
  return true;
}

}  // namespace

Sandbox::~Sandbox() {
  if (controlFd >= 0) close(controlFd);
  if (pidfd >= 0) close(pidfd);
}

SandboxRuntime::SandboxRuntime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<SandboxRuntime>> SandboxRuntime::Create(RuntimeConfig config) {
  if (!ValidPrefix(config.namePrefix)) return MakeError(ErrorCode::kInvalidArgument, "namePrefix: must be 1..6 of [a-z]");
  if (config.runDir.empty() || config.runDir.front() != '/')
    return MakeError(ErrorCode::kInvalidArgument, "runDir: must be an absolute path");
  if (config.uid == 0 || config.gid == 0 || config.uid >= kIdsPerSandbox || config.gid >= kIdsPerSandbox)
    return MakeError(ErrorCode::kInvalidArgument, "uid/gid: must be 1..65535");
  const uint64_t idEnd = uint64_t{config.idRangeStart} + uint64_t{config.idRangeCount} * kIdsPerSandbox;
  if (config.idRangeStart < kIdsPerSandbox || config.idRangeCount == 0 || idEnd > UINT32_MAX)
    return MakeError(ErrorCode::kInvalidArgument,
                     "idRangeStart/idRangeCount: need 65536 <= start and start + count * 65536 < 2^32");
  if (config.idRegistryDir.empty() || config.idRegistryDir.front() != '/')
    return MakeError(ErrorCode::kInvalidArgument, "idRegistryDir: must be an absolute path");
  if (auto taken = HostIdInRange(config.idRangeStart, idEnd - 1); !taken.empty())
    return MakeError(ErrorCode::kInvalidArgument, "idRangeStart/idRangeCount: the range holds host id of " + taken);
  if (config.initBinary.empty()) config.initBinary = DefaultInitBinary();
  for (auto& h : config.hiddenPaths) {
    if (h.empty() || h.front() != '/') return MakeError(ErrorCode::kInvalidArgument, "hiddenPaths: must be absolute");
    // Canonical form, so /etc/../etc/osb or a symlinked path still matches.
    if (char* real = realpath(h.c_str(), nullptr)) {
      h = real;
      free(real);
    }
    while (h.size() > 1 && h.back() == '/') h.pop_back();
  }
  if (access(config.initBinary.c_str(), X_OK) != 0)
    return MakeError(ErrorCode::kFailedPrecondition, "initBinary: not executable: " + config.initBinary);
  auto pool = AddressPool::Create(config.addressPool);
  if (!pool) return pool.error();
  // 0711: a sandbox's init (an unprivileged host uid) passes through to
  // its own <runDir>/<id>, which it owns; it cannot list the others.
  if (auto s = MkdirIfMissing(config.runDir, 0711); !s) return s.error();
  if (chmod(config.runDir.c_str(), 0711) != 0)
    return MakeError(ErrorCode::kInternal, "cannot chmod " + config.runDir + ": " + std::strerror(errno));
  auto impl = std::make_unique<Impl>();
  impl->ids = std::make_unique<IdRegistry>(config.idRegistryDir, config.idRangeStart, config.idRangeCount);
  impl->config = std::move(config);
  impl->pool = std::move(*pool);
  Impl* raw = impl.get();
  impl->supervisor = std::thread([raw] { raw->SupervisorLoop(); });
  return std::unique_ptr<SandboxRuntime>(new SandboxRuntime(std::move(impl)));
}

SandboxRuntime::~SandboxRuntime() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->supervisorCv.notify_all();
  impl_->supervisor.join();
  std::map<std::string, std::shared_ptr<Sandbox>> all;
  {
    std::lock_guard lock(impl_->mu);
    all.swap(impl_->sandboxes);
  }
  for (auto& [id, sb] : all) (void)impl_->Teardown(*sb);
}

Result<SandboxInfo> SandboxRuntime::Create(const SandboxSpec& spec) {
  if (auto s = ValidateSpec(spec); !s) return s.error();
  Impl& im = *impl_;
  {
    std::lock_guard lock(im.mu);
    if (im.sandboxes.count(spec.id) || im.creating.count(spec.id))
      return MakeError(ErrorCode::kAlreadyExists, "sandbox " + spec.id + " already exists");
    im.creating.insert(spec.id);
  }
  auto sb = std::make_shared<Sandbox>();
  // Any failure below tears down exactly what was built so far.
  auto fail = [&](Error e) -> Result<SandboxInfo> {
    (void)im.Teardown(*sb);
    std::lock_guard lock(im.mu);
    im.creating.erase(spec.id);
    return e;
  };

  auto lease = im.pool->Allocate();
  if (!lease) return fail(lease.error());
  sb->lease = *lease;
  sb->names = NamesFor(im.config.namePrefix, spec.id);
  sb->runDir = im.config.runDir + "/" + spec.id;
  sb->info.id = spec.id;
  sb->info.sandboxAddress = lease->sandboxAddress;
  sb->info.hostAddress = lease->hostAddress;
  sb->info.netnsName = sb->names.netns;

  auto cg = Cgroup::Create(im.config.cgroupRoot, im.config.namePrefix + "-" + spec.id,
                           CgroupLimits{spec.cpuCount, spec.memoryMB << 20, spec.pidsMax});
  if (!cg) return fail(cg.error());
  sb->cgroup = *cg;
  if (auto s = MkdirIfMissing(im.config.runDir, 0711); !s) return fail(s.error());
  if (auto s = MkdirIfMissing(sb->runDir, 0700); !s) return fail(s.error());
  // A host uid range of its own, registered to its run dir (which must
  // exist first: a range whose owner dir is missing counts as free).
  auto base = im.ids->Claim(sb->runDir);
  if (!base) return fail(base.error());
  sb->info.hostIdBase = *base;
  sb->holdsIds = true;
  // The init (root of the sandbox's user namespace = host uid hostIdBase)
  // creates its control socket here and mounts its root on root/.
  for (const std::string& dir : {sb->runDir, sb->runDir + "/root"}) {
    if (auto s = MkdirIfMissing(dir, 0700); !s) return fail(s.error());
    if (chown(dir.c_str(), sb->info.hostIdBase, sb->info.hostIdBase) != 0)
      return fail(MakeError(ErrorCode::kInternal, "cannot chown " + dir + ": " + std::strerror(errno)));
  }

  if (!spec.imageRootfs.empty()) {
    // Before the init exists: its mount namespace is a copy of ours.
    sb->imageRoot = true;
    std::function<Status(int)> fillUpper;
    if (spec.restoreFd >= 0) {
      fillUpper = [&](int upperFd) -> Status {
        auto restored = RestoreUpperDir(upperFd, sb->info.hostIdBase, spec.restoreFd);
        if (!restored) return restored.error();
        return {};
      };
    }
    if (auto s = MountImageRoot(spec.imageRootfs, im.config.diskDir, sb->runDir, spec.diskMB, sb->info.hostIdBase,
                                fillUpper);
        !s)
      return fail(s.error());
  }

  auto init = LaunchInit(im.config.initBinary, sb->info.hostIdBase);
  if (!init) return fail(init.error());
  sb->initPid = init->pid;
  sb->pidfd = init->pidfd;
  sb->controlFd = init->setupFd;
  sb->info.initPid = init->pid;
  if (auto s = sb->cgroup.AddProcess(init->pid); !s) return fail(s.error());
  // The sandbox's OOM victims are its commands, never its init.
  std::ofstream(std::string("/proc/") + std::to_string(init->pid) + "/oom_score_adj") << "-1000";
  SetupMessage setup;
  setup.rootfs.stagingDir = sb->runDir + "/root";
  setup.rootfs.templateDir = spec.rootfsTemplate;
  // /tmp, /home/sandbox and /dev/shm together: half the memory limit, so a
  // full scratch space leaves the processes room (it is charged to the
  // memory cgroup as well).
  setup.rootfs.tmpfsBytes = (spec.memoryMB << 20) / 2;
  setup.rootfs.uid = spec.runAsUid >= 0 ? static_cast<uid_t>(spec.runAsUid) : im.config.uid;
  setup.rootfs.gid = spec.runAsGid >= 0 ? static_cast<gid_t>(spec.runAsGid) : im.config.gid;
  setup.rootfs.overlayRoot = sb->imageRoot;
  setup.rootfs.workingDir = spec.workingDir;
  setup.rootfs.files = EtcFiles(spec, sb->info, im.config);
  setup.rootfs.hiddenPaths = im.config.hiddenPaths;
  setup.rootfs.hiddenPaths.push_back(im.config.runDir);
  setup.hostname = spec.id;
  setup.controlSocketPath = sb->runDir + "/ctl.sock";
  setup.baseEnv = BaseEnv(spec, sb->info);
  if (!SendRecord(sb->controlFd, EncodeSetup(setup)))
    return fail(MakeError(ErrorCode::kInternal, std::string("cannot send sandbox setup: ") + std::strerror(errno)));
  // The init builds its root filesystem while we wire its network.
  // If the init already gave up (e.g. a refused hidden path), its own error
  // explains the failure better than the network step that tripped over it.
  auto initErrorOr = [&](Error networkError) -> Error {
    // The init sends its error before exiting, so it is queued by the time
    // its namespaces are gone.
    pollfd p[2] = {{sb->controlFd, POLLIN, 0}, {sb->pidfd, POLLIN, 0}};
    if (poll(p, sb->pidfd >= 0 ? 2 : 1, 0) > 0)
      if (auto s = AwaitReady(sb->controlFd, sb->pidfd); !s) return s.error();
    return networkError;
  };
  // The nft table does not need the veth to exist (it matches interface
  // names), so `nft -f` runs beside the two `ip -batch` calls instead of
  // after them: each is an exec'd tool of several ms, the largest single
  // steps of a create (bench/results/README.md). Both are done before the
  // init reports ready and before any command can run.
  auto install = [&names = sb->names, &lease = sb->lease, &net = spec.network] {
    return InstallRules(names, lease, net);
  };
  std::future<Status> rules;
  try {
    rules = std::async(std::launch::async, install);
  } catch (const std::system_error&) {  // no thread to spare: in turn, as before
  }
  auto wired = SetupNetwork(sb->names, sb->lease, init->pid);
  Status installed = rules.valid() ? rules.get() : install();
  if (!wired) return fail(initErrorOr(wired.error()));
  if (!installed) return fail(initErrorOr(installed.error()));

  if (auto s = AwaitReady(sb->controlFd, sb->pidfd); !s) return fail(s.error());
  if (spec.restoreFd >= 0) {
    // The scratch roots (the upper dir, if any, was filled above).
    auto restored = sandbox::RestoreState(im.config.initBinary, sb->initPid, spec.restoreFd, sb->cgroup.Dirs(),
                                          /*upperDone=*/sb->imageRoot);
    if (!restored) return fail(restored.error());
  }
  if (im.config.dns) {
    if (auto s = im.config.dns->SetSandbox(sb->info.sandboxAddress, sb->info.hostAddress, spec.dnsAllowlist); !s)
      return fail(s.error());
  }

  sb->info.startedAtUnix = std::time(nullptr);
  sb->info.endsAtUnix = sb->info.startedAtUnix + static_cast<int64_t>(spec.timeoutSec);
  sb->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(spec.timeoutSec);
  // What a restarted worker needs to re-adopt this sandbox (no env, no secrets).
  SandboxMeta meta{sb->info, ProcessStartTime(sb->initPid), spec.network, spec.dnsAllowlist};
  if (auto s = WriteMeta(sb->runDir + "/meta", meta); !s) return fail(s.error());
  {
    std::lock_guard lock(im.mu);
    im.creating.erase(spec.id);
    im.sandboxes[spec.id] = sb;
  }
  im.supervisorCv.notify_all();
  return sb->info;
}

Status SandboxRuntime::Impl::Teardown(Sandbox& sb) {
  std::vector<std::string> errors;
  auto note = [&](const Status& s) {
    if (!s) errors.push_back(s.error().message);
  };
  if (sb.initPid > 0) {
    // PID 1 dying takes every process of its PID namespace with it.
    kill(sb.initPid, SIGKILL);
    if (sb.pidfd >= 0) {
      pollfd p{sb.pidfd, POLLIN, 0};
      while (poll(&p, 1, 10000) < 0 && errno == EINTR) {
      }
    }
    // ECHILD when adopted after a restart: its new parent reaps it.
    while (waitpid(sb.initPid, nullptr, 0) < 0 && errno == EINTR) {
    }
    sb.initPid = -1;
  }
  if (!sb.cgroup.Dirs().empty()) note(sb.cgroup.KillAndRemove());
  if (config.dns && !sb.info.sandboxAddress.empty()) config.dns->RemoveSandbox(sb.info.sandboxAddress);
  if (!sb.names.netns.empty()) {
    note(RemoveRules(sb.names.nftTable));
    note(TeardownNetwork(sb.names));
  }
  if (!sb.runDir.empty()) {
    // The root tmpfs lives only in the sandbox's (now dead) mount namespace;
    // a detach here covers a mount that leaked by mistake.
    umount2((sb.runDir + "/root").c_str(), MNT_DETACH);
    if (sb.imageRoot) UnmountImageRoot(sb.runDir);
    rmdir((sb.runDir + "/root").c_str());
    unlink((sb.runDir + "/ctl.sock").c_str());
    unlink((sb.runDir + "/meta").c_str());
    if (rmdir(sb.runDir.c_str()) != 0 && errno != ENOENT)
      errors.push_back("cannot remove " + sb.runDir + ": " + std::strerror(errno));
  }
  if (!sb.lease.hostAddress.empty()) {
    pool->Release(sb.lease.block);
    sb.lease.hostAddress.clear();
  }
  // Last: every process that ran under the range is gone.
  if (sb.holdsIds) {
    ids->Release(sb.info.hostIdBase, sb.runDir);
    sb.holdsIds = false;
  }
  if (errors.empty()) return {};
  std::string msg = "destroy " + sb.info.id + ":";
  for (const auto& e : errors) msg += " " + e + ";";
  return MakeError(ErrorCode::kInternal, msg);
}

Result<ExecResult> SandboxRuntime::Exec(const std::string& id, const ExecRequest& request) {
  if (auto s = ValidateExec(request); !s) return s.error();
  std::shared_ptr<Sandbox> sb;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->sandboxes.find(id);
    if (it == impl_->sandboxes.end()) return MakeError(ErrorCode::kNotFound, "sandbox " + id + " not found");
    sb = it->second;
  }
  return impl_->RunExec(*sb, request);
}

Status SandboxRuntime::Destroy(const std::string& id) {
  std::shared_ptr<Sandbox> sb;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->sandboxes.find(id);
    if (it == impl_->sandboxes.end()) return MakeError(ErrorCode::kNotFound, "sandbox " + id + " not found");
    sb = it->second;
    impl_->sandboxes.erase(it);
  }
  return impl_->Teardown(*sb);
}

std::vector<SandboxInfo> SandboxRuntime::List() const {
  std::lock_guard lock(impl_->mu);
  std::vector<SandboxInfo> out;
  for (const auto& [id, sb] : impl_->sandboxes) out.push_back(sb->info);
  return out;
}

Result<std::string> SandboxRuntime::WritableDir(const std::string& id) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->sandboxes.find(id);
  if (it == impl_->sandboxes.end()) return MakeError(ErrorCode::kNotFound, "sandbox " + id + " not found");
  if (!it->second->imageRoot)
    return MakeError(ErrorCode::kFailedPrecondition, "sandbox " + id + " has no writable root (not an image sandbox)");
  return UpperDirOf(it->second->runDir);
}

void SandboxRuntime::Impl::SupervisorLoop() {
  std::unique_lock lock(mu);
  while (!stopping) {
    auto now = std::chrono::steady_clock::now();
    auto wake = now + std::chrono::seconds(1);  // also polls for dead inits
    std::vector<std::pair<std::shared_ptr<Sandbox>, std::string>> ended;
    for (auto it = sandboxes.begin(); it != sandboxes.end();) {
      auto& sb = it->second;
      pollfd p{sb->pidfd, POLLIN, 0};
      std::string reason;
      if (sb->deadline <= now) reason = "timeout";
      else if (sb->pidfd >= 0 && poll(&p, 1, 0) > 0) reason = "exited";
      if (!reason.empty()) {
        ended.emplace_back(sb, reason);
        it = sandboxes.erase(it);
        continue;
      }
      if (sb->deadline < wake) wake = sb->deadline;
      ++it;
    }
    if (!ended.empty()) {
      lock.unlock();
      for (auto& [sb, reason] : ended) {
        (void)Teardown(*sb);
        if (config.onSandboxEnded) config.onSandboxEnded(sb->info.id, reason);
      }
      lock.lock();
      continue;
    }
    supervisorCv.wait_until(lock, wake);
  }
}

}  // namespace osb::sandbox
