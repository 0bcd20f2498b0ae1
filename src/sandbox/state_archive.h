// State archives: the writable file-system state of a sandbox, captured
// into one file and restored into another (fresh) sandbox. This is what a
// checkpoint holds besides its config; process memory is NOT saved (CRIU
// does not work on these kernels), so a restored sandbox starts with its
// files and no processes.
//
// What is saved: regular files (sparse ones as their data extents only),
// directories and symlinks (as links, never followed) under the sandbox's
// writable roots (WritableRoots), with mode bits (setuid/setgid dropped),
// owner and group as ids INSIDE the sandbox's user namespace, and mtime.
// Fifos, sockets and device nodes are skipped; hard links become copies.
// For a sandbox on an imported image, also its overlay upper dir (archive
// root kUpperRoot, captured and restored by the worker on the host, see
// CaptureUpperDir): the same kinds of entries plus overlay whiteouts (char
// 0:0 nodes = image files the sandbox deleted, 'W') and opaque dirs ('O',
// trusted.overlay.opaque="y"). Other xattrs (security.capability like the
// setuid bit, the overlay's origin/impure hints, user.*) are not saved.
//
// Safety against a hostile sandbox (it controls every byte under its roots):
//   * all I/O is openat-based from /proc/<init>/root of the sandbox, with
//     openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
//     to reach a root and O_NOFOLLOW / RESOLVE_BENEATH | RESOLVE_NO_XDEV
//     below it: no symlink is ever followed, no other mount is entered, and
//     nothing outside the sandbox's own tree can be named;
//   * a file is opened O_NONBLOCK|O_NOFOLLOW and checked to be the regular
//     file that was listed (a fifo swapped in cannot block the worker);
//   * capture stops with kTooLarge once the data exceeds `maxDataBytes`
//     (the sandbox's scratch budget) or the entries exceed kMaxEntries;
//     a huge sparse file costs only its data;
//   * restore validates every name (no "/", ".", "..", NUL; <= 255 bytes),
//     creates entries with O_EXCL / mkdirat / symlinkat relative to a parent
//     opened without following symlinks, and stops at the target's own
//     space limit (ENOSPC -> kTooLarge).
//
// Errors: kTooLarge (over a budget), kDataLoss (a malformed archive, with the
// offset), kInternal (an I/O step, naming it). Messages hold paths inside the
// sandbox, never file contents.
// Thread safety: free functions; concurrent calls on different sandboxes are
// independent.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace osb::sandbox {

// THE list of a sandbox's writable roots (absolute paths inside it), in
// archive order; the archive stores each entry by its root's index. Today
// the three dirs of the scratch tmpfs (rootfs.h); an image sandbox's
// overlay upper dir is added here.
std::vector<std::string> WritableRoots();
// The archive root index of an image sandbox's overlay upper dir (after
// the WritableRoots; paths relative to the upper dir).
inline constexpr uint8_t kUpperRoot = 3;

inline constexpr uint64_t kMaxArchiveEntries = 1u << 20;

struct StateLimits {
  uint64_t maxDataBytes = 0;       // file data of the scratch roots (0 = the scratch fs size)
  uint64_t maxEntries = kMaxArchiveEntries;
  // File data of the upper dir: 0 = the disk's size in RestoreUpperDir /
  // CaptureUpperDir; DecodeStateArchive takes it as given (0 = none).
  uint64_t maxUpperDataBytes = 0;
};

struct StateStats {
  uint64_t entries = 0;
  uint64_t dataBytes = 0;
  uint64_t skipped = 0;  // fifos, sockets, devices, other mounts
};

