#include "sandbox/image_root.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "sandbox/host_command.h"

namespace osb::sandbox {
namespace {

Error Fail(const std::string& what) {
  return MakeError(ErrorCode::kInternal, "image root: " + what + ": " + std::strerror(errno));
}

bool WriteFile(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  close(fd);
  return ok;
}

// A user namespace with the sandbox's mapping (0 -> hostIdBase, 65536 ids),
// only to describe the idmapped mount: a child is cloned into it, its maps
// written, the namespace fd kept, and the child ended. The child runs only
// read(2) and _exit(2) (we are multi-threaded).
Result<int> MappingUserns(uint32_t hostIdBase) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return Fail("pipe");
  long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) {
    close(pipefd[1]);  // our copy of the write end would keep the read from ending
    char c;
    (void)!read(pipefd[0], &c, 1);
    _exit(0);
  }
  close(pipefd[0]);
  if (pid < 0) {
    close(pipefd[1]);
    return Fail("clone user namespace");
  }
  const std::string proc = "/proc/" + std::to_string(pid);
  const std::string map = "0 " + std::to_string(hostIdBase) + " 65536\n";
  int nsfd = -1;
  if (WriteFile(proc + "/uid_map", map) && WriteFile(proc + "/gid_map", map))
    nsfd = open((proc + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC);
  const int err = errno;
  close(pipefd[1]);  // the child reads EOF and exits
  while (waitpid(static_cast<pid_t>(pid), nullptr, 0) < 0 && errno == EINTR) {
  }
  if (nsfd < 0) {
    errno = err;
    return Fail("map user namespace");
  }
  return nsfd;
}

struct AttachedDisk {
  std::string dev;
  int fd = -1;  // keeps the device configured until it is mounted (autoclear)
};

// <diskDir>/.blank-<MB>M.img: an empty ext4 of that size, made once (no
// journal: the disk lives and dies with its sandbox; no reserved blocks:
// all of diskMB is the sandbox's; lazy init) and renamed into place, so
// concurrent creators at worst both make one.
Result<std::string> BlankDisk(const std::string& diskDir, uint64_t diskMB) {
  const std::string blank = diskDir + "/.blank-" + std::to_string(diskMB) + "M.img";
  if (access(blank.c_str(), R_OK) == 0) return blank;
  static std::atomic<unsigned> counter{0};
  const std::string tmp = blank + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Fail("create " + tmp);
  const bool sized = ftruncate(fd, static_cast<off_t>(diskMB << 20)) == 0;
  close(fd);
  if (!sized) {
    unlink(tmp.c_str());
    return Fail("size " + tmp);
  }
  if (auto s = RunHostCommandOk({"mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E",
                                 "nodiscard,lazy_itable_init=1", tmp});
      !s) {
    unlink(tmp.c_str());
    return s.error();
  }
  if (rename(tmp.c_str(), blank.c_str()) != 0) {
    unlink(tmp.c_str());
    return Fail("rename " + blank);
  }
  return blank;
}

// Copies the blank disk's data extents (a few hundred KiB for any size)
// into `fd`, keeping the holes: ~1 ms instead of a mkfs per sandbox.
Status CopyBlankDisk(const std::string& diskDir, uint64_t diskMB, int fd, const std::string& file) {
  auto blank = BlankDisk(diskDir, diskMB);
  if (!blank) return blank.error();
  int in = open(blank->c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Fail("open " + *blank);
  const off_t size = static_cast<off_t>(diskMB << 20);
  Status result;
  if (ftruncate(fd, size) != 0) result = Fail("size " + file);
  off_t pos = 0;
  while (result && pos < size) {
    off_t data = lseek(in, pos, SEEK_DATA);
    if (data < 0) break;  // ENXIO: only holes left
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) hole = size;
    off_t inOff = data, outOff = data;
    while (inOff < hole) {
      ssize_t n = copy_file_range(in, &inOff, fd, &outOff, static_cast<size_t>(hole - inOff), 0);
      if (n <= 0) {
        result = Fail("copy " + *blank);
        break;
      }
    }
    pos = hole;
  }
  close(in);
  return result;
}

// A sparse file of diskMB with an empty ext4 on it, attached to a free loop
// device (autoclear: released on its last close once mounted and unmounted),
// then unlinked.
Result<AttachedDisk> AttachDisk(const std::string& diskDir, const std::string& name, uint64_t diskMB) {
  if (mkdir(diskDir.c_str(), 0700) != 0 && errno != EEXIST) return Fail("mkdir " + diskDir);
  const std::string file = diskDir + "/" + name + ".img";
  unlink(file.c_str());
  int fd = open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Fail("create " + file);
  struct Closer {
    int fd;
    std::string file;
    ~Closer() {
      close(fd);
      unlink(file.c_str());
    }
  } closer{fd, file};
  if (auto s = CopyBlankDisk(diskDir, diskMB, fd, file); !s) return s.error();
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) return Fail("open /dev/loop-control");
  std::string dev;
  int devFd = -1;
  for (int attempt = 0; attempt < 64 && dev.empty(); ++attempt) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      close(ctl);
      return Fail("find a free loop device");
    }
    const std::string path = "/dev/loop" + std::to_string(n);
    int lfd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (lfd < 0 && errno == ENOENT) {  // containers may lack the node
      mknod(path.c_str(), S_IFBLK | 0600, makedev(7, static_cast<unsigned>(n)));
      lfd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    }
    if (lfd < 0) continue;
    loop_config cfg{};
    cfg.fd = static_cast<uint32_t>(fd);
    cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0) {
      dev = path;
      devFd = lfd;
      break;
    }
    const int err = errno;
    close(lfd);
    if (err != EBUSY) {
      close(ctl);
      errno = err;
      return Fail("attach " + path);
    }
  }
  close(ctl);
  if (dev.empty()) return MakeError(ErrorCode::kUnavailable, "image root: no free loop device");
  return AttachedDisk{dev, devFd};
}

