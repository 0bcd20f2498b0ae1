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

// Host /etc entries a base sandbox gets, as copies (never binds): data
// derived from what /usr holds, nothing about the host or its accounts.
const char* const kEtcCopies[] = {"ld.so.cache", "protocols", "services", "ssl/openssl.cnf"};
constexpr off_t kMaxEtcCopy = 4 << 20;
// Host /etc symlinks a base sandbox gets, recreated only when they point
// into /usr (alternatives: awk, which, editor...; the time zone; os-release).
const char* const kEtcLinks[] = {"localtime", "os-release"};


bool PointsIntoUsr(const std::string& target) {
  return target.rfind("/usr/", 0) == 0 || target.rfind("../usr/", 0) == 0;
}

Status CopyLinkIfIntoUsr(const std::string& src, const std::string& dst) {
  char buf[4096];
  ssize_t n = readlink(src.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string target(buf, static_cast<size_t>(n));
  if (!PointsIntoUsr(target) || target.find("/../") != std::string::npos) return {};
  if (symlink(target.c_str(), dst.c_str()) != 0 && errno != EEXIST) return Fail("symlink", dst);
  return {};
}

Status CopySmallFile(const std::string& src, const std::string& dst) {
  int fd = open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return {};  // absent (or a symlink): nothing to copy
  struct stat st {};
  std::string content;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= kMaxEtcCopy) {
    content.resize(static_cast<size_t>(st.st_size));
    ssize_t got = pread(fd, content.data(), content.size(), 0);
    content.resize(got > 0 ? static_cast<size_t>(got) : 0);
  }
  close(fd);
  if (content.empty()) return {};
  return WriteFileAt(dst, content, 0644);
}

// A base sandbox's /etc: nothing of the host's is bound. The runtime's
// generated files (plan.files) are written afterwards; here come copies of
// a few /usr-derived tables and the symlinks into /usr.
Status BuildHostEtc(const std::string& etc) {
  if (auto s = MkdirP(etc + "/ssl/certs", 0755); !s) return s;
  for (const char* f : kEtcCopies)
    if (auto s = CopySmallFile(std::string("/etc/") + f, etc + "/" + f); !s) return s;
  for (const char* l : kEtcLinks)
    if (auto s = CopyLinkIfIntoUsr(std::string("/etc/") + l, etc + "/" + l); !s) return s;
  if (DIR* d = opendir("/etc/alternatives")) {
    if (mkdir((etc + "/alternatives").c_str(), 0755) != 0 && errno != EEXIST) {
      closedir(d);
      return Fail("mkdir", etc + "/alternatives");
    }
    Status result;
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      // Man page alternatives (*.gz, often hundreds) serve no tool here.
      if (n == "." || n == ".." || e->d_type != DT_LNK || n.ends_with(".gz")) continue;
      if (auto s = CopyLinkIfIntoUsr("/etc/alternatives/" + n, etc + "/alternatives/" + n); !s) {
        result = s;
        break;
      }
    }
    closedir(d);
    if (!result) return result;
  }
  return {};
}

// A template's /etc is its own: mirrored minus accounts, keys and the files
// we generate.
Status BuildTemplateEtc(const std::string& srcEtc, const std::string& etc, const RootfsPlan& plan) {
  const auto& hidden = plan.hiddenPaths;
  if (auto s = MirrorDir(srcEtc, etc, kEtcSkip, hidden); !s) return s;
  // /etc/ssl: mirrored except certs/ (rebuilt) and private/ (keys).
  if (auto s = MkdirP(etc + "/ssl/certs", 0755); !s) return s;
  if (auto s = MirrorDir(srcEtc + "/ssl", etc + "/ssl", {"certs", "private"}, hidden); !s) return s;
  bool generatedBundle = false;
  for (const auto& f : plan.files) generatedBundle |= (f.path == "/etc/ssl/certs/ca-certificates.crt");
  std::set<std::string> certSkip;
  if (generatedBundle) certSkip.insert("ca-certificates.crt");
  return MirrorDir(srcEtc + "/ssl/certs", etc + "/ssl/certs", certSkip, hidden);
}

