#include "sandbox/file_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "sandbox/init_protocol.h"

namespace osb::sandbox {
namespace {

constexpr size_t kCopyChunk = 1024 * 1024;  // the worker sends gRPC chunks of up to 1 MiB

struct Closer {
  int fd = -1;
  ~Closer() {
    if (fd >= 0) close(fd);
  }
  int release() {
    int f = fd;
    fd = -1;
    return f;
  }
};

std::string TypeOf(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "dir";
  if (S_ISLNK(m)) return "symlink";
  if (S_ISFIFO(m)) return "fifo";
  if (S_ISSOCK(m)) return "socket";
  if (S_ISCHR(m)) return "char-device";
  if (S_ISBLK(m)) return "block-device";
  return "other";
}

FileEntry EntryOf(const std::string& name, const struct stat& st) {
  FileEntry e;
  e.name = name;
  e.type = TypeOf(st.st_mode);
  e.size = static_cast<int64_t>(st.st_size);
  e.mode = st.st_mode & 07777;
  e.mtime_unix_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  return e;
}

Error SpecialFile(const std::string& path, mode_t m) {
  return MakeError(ErrorCode::kInvalidArgument,
                   "path: " + path + " is a " + TypeOf(m) + ", not a regular file (refused)");
}

Status RemoveTree(int parent_fd, const std::string& name, int depth) {
  if (depth > 256) return MakeError(ErrorCode::kInvalidArgument, "path: directory tree too deep to remove");
  Closer dir{openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)};
  if (dir.fd < 0) {
    if (errno == ENOTDIR || errno == ELOOP) {
      if (unlinkat(parent_fd, name.c_str(), 0) != 0) return FileError(errno, name);
      return {};
    }
    return FileError(errno, name);
  }
  int dup_fd = dup(dir.fd);
  if (dup_fd < 0) return FileError(errno, name);
  DIR* d = fdopendir(dup_fd);
  if (!d) {
    close(dup_fd);
    return FileError(errno, name);
  }
  std::vector<std::pair<std::string, bool>> children;
  while (dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (fstatat(dir.fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    children.emplace_back(n, S_ISDIR(st.st_mode));
  }
  closedir(d);
  for (const auto& [n, is_dir] : children) {
    if (is_dir) {
      if (auto s = RemoveTree(dir.fd, n, depth + 1); !s) return s;
    } else if (unlinkat(dir.fd, n.c_str(), 0) != 0 && errno != ENOENT) {
      return FileError(errno, name + "/" + n);
    }
  }
  if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0) return FileError(errno, name);
  return {};
}

}  // namespace

Result<std::string> NormalizeSandboxPath(const std::string& field, const std::string& path) {
  if (path.empty()) return MakeError(ErrorCode::kInvalidArgument, field + ": required");
  if (path.size() > kMaxFilePathBytes)
    return MakeError(ErrorCode::kInvalidArgument, field + ": longer than 4096 bytes");
  if (path.find('\0') != std::string::npos)
    return MakeError(ErrorCode::kInvalidArgument, field + ": contains a NUL byte");
  std::string p = path.front() == '/' ? path : "/home/sandbox/" + path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

int OpenInRoot(int root_fd, const std::string& path, int flags, unsigned mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0; attempt < 16; ++attempt) {
    long fd = syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != EAGAIN && errno != EINTR) return -errno;
  }
  return -EAGAIN;
}