// Captures the writable state of the sandbox whose init is `initPid` (host
// pid) into `outFd` (current offset; not closed). The I/O is done by a
// helper process (osb-sandbox-init --state) that joins the sandbox's user
// and mount namespaces as root INSIDE them: files it creates belong to the
// sandbox's own ids and nothing of the host's tree is reachable from it.
// With `append`, the magic is left out: the archive was begun by
// CaptureUpperDir.
Result<StateStats> CaptureState(const std::string& initBinary, pid_t initPid, int outFd, bool append = false);
// Restores an archive read from `inFd` into the sandbox (its roots should be
// empty; existing non-directory entries of the same name are replaced). The
// helper first joins `cgroupDirs` (the sandbox's), so the restored tmpfs
// pages are charged to the sandbox's memory limit.
// Upper-dir records are refused (kFailedPrecondition) unless `upperDone`
// (RestoreUpperDir wrote them when the sandbox was created): then skipped.
Result<StateStats> RestoreState(const std::string& initBinary, pid_t initPid, int inFd,
                                const std::vector<std::string>& cgroupDirs = {}, bool upperDone = false);

// The helper's side, run inside the sandbox's namespaces: `rootFd` is the
// sandbox's "/", ids are the namespace's own (inside ids).
Result<StateStats> CaptureStateAt(int rootFd, int outFd, StateLimits limits = {}, bool withMagic = true);
Result<StateStats> RestoreStateAt(int rootFd, int inFd, StateLimits limits = {}, bool upperDone = false);

// The worker's side for an image sandbox's overlay upper dir (`upperFd`,
// opened O_DIRECTORY|O_NOFOLLOW on the host; files owned by host ids
// hostIdBase + inside id). CaptureUpperDir writes the magic and the upper
// dir's records, no end record (CaptureState(append) follows), bounded by
// the disk's size. RestoreUpperDir reads the whole archive from `inFd` with
// pread from its current offset (which is left as it was, for the helper's
// restore of the scratch roots after), writes only the upper dir's records,
// into an EMPTY upper dir of a not yet mounted overlay; ENOSPC -> kTooLarge.
Result<StateStats> CaptureUpperDir(int upperFd, uint32_t hostIdBase, int outFd, StateLimits limits = {});
Result<StateStats> RestoreUpperDir(int upperFd, uint32_t hostIdBase, int inFd, StateLimits limits = {});
// main() of `osb-sandbox-init --state capture|restore <pid> [cgroup dir...]`: archive on
// stdout (capture) or stdin (restore); one result line on stderr:
// "OK <entries> <dataBytes> <skipped>" or "ERR <code> <message>".
int StateHelperMain(int argc, char** argv);

// ---- the format, for tests and the fuzz target ----------------------------
// "OSBSTAT1", then records: u8 type ('D' dir, 'F' file, 'L' symlink, 'E'
// end; root kUpperRoot only: 'W' whiteout, 'O' opaque dir), u8 root index, u16 path length + relative path ("a/b"), u32 mode,
// u32 uid, u32 gid, i64 mtime; 'F': u64 size, u32 extent count, each u64
// offset + u64 length + the bytes; 'L': u16 length + target. Little endian.
struct ArchiveEntry {
  char type = 0;
  uint8_t root = 0;
  std::string path;
  uint32_t mode = 0, uid = 0, gid = 0;
  int64_t mtime = 0;
  uint64_t size = 0;
  std::string target;
};

class ArchiveSink {
 public:
  virtual ~ArchiveSink() = default;
  // Called for each entry before its data; a file's extents follow through
  // Data (in increasing, non-overlapping offset order, within size).
  virtual Status Begin(const ArchiveEntry& entry) = 0;
  virtual Status Data(uint64_t offset, std::string_view bytes) = 0;
  virtual Status End() = 0;
};

// Reads and checks an archive (names, modes, ids, extent order, budgets)
// from `read` (returns bytes read, 0 at EOF, -1 on error), calling `sink`.
Result<StateStats> DecodeStateArchive(const std::function<ssize_t(void*, size_t)>& read, ArchiveSink& sink,
                                      StateLimits limits);

}  // namespace osb::sandbox
