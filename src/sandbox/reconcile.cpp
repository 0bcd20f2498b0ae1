// SandboxRuntime::ReconcileLeftovers: after a crash the previous worker's
// sandboxes are orphans (their control sockets died with it). They are
// killed and every host object with our prefix that this runtime does not
// own is removed. Re-adoption is deliberately not done: a sandbox whose
// worker crashed has lost its proxy session anyway.
#include <dirent.h>
#include <net/if.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "sandbox/nft.h"
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

}  // namespace

ReconcileReport SandboxRuntime::ReconcileLeftovers() {
  Impl& im = *impl_;
  const std::string& prefix = im.config.namePrefix;
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
  ReconcileReport report;
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
    rmdir((dir + "/root").c_str());
    unlink((dir + "/ctl.sock").c_str());
    if (rmdir(dir.c_str()) == 0) report.removed.push_back("dir " + dir);
    else report.errors.push_back("cannot remove " + dir + ": " + std::strerror(errno));
  }
  return report;
}

}  // namespace osb::sandbox
