#include "sandbox/rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

namespace osb::sandbox {
namespace {

Error Fail(const std::string& what, const std::string& path) {
  return MakeError(ErrorCode::kInternal, "rootfs: " + what + " " + path + ": " + std::strerror(errno));
}

// Host /etc entries never shown: accounts and their shadows (we generate
// passwd/group), sudo and ssh configuration and keys, and files we generate.
const std::set<std::string> kEtcSkip = {
    "passwd", "passwd-", "group", "group-", "shadow", "shadow-", "gshadow", "gshadow-",
    "subuid", "subgid", "sudoers", "sudoers.d", "ssh", "hosts", "hostname", "resolv.conf",
    "mtab", "ssl", "machine-id"};
const std::set<std::string> kSystemDirs = {"usr", "bin", "lib", "lib32", "lib64", "libx32", "sbin"};
const std::set<std::string> kTemplateSkip = {"proc", "dev", "sys", "tmp", "home", "run", "etc"};

Status MakeReadOnly(const std::string& target) {
  // MS_REMOUNT|MS_BIND changes only this mount's flags; sub-mounts of a
  // recursive bind (rare under /usr) keep theirs, which is why binds are
  // made per entry and never of / itself.
  if (mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
    return Fail("remount read-only", target);
  return {};
}

Status BindReadOnly(const std::string& src, const std::string& dst, bool isDir) {
  if (isDir) {
    if (mkdir(dst.c_str(), 0755) != 0 && errno != EEXIST) return Fail("mkdir", dst);
  } else {
    int fd = open(dst.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return Fail("create", dst);
    close(fd);
  }
  if (mount(src.c_str(), dst.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) return Fail("bind", src);
  return MakeReadOnly(dst);
}

Status CopySymlink(const std::string& src, const std::string& dst) {
  char buf[4096];
  ssize_t n = readlink(src.c_str(), buf, sizeof buf - 1);
  if (n < 0) return Fail("readlink", src);
  buf[n] = 0;
  if (symlink(buf, dst.c_str()) != 0 && errno != EEXIST) return Fail("symlink", dst);
  return {};
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/');
}

// Mirrors one entry: symlinks are copied, directories and regular files are
// bound read-only; sockets, fifos and devices are left out. A hidden path
// (or anything below it) is skipped; a directory that *contains* a hidden
// path cannot be bound as a whole, so that is refused.
Status MirrorEntry(const std::string& src, const std::string& dst, const std::vector<std::string>& hidden) {
  for (const auto& h : hidden) {
    if (IsUnder(src, h)) return {};
    if (IsUnder(h, src))
      return MakeError(ErrorCode::kFailedPrecondition,
                       "rootfs: hidden path " + h + " is inside " + src + ", which the sandbox would see");
  }
  struct stat st {};
  if (lstat(src.c_str(), &st) != 0) return {};  // vanished: nothing to show
  if (S_ISLNK(st.st_mode)) return CopySymlink(src, dst);
  if (S_ISDIR(st.st_mode)) return BindReadOnly(src, dst, true);
  if (S_ISREG(st.st_mode)) return BindReadOnly(src, dst, false);
  return {};
}

// Mirrors every entry of srcDir into the (existing) dstDir except `skip`.
Status MirrorDir(const std::string& srcDir, const std::string& dstDir, const std::set<std::string>& skip,
                 const std::vector<std::string>& hidden) {
  DIR* d = opendir(srcDir.c_str());
  if (!d) return errno == ENOENT ? Status{} : Status{Fail("opendir", srcDir)};
  Status result;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == ".." || skip.count(n)) continue;
    if (auto s = MirrorEntry(srcDir + "/" + n, dstDir + "/" + n, hidden); !s) {
      result = s;
      break;
    }
  }
  closedir(d);
  return result;
}

Status MkdirP(const std::string& path, mode_t mode) {
  std::string cur;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    cur = path.substr(0, next);
    if (mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) return Fail("mkdir", cur);
    pos = next + 1;
  }
  return {};
}

Status MountTmpfs(const std::string& dst, const std::string& opts, unsigned long flags) {
  if (mount("tmpfs", dst.c_str(), "tmpfs", flags, opts.c_str()) != 0) return Fail("mount tmpfs", dst);
  return {};
}

Status WriteFileAt(const std::string& path, const std::string& content, mode_t mode) {
  unlink(path.c_str());  // a mirrored symlink may sit there
  int fd = open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return Fail("create", path);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      close(fd);
      return Fail("write", path);
    }
    off += static_cast<size_t>(n);
  }
  fchmod(fd, mode);
  close(fd);
  return {};
}

