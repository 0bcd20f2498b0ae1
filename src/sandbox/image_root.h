// Host side of an image sandbox's root filesystem (internal to src/sandbox).
//
// For a sandbox whose spec names an imageRootfs, before its init starts:
//   <sbRunDir>/disk   an ext4 filesystem of exactly diskMB, on a loop device
//                     over a sparse file in the runtime's diskDir: a copy of
//                     the data extents of <diskDir>/.blank-<MB>M.img (made
//                     once per size by mkfs.ext4), unlinked once attached
//                     (nothing is left on disk after the loop device is
//                     released, even after a crash)
//     disk/upper      the overlay's upper dir: the sandbox's writable state
//     disk/work       the overlay's work dir
//   <sbRunDir>/root   overlay: lower = the image rootfs through an idmapped,
//                     read-only mount (host ids 0..65535 of the store appear
//                     as hostIdBase + 0..65535, i.e. as their own ids inside
//                     the sandbox's user namespace), upper/work above;
//                     nosuid, nodev. The init inherits this mount (its mount
//                     namespace is copied from ours at clone) and pivots
//                     into it.
// The store's files are never written: overlay copies up into disk/upper.
// A write beyond diskMB fails with ENOSPC inside the sandbox; the host's
// disk is not touched beyond that file.
//
// Errors: kInternal naming the step (loop device, mkfs, mount, idmap).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/result.h"

namespace osb::sandbox {

// Mounts disk + overlay as above. On error, whatever was mounted is undone.
// `fillUpper`, if set, is called with the fd of the new, empty upper dir
// after the disk is mounted and before the overlay is (a checkpoint
// restore: overlayfs does not support changes under a mounted upper dir).
// The overlay is mounted with redirect_dir, index and metacopy off, so the
// upper dir is self-describing: files, dirs, links, whiteouts and opaque
// markers (what a checkpoint saves), nothing pointing into the lower layer.
Status MountImageRoot(const std::string& imageRootfs, const std::string& diskDir, const std::string& sbRunDir,
                      uint64_t diskMB, uint32_t hostIdBase,
                      const std::function<Status(int upperFd)>& fillUpper = {});

// Detaches <sbRunDir>/root and <sbRunDir>/disk (the loop device frees
// itself) and removes the dirs. Safe to call when nothing is mounted.
void UnmountImageRoot(const std::string& sbRunDir);

// <sbRunDir>/disk/upper.
std::string UpperDirOf(const std::string& sbRunDir);

}  // namespace osb::sandbox
