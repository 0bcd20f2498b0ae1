#include "sandbox/state_archive.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <sched.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace osb::sandbox {
namespace {

constexpr char kMagic[8] = {'O', 'S', 'B', 'S', 'T', 'A', 'T', '1'};
constexpr size_t kMaxDepth = 256;
constexpr size_t kMaxPath = 4096;
constexpr size_t kChunk = 1 << 16;
constexpr uint32_t kIdsPerNs = 65536;
constexpr uint32_t kOverflowId = 65534;
constexpr uint32_t kModeMask = 01777;  // permission bits + sticky; never setuid/setgid
constexpr size_t kArchiveRoots = kUpperRoot + 1;
// overlayfs (mounted by host root, so trusted.*): "y" on an opaque dir.
constexpr char kOpaqueXattr[] = "trusted.overlay.opaque";

Error Internal(const std::string& what, const std::string& path) {
  return MakeError(ErrorCode::kInternal, "state: " + what + " " + path + ": " + std::strerror(errno));
}

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd >= 0) close(fd);
      fd = o.fd;
      o.fd = -1;
    }
    return *this;
  }
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  explicit operator bool() const { return fd >= 0; }
};

int OpenAt2(int dirfd, const std::string& path, uint64_t flags, uint64_t resolve) {
  open_how how{};
  how.flags = flags;
  how.resolve = resolve;
  for (;;) {
    long r = syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    return static_cast<int>(r);
  }
}

// A root dir inside the sandbox, reached from /proc/<pid>/root without
// following any symlink the sandbox may have put in the way.
Result<Fd> OpenRoot(int procRoot, const std::string& root) {
  int fd = OpenAt2(procRoot, root.substr(1), O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                   RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
  if (fd < 0) return Internal("open", root);
  return Fd(fd);
}

bool ValidName(std::string_view n) {
  return !n.empty() && n.size() <= 255 && n != "." && n != ".." && n.find('/') == std::string_view::npos &&
         n.find('\0') == std::string_view::npos;
}

bool ValidRelPath(std::string_view p) {
  if (p.empty() || p.size() > kMaxPath) return false;
  size_t depth = 0;
  size_t start = 0;
  for (;;) {
    size_t slash = p.find('/', start);
    std::string_view part = p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!ValidName(part)) return false;
    if (++depth > kMaxDepth) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

// ---- writing ---------------------------------------------------------------

class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) {}
  void U8(uint8_t v) { buf_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Le(v, 2); }
  void U32(uint32_t v) { Le(v, 4); }
  void U64(uint64_t v) { Le(v, 8); }
  void Bytes(std::string_view s) { buf_.append(s); }
  Status Flush(bool force = false) {
    if (!force && buf_.size() < kChunk) return {};
    size_t off = 0;
    while (off < buf_.size()) {
      ssize_t n = write(fd_, buf_.data() + off, buf_.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Internal("write", "archive");
      off += static_cast<size_t>(n);
    }
    buf_.clear();
    return {};
  }

 private:
  void Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) buf_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  int fd_;
  std::string buf_;
};

struct Capture {
  Writer w;
  uint32_t idBase;
  StateLimits limits;
  StateStats stats;
  dev_t dev = 0;

  uint32_t Inside(uint32_t hostId) const {
    return hostId >= idBase && hostId - idBase < kIdsPerNs ? hostId - idBase : kOverflowId;
  }

  Status Header(char type, uint8_t root, const std::string& path, const struct stat& st) {
    if (++stats.entries > limits.maxEntries)
      return MakeError(ErrorCode::kTooLarge,
                       "checkpoint: more than " + std::to_string(limits.maxEntries) + " files in the sandbox");
    w.U8(static_cast<uint8_t>(type));
    w.U8(root);
    w.U16(static_cast<uint16_t>(path.size()));
    w.Bytes(path);
    w.U32(st.st_mode & kModeMask);
    w.U32(Inside(st.st_uid));
    w.U32(Inside(st.st_gid));
    w.U64(static_cast<uint64_t>(st.st_mtim.tv_sec));
    return {};
  }