Status BuildEtc(const std::string& srcEtc, const std::string& root, const RootfsPlan& plan) {
  const std::string etc = root + "/etc";
  if (mkdir(etc.c_str(), 0755) != 0 && errno != EEXIST) return Fail("mkdir", etc);
  const auto& hidden = plan.hiddenPaths;
  if (auto s = MirrorDir(srcEtc, etc, kEtcSkip, hidden); !s) return s;
  // /etc/ssl: mirrored except certs/ (rebuilt) and private/ (keys).
  if (auto s = MkdirP(etc + "/ssl/certs", 0755); !s) return s;
  if (auto s = MirrorDir(srcEtc + "/ssl", etc + "/ssl", {"certs", "private"}, hidden); !s) return s;
  bool generatedBundle = false;
  for (const auto& f : plan.files) generatedBundle |= (f.path == "/etc/ssl/certs/ca-certificates.crt");
  std::set<std::string> certSkip;
  if (generatedBundle) certSkip.insert("ca-certificates.crt");
  if (auto s = MirrorDir(srcEtc + "/ssl/certs", etc + "/ssl/certs", certSkip, hidden); !s) return s;
  if (symlink("/proc/self/mounts", (etc + "/mtab").c_str()) != 0 && errno != EEXIST) return Fail("symlink", etc + "/mtab");
  return {};
}

Status BuildDev(const std::string& root, uint64_t shmBytes) {
  const std::string dev = root + "/dev";
  if (auto s = MountTmpfs(dev, "mode=0755,size=64k", MS_NOSUID | MS_NOEXEC); !s) return s;
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
    std::string src = std::string("/dev/") + node;
    if (access(src.c_str(), F_OK) != 0) continue;
    if (auto s = BindReadOnly(src, dev + "/" + node, false); !s) return s;
    // Device binds must keep device access: undo the nodev of BindReadOnly.
    if (mount(nullptr, (dev + "/" + node).c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC, nullptr) != 0)
      return Fail("remount device", dev + "/" + node);
  }
  const std::pair<const char*, const char*> links[] = {
      {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}};
  for (const auto& [target, name] : links)
    if (symlink(target, (dev + "/" + name).c_str()) != 0) return Fail("symlink", dev + "/" + name);
  if (mkdir((dev + "/shm").c_str(), 01777) != 0) return Fail("mkdir", dev + "/shm");
  if (auto s = MountTmpfs(dev + "/shm", "mode=1777,size=" + std::to_string(shmBytes), MS_NOSUID | MS_NODEV | MS_NOEXEC); !s)
    return s;
  if (mount(nullptr, dev.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") != 0)
    return Fail("remount read-only", dev);
  return {};
}

}  // namespace

Status BuildRootfsAndPivot(const RootfsPlan& plan) {
  // Nothing mounted here may propagate back to the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return Fail("make private", "/");
  const std::string& root = plan.stagingDir;
  size_t generated = 0;
  for (const auto& f : plan.files) generated += f.content.size();
  if (auto s = MountTmpfs(root, "mode=0755,size=" + std::to_string(generated + (4u << 20)), MS_NOSUID | MS_NODEV); !s)
    return s;

  const std::string src = plan.templateDir.empty() ? "" : plan.templateDir;
  if (plan.templateDir.empty()) {
    for (const auto& name : kSystemDirs)
      if (auto s = MirrorEntry("/" + name, root + "/" + name, plan.hiddenPaths); !s) return s;
  } else {
    if (auto s = MirrorDir(plan.templateDir, root, kTemplateSkip, plan.hiddenPaths); !s) return s;
  }
  if (auto s = BuildEtc(src + "/etc", root, plan); !s) return s;
  for (const char* d : {"/proc", "/dev", "/tmp", "/home", "/home/sandbox"})
    if (mkdir((root + d).c_str(), 0755) != 0 && errno != EEXIST) return Fail("mkdir", root + d);

  // Fresh procfs of our PID namespace; hidepid hides root's processes (init).
  if (mount("proc", (root + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") != 0 &&
      mount("proc", (root + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") != 0)
    return Fail("mount proc", root + "/proc");
  if (auto s = BuildDev(root, plan.tmpfsBytes); !s) return s;
  const std::string owner = ",uid=" + std::to_string(plan.uid) + ",gid=" + std::to_string(plan.gid);
  if (auto s = MountTmpfs(root + "/tmp", "mode=1777,size=" + std::to_string(plan.tmpfsBytes), MS_NOSUID | MS_NODEV); !s)
    return s;
  if (auto s = MountTmpfs(root + "/home/sandbox", "mode=0700,size=" + std::to_string(plan.tmpfsBytes) + owner,
                          MS_NOSUID | MS_NODEV);
      !s)
    return s;
  for (const auto& f : plan.files) {
    auto slash = f.path.rfind('/');
    if (slash != std::string::npos && slash > 0)
      if (auto s = MkdirP(root + f.path.substr(0, slash), 0755); !s) return s;
    if (auto s = WriteFileAt(root + f.path, f.content, f.mode); !s) return s;
  }

  // pivot_root(".", ".") stacks the old root under the new one; detaching it
  // leaves no path back to the host's filesystem.
  if (chdir(root.c_str()) != 0) return Fail("chdir", root);
  if (syscall(SYS_pivot_root, ".", ".") != 0) return Fail("pivot_root", root);
  if (umount2(".", MNT_DETACH) != 0) return Fail("detach old root", "/");
  if (chdir("/") != 0) return Fail("chdir", "/");
  if (mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
    return Fail("remount read-only", "/");
  return {};
}

}  // namespace osb::sandbox