Status BuildEtc(const std::string& root, const RootfsPlan& plan) {
  const std::string etc = root + "/etc";
  if (mkdir(etc.c_str(), 0755) != 0 && errno != EEXIST) return Fail("mkdir", etc);
  auto s = plan.templateDir.empty() ? BuildHostEtc(etc) : BuildTemplateEtc(plan.templateDir + "/etc", etc, plan);
  if (!s) return s;
  if (symlink("/proc/self/mounts", (etc + "/mtab").c_str()) != 0 && errno != EEXIST) return Fail("symlink", etc + "/mtab");
  return {};
}

// runc's masked and read-only /proc paths. Masked files get /dev/null bound
// over them, masked directories an empty read-only tmpfs; the read-only ones
// are bound onto themselves and remounted read-only.
const char* const kProcMasked[] = {"acpi",       "asound",      "kcore",      "keys", "latency_stats",
                                   "timer_list", "timer_stats", "sched_debug", "scsi"};
const char* const kProcReadOnly[] = {"bus", "fs", "irq", "sys", "sysrq-trigger"};

Status MaskProc(const std::string& proc) {
  for (const char* name : kProcMasked) {
    const std::string path = proc + "/" + name;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) continue;  // not on this kernel
    if (S_ISDIR(st.st_mode)) {
      if (mount("tmpfs", path.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555") != 0)
        return Fail("mask", path);
    } else if (mount("/dev/null", path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return Fail("mask", path);
    }
  }
  for (const char* name : kProcReadOnly) {
    const std::string path = proc + "/" + name;
    if (access(path.c_str(), F_OK) != 0) continue;
    if (mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) return Fail("bind", path);
    if (mount(nullptr, path.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              nullptr) != 0)
      return Fail("remount read-only", path);
  }
  return {};
}

// Binds dir `src` (inside the scratch tmpfs) onto `dst` with `flags`.
Status BindScratch(const std::string& src, const std::string& dst, unsigned long flags) {
  if (mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) != 0) return Fail("bind", dst);
  if (mount(nullptr, dst.c_str(), nullptr, MS_REMOUNT | MS_BIND | flags, nullptr) != 0) return Fail("remount", dst);
  return {};
}

Status BuildDev(const std::string& root, const std::string& scratch) {
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
  // Terminals (pty commands, `oc shell`): a devpts instance of the sandbox's
  // own (newinstance), so it neither sees nor allocates the host's ptys.
  if (mkdir((dev + "/pts").c_str(), 0755) != 0) return Fail("mkdir", dev + "/pts");
  if (mount("devpts", (dev + "/pts").c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620") != 0)
    return Fail("mount devpts", dev + "/pts");
  if (symlink("pts/ptmx", (dev + "/ptmx").c_str()) != 0) return Fail("symlink", dev + "/ptmx");
  if (mkdir((dev + "/shm").c_str(), 01777) != 0) return Fail("mkdir", dev + "/shm");
  if (auto s = BindScratch(scratch + "/shm", dev + "/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC); !s) return s;
  if (mount(nullptr, dev.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") != 0)
    return Fail("remount read-only", dev);
  return {};
}

// Makes root/<rel> a real directory: a symlink or file there (from the
// image) is removed first, so nothing the worker-side setup does below the
// overlay root follows a path the image chose. Parents must be real already.
Status EnsureRealDir(const std::string& root, const std::string& rel, mode_t mode) {
  const std::string path = root + "/" + rel;
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    if (unlink(path.c_str()) != 0) return Fail("replace", path);
  }
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return Fail("mkdir", path);
  if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return Fail("not a directory", path);
  return {};
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

}  // namespace

Status BuildRootfsAndPivot(const RootfsPlan& plan) {
  // Nothing mounted here may propagate back to the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return Fail("make private", "/");
  const std::string& root = plan.stagingDir;
  size_t generated = 0;
  for (const auto& f : plan.files) generated += f.content.size();
  if (plan.overlayRoot) {
    // The worker's overlay came with our mount namespace, so it is locked,
    // and pivot_root refuses a locked new root: bind it onto itself (a
    // mount of our own) first.
    if (mount(root.c_str(), root.c_str(), nullptr, MS_BIND, nullptr) != 0) return Fail("bind", root);
    for (const char* d : {"etc", "etc/ssl", "etc/ssl/certs", "proc", "dev", "tmp", "home", "home/sandbox"})
      if (auto s = EnsureRealDir(root, d, 0755); !s) return s;
    unlink((root + "/etc/mtab").c_str());
    if (symlink("/proc/self/mounts", (root + "/etc/mtab").c_str()) != 0) return Fail("symlink", root + "/etc/mtab");
  } else {
    // Room for the generated files, the /etc copies and the mount points.
    if (auto s = MountTmpfs(root, "mode=0755,size=" + std::to_string(generated + (16u << 20)), MS_NOSUID | MS_NODEV);
        !s)
      return s;
  }

  if (plan.overlayRoot) {
    // The image's own tree is the root already.
  } else if (plan.templateDir.empty()) {
    for (const auto& name : kSystemDirs)
      if (auto s = MirrorEntry("/" + name, root + "/" + name, plan.hiddenPaths); !s) return s;
  } else {
    if (auto s = MirrorDir(plan.templateDir, root, kTemplateSkip, plan.hiddenPaths); !s) return s;
  }
  if (!plan.overlayRoot)
    if (auto s = BuildEtc(root, plan); !s) return s;
  for (const char* d : {"/proc", "/dev", "/tmp", "/home", "/home/sandbox"})
    if (mkdir((root + d).c_str(), 0755) != 0 && errno != EEXIST) return Fail("mkdir", root + d);

  // Fresh procfs of our PID namespace; hidepid hides root's processes (init).
  if (mount("proc", (root + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") != 0 &&
      mount("proc", (root + "/proc").c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2") != 0)
    return Fail("mount proc", root + "/proc");
  if (auto s = MaskProc(root + "/proc"); !s) return s;

  // One tmpfs holds /tmp, /home/sandbox and /dev/shm, so together they get
  // one budget (and their pages are charged to the sandbox's memory cgroup
  // as they are written). It is mounted at a staging point in the new root,
  // its three dirs bound to their places, and the staging point removed.
  const std::string scratch = root + "/.scratch";
  if (mkdir(scratch.c_str(), 0700) != 0) return Fail("mkdir", scratch);
  if (auto s = MountTmpfs(scratch, "mode=0755,size=" + std::to_string(plan.tmpfsBytes), MS_NOSUID | MS_NODEV); !s)
    return s;
  for (const char* d : {"/tmp", "/shm", "/home"})
    if (mkdir((scratch + d).c_str(), 0700) != 0) return Fail("mkdir", scratch + d);
  if (chmod((scratch + "/tmp").c_str(), 01777) != 0 || chmod((scratch + "/shm").c_str(), 01777) != 0)
    return Fail("chmod", scratch);
  if (chown((scratch + "/home").c_str(), plan.uid, plan.gid) != 0) return Fail("chown", scratch + "/home");
  if (auto s = BuildDev(root, scratch); !s) return s;
  if (auto s = BindScratch(scratch + "/tmp", root + "/tmp", MS_NOSUID | MS_NODEV); !s) return s;
  if (auto s = BindScratch(scratch + "/home", root + "/home/sandbox", MS_NOSUID | MS_NODEV); !s) return s;
  if (umount2(scratch.c_str(), MNT_DETACH) != 0) return Fail("detach", scratch);
  if (rmdir(scratch.c_str()) != 0) return Fail("rmdir", scratch);
  for (const auto& f : plan.files) {
    // An image keeps its own accounts (its User was resolved against them).
    if (plan.overlayRoot && (f.path == "/etc/passwd" || f.path == "/etc/group") && FileExists(root + f.path)) continue;
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
  if (plan.overlayRoot) return {};  // writable: its size is bounded by its own disk
  if (mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
    return Fail("remount read-only", "/");
  return {};
}

}  // namespace osb::sandbox