  Status AddData(uint64_t n) {
    stats.dataBytes += n;
    if (stats.dataBytes > limits.maxDataBytes)
      return MakeError(ErrorCode::kTooLarge, "checkpoint: the sandbox's files hold more than " +
                                                 std::to_string(limits.maxDataBytes) + " bytes of data");
    return {};
  }

  Status File(int dirfd, const std::string& name, uint8_t root, const std::string& path, const struct stat& listed) {
    Fd fd(openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT) return {};  // removed meanwhile
      return Internal("open", path);
    }
    struct stat st {};
    if (fstat(fd.fd, &st) != 0) return Internal("stat", path);
    if (!S_ISREG(st.st_mode) || st.st_ino != listed.st_ino || st.st_dev != listed.st_dev) {
      ++stats.skipped;  // swapped for something else meanwhile
      return {};
    }
    // Extents first (SEEK_DATA/SEEK_HOLE): a sparse file costs its data only.
    std::vector<std::pair<uint64_t, uint64_t>> extents;
    const off_t size = st.st_size;
    off_t pos = 0;
    while (pos < size) {
      off_t data = lseek(fd.fd, pos, SEEK_DATA);
      if (data < 0) {
        if (errno == ENXIO) break;
        return Internal("seek", path);
      }
      off_t hole = lseek(fd.fd, data, SEEK_HOLE);
      if (hole < 0) return Internal("seek", path);
      if (hole > size) hole = size;
      if (hole > data) {
        if (auto s = AddData(static_cast<uint64_t>(hole - data)); !s) return s;
        extents.emplace_back(static_cast<uint64_t>(data), static_cast<uint64_t>(hole - data));
      }
      pos = hole;
    }
    if (auto s = Header('F', root, path, st); !s) return s;
    w.U64(static_cast<uint64_t>(size));
    w.U32(static_cast<uint32_t>(extents.size()));
    std::string buf(kChunk, '\0');
    for (const auto& [off, len] : extents) {
      w.U64(off);
      w.U64(len);
      uint64_t done = 0;
      while (done < len) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(len - done, kChunk));
        ssize_t n = pread(fd.fd, buf.data(), want, static_cast<off_t>(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Internal("read", path);
        // Truncated meanwhile: pad with zeros so the record stays well formed.
        if (n == 0) {
          std::memset(buf.data(), 0, want);
          n = static_cast<ssize_t>(want);
        }
        w.Bytes(std::string_view(buf.data(), static_cast<size_t>(n)));
        done += static_cast<uint64_t>(n);
        if (auto s = w.Flush(); !s) return s;
      }
    }
    return w.Flush();
  }

  Status Dir(int dirfd, uint8_t root, const std::string& prefix, size_t depth) {
    if (depth > kMaxDepth) return MakeError(ErrorCode::kTooLarge, "checkpoint: directories nest too deep");
    int dupfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (dupfd < 0) return Internal("dup", prefix);
    std::unique_ptr<DIR, int (*)(DIR*)> d(fdopendir(dupfd), closedir);
    if (!d) {
      close(dupfd);
      return Internal("opendir", prefix);
    }
    std::vector<std::string> names;
    while (dirent* e = readdir(d.get())) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      names.push_back(std::move(n));
      if (names.size() > limits.maxEntries)
        return MakeError(ErrorCode::kTooLarge, "checkpoint: too many files in " + prefix);
    }
    for (const auto& n : names) {
      const std::string path = prefix.empty() ? n : prefix + "/" + n;
      if (path.size() > kMaxPath || n.size() > 255) {
        ++stats.skipped;
        continue;
      }
      struct stat st {};
      if (fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;
        return Internal("stat", path);
      }
      if (st.st_dev != dev) {  // another mount: not part of this root's state
        ++stats.skipped;
        continue;
      }
      if (S_ISREG(st.st_mode)) {
        if (auto s = File(dirfd, n, root, path, st); !s) return s;
      } else if (S_ISLNK(st.st_mode)) {
        char target[kMaxPath + 1];
        ssize_t len = readlinkat(dirfd, n.c_str(), target, sizeof target);
        if (len < 0) {
          if (errno == ENOENT || errno == EINVAL) continue;
          return Internal("readlink", path);
        }
        if (static_cast<size_t>(len) > kMaxPath) {
          ++stats.skipped;
          continue;
        }
        if (auto s = Header('L', root, path, st); !s) return s;
        w.U16(static_cast<uint16_t>(len));
        w.Bytes(std::string_view(target, static_cast<size_t>(len)));
        if (auto s = w.Flush(); !s) return s;
      } else if (S_ISDIR(st.st_mode)) {
        Fd child(openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!child) {
          if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) continue;
          return Internal("open", path);
        }
        struct stat cst {};
        if (fstat(child.fd, &cst) != 0 || cst.st_ino != st.st_ino || cst.st_dev != dev) {
          ++stats.skipped;
          continue;
        }
        // An opaque dir of the overlay's upper dir hides the image's dir of
        // that name: its marker is the one xattr the overlay needs back.
        char opaque = 0;
        if (root == kUpperRoot && fgetxattr(child.fd, kOpaqueXattr, &opaque, 1) != 1) opaque = 0;
        if (auto s = Header(opaque == 'y' ? 'O' : 'D', root, path, cst); !s) return s;
        if (auto s = Dir(child.fd, root, path, depth + 1); !s) return s;
      } else if (root == kUpperRoot && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
        // An overlay whiteout: an image file the sandbox deleted.
        if (auto s = Header('W', root, path, st); !s) return s;
        if (auto s = w.Flush(); !s) return s;
      } else {
        ++stats.skipped;  // fifo, socket, device
      }
    }
    return {};
  }
};