Result<std::pair<std::string, std::string>> SplitParent(const std::string& path) {
  const auto slash = path.rfind('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string parent = slash == std::string::npos || slash == 0 ? "/" : path.substr(0, slash);
  if (name.empty() || name == "." || name == "..")
    return MakeError(ErrorCode::kInvalidArgument, "path: " + path + " does not name a file");
  return std::make_pair(parent, name);
}

Error FileError(int err, const std::string& path) {
  switch (err) {
    case ENOENT: return MakeError(ErrorCode::kNotFound, "path: " + path + " does not exist");
    case ENOTDIR: return MakeError(ErrorCode::kInvalidArgument, "path: a component of " + path + " is not a directory");
    case EISDIR: return MakeError(ErrorCode::kInvalidArgument, "path: " + path + " is a directory");
    case EEXIST: return MakeError(ErrorCode::kAlreadyExists, "path: " + path + " already exists");
    case ENOTEMPTY: return MakeError(ErrorCode::kConflict, "path: " + path + " is a directory that is not empty (use recursive)");
    case EACCES:
    case EPERM: return MakeError(ErrorCode::kFailedPrecondition, "path: permission denied: " + path);
    case EROFS: return MakeError(ErrorCode::kFailedPrecondition, "path: " + path + " is on a read-only filesystem");
    case ELOOP:
      return MakeError(ErrorCode::kInvalidArgument,
                       "path: " + path + " goes through a /proc magic link or too many symlinks (refused)");
    case ENAMETOOLONG: return MakeError(ErrorCode::kInvalidArgument, "path: " + path + " is too long");
    case ENOSPC:
    case EDQUOT: return MakeError(ErrorCode::kTooLarge, "no space left in the sandbox's disk quota writing " + path);
    case EFBIG: return MakeError(ErrorCode::kTooLarge, "file too large: " + path);
    case EXDEV:
    case EAGAIN: return MakeError(ErrorCode::kConflict, "path: " + path + " changed during the call; try again");
    default: return MakeError(ErrorCode::kInternal, "file operation on " + path + " failed: " + std::strerror(err));
  }
}

Result<std::pair<int, int64_t>> OpenForRead(int root_fd, const std::string& path) {
  // Look first without opening (O_PATH): a device or a fifo is refused
  // before any open(2) could have a side effect or block.
  {
    Closer probe{OpenInRoot(root_fd, path, O_PATH)};
    if (probe.fd < 0) return FileError(-probe.fd, path);
    struct stat st {};
    if (fstat(probe.fd, &st) != 0) return FileError(errno, path);
    if (S_ISDIR(st.st_mode)) return FileError(EISDIR, path);
    if (!S_ISREG(st.st_mode)) return SpecialFile(path, st.st_mode);
  }
  // It may have been swapped meanwhile: the real open never blocks
  // (O_NONBLOCK) and what it opened is checked again.
  Closer f{OpenInRoot(root_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY)};
  if (f.fd < 0) return FileError(-f.fd, path);
  struct stat st {};
  if (fstat(f.fd, &st) != 0) return FileError(errno, path);
  if (S_ISDIR(st.st_mode)) return FileError(EISDIR, path);
  if (!S_ISREG(st.st_mode)) return SpecialFile(path, st.st_mode);
  int flags = fcntl(f.fd, F_GETFL);
  if (flags >= 0) fcntl(f.fd, F_SETFL, flags & ~O_NONBLOCK);
  return std::make_pair(f.release(), static_cast<int64_t>(st.st_size));
}

Result<std::vector<FileEntry>> ListPath(int root_fd, const std::string& path, bool* truncated) {
  *truncated = false;
  Closer probe{OpenInRoot(root_fd, path, O_PATH)};
  if (probe.fd < 0) return FileError(-probe.fd, path);
  struct stat st {};
  if (fstat(probe.fd, &st) != 0) return FileError(errno, path);
  std::vector<FileEntry> out;
  if (!S_ISDIR(st.st_mode)) {
    auto split = SplitParent(path);
    out.push_back(EntryOf(split ? split->second : path, st));
    return out;
  }
  Closer dir{OpenInRoot(root_fd, path, O_RDONLY | O_DIRECTORY)};
  if (dir.fd < 0) return FileError(-dir.fd, path);
  int dup_fd = dup(dir.fd);
  if (dup_fd < 0) return FileError(errno, path);
  DIR* d = fdopendir(dup_fd);
  if (!d) {
    close(dup_fd);
    return FileError(errno, path);
  }
  while (dirent* de = readdir(d)) {
    std::string n = de->d_name;
    if (n == "." || n == "..") continue;
    if (out.size() >= kMaxListEntries) {
      *truncated = true;
      break;
    }
    struct stat est {};
    if (fstatat(dir.fd, n.c_str(), &est, AT_SYMLINK_NOFOLLOW) != 0) continue;  // removed meanwhile
    out.push_back(EntryOf(n, est));
  }
  closedir(d);
  return out;
}

Status MakeDirectory(int root_fd, const std::string& path, bool parents, uint32_t mode) {
  if (path == "/") {
    if (parents) return {};
    return FileError(EEXIST, path);
  }
  if (!parents) {
    auto split = SplitParent(path);
    if (!split) return split.error();
    Closer parent{OpenInRoot(root_fd, split->first, O_PATH | O_DIRECTORY)};
    if (parent.fd < 0) return FileError(-parent.fd, split->first);
    if (mkdirat(parent.fd, split->second.c_str(), mode & 07777) != 0) return FileError(errno, path);
    return {};
  }
  // Each prefix in turn, every one resolved from the root again.
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    const std::string prefix = path.substr(0, next);
    pos = next + 1;
    if (prefix.empty() || prefix.back() == '/') continue;
    auto split = SplitParent(prefix);
    if (!split) continue;  // "." or ".." component: resolved by openat2 later
    Closer parent{OpenInRoot(root_fd, split->first, O_PATH | O_DIRECTORY)};
    if (parent.fd < 0) return FileError(-parent.fd, split->first);
    if (mkdirat(parent.fd, split->second.c_str(), mode & 07777) != 0 && errno != EEXIST)
      return FileError(errno, prefix);
  }
  Closer check{OpenInRoot(root_fd, path, O_PATH | O_DIRECTORY)};
  if (check.fd < 0) return FileError(-check.fd == ENOTDIR ? EEXIST : -check.fd, path);
  return {};
}

