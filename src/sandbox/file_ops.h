// File operations on a sandbox's filesystem (issue 15, docs/files.md).
//
// Where they run: never in the worker. The worker asks the sandbox's init
// (init_protocol.h, tag 'O'); the init forks a helper that drops to the
// sandbox user (DropToUser: no capabilities, no_new_privs), marks itself
// non-dumpable (no ptrace by sandbox processes of the same uid), and does
// the operation inside the sandbox's own mount namespace. Every path is
// resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from the
// sandbox's root:
//   * `..` and absolute symlinks stay inside the root (they are clamped to
//     it, as if the root were "/"), so nothing of the host or of another
//     sandbox is reachable whatever the path or the symlinks say;
//   * /proc magic links (/proc/self/root, /proc/1/cwd, /proc/N/fd/M) are
//     refused (ELOOP -> 400);
//   * a symlink swapped during the call is resolved again under the same
//     rules by the kernel (no check-then-use in user space);
//   * fifos, sockets and devices are refused for read and write (400 naming
//     the path); a fifo is never opened for reading without O_NONBLOCK and
//     never waited on.
// Uploads go to a temporary name in the target directory (O_EXCL, 0600) and
// are renamed over the target only after the whole body arrived: an upload
// that fails (disk full, client gone) leaves no truncated file behind.
//
// The same functions run on any directory fd as root (tests call them on a
// temp dir with the calling process's credentials).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace osb::sandbox {

struct FileEntry {
  std::string name;
  std::string type;  // "file" | "dir" | "symlink" | "fifo" | "socket" | "char-device" | "block-device" | "other"
  int64_t size = 0;
  uint32_t mode = 0;  // permission bits (st_mode & 07777)
  int64_t mtime_unix_ms = 0;
};

inline constexpr size_t kMaxListEntries = 10000;
inline constexpr size_t kMaxFilePathBytes = 4096;

// The sandbox-side view of `path`: relative paths are taken from
// /home/sandbox; NUL bytes, empty paths and paths over 4096 bytes are
// kInvalidArgument naming `field`. Trailing slashes are dropped ("/" stays).
Result<std::string> NormalizeSandboxPath(const std::string& field, const std::string& path);

// openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS),
// retried on EAGAIN (a concurrent rename). Returns an fd or -errno.
int OpenInRoot(int root_fd, const std::string& path, int flags, unsigned mode = 0);

// Splits "/a/b/c" into ("/a/b", "c"); the last part is never "", "." or
// "..". kInvalidArgument for "/" and such names.
Result<std::pair<std::string, std::string>> SplitParent(const std::string& path);

// Error from an errno of a file operation on `path` (message names it).
Error FileError(int err, const std::string& path);

// --- operations (root_fd: the root to resolve in) ---------------------------
// Opens a regular file for reading; refuses anything else. Returns the fd
// (close-on-exec) and its size.
Result<std::pair<int, int64_t>> OpenForRead(int root_fd, const std::string& path);
// Lists a directory (or the one entry of a non-directory). At most
// kMaxListEntries; *truncated says if more were left out.
Result<std::vector<FileEntry>> ListPath(int root_fd, const std::string& path, bool* truncated);
Status MakeDirectory(int root_fd, const std::string& path, bool parents, uint32_t mode);
// Removes a file, a symlink (not its target) or an empty directory; with
// recursive, a directory tree (never following symlinks).
Status RemovePath(int root_fd, const std::string& path, bool recursive);

// An upload in progress: a temp file next to the target.
struct PendingUpload {
  int dir_fd = -1;
  int file_fd = -1;
  std::string temp_name;
  std::string name;
  std::string path;  // for messages
  uint32_t mode = 0644;
};
Result<PendingUpload> BeginUpload(int root_fd, const std::string& path, uint32_t mode);
// Copies everything from `in_fd` (until EOF) into the temp file. Returns the
// bytes written.
Result<int64_t> FillUpload(PendingUpload& up, int in_fd);
// Sets the mode and renames the temp file over the target.
Status CommitUpload(PendingUpload& up);
// Removes the temp file and closes everything (safe to call twice).
void AbortUpload(PendingUpload& up);

// --- wire (inside init_protocol's records) -----------------------------------
// 'O' request from the worker to the init, with fds [op socket] or, for
// "write", [op socket, data pipe read end].
struct FileOpRequest {
  std::string op;  // "read" | "write" | "list" | "mkdir" | "remove"
  std::string path;
  uint32_t mode = 0;
  bool flag = false;  // mkdir: parents; remove: recursive
};
std::string EncodeFileOp(const FileOpRequest& r);
Result<FileOpRequest> DecodeFileOp(const std::string& data);

// Runs in the forked helper (already the sandbox user): performs `req`,
// answering on `op_sock`, then returns the process exit code. Replies:
//   'F' <errno> <message>         failed
//   read:   'D' <size> + fd       the opened file
//   list:   'L' (<name> <type> <size> <mode> <mtime ms>)*  records, then 'X' <truncated 0|1>
//   mkdir, remove: 'X' "0"
//   write:  'W' (temp file ready), then the data pipe is read to EOF; the
//           worker then sends 'C' (commit) and gets 'X' <size>; EOF or
//           anything else instead of 'C' removes the temp file.
int ServeFileOp(const FileOpRequest& req, int op_sock, int data_fd);

}  // namespace osb::sandbox