// ---- reading ---------------------------------------------------------------

class Reader {
 public:
  explicit Reader(const std::function<ssize_t(void*, size_t)>& read) : read_(read) {}
  Status Fill(void* out, size_t n) {
    char* p = static_cast<char*>(out);
    size_t got = 0;
    while (got < n) {
      ssize_t r = read_(p + got, n - got);
      if (r < 0) return MakeError(ErrorCode::kInternal, "state: cannot read the archive");
      if (r == 0) return Bad("truncated");
      got += static_cast<size_t>(r);
    }
    offset_ += n;
    return {};
  }
  template <typename T>
  Result<T> Le() {
    unsigned char b[sizeof(T)];
    if (auto s = Fill(b, sizeof b); !s) return s.error();
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= uint64_t{b[i]} << (8 * i);
    return static_cast<T>(v);
  }
  Result<std::string> Str(size_t n) {
    std::string s(n, '\0');
    if (auto st = Fill(s.data(), n); !st) return st.error();
    return s;
  }
  Error Bad(const std::string& what) const {
    return MakeError(ErrorCode::kDataLoss, "state archive: " + what + " at offset " + std::to_string(offset_));
  }

 private:
  const std::function<ssize_t(void*, size_t)>& read_;
  uint64_t offset_ = 0;
};

// Restores into the sandbox: every step relative to a root's fd.
class RestoreSink final : public ArchiveSink {
 public:
  // roots_[i] is the fd of archive root i; an entry of a root without an
  // fd is skipped (restored by the other side: the upper dir by the worker
  // before the overlay is mounted, the scratch roots by the helper), or
  // refused when `refuseMissing`.
  RestoreSink(std::vector<Fd> roots, uint32_t idBase, bool refuseMissing)
      : roots_(std::move(roots)), idBase_(idBase), refuseMissing_(refuseMissing) {}