Status RemovePath(int root_fd, const std::string& path, bool recursive) {
  auto split = SplitParent(path);
  if (!split) return split.error();
  Closer parent{OpenInRoot(root_fd, split->first, O_PATH | O_DIRECTORY)};
  if (parent.fd < 0) return FileError(-parent.fd, split->first);
  struct stat st {};
  if (fstatat(parent.fd, split->second.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return FileError(errno, path);
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(parent.fd, split->second.c_str(), 0) != 0) return FileError(errno, path);
    return {};
  }
  if (!recursive) {
    if (unlinkat(parent.fd, split->second.c_str(), AT_REMOVEDIR) != 0) return FileError(errno, path);
    return {};
  }
  // unlinkat/openat on an O_PATH parent need a real directory fd.
  Closer real_parent{OpenInRoot(root_fd, split->first, O_RDONLY | O_DIRECTORY)};
  if (real_parent.fd < 0) return FileError(-real_parent.fd, split->first);
  auto s = RemoveTree(real_parent.fd, split->second, 0);
  if (!s && s.error().code != ErrorCode::kInternal) return s;
  if (!s) return MakeError(ErrorCode::kInternal, "removing " + path + ": " + s.error().message);
  return {};
}

Result<PendingUpload> BeginUpload(int root_fd, const std::string& path, uint32_t mode) {
  auto split = SplitParent(path);
  if (!split) return split.error();
  PendingUpload up;
  up.name = split->second;
  up.path = path;
  up.mode = mode & 07777;
  Closer dir{OpenInRoot(root_fd, split->first, O_RDONLY | O_DIRECTORY)};
  if (dir.fd < 0) return FileError(-dir.fd, split->first);
  struct stat st {};
  if (fstatat(dir.fd, up.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(st.st_mode)) return FileError(EISDIR, path);
    if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) return SpecialFile(path, st.st_mode);
  }
  std::random_device rd;
  for (int attempt = 0; attempt < 8; ++attempt) {
    char suffix[17];
    snprintf(suffix, sizeof suffix, "%08x%08x", rd(), rd());
    std::string temp = "." + up.name.substr(0, 200) + ".osb-upload-" + suffix;
    int fd = openat(dir.fd, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      up.file_fd = fd;
      up.temp_name = temp;
      up.dir_fd = dir.release();
      return up;
    }
    if (errno != EEXIST) return FileError(errno, path);
  }
  return FileError(EEXIST, path);
}

