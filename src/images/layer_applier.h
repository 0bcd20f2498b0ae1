// Applies image layers (tar, optionally gzip or zstd compressed) onto a
// root directory, the way an OCI runtime unpacks an image, without ever
// letting an entry write outside that directory.
//
// Safety contract, for any input bytes:
//   - every path is cleaned (CleanArchivePath): absolute paths and ".."
//     anywhere are refused, so is a NUL or a path over 4096 bytes;
//   - every directory on the way to an entry is opened relative to the root
//     with O_NOFOLLOW, one component at a time: a symlink on the way (even
//     one pointing inside) is refused, so "symlink, then a file through it"
//     cannot escape and whiteouts cannot delete through a symlink;
//   - the entry itself is created with O_CREAT|O_EXCL|O_NOFOLLOW after any
//     existing entry of that name was removed (never written through);
//   - symlinks are created verbatim and never followed here;
//   - hardlinks must name an existing non-directory inside the root, found
//     the same way (no symlink on its way);
//   - character/block devices, fifos and sockets are refused;
//   - setuid/setgid bits are dropped; owners must be 0..65535 (the ids a
//     sandbox's user namespace maps);
//   - sizes are bounded: a declared entry size over what is left of the
//     budget is refused before anything is written, and so is a layer whose
//     data ends early (truncated) or is corrupt.
// Whiteouts: ".wh.NAME" removes NAME from the layers below; ".wh..wh..opq"
// empties its directory of what the layers below put there (entries this
// layer wrote before the marker are kept).
//
// Errors: kInvalidArgument naming the layer and the entry; kTooLarge for a
// budget; kInternal for a host failure. On error the root is left partially
// written: callers build into a scratch dir and remove it.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "common/result.h"

namespace osb::images {

struct ApplyBudget {
  uint64_t bytesLeft = 8ull << 30;  // file data, all layers together
  uint64_t entriesLeft = 1'000'000;
};

// `layerFd` is read from its current offset to EOF (not closed). `rootFd` is
// an O_DIRECTORY fd of the root. `name` is used in error messages.
Status ApplyLayer(int rootFd, int layerFd, const std::string& name, ApplyBudget& budget);

// The same over bytes in memory (fuzzing, tests).
Status ApplyLayerBytes(int rootFd, const void* data, size_t size, const std::string& name, ApplyBudget& budget);

// sha256 of the layer's uncompressed tar stream ("sha256:<hex>", the
// config's diff_id), reading `layerFd` from offset 0; at most `maxBytes`
// uncompressed bytes (kTooLarge beyond).
Result<std::string> UncompressedDigest(int layerFd, uint64_t maxBytes, const std::string& name);

// Checks a layer without writing anything (the control plane's check of an
// uploaded image, which it never unpacks): the same per-entry refusals as
// ApplyLayer for paths, types, owners, whiteouts, symlink targets and sizes,
// and "its directory goes through a symlink" for an entry below a path an
// earlier entry (this layer or an earlier one scanned with the same
// `symlinks`) made a symlink. Hardlink targets are checked as paths only:
// ApplyLayer (on the worker) stays the authority on what lands on disk.
Status ScanLayer(int layerFd, const std::string& name, ApplyBudget& budget, std::set<std::string>& symlinks);

// Removes `path` (file or whole tree) beneath `dirFd` without following
// symlinks. ENOENT is success.
Status RemoveTreeAt(int dirFd, const std::string& name);

}  // namespace osb::images
