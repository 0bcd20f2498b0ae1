// Builds a sandbox's root filesystem inside its own mount namespace and
// pivots into it. Runs in the sandbox init (osb-sandbox-init), as root of
// the sandbox's user namespace, before any untrusted code exists.
//
// The new root is a fresh tmpfs that contains ONLY:
//   /usr /bin /lib /lib64 /sbin ...  read-only binds (or a template's entries)
//   /etc   nothing of the host's is bound: copies of ld.so.cache, protocols,
//          services and ssl/openssl.cnf, the host's symlinks into /usr
//          (alternatives/*, localtime, os-release), then the runtime's
//          generated files (passwd, group, hosts, hostname, resolv.conf,
//          nsswitch.conf, the CA bundle). With a template: the template's
//          /etc minus accounts, keys and the generated files.
//   /proc  a fresh procfs of the sandbox's PID namespace (hidepid), masked
//          the way runc does: kcore, keys, timer_list, sched_debug, ...
//          covered by /dev/null or an empty tmpfs; sys, sysrq-trigger, irq,
//          bus, fs read-only
//   /dev   tmpfs with binds of null zero full random urandom tty, /dev/shm
//   /tmp, /home/sandbox, /dev/shm  three dirs of ONE size-limited tmpfs
//          (tmpfsBytes for all of them together)
// Image sandboxes (overlayRoot): stagingDir is already the sandbox's
// overlay (mounted by the worker: lower = the image rootfs, idmapped into
// the sandbox's ids and read-only; upper = its own size-limited disk) and
// becomes / itself, writable. Its /etc is the image's, with the generated
// files written over it (passwd and group only when the image has none).
// /proc, /dev, /tmp, /home/sandbox and /etc(/ssl/certs) are made real
// directories first (a symlink there is replaced, never followed on the
// host side of the pivot).
// Nothing else of the host (in particular /, /etc, /sys, /work, /var/lib,
// /run, the worker's state dir, DB and keys) is bound, and the old root is
// detached.
//
// Errors: kInternal naming the path and the failing operation.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/result.h"

namespace osb::sandbox {

struct GeneratedFile {
  std::string path;     // absolute inside the sandbox, e.g. /etc/hosts
  std::string content;
  mode_t mode = 0644;
};

struct RootfsPlan {
  std::string stagingDir;      // an existing empty host directory (mount point)
  std::string templateDir;     // empty = host system dirs
  uint64_t tmpfsBytes = 0;     // size cap of /tmp, /home/sandbox and /dev/shm together
  uid_t uid = 1000;            // the sandbox user, inside the user namespace
  gid_t gid = 1000;
  std::vector<GeneratedFile> files;  // written after the binds (override them)
  // Absolute, canonical host paths never shown (the worker's state dir, DB,
  // key files, CA key). An entry equal to or below one is left out; binding a
  // directory that contains one (e.g. /usr when one is under /usr/local) is
  // refused with kFailedPrecondition rather than exposing it.
  std::vector<std::string> hiddenPaths;
  // stagingDir holds a writable overlay root (image sandbox): used as is,
  // instead of a tmpfs of read-only binds. templateDir is then unused.
  bool overlayRoot = false;
  // Where commands start when the request names no cwd; empty = /home/sandbox.
  std::string workingDir;
};

// Mounts everything under plan.stagingDir, pivots into it and makes / read-only.
Status BuildRootfsAndPivot(const RootfsPlan& plan);

}  // namespace osb::sandbox
