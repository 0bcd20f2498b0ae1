// SandboxRuntime's file operations, host side: asks the sandbox's init for
// a helper (file_ops.h) and moves bytes over the descriptors it returns.
// The worker never resolves a sandbox path itself.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "sandbox/init_protocol.h"
#include "sandbox/runtime_internal.h"

namespace osb::sandbox {
namespace {

constexpr int kReplyTimeoutMs = 60000;

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }
  void Close() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

Error ReplyError(WireReader& r) {
  auto code = r.Num();
  auto msg = r.Str();
  ErrorCode c = ErrorCode::kInternal;
  if (code && *code >= 0 && *code <= static_cast<int64_t>(ErrorCode::kInternal)) c = static_cast<ErrorCode>(*code);
  return MakeError(c, msg ? *msg : "file operation failed");
}

// Waits for one reply record from the helper.
Result<std::string> AwaitReply(int sock, const std::string& id, std::vector<int>* fds = nullptr) {
  pollfd p{sock, POLLIN, 0};
  int n;
  do {
    n = poll(&p, 1, kReplyTimeoutMs);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return MakeError(ErrorCode::kUnavailable, "sandbox " + id + ": file operation timed out");
  auto rec = RecvRecord(sock, fds);
  if (!rec || rec->empty())
    return MakeError(ErrorCode::kUnavailable, "sandbox " + id + ": file helper ended without an answer");
  return *rec;
}

}  // namespace

// Starts a helper for `req` in sandbox `id`; returns the op socket (and the
// data socket for writes).
static Result<std::shared_ptr<Sandbox>> FindSandbox(SandboxRuntime::Impl& im, const std::string& id) {
  std::lock_guard lock(im.mu);
  auto it = im.sandboxes.find(id);
  if (it == im.sandboxes.end()) return MakeError(ErrorCode::kNotFound, "sandbox " + id + " not found");
  return it->second;
}

static Result<int> StartOp(SandboxRuntime::Impl& im, const std::string& id, const FileOpRequest& req,
                           int* data_out) {
  auto sb = FindSandbox(im, id);
  if (!sb) return sb.error();
  int op[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, op) != 0)
    return MakeError(ErrorCode::kInternal, "files: socketpair failed");
  Fd mine(op[0]), theirs(op[1]);
  Fd data_mine, data_theirs;
  if (data_out) {
    int d[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, d) != 0)
      return MakeError(ErrorCode::kInternal, "files: socketpair failed");
    data_mine.fd = d[0];
    data_theirs.fd = d[1];
    int buf = 1 << 20;
    setsockopt(d[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    shutdown(d[1], SHUT_WR);
  }
  std::vector<int> fds = {theirs.fd};
  if (data_out) fds.push_back(data_theirs.fd);
  {
    std::lock_guard lock((*sb)->controlMu);
    if ((*sb)->controlFd < 0 || !SendRecord((*sb)->controlFd, EncodeFileOp(req), fds))
      return MakeError(ErrorCode::kUnavailable, "sandbox " + id + " is not running");
  }
  if (data_out) {
    *data_out = data_mine.fd;
    data_mine.fd = -1;
  }
  int out = mine.fd;
  mine.fd = -1;
  return out;
}

Result<std::pair<int, int64_t>> SandboxRuntime::OpenFileForRead(const std::string& id, const std::string& path) {
  auto p = NormalizeSandboxPath("path", path);
  if (!p) return p.error();
  auto sock = StartOp(*impl_, id, {"read", *p, 0, false}, nullptr);
  if (!sock) return sock.error();
  Fd op(*sock);
  std::vector<int> fds;
  auto rec = AwaitReply(op.fd, id, &fds);
  if (!rec) return rec.error();
  WireReader r(*rec);
  const char tag = r.Tag();
  if (tag == 'F') {
    for (int f : fds) close(f);
    return ReplyError(r);
  }
  auto size = r.Num();
  if (tag != 'D' || !size || fds.size() != 1) {
    for (int f : fds) close(f);
    return MakeError(ErrorCode::kInternal, "sandbox " + id + ": malformed file helper reply");
  }
  // The descriptor came from inside the sandbox: trust only what fstat says.
  struct stat st {};
  if (fstat(fds[0], &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fds[0]);
    return MakeError(ErrorCode::kInvalidArgument, "path: " + *p + " is not a regular file (refused)");
  }
  int flags = fcntl(fds[0], F_GETFL);
  if (flags < 0 || (flags & O_ACCMODE) != O_RDONLY) {
    close(fds[0]);
    return MakeError(ErrorCode::kInternal, "sandbox " + id + ": file helper returned a writable descriptor");
  }
  return std::make_pair(fds[0], static_cast<int64_t>(st.st_size));
}

namespace {

class HelperUpload final : public SandboxRuntime::FileUpload {
 public:
  HelperUpload(std::string id, std::string path, int op, int data) : id_(std::move(id)), path_(std::move(path)) {
    op_.fd = op;
    data_.fd = data;
  }