static Status WriteAll(PendingUpload& up, const char* data, size_t size) {
  size_t off = 0;
  while (off < size) {
    ssize_t w = write(up.file_fd, data + off, size - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return FileError(w < 0 ? errno : ENOSPC, up.path);
    off += static_cast<size_t>(w);
  }
  return {};
}

// splice() needs a pipe on one side, and the data channel is a socket: the
// bytes go socket -> pipe -> file, never through the helper's memory (a
// read()/write() pair copied every byte twice more).
Result<int64_t> FillUpload(PendingUpload& up, int in_fd) {
  int64_t total = 0;
  Closer pipe_r{-1}, pipe_w{-1};
  int pfd[2];
  bool use_splice = pipe2(pfd, O_CLOEXEC) == 0;
  if (use_splice) {
    pipe_r.fd = pfd[0];
    pipe_w.fd = pfd[1];
    (void)fcntl(pipe_w.fd, F_SETPIPE_SZ, static_cast<int>(kCopyChunk));  // best effort: 64 KiB works too
  }
  std::vector<char> buf;
  for (;;) {
    ssize_t n;
    if (use_splice) {
      n = splice(in_fd, nullptr, pipe_w.fd, nullptr, kCopyChunk, SPLICE_F_MOVE);
      if (n < 0 && (errno == EINVAL || errno == ENOSYS) && total == 0) {
        use_splice = false;  // nothing moved yet: plain reads and writes
        continue;
      }
      for (ssize_t left = n; left > 0;) {
        ssize_t w = splice(pipe_r.fd, nullptr, up.file_fd, nullptr, static_cast<size_t>(left), SPLICE_F_MOVE);
        if (w < 0 && errno == EINVAL) {  // a filesystem without splice writes: copy out of the pipe
          if (buf.empty()) buf.resize(kCopyChunk);
          w = read(pipe_r.fd, buf.data(), std::min(buf.size(), static_cast<size_t>(left)));
          if (w > 0) {
            if (auto s = WriteAll(up, buf.data(), static_cast<size_t>(w)); !s) return s.error();
          }
        }
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return FileError(w < 0 ? errno : ENOSPC, up.path);
        left -= w;
      }
    } else {
      if (buf.empty()) buf.resize(kCopyChunk);
      n = read(in_fd, buf.data(), buf.size());
      if (n > 0) {
        if (auto s = WriteAll(up, buf.data(), static_cast<size_t>(n)); !s) return s.error();
      }
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FileError(errno, up.path);
    if (n == 0) break;
    total += n;
  }
  return total;
}

Status CommitUpload(PendingUpload& up) {
  if (fchmod(up.file_fd, up.mode) != 0) return FileError(errno, up.path);
  if (renameat(up.dir_fd, up.temp_name.c_str(), up.dir_fd, up.name.c_str()) != 0) return FileError(errno, up.path);
  up.temp_name.clear();
  close(up.file_fd);
  up.file_fd = -1;
  close(up.dir_fd);
  up.dir_fd = -1;
  return {};
}

void AbortUpload(PendingUpload& up) {
  if (up.dir_fd >= 0 && !up.temp_name.empty()) unlinkat(up.dir_fd, up.temp_name.c_str(), 0);
  up.temp_name.clear();
  if (up.file_fd >= 0) close(up.file_fd);
  if (up.dir_fd >= 0) close(up.dir_fd);
  up.file_fd = up.dir_fd = -1;
}

std::string EncodeFileOp(const FileOpRequest& r) {
  return WireWriter('O').Str(r.op).Str(r.path).Num(r.mode).Num(r.flag ? 1 : 0).data();
}

Result<FileOpRequest> DecodeFileOp(const std::string& data) {
  WireReader r(data);
  if (r.Tag() != 'O') return MakeError(ErrorCode::kInvalidArgument, "file op: bad tag");
  FileOpRequest out;
  auto op = r.Str();
  auto path = r.Str();
  auto mode = r.Num();
  auto flag = r.Num();
  if (!op || !path || !mode || !flag || *mode < 0 || *mode > 07777)
    return MakeError(ErrorCode::kInvalidArgument, "file op: malformed request");
  if (*op != "read" && *op != "write" && *op != "list" && *op != "mkdir" && *op != "remove")
    return MakeError(ErrorCode::kInvalidArgument, "file op: unknown op");
  auto p = NormalizeSandboxPath("path", *path);
  if (!p) return p.error();
  out.op = *op;
  out.path = *p;
  out.mode = static_cast<uint32_t>(*mode);
  out.flag = *flag != 0;
  return out;
}

namespace {

int CodeNumber(ErrorCode c) { return static_cast<int>(c); }

int Fail(int sock, const Error& e) {
  SendRecord(sock, WireWriter('F').Num(CodeNumber(e.code)).Str(e.message).data());
  return 1;
}

}  // namespace

int ServeFileOp(const FileOpRequest& req, int op_sock, int data_fd) {
  Closer root{open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)};
  if (root.fd < 0) return Fail(op_sock, FileError(errno, "/"));
  if (req.op == "read") {
    auto f = OpenForRead(root.fd, req.path);
    if (!f) return Fail(op_sock, f.error());
    bool ok = SendRecord(op_sock, WireWriter('D').Num(f->second).data(), {f->first});
    close(f->first);
    return ok ? 0 : 1;
  }
  if (req.op == "list") {
    bool truncated = false;
    auto list = ListPath(root.fd, req.path, &truncated);
    if (!list) return Fail(op_sock, list.error());
    // Records stay well under the socket's buffer: 200 entries each.
    for (size_t i = 0; i < list->size(); i += 200) {
      WireWriter w('L');
      for (size_t j = i; j < std::min(list->size(), i + 200); ++j) {
        const auto& e = (*list)[j];
        w.Str(e.name).Str(e.type).Num(e.size).Num(e.mode).Num(e.mtime_unix_ms);
      }
      if (!SendRecord(op_sock, w.data())) return 1;
    }
    SendRecord(op_sock, WireWriter('X').Num(truncated ? 1 : 0).data());
    return 0;
  }
  if (req.op == "mkdir") {
    if (auto s = MakeDirectory(root.fd, req.path, req.flag, req.mode ? req.mode : 0755); !s) return Fail(op_sock, s.error());
    SendRecord(op_sock, WireWriter('X').Num(0).data());
    return 0;
  }
  if (req.op == "remove") {
    if (req.path == "/") return Fail(op_sock, MakeError(ErrorCode::kInvalidArgument, "path: cannot remove /"));
    if (auto s = RemovePath(root.fd, req.path, req.flag); !s) return Fail(op_sock, s.error());
    SendRecord(op_sock, WireWriter('X').Num(0).data());
    return 0;
  }
  // write
  if (data_fd < 0) return Fail(op_sock, MakeError(ErrorCode::kInternal, "write: no data pipe"));
  auto up = BeginUpload(root.fd, req.path, req.mode ? req.mode : 0644);
  if (!up) return Fail(op_sock, up.error());
  if (!SendRecord(op_sock, WireWriter('W').data())) {
    AbortUpload(*up);
    return 1;
  }
  auto n = FillUpload(*up, data_fd);
  if (!n) {
    AbortUpload(*up);
    return Fail(op_sock, n.error());
  }
  auto commit = RecvRecord(op_sock);
  if (!commit || commit->empty() || (*commit)[0] != 'C') {
    AbortUpload(*up);  // the worker gave up (client gone, error): no partial file
    return 1;
  }
  if (auto s = CommitUpload(*up); !s) {
    AbortUpload(*up);
    return Fail(op_sock, s.error());
  }
  SendRecord(op_sock, WireWriter('X').Num(*n).data());
  return 0;
}

}  // namespace osb::sandbox