  Status Begin(const ArchiveEntry& e) override {
    file_ = Fd();
    skipping_ = false;
    if (e.root >= roots_.size()) return MakeError(ErrorCode::kDataLoss, "state archive: unknown root");
    if (!roots_[e.root]) {
      if (e.root == kUpperRoot && refuseMissing_)
        return MakeError(ErrorCode::kFailedPrecondition,
                         "checkpoint: it holds an image sandbox's files; restore it into a sandbox on the same "
                         "image, when it is created");
      skipping_ = true;
      return {};
    }
    root_ = e.root;
    const int rootfd = roots_[e.root].fd;
    const auto slash = e.path.rfind('/');
    const std::string name = slash == std::string::npos ? e.path : e.path.substr(slash + 1);
    Fd parentHolder;
    int parent = rootfd;
    if (slash != std::string::npos) {
      int fd = OpenAt2(rootfd, e.path.substr(0, slash), O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                       RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
      if (fd < 0) return Internal("open", e.path.substr(0, slash));
      parentHolder = Fd(fd);
      parent = fd;
    }
    path_ = e.path;
    const uid_t uid = idBase_ + e.uid;
    const gid_t gid = idBase_ + e.gid;
    if (e.type == 'D' || e.type == 'O') {
      if (mkdirat(parent, name.c_str(), 0700) != 0) {
        if (errno != EEXIST) return Internal("mkdir", e.path);
        // Something else of that name (a planted symlink): replace it.
        struct stat st {};
        if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Internal("stat", e.path);
        if (!S_ISDIR(st.st_mode)) {
          if (unlinkat(parent, name.c_str(), 0) != 0 || mkdirat(parent, name.c_str(), 0700) != 0)
            return Internal("replace", e.path);
        }
      }
      Fd d(openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!d) return Internal("open", e.path);
      if (fchown(d.fd, uid, gid) != 0 || fchmod(d.fd, e.mode) != 0) return Internal("chown", e.path);
      if (e.type == 'O' && fsetxattr(d.fd, kOpaqueXattr, "y", 1, 0) != 0) return Fail("mark opaque");
      return {};
    }
    // A non-directory of that name is replaced, never written through.
    if (unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT) return Internal("replace", e.path);
    const timespec times[2] = {{e.mtime, 0}, {e.mtime, 0}};
    if (e.type == 'W') {  // the overlay's whiteout: char 0:0, nothing else
      if (mknodat(parent, name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) return Fail("whiteout");
      if (fchownat(parent, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) return Internal("chown", e.path);
      return {};
    }
    if (e.type == 'L') {
      if (symlinkat(e.target.c_str(), parent, name.c_str()) != 0) return Internal("symlink", e.path);
      if (fchownat(parent, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) return Internal("chown", e.path);
      (void)utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
      return {};
    }
    Fd f(openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!f) return Internal("create", e.path);
    if (fchown(f.fd, uid, gid) != 0 || fchmod(f.fd, e.mode) != 0) return Internal("chown", e.path);
    if (ftruncate(f.fd, static_cast<off_t>(e.size)) != 0) return Fail("truncate");
    file_ = std::move(f);
    mtime_ = e.mtime;
    return {};
  }

  Status Data(uint64_t offset, std::string_view bytes) override {
    if (skipping_) return {};
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = pwrite(file_.fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Fail("write");
      done += static_cast<size_t>(n);
    }
    return {};
  }

  Status End() override {
    if (file_) {
      const timespec times[2] = {{mtime_, 0}, {mtime_, 0}};
      (void)futimens(file_.fd, times);
    }
    file_ = Fd();
    return {};
  }

 private:
  Status Fail(const char* what) {
    if (errno == ENOSPC || errno == EFBIG || errno == EDQUOT)
      return MakeError(ErrorCode::kTooLarge, root_ == kUpperRoot
                                                 ? "checkpoint: its files do not fit in this sandbox's disk (diskMB)"
                                                 : "checkpoint: its files do not fit in this sandbox's scratch "
                                                   "space (memoryMB / 2)");
    return Internal(what, path_);
  }
  std::vector<Fd> roots_;
  uint32_t idBase_;
  bool refuseMissing_;
  bool skipping_ = false;
  uint8_t root_ = 0;
  Fd file_;
  std::string path_;
  int64_t mtime_ = 0;
};

uint64_t ScratchBytes(int dirfd) {
  struct statfs sf {};
  if (fstatfs(dirfd, &sf) != 0) return 0;
  return static_cast<uint64_t>(sf.f_blocks) * static_cast<uint64_t>(sf.f_bsize);
}

}  // namespace

std::vector<std::string> WritableRoots() { return {"/tmp", "/home/sandbox", "/dev/shm"}; }

Result<StateStats> DecodeStateArchive(const std::function<ssize_t(void*, size_t)>& read, ArchiveSink& sink,
                                      StateLimits limits) {
  Reader r(read);
  StateStats stats;
  char magic[sizeof kMagic];
  if (auto s = r.Fill(magic, sizeof magic); !s) return s.error();
  if (std::memcmp(magic, kMagic, sizeof kMagic) != 0) return r.Bad("not a state archive");
  const size_t nroots = kArchiveRoots;
  uint64_t upperData = 0;
  std::string buf;
  for (;;) {
    auto type = r.Le<uint8_t>();
    if (!type) return type.error();
    if (*type == 'E') return stats;
    ArchiveEntry e;
    e.type = static_cast<char>(*type);
    if (e.type != 'D' && e.type != 'F' && e.type != 'L' && e.type != 'W' && e.type != 'O')
      return r.Bad("unknown record type");
    if (++stats.entries > limits.maxEntries) return MakeError(ErrorCode::kTooLarge, "state archive: too many entries");
    auto root = r.Le<uint8_t>();
    if (!root) return root.error();
    if (*root >= nroots) return r.Bad("unknown root");
    e.root = *root;
    // Whiteouts and opaque dirs exist only in an overlay's upper dir.
    if ((e.type == 'W' || e.type == 'O') && e.root != kUpperRoot) return r.Bad("whiteout outside the upper dir");
    auto plen = r.Le<uint16_t>();
    if (!plen) return plen.error();
    auto path = r.Str(*plen);
    if (!path) return path.error();
    if (!ValidRelPath(*path)) return r.Bad("invalid path");
    e.path = std::move(*path);
    auto mode = r.Le<uint32_t>();
    auto uid = r.Le<uint32_t>();
    auto gid = r.Le<uint32_t>();
    auto mtime = r.Le<uint64_t>();
    if (!mode || !uid || !gid || !mtime) return r.Bad("truncated");
    if ((*mode & ~kModeMask) != 0) return r.Bad("invalid mode");
    if (*uid >= kIdsPerNs || *gid >= kIdsPerNs) return r.Bad("invalid owner");
    e.mode = *mode;
    e.uid = *uid;
    e.gid = *gid;
    e.mtime = static_cast<int64_t>(*mtime);
    if (e.type == 'L') {
      auto tlen = r.Le<uint16_t>();
      if (!tlen) return tlen.error();
      if (*tlen == 0 || *tlen > kMaxPath) return r.Bad("invalid symlink target");
      auto target = r.Str(*tlen);
      if (!target) return target.error();
      if (target->find('\0') != std::string::npos) return r.Bad("invalid symlink target");
      e.target = std::move(*target);
    }
    if (e.type == 'F') {
      auto size = r.Le<uint64_t>();
      auto count = r.Le<uint32_t>();
      if (!size || !count) return r.Bad("truncated");
      if (*size > (uint64_t{1} << 50)) return r.Bad("invalid file size");
      e.size = *size;
      if (auto s = sink.Begin(e); !s) return s.error();
      uint64_t next = 0;
      for (uint32_t i = 0; i < *count; ++i) {
        auto off = r.Le<uint64_t>();
        auto len = r.Le<uint64_t>();
        if (!off || !len) return r.Bad("truncated");
        if (*off < next || *len == 0 || *len > e.size || *off > e.size - *len) return r.Bad("invalid extent");
        next = *off + *len;
        stats.dataBytes += *len;
        if (e.root == kUpperRoot) {
          upperData += *len;
          if (upperData > limits.maxUpperDataBytes)
            return MakeError(ErrorCode::kTooLarge, "state archive: more data than the sandbox's disk (diskMB)");
        } else if (stats.dataBytes - upperData > limits.maxDataBytes) {
          return MakeError(ErrorCode::kTooLarge, "state archive: more data than the sandbox's budget");
        }
        uint64_t done = 0;
        while (done < *len) {
          const size_t n = static_cast<size_t>(std::min<uint64_t>(*len - done, kChunk));
          buf.resize(n);
          if (auto s = r.Fill(buf.data(), n); !s) return s.error();
          if (auto s = sink.Data(*off + done, buf); !s) return s.error();
          done += n;
        }
      }
      if (auto s = sink.End(); !s) return s.error();
      continue;
    }
    if (auto s = sink.Begin(e); !s) return s.error();
    if (auto s = sink.End(); !s) return s.error();
  }
}

Result<StateStats> CaptureStateAt(int rootFd, int outFd, StateLimits limits, bool withMagic) {
  Capture c{Writer(outFd), 0, limits, {}, 0};
  if (withMagic) c.w.Bytes(std::string_view(kMagic, sizeof kMagic));
  const auto roots = WritableRoots();
  for (size_t i = 0; i < roots.size(); ++i) {
    auto dir = OpenRoot(rootFd, roots[i]);
    if (!dir) return dir.error();
    struct stat st {};
    if (fstat(dir->fd, &st) != 0) return Internal("stat", roots[i]);
    c.dev = st.st_dev;
    if (c.limits.maxDataBytes == 0) c.limits.maxDataBytes = ScratchBytes(dir->fd);
    if (auto s = c.Dir(dir->fd, static_cast<uint8_t>(i), "", 0); !s) return s.error();
  }
  c.w.U8('E');
  if (auto s = c.w.Flush(true); !s) return s.error();
  return c.stats;
}

namespace {

// Buffered reads of an archive from `inFd`: read(2) from its offset, or
// pread(2) from `*at` (advanced) when `at` is set.
Result<StateStats> DecodeFromFd(int inFd, off_t* at, ArchiveSink& sink, StateLimits limits) {
  std::string buf;
  size_t pos = 0;
  std::function<ssize_t(void*, size_t)> read = [&](void* out, size_t n) -> ssize_t {
    if (pos == buf.size()) {
      buf.resize(kChunk);
      ssize_t got;
      do {
        got = at ? ::pread(inFd, buf.data(), buf.size(), *at) : ::read(inFd, buf.data(), buf.size());
      } while (got < 0 && errno == EINTR);
      if (got > 0 && at) *at += got;
      if (got <= 0) {
        buf.clear();
        pos = 0;
        return got;
      }
      buf.resize(static_cast<size_t>(got));
      pos = 0;
    }
    const size_t take = std::min(n, buf.size() - pos);
    std::memcpy(out, buf.data() + pos, take);
    pos += take;
    return static_cast<ssize_t>(take);
  };
  return DecodeStateArchive(read, sink, limits);
}

}  // namespace

Result<StateStats> RestoreStateAt(int rootFd, int inFd, StateLimits limits, bool upperDone) {
  std::vector<Fd> roots;
  for (const auto& root : WritableRoots()) {
    auto dir = OpenRoot(rootFd, root);
    if (!dir) return dir.error();
    if (limits.maxDataBytes == 0) limits.maxDataBytes = ScratchBytes(dir->fd);
    roots.push_back(std::move(*dir));
  }
  // The upper dir's records were checked against the disk by the worker.
  if (upperDone) limits.maxUpperDataBytes = UINT64_MAX;
  roots.resize(kArchiveRoots);  // the upper dir's slot stays empty
  RestoreSink sink(std::move(roots), 0, /*refuseMissing=*/!upperDone);
  return DecodeFromFd(inFd, nullptr, sink, limits);
}

// Why the overlay's upper dir is read and written by the worker itself, on
// the host, and not by the helper inside the sandbox: inside, only the
// merged view exists (whiteouts and opaque markers are invisible there, and
// trusted.overlay.* needs CAP_SYS_ADMIN of the host); a restore must fill
// the upper dir BEFORE the overlay is mounted (overlayfs does not support
// changes to a mounted upper dir). What makes the host walk safe although
// the sandbox controls every entry of that dir:
//   * every step is one name relative to an fd already checked (openat /
//     fstatat / readlinkat / mknodat with O_NOFOLLOW, AT_SYMLINK_NOFOLLOW,
//     or openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV):
//     no symlink is followed, no path of the sandbox's is ever resolved;
//   * the walk stays on the sandbox's own disk (st_dev), which holds only
//     the sandbox's files (a hard link cannot cross file systems), and the
//     sandbox cannot change the host's mounts;
//   * files are opened O_NONBLOCK and checked to be the regular file listed;
//   * capture runs with the sandbox frozen, restore before it exists.
Result<StateStats> CaptureUpperDir(int upperFd, uint32_t hostIdBase, int outFd, StateLimits limits) {
  Capture c{Writer(outFd), hostIdBase, limits, {}, 0};
  c.w.Bytes(std::string_view(kMagic, sizeof kMagic));
  struct stat st {};
  if (fstat(upperFd, &st) != 0) return Internal("stat", "upper dir");
  c.dev = st.st_dev;
  c.limits.maxDataBytes = limits.maxUpperDataBytes != 0 ? limits.maxUpperDataBytes : ScratchBytes(upperFd);
  if (auto s = c.Dir(upperFd, kUpperRoot, "", 0); !s) return s.error();
  if (auto s = c.w.Flush(true); !s) return s.error();
  return c.stats;
}

Result<StateStats> RestoreUpperDir(int upperFd, uint32_t hostIdBase, int inFd, StateLimits limits) {
  int dup = fcntl(upperFd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return Internal("dup", "upper dir");
  std::vector<Fd> roots(kArchiveRoots);
  roots[kUpperRoot] = Fd(dup);
  if (limits.maxUpperDataBytes == 0) limits.maxUpperDataBytes = ScratchBytes(upperFd);
  limits.maxDataBytes = UINT64_MAX;  // the scratch roots: checked by the helper
  RestoreSink sink(std::move(roots), hostIdBase, /*refuseMissing=*/false);
  off_t at = lseek(inFd, 0, SEEK_CUR);
  if (at < 0) return Internal("seek", "archive");
  auto stats = DecodeFromFd(inFd, &at, sink, limits);
  return stats;
}

int StateHelperMain(int argc, char** argv) {
  auto fail = [](ErrorCode code, const std::string& msg) {
    std::string line = "ERR " + std::to_string(static_cast<int>(code)) + " " + msg + "\n";
    (void)!write(2, line.data(), line.size());
    return 1;
  };
  if (argc < 4) return fail(ErrorCode::kInvalidArgument, "usage: --state capture|restore PID [CGROUP_DIR...]");
  const std::string op = argv[2];
  const std::string pid = argv[3];
  // "append": capture without the magic (after the worker's upper-dir
  // records); "restore-roots": restore, skipping upper-dir records (the
  // worker restored them before the overlay was mounted).
  if ((op != "capture" && op != "append" && op != "restore" && op != "restore-roots") || pid.empty() ||
      pid.find_first_not_of("0123456789") != std::string::npos)
    return fail(ErrorCode::kInvalidArgument, "usage: --state capture|append|restore|restore-roots PID");
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // A restore writes tmpfs pages: join the sandbox's cgroup(s) first so
  // they are charged to the sandbox, not to the worker.
  for (int i = 4; i < argc; ++i) {
    const std::string procs = std::string(argv[i]) + "/cgroup.procs";
    int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1) {
      if (fd >= 0) close(fd);
      return fail(ErrorCode::kInternal, "cannot join the sandbox's cgroup " + std::string(argv[i]));
    }
    close(fd);
  }
  Fd userNs(open(("/proc/" + pid + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
  Fd mntNs(open(("/proc/" + pid + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC));
  if (!userNs || !mntNs) return fail(ErrorCode::kNotFound, "the sandbox's namespaces are gone");
  // Root of the sandbox's user namespace (its host id base), then its mounts.
  if (setns(userNs.fd, CLONE_NEWUSER) != 0) return fail(ErrorCode::kInternal, "setns user: " + std::string(std::strerror(errno)));
  if (setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)
    return fail(ErrorCode::kInternal, "setresuid: " + std::string(std::strerror(errno)));
  if (setns(mntNs.fd, CLONE_NEWNS) != 0) return fail(ErrorCode::kInternal, "setns mnt: " + std::string(std::strerror(errno)));
  if (chdir("/") != 0) return fail(ErrorCode::kInternal, "chdir /");
  Fd root(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return fail(ErrorCode::kInternal, "open /");
  const bool capture = op == "capture" || op == "append";
  auto stats = capture ? CaptureStateAt(root.fd, 1, {}, op == "capture")
                       : RestoreStateAt(root.fd, 0, {}, op == "restore-roots");
  if (!stats) return fail(stats.error().code, stats.error().message);
  const std::string line = "OK " + std::to_string(stats->entries) + " " + std::to_string(stats->dataBytes) + " " +
                           std::to_string(stats->skipped) + "\n";
  (void)!write(2, line.data(), line.size());
  return 0;
}

namespace {

Result<StateStats> RunHelper(const std::string& initBinary, const char* op, pid_t initPid, int archiveFd,
                             const std::vector<std::string>& cgroupDirs) {
  int errPipe[2];
  if (pipe2(errPipe, O_CLOEXEC) != 0) return Internal("pipe", "");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const bool capture = std::strcmp(op, "capture") == 0 || std::strcmp(op, "append") == 0;
  posix_spawn_file_actions_adddup2(&fa, archiveFd, capture ? 1 : 0);
  posix_spawn_file_actions_addopen(&fa, capture ? 0 : 1, "/dev/null", O_RDWR, 0);
  posix_spawn_file_actions_adddup2(&fa, errPipe[1], 2);
  const std::string pidStr = std::to_string(initPid);
  std::vector<char*> argv = {const_cast<char*>(initBinary.c_str()), const_cast<char*>("--state"),
                             const_cast<char*>(op), const_cast<char*>(pidStr.c_str())};
  for (const auto& d : cgroupDirs) argv.push_back(const_cast<char*>(d.c_str()));
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_t child = -1;
  const int rc = posix_spawn(&child, initBinary.c_str(), &fa, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  close(errPipe[1]);
  if (rc != 0) {
    close(errPipe[0]);
    errno = rc;
    return Internal("spawn", initBinary);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(errPipe[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < 65536) out.append(buf, static_cast<size_t>(n));
  }
  close(errPipe[0]);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  // The last line is the result (ASan or the kernel may have said more).
  while (!out.empty() && out.back() == '\n') out.pop_back();
  const auto nl = out.rfind('\n');
  const std::string line = nl == std::string::npos ? out : out.substr(nl + 1);
  if (line.rfind("OK ", 0) == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    StateStats st;
    if (sscanf(line.c_str(), "OK %lu %lu %lu", &st.entries, &st.dataBytes, &st.skipped) == 3) return st;
  }
  int code = 0;
  int used = 0;
  if (line.rfind("ERR ", 0) == 0 && sscanf(line.c_str(), "ERR %d %n", &code, &used) == 1 && used > 0)
    return MakeError(static_cast<ErrorCode>(code), line.substr(static_cast<size_t>(used)));
  std::string why = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status));
  return MakeError(ErrorCode::kInternal, std::string("state helper failed (") + op + ", " + why + "): " +
                                             line.substr(0, 300));
}

}  // namespace

Result<StateStats> CaptureState(const std::string& initBinary, pid_t initPid, int outFd, bool append) {
  return RunHelper(initBinary, append ? "append" : "capture", initPid, outFd, {});
}

Result<StateStats> RestoreState(const std::string& initBinary, pid_t initPid, int inFd,
                                const std::vector<std::string>& cgroupDirs, bool upperDone) {
  return RunHelper(initBinary, upperDone ? "restore-roots" : "restore", initPid, inFd, cgroupDirs);
}

}  // namespace osb::sandbox
