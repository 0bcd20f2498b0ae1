// ImageStore: imports OCI images from an OCI image layout (a directory, or
// a tarball of one: `podman save --format oci-archive`, `skopeo copy ...
// oci-archive:`) or a `docker save` tarball, and keeps each extracted root
// filesystem content-addressed by its config digest:
//
//   <dir>/sha256/<config hex>/rootfs       the layers applied in order
//   <dir>/sha256/<config hex>/config.json  the image config, verified
//   <dir>/tmp/                             scratch, removed after each import
//
// Import verifies every digest before it trusts a byte: the manifest
// (against index.json), the config and each layer blob (against the
// manifest), and each layer's uncompressed stream against the config's
// rootfs.diff_ids (for docker save, whose config name is its digest, these
// are the layer checks). Layers are applied by ApplyLayer (layer_applier.h:
// no entry can write outside the rootfs). The store is root-only (0700) and
// never written after an import completes: sandboxes see a rootfs only as
// the read-only lower layer of their overlay.
//
// Thread safety: concurrent imports of the same image are safe (each builds
// in its own scratch dir; the first rename wins, the others find it).
//
// Errors: kInvalidArgument naming the document/blob/entry at fault (a
// digest mismatch names the blob), kTooLarge for a limit, kNotFound for an
// unknown digest, kInternal for a host failure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "images/image_manifest.h"

namespace osb::images {

struct ImportLimits {
  uint64_t maxArchiveBytes = 8ull << 30;   // the tarball's own (decompressed) bytes
  uint64_t maxUnpackedBytes = 8ull << 30;  // file data of the rootfs
  uint64_t maxEntries = 1'000'000;         // entries of all layers together
};

struct StoredImage {
  std::string configDigest;  // "sha256:<hex>": the image's identity
  std::string dir;           // <store>/sha256/<hex>
  std::string rootfs;        // <dir>/rootfs
  ImageConfig config;
};

// What a sandbox created from an image runs with: the config's Env, its
// WorkingDir and its User resolved against the image's own /etc/passwd and
// /etc/group (read beneath the rootfs, never through a symlink; a missing
// file counts as empty). kInvalidArgument naming "User" if unresolvable.
struct RunConfig {
  std::vector<std::pair<std::string, std::string>> env;  // in config order
  std::string workingDir;                                // "" = runtime default
  uint32_t uid = 0;
  uint32_t gid = 0;
};
Result<RunConfig> ResolveRunConfig(const StoredImage& image);

// What VerifyImageArchive found: the image's identity and config.
struct VerifiedImage {
  std::string configDigest;
  ImageConfig config;
  size_t layers = 0;
};

// Verifies the tarball at `path` the way Import does — the manifest, config
// and layer blobs against their descriptors, each layer's uncompressed
// stream against rootfs.diff_ids — without unpacking it: each layer's
// entries are checked by ScanLayer (layer_applier.h). Blobs are staged in a
// fresh directory under `scratchDir` (made 0700 if missing), removed before
// it returns. The control plane's check of an uploaded template; the worker
// still imports (and so verifies again) what it fetches. Errors as Import.
Result<VerifiedImage> VerifyImageArchive(const std::string& path, const std::string& scratchDir,
                                         const ImportLimits& limits = {});

class ImageStore {
 public:
  explicit ImageStore(std::string dir) : dir_(std::move(dir)) {}

  // Imports `path` (a tarball, optionally gzip-compressed, or an OCI layout
  // directory). Returns the stored image (already present: no work).
  Result<StoredImage> Import(const std::string& path, const ImportLimits& limits = {}) const;

  // The stored image with this config digest, or kNotFound.
  Result<StoredImage> Find(const std::string& configDigest) const;

  // Removes a stored image (its rootfs must not be in use). ENOENT is ok.
  Status Remove(const std::string& configDigest) const;

  // Names (templates): <dir>/names/<name> holds a config digest. Names are
  // [A-Za-z0-9][A-Za-z0-9._-]{0,127} (kInvalidArgument naming "name");
  // "base" is reserved (the host-dirs root).
  Status Tag(const std::string& name, const std::string& configDigest) const;
  Result<std::string> Resolve(const std::string& name) const;  // kNotFound if untagged
  Status Untag(const std::string& name) const;                  // ok if absent
  struct Named {
    std::string name;
    std::string configDigest;
  };
  std::vector<Named> ListNames() const;

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace osb::images
