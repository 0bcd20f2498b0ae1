// SandboxRuntime::ReconcileLeftovers: after a worker crash its sandboxes
// keep running (their inits were orphaned, not killed). Each one whose run
// dir has a valid meta file, whose init is alive with the recorded start
// time and which accepts a connection on its ctl.sock is re-adopted; then
// every host object with our prefix that this runtime does not own is
// removed.
#include <dirent.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <net/if.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <ctime>
#include <set>

#include "sandbox/dns_server.h"
#include "sandbox/nft.h"
#include "sandbox/sandbox_meta.h"
#include "sandbox/image_root.h"
#include "sandbox/runtime_internal.h"

namespace osb::sandbox {
namespace {

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    closedir(d);
  }
  return names;
}

bool IsHex(const std::string& s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

int ConnectControl(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (fd < 0 || path.size() >= sizeof addr.sun_path) {
    if (fd >= 0) close(fd);
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

// Re-adopts the sandbox described by <runDir>/<id>/meta, or returns an error
// (then it is treated as a leftover).
static Result<std::shared_ptr<Sandbox>> Adopt(SandboxRuntime::Impl& im, const std::string& id) {
  const std::string dir = im.config.runDir + "/" + id;
  auto meta = ReadMeta(dir + "/meta");
  if (!meta || meta->info.id != id) return MakeError(ErrorCode::kNotFound, "no valid meta in " + dir);
  const pid_t pid = static_cast<pid_t>(meta->info.initPid);
  if (ProcessStartTime(pid) != meta->initStartTime) return MakeError(ErrorCode::kNotFound, "init of " + id + " is gone");
  auto lease = im.pool->LeaseFor(meta->info.sandboxAddress);
  if (!lease || lease->hostAddress != meta->info.hostAddress)
    return MakeError(ErrorCode::kFailedPrecondition, "sandbox " + id + " is outside this runtime's address pool");
  auto sb = std::make_shared<Sandbox>();
  sb->pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  sb->controlFd = ConnectControl(dir + "/ctl.sock");
  if (sb->pidfd < 0 || sb->controlFd < 0) return MakeError(ErrorCode::kUnavailable, "init of " + id + " does not answer");
  // Its host uid range stays its own (0: started without a user namespace
  // by an older worker; it keeps running as it was).
  if (meta->info.hostIdBase != 0 && !im.ids->ClaimExact(meta->info.hostIdBase, dir))
    return MakeError(ErrorCode::kFailedPrecondition, "uid range of " + id + " is taken or outside this runtime's");
  if (!im.pool->Reserve(meta->info.sandboxAddress)) {
    if (meta->info.hostIdBase != 0) im.ids->Release(meta->info.hostIdBase, dir);
    return MakeError(ErrorCode::kAlreadyExists, "address of " + id + " is already in use");
  }
  sb->holdsIds = meta->info.hostIdBase != 0;
  sb->info = meta->info;
  sb->lease = *lease;
  sb->names = NamesFor(im.config.namePrefix, id);
  sb->cgroup = Cgroup::Attach(im.config.cgroupRoot, im.config.namePrefix + "-" + id);
  sb->runDir = dir;
  {
    struct stat upper {};
    sb->imageRoot = stat(UpperDirOf(dir).c_str(), &upper) == 0;
  }
  sb->initPid = pid;
  const int64_t left = std::max<int64_t>(0, meta->info.endsAtUnix - std::time(nullptr));
  sb->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(left);
  if (im.config.dns) (void)im.config.dns->SetSandbox(sb->info.sandboxAddress, sb->info.hostAddress, meta->dnsAllowlist);
  return sb;
}

ReconcileReport SandboxRuntime::ReconcileLeftovers(bool adoptRunning) {
  Impl& im = *impl_;
  const std::string& prefix = im.config.namePrefix;
  ReconcileReport report;
  if (adoptRunning) {
    for (const auto& id : ListDir(im.config.runDir)) {
      {
        std::lock_guard lock(im.mu);
        if (im.sandboxes.count(id) || im.creating.count(id)) continue;
      }
      auto sb = Adopt(im, id);
      if (!sb) continue;  // removed below as a leftover
      report.adopted.push_back((*sb)->info);
      std::lock_guard lock(im.mu);
      im.sandboxes[id] = *sb;
    }
    im.supervisorCv.notify_all();
  }
  std::set<std::string> ownedIds, ownedVeths;
  {
    std::lock_guard lock(im.mu);
    for (const auto& [id, sb] : im.sandboxes) {
      ownedIds.insert(id);
      ownedVeths.insert(sb->names.hostVeth);
    }
    for (const auto& id : im.creating) {
      ownedIds.insert(id);
      ownedVeths.insert(NamesFor(prefix, id).hostVeth);
    }
  }
  auto note = [&](const std::string& what, const Status& s) {
    if (s) report.removed.push_back(what);
    else report.errors.push_back(s.error().message);
  };

  // 1. cgroups first: killing their members ends the orphaned inits and so
  //    every process and mount namespace of the old sandboxes.
  for (const auto& name : Cgroup::ListNames(im.config.cgroupRoot, prefix)) {
    if (ownedIds.count(name.substr(prefix.size() + 1))) continue;
    note("cgroup " + name, Cgroup::Attach(im.config.cgroupRoot, name).KillAndRemove());
  }
  // 2. nft tables "<prefix>_<id>" ('-' in ids became '_').
  std::set<std::string> ownedTables;
  for (const auto& id : ownedIds) ownedTables.insert(NamesFor(prefix, id).nftTable);
  if (auto tables = ListTables(prefix)) {
    for (const auto& t : *tables)
      if (!ownedTables.count(t)) note("nft table " + t, RemoveRules(t));
  } else {
    report.errors.push_back(tables.error().message);
  }
  // 3. host veths "<prefix>h<8 hex>" (deleting one end removes its peer).
  //    if_nameindex asks the kernel about *our* netns (sysfs may show another).
  std::vector<std::string> devices;
  if (struct if_nameindex* list = if_nameindex()) {
    for (auto* i = list; i->if_index != 0; ++i) devices.emplace_back(i->if_name);
    if_freenameindex(list);
  }
  for (const auto& dev : devices) {
    if (dev.size() != prefix.size() + 9 || dev.rfind(prefix + "h", 0) != 0 || !IsHex(dev.substr(prefix.size() + 1)))
      continue;
    if (ownedVeths.count(dev)) continue;
    NetworkNames names{"", dev, ""};
    note("veth " + dev, TeardownNetwork(names));
  }
  // 4. named netns "<prefix>-<id>".
  for (const auto& ns : ListDir("/run/netns")) {
    if (ns.rfind(prefix + "-", 0) != 0 || ownedIds.count(ns.substr(prefix.size() + 1))) continue;
    NetworkNames names{ns, "", ""};
    note("netns " + ns, TeardownNetwork(names));
  }
  // 5. run dirs <runDir>/<id> (mount point + control socket).
  for (const auto& id : ListDir(im.config.runDir)) {
    if (ownedIds.count(id)) continue;
    const std::string dir = im.config.runDir + "/" + id;
    umount2((dir + "/root").c_str(), MNT_DETACH);
    UnmountImageRoot(dir);
    rmdir((dir + "/root").c_str());
    unlink((dir + "/ctl.sock").c_str());
    unlink((dir + "/meta").c_str());
    unlink((dir + "/meta.tmp").c_str());
    if (rmdir(dir.c_str()) == 0) report.removed.push_back("dir " + dir);
    else report.errors.push_back("cannot remove " + dir + ": " + std::strerror(errno));
  }
  return report;
}

}  // namespace osb::sandbox
