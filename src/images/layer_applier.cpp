#include "images/layer_applier.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <vector>

#include "common/hex.h"
#include "images/image_manifest.h"

namespace osb::images {
namespace {

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

Error Refuse(const std::string& layer, const std::string& entry, const std::string& why) {
  return MakeError(ErrorCode::kInvalidArgument, layer + ": entry '" + Excerpt(entry) + "': " + why);
}

Error HostFail(const std::string& layer, const std::string& entry, const char* op) {
  return MakeError(ErrorCode::kInternal,
                   layer + ": entry '" + Excerpt(entry) + "': " + op + ": " + std::strerror(errno));
}

std::vector<std::string> Split(const std::string& clean) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < clean.size()) {
    size_t slash = clean.find('/', start);
    if (slash == std::string::npos) slash = clean.size();
    parts.push_back(clean.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// Opens the directory made of parts[0..n) beneath rootFd, one component at
// a time with O_NOFOLLOW; creates missing ones when `create`. A symlink or
// a non-directory on the way is refused (ELOOP/ENOTDIR -> errno kept).
// Returns an invalid Fd with errno set on failure.
Fd OpenDirBeneath(int rootFd, const std::vector<std::string>& parts, size_t n, bool create) {
  Fd cur(fcntl(rootFd, F_DUPFD_CLOEXEC, 0));
  for (size_t i = 0; i < n && cur.ok(); ++i) {
    int next = openat(cur.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (mkdirat(cur.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST) return Fd();
      next = openat(cur.get(), parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) return Fd();
    cur = Fd(next);
  }
  return cur;
}

bool IsWhiteout(const std::string& base) { return base.rfind(".wh.", 0) == 0; }

class Applier {
 public:
  Applier(int rootFd, const std::string& name, ApplyBudget& budget) : root_(rootFd), name_(name), budget_(budget) {}

  Status Run(archive* a) {
    for (;;) {
      archive_entry* e = nullptr;
      int r = archive_read_next_header(a, &e);
      if (r == ARCHIVE_EOF) return {};
      if (r < ARCHIVE_WARN)
        return MakeError(ErrorCode::kInvalidArgument, name_ + ": not a valid tar stream (truncated or corrupt): " +
                                                          Excerpt(archive_error_string(a) ? archive_error_string(a) : ""));
      if (budget_.entriesLeft == 0) return MakeError(ErrorCode::kTooLarge, name_ + ": too many entries");
      --budget_.entriesLeft;
      if (auto s = Entry(a, e); !s) return s;
    }
  }

 private:
  Status Entry(archive* a, archive_entry* e) {
    const char* rawPath = archive_entry_pathname(e);
    if (!rawPath) return Refuse(name_, "?", "path is not readable");
    const std::string raw = rawPath;
    auto clean = CleanArchivePath(raw);
    if (!clean) return Refuse(name_, raw, "absolute path, '..' or over-long path");
    if (clean->empty()) return {};  // the root itself: keep the root's own attributes
    auto parts = Split(*clean);
    const std::string base = parts.back();

    if (IsWhiteout(base)) return Whiteout(*clean, parts, base);

    const int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
    if (uid < 0 || uid > 65535 || gid < 0 || gid > 65535) return Refuse(name_, raw, "owner outside 0..65535");
    const mode_t perm = archive_entry_perm(e) & 07777 & ~mode_t{S_ISUID | S_ISGID};
    const char* hardlink = archive_entry_hardlink(e);
    const mode_t type = archive_entry_filetype(e);
    if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
      return Refuse(name_, raw, "device nodes, fifos and sockets are not allowed");

    Fd parent = OpenDirBeneath(root_, parts, parts.size() - 1, true);
    if (!parent.ok()) return Refuse(name_, raw, "its directory goes through a symlink or a non-directory");
    created_.insert(*clean);

    struct stat st {};
    const bool exists = fstatat(parent.get(), base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && !(type == AE_IFDIR && !hardlink && S_ISDIR(st.st_mode))) {
      if (auto s = RemoveTreeAt(parent.get(), base); !s) return s;
    }

    if (hardlink) return Hardlink(parent.get(), base, raw, hardlink);
    if (type == AE_IFDIR) {
      if (mkdirat(parent.get(), base.c_str(), 0700) != 0 && errno != EEXIST) return HostFail(name_, raw, "mkdir");
      Fd dir(openat(parent.get(), base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir.ok()) return HostFail(name_, raw, "open directory");
      if (fchown(dir.get(), static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0 || fchmod(dir.get(), perm) != 0)
        return HostFail(name_, raw, "set owner/mode");
      return {};
    }
    if (type == AE_IFLNK) {
      const char* target = archive_entry_symlink(e);
      if (!target || !*target || std::strlen(target) > 4096) return Refuse(name_, raw, "invalid symlink target");
      // Created verbatim: it is only ever resolved inside the sandbox's root.
      if (symlinkat(target, parent.get(), base.c_str()) != 0) return HostFail(name_, raw, "symlink");
      if (fchownat(parent.get(), base.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid),
                   AT_SYMLINK_NOFOLLOW) != 0)
        return HostFail(name_, raw, "chown symlink");
      return {};
    }
    return Regular(a, e, parent.get(), base, raw, static_cast<uid_t>(uid), static_cast<gid_t>(gid), perm);
  }

  Status Regular(archive* a, archive_entry* e, int parent, const std::string& base, const std::string& raw, uid_t uid,
                 gid_t gid, mode_t perm) {
    if (archive_entry_size_is_set(e)) {
      const int64_t declared = archive_entry_size(e);
      if (declared < 0 || static_cast<uint64_t>(declared) > budget_.bytesLeft)
        return MakeError(ErrorCode::kTooLarge,
                         name_ + ": entry '" + Excerpt(raw) + "' declares " + std::to_string(declared) +
                             " bytes, over the image's size limit");
    }
    Fd out(openat(parent, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.ok()) return HostFail(name_, raw, "create");
    std::vector<char> buf(1 << 16);
    for (;;) {
      la_ssize_t n = archive_read_data(a, buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0)
        return MakeError(ErrorCode::kInvalidArgument,
                         name_ + ": entry '" + Excerpt(raw) + "': data truncated or corrupt");
      if (static_cast<uint64_t>(n) > budget_.bytesLeft)
        return MakeError(ErrorCode::kTooLarge, name_ + ": image larger than the size limit");
      budget_.bytesLeft -= static_cast<uint64_t>(n);
      for (la_ssize_t off = 0; off < n;) {
        ssize_t w = write(out.get(), buf.data() + off, static_cast<size_t>(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return HostFail(name_, raw, "write");
        off += w;
      }
    }
    if (fchown(out.get(), uid, gid) != 0 || fchmod(out.get(), perm) != 0) return HostFail(name_, raw, "set owner/mode");
    timespec times[2] = {{archive_entry_mtime(e), 0}, {archive_entry_mtime(e), 0}};
    (void)futimens(out.get(), times);
    return {};
  }

  Status Hardlink(int parent, const std::string& base, const std::string& raw, const char* target) {
    auto clean = CleanArchivePath(target);
    if (!clean || clean->empty()) return Refuse(name_, raw, "hardlink target outside the image");
    auto tparts = Split(*clean);
    Fd tparent = OpenDirBeneath(root_, tparts, tparts.size() - 1, false);
    if (!tparent.ok()) return Refuse(name_, raw, "hardlink target goes through a symlink or does not exist");
    struct stat st {};
    if (fstatat(tparent.get(), tparts.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return Refuse(name_, raw, "hardlink target does not exist");
    if (S_ISDIR(st.st_mode)) return Refuse(name_, raw, "hardlink to a directory");
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) return Refuse(name_, raw, "hardlink to a special file");
    if (linkat(tparent.get(), tparts.back().c_str(), parent, base.c_str(), 0) != 0) return HostFail(name_, raw, "link");
    return {};
  }

  Status Whiteout(const std::string& clean, const std::vector<std::string>& parts, const std::string& base) {
    const std::string victim = base.substr(4);
    if (base != ".wh..wh..opq" && (victim.empty() || victim == "." || victim == ".." || IsWhiteout(victim)))
      return Refuse(name_, clean, "invalid whiteout");
    Fd parent = OpenDirBeneath(root_, parts, parts.size() - 1, base == ".wh..wh..opq");
    if (!parent.ok()) {
      if (errno == ENOENT) return {};  // nothing below to hide
      return Refuse(name_, clean, "whiteout through a symlink or a non-directory");
    }
    if (base == ".wh..wh..opq") {
      const std::string dirPrefix = parts.size() > 1 ? clean.substr(0, clean.size() - base.size()) : "";
      int dupFd = fcntl(parent.get(), F_DUPFD_CLOEXEC, 0);
      DIR* d = dupFd >= 0 ? fdopendir(dupFd) : nullptr;
      if (!d) {
        if (dupFd >= 0) close(dupFd);
        return HostFail(name_, clean, "opendir");
      }
      std::vector<std::string> victims;
      while (dirent* de = readdir(d)) {
        std::string n = de->d_name;
        if (n == "." || n == ".." || created_.count(dirPrefix + n)) continue;
        victims.push_back(n);
      }
      closedir(d);
      for (const auto& v : victims)
        if (auto s = RemoveTreeAt(parent.get(), v); !s) return s;
      return {};
    }
    return RemoveTreeAt(parent.get(), victim);
  }

  int root_;
  const std::string& name_;
  ApplyBudget& budget_;
  std::set<std::string> created_;  // paths this layer wrote (kept by an opaque marker)
};

ArchivePtr NewTarReader() {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_none(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  archive_read_support_format_empty(a.get());
  return a;
}

}  // namespace

Status RemoveTreeAt(int dirFd, const std::string& name) {
  struct stat st {};
  if (fstatat(dirFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return MakeError(ErrorCode::kInternal, "remove " + Excerpt(name) + ": " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) {
    int fd = openat(dirFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR* d = fd >= 0 ? fdopendir(fd) : nullptr;
    if (!d) {
      if (fd >= 0) close(fd);
      return MakeError(ErrorCode::kInternal, "remove " + Excerpt(name) + ": " + std::strerror(errno));
    }
    std::vector<std::string> children;
    while (dirent* de = readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") children.push_back(n);
    }
    Status result;
    for (const auto& c : children)
      if (auto s = RemoveTreeAt(dirfd(d), c); !s) {
        result = s;
        break;
      }
    closedir(d);
    if (!result) return result;
    if (unlinkat(dirFd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
      return MakeError(ErrorCode::kInternal, "remove " + Excerpt(name) + ": " + std::strerror(errno));
    return {};
  }
  if (unlinkat(dirFd, name.c_str(), 0) != 0 && errno != ENOENT)
    return MakeError(ErrorCode::kInternal, "remove " + Excerpt(name) + ": " + std::strerror(errno));
  return {};
}

Status ApplyLayer(int rootFd, int layerFd, const std::string& name, ApplyBudget& budget) {
  ArchivePtr a = NewTarReader();
  if (archive_read_open_fd(a.get(), layerFd, 1 << 16) != ARCHIVE_OK)
    return MakeError(ErrorCode::kInvalidArgument, name + ": not a tar stream (tar, tar+gzip or tar+zstd)");
  return Applier(rootFd, name, budget).Run(a.get());
}

Status ApplyLayerBytes(int rootFd, const void* data, size_t size, const std::string& name, ApplyBudget& budget) {
  ArchivePtr a = NewTarReader();
  if (archive_read_open_memory(a.get(), data, size) != ARCHIVE_OK)
    return MakeError(ErrorCode::kInvalidArgument, name + ": not a tar stream (tar, tar+gzip or tar+zstd)");
  return Applier(rootFd, name, budget).Run(a.get());
}

Result<std::string> UncompressedDigest(int layerFd, uint64_t maxBytes, const std::string& name) {
  if (lseek(layerFd, 0, SEEK_SET) != 0) return MakeError(ErrorCode::kInternal, name + ": seek: " + std::strerror(errno));
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_none(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_format_raw(a.get());
  archive_read_support_format_empty(a.get());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  if (archive_read_open_fd(a.get(), layerFd, 1 << 16) == ARCHIVE_OK) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_OK || r == ARCHIVE_WARN) {
      std::vector<char> buf(1 << 16);
      uint64_t total = 0;
      for (;;) {
        la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
        if (n == 0) break;
        if (n < 0) return MakeError(ErrorCode::kInvalidArgument, name + ": compressed data truncated or corrupt");
        total += static_cast<uint64_t>(n);
        if (total > maxBytes) return MakeError(ErrorCode::kTooLarge, name + ": uncompressed layer over the size limit");
        EVP_DigestUpdate(md.get(), buf.data(), static_cast<size_t>(n));
      }
    } else if (r != ARCHIVE_EOF) {
      return MakeError(ErrorCode::kInvalidArgument, name + ": unreadable layer");
    }
  }
  unsigned char out[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(md.get(), out, &len);
  if (lseek(layerFd, 0, SEEK_SET) != 0) return MakeError(ErrorCode::kInternal, name + ": seek: " + std::strerror(errno));
  return "sha256:" + HexEncode(std::span<const uint8_t>(out, len));
}

Status ScanLayer(int layerFd, const std::string& name, ApplyBudget& budget, std::set<std::string>& symlinks) {
  if (lseek(layerFd, 0, SEEK_SET) != 0) return MakeError(ErrorCode::kInternal, name + ": seek: " + std::strerror(errno));
  ArchivePtr a = NewTarReader();
  if (archive_read_open_fd(a.get(), layerFd, 1 << 16) != ARCHIVE_OK)
    return MakeError(ErrorCode::kInvalidArgument, name + ": not a tar stream (tar, tar+gzip or tar+zstd)");
  std::vector<char> buf(1 << 16);
  auto dropBelow = [&](const std::string& prefix) {  // prefix removed or replaced
    symlinks.erase(prefix);
    for (auto it = symlinks.lower_bound(prefix + "/"); it != symlinks.end() && it->starts_with(prefix + "/");)
      it = symlinks.erase(it);
  };
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN)
      return MakeError(ErrorCode::kInvalidArgument, name + ": not a valid tar stream (truncated or corrupt)");
    if (budget.entriesLeft == 0) return MakeError(ErrorCode::kTooLarge, name + ": too many entries");
    --budget.entriesLeft;
    const char* rawPath = archive_entry_pathname(e);
    if (!rawPath) return Refuse(name, "?", "path is not readable");
    const std::string raw = rawPath;
    auto clean = CleanArchivePath(raw);
    if (!clean) return Refuse(name, raw, "absolute path, '..' or over-long path");
    if (clean->empty()) continue;
    auto parts = Split(*clean);
    std::string prefix;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      prefix += (i ? "/" : "") + parts[i];
      if (symlinks.count(prefix)) return Refuse(name, raw, "its directory goes through a symlink or a non-directory");
    }
    const std::string& base = parts.back();
    if (IsWhiteout(base)) {
      const std::string victim = base.substr(4);
      if (base != ".wh..wh..opq" && (victim.empty() || victim == "." || victim == ".." || IsWhiteout(victim)))
        return Refuse(name, *clean, "invalid whiteout");
      const std::string dir = parts.size() > 1 ? clean->substr(0, clean->size() - base.size() - 1) : "";
      if (base == ".wh..wh..opq") {
        if (!dir.empty()) {
          for (auto it = symlinks.lower_bound(dir + "/"); it != symlinks.end() && it->starts_with(dir + "/");)
            it = symlinks.erase(it);
        } else {
          symlinks.clear();
        }
      } else {
        dropBelow(dir.empty() ? victim : dir + "/" + victim);
      }
      continue;
    }
    const int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
    if (uid < 0 || uid > 65535 || gid < 0 || gid > 65535) return Refuse(name, raw, "owner outside 0..65535");
    const char* hardlink = archive_entry_hardlink(e);
    const mode_t type = archive_entry_filetype(e);
    if (!hardlink && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
      return Refuse(name, raw, "device nodes, fifos and sockets are not allowed");
    if (hardlink) {
      auto target = CleanArchivePath(hardlink);
      if (!target || target->empty()) return Refuse(name, raw, "hardlink target outside the image");
    }
    dropBelow(*clean);
    if (!hardlink && type == AE_IFLNK) {
      const char* target = archive_entry_symlink(e);
      if (!target || !*target || std::strlen(target) > 4096) return Refuse(name, raw, "invalid symlink target");
      symlinks.insert(*clean);
      continue;
    }
    if (hardlink || type != AE_IFREG) continue;
    if (archive_entry_size_is_set(e) && static_cast<uint64_t>(std::max<int64_t>(archive_entry_size(e), 0)) >
                                            budget.bytesLeft)
      return MakeError(ErrorCode::kTooLarge, name + ": image larger than the size limit");
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0) return Refuse(name, raw, "data truncated or corrupt");
      if (static_cast<uint64_t>(n) > budget.bytesLeft)
        return MakeError(ErrorCode::kTooLarge, name + ": image larger than the size limit");
      budget.bytesLeft -= static_cast<uint64_t>(n);
    }
  }
  if (lseek(layerFd, 0, SEEK_SET) != 0) return MakeError(ErrorCode::kInternal, name + ": seek: " + std::strerror(errno));
  return {};
}

}  // namespace osb::images