Status MountWithIdmap(const std::string& src, const std::string& dst, int usernsFd) {
  int tree = open_tree(AT_FDCWD, src.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) return Fail("open_tree " + src);
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  attr.userns_fd = static_cast<uint64_t>(usernsFd);
  if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    close(tree);
    return Fail("idmap " + src);
  }
  if (move_mount(tree, "", AT_FDCWD, dst.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    close(tree);
    return Fail("attach idmapped " + dst);
  }
  close(tree);
  return {};
}

}  // namespace

std::string UpperDirOf(const std::string& sbRunDir) { return sbRunDir + "/disk/upper"; }

Status MountImageRoot(const std::string& imageRootfs, const std::string& diskDir, const std::string& sbRunDir,
                      uint64_t diskMB, uint32_t hostIdBase, const std::function<Status(int upperFd)>& fillUpper) {
  const std::string disk = sbRunDir + "/disk", lower = sbRunDir + "/lower", root = sbRunDir + "/root";
  auto fail = [&](Error e) -> Status {
    UnmountImageRoot(sbRunDir);
    return e;
  };
  for (const auto& d : {disk, lower})
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return fail(Fail("mkdir " + d));
  auto dev = AttachDisk(diskDir, sbRunDir.substr(sbRunDir.rfind('/') + 1), diskMB);
  if (!dev) return fail(dev.error());
  const int mounted = mount(dev->dev.c_str(), disk.c_str(), "ext4", MS_NOSUID | MS_NODEV | MS_NOATIME, "");
  const int err = errno;
  close(dev->fd);  // autoclear: unmounted or never mounted, the device frees itself
  if (mounted != 0) {
    errno = err;
    return fail(Fail("mount " + dev->dev));
  }
  rmdir((disk + "/lost+found").c_str());
  for (const char* d : {"/upper", "/work"}) {
    const std::string p = disk + d;
    if (mkdir(p.c_str(), 0755) != 0) return fail(Fail("mkdir " + p));
    if (chown(p.c_str(), hostIdBase, hostIdBase) != 0) return fail(Fail("chown " + p));
  }
  if (fillUpper) {
    int upperFd = open((disk + "/upper").c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (upperFd < 0) return fail(Fail("open " + disk + "/upper"));
    auto filled = fillUpper(upperFd);
    close(upperFd);
    if (!filled) return fail(filled.error());
  }
  auto userns = MappingUserns(hostIdBase);
  if (!userns) return fail(userns.error());
  auto idmapped = MountWithIdmap(imageRootfs, lower, *userns);
  close(*userns);
  if (!idmapped) return fail(idmapped.error());
  const std::string opts = "lowerdir=" + lower + ",upperdir=" + disk + "/upper,workdir=" + disk +
                           "/work,redirect_dir=off,index=off,metacopy=off";
  if (mount("overlay", root.c_str(), "overlay", MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
    return fail(Fail("mount overlay on " + root));
  // The overlay holds its own reference to the lower layer.
  umount2(lower.c_str(), MNT_DETACH);
  rmdir(lower.c_str());
  return {};
}

void UnmountImageRoot(const std::string& sbRunDir) {
  const std::string disk = sbRunDir + "/disk", lower = sbRunDir + "/lower", root = sbRunDir + "/root";
  umount2(root.c_str(), MNT_DETACH);
  umount2(lower.c_str(), MNT_DETACH);
  rmdir(lower.c_str());
  umount2(disk.c_str(), MNT_DETACH);
  rmdir(disk.c_str());
}

}  // namespace osb::sandbox