  Status Write(const char* data, size_t size) override {
    if (dead_) return *dead_;
    size_t off = 0;
    while (off < size) {
      ssize_t n = send(data_.fd, data + off, size - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Fail();
      off += static_cast<size_t>(n);
    }
    return {};
  }

  Result<int64_t> Commit() override {
    if (dead_) return *dead_;
    data_.Close();  // EOF: the helper finishes the temp file
    if (!SendRecord(op_.fd, "C")) return Fail();
    auto rec = AwaitReply(op_.fd, id_);
    if (!rec) return rec.error();
    WireReader r(*rec);
    const char tag = r.Tag();
    if (tag == 'F') return ReplyError(r);
    auto size = r.Num();
    if (tag != 'X' || !size) return MakeError(ErrorCode::kInternal, "sandbox " + id_ + ": malformed file helper reply");
    return *size;
  }

 private:
  // The helper stopped reading: its reason (disk full) is on the op socket.
  Error Fail() {
    data_.Close();
    Error e = MakeError(ErrorCode::kUnavailable, "sandbox " + id_ + ": upload of " + path_ + " interrupted");
    auto rec = AwaitReply(op_.fd, id_);
    if (rec) {
      WireReader r(*rec);
      if (r.Tag() == 'F') e = ReplyError(r);
    }
    dead_ = e;
    return e;
  }

  std::string id_;
  std::string path_;
  Fd op_;
  Fd data_;
  std::optional<Error> dead_;
};

}  // namespace

Result<std::unique_ptr<SandboxRuntime::FileUpload>> SandboxRuntime::BeginFileUpload(const std::string& id,
                                                                                     const std::string& path,
                                                                                     uint32_t mode) {
  auto p = NormalizeSandboxPath("path", path);
  if (!p) return p.error();
  if (mode > 07777) return MakeError(ErrorCode::kInvalidArgument, "mode: must be an octal permission 0-7777");
  int data = -1;
  auto sock = StartOp(*impl_, id, {"write", *p, mode, false}, &data);
  if (!sock) return sock.error();
  Fd op(*sock), d(data);
  auto rec = AwaitReply(op.fd, id);
  if (!rec) return rec.error();
  WireReader r(*rec);
  const char tag = r.Tag();
  if (tag == 'F') return ReplyError(r);
  if (tag != 'W') return MakeError(ErrorCode::kInternal, "sandbox " + id + ": malformed file helper reply");
  auto up = std::make_unique<HelperUpload>(id, *p, op.fd, d.fd);
  op.fd = d.fd = -1;
  return std::unique_ptr<FileUpload>(std::move(up));
}

Result<std::vector<FileEntry>> SandboxRuntime::ListFiles(const std::string& id, const std::string& path,
                                                         bool* truncated) {
  auto p = NormalizeSandboxPath("path", path);
  if (!p) return p.error();
  auto sock = StartOp(*impl_, id, {"list", *p, 0, false}, nullptr);
  if (!sock) return sock.error();
  Fd op(*sock);
  std::vector<FileEntry> out;
  for (;;) {
    auto rec = AwaitReply(op.fd, id);
    if (!rec) return rec.error();
    WireReader r(*rec);
    const char tag = r.Tag();
    if (tag == 'F') return ReplyError(r);
    if (tag == 'X') {
      auto t = r.Num();
      *truncated = t && *t != 0;
      return out;
    }
    if (tag != 'L') return MakeError(ErrorCode::kInternal, "sandbox " + id + ": malformed file helper reply");
    for (;;) {
      auto name = r.Str();
      if (!name) break;
      auto type = r.Str();
      auto size = r.Num();
      auto mode = r.Num();
      auto mtime = r.Num();
      if (!type || !size || !mode || !mtime) return MakeError(ErrorCode::kInternal, "malformed file listing");
      if (out.size() >= kMaxListEntries) break;
      out.push_back({*name, *type, *size, static_cast<uint32_t>(*mode & 07777), *mtime});
    }
  }
}

static Status SimpleOp(SandboxRuntime::Impl& im, const std::string& id, const FileOpRequest& req) {
  auto sock = StartOp(im, id, req, nullptr);
  if (!sock) return sock.error();
  Fd op(*sock);
  auto rec = AwaitReply(op.fd, id);
  if (!rec) return rec.error();
  WireReader r(*rec);
  const char tag = r.Tag();
  if (tag == 'F') return ReplyError(r);
  if (tag != 'X') return MakeError(ErrorCode::kInternal, "sandbox " + id + ": malformed file helper reply");
  return {};
}

Status SandboxRuntime::MakeDirectory(const std::string& id, const std::string& path, bool parents, uint32_t mode) {
  auto p = NormalizeSandboxPath("path", path);
  if (!p) return p.error();
  if (mode > 07777) return MakeError(ErrorCode::kInvalidArgument, "mode: must be an octal permission 0-7777");
  return SimpleOp(*impl_, id, {"mkdir", *p, mode, parents});
}

Status SandboxRuntime::RemoveFile(const std::string& id, const std::string& path, bool recursive) {
  auto p = NormalizeSandboxPath("path", path);
  if (!p) return p.error();
  if (*p == "/") return MakeError(ErrorCode::kInvalidArgument, "path: cannot remove /");
  return SimpleOp(*impl_, id, {"remove", *p, 0, recursive});
}

}  // namespace osb::sandbox
