// Parsing of the JSON documents inside an OCI image layout or a `docker save`
// tarball, and of an image config. Pure functions over bytes: no file
// access, no allocation beyond the input's size times a small constant, no
// exceptions. Fuzzed by fuzz/images_manifest_fuzz.cpp.
//
// Accepted inputs:
//   OCI layout  index.json (an image index) -> one image manifest (the first
//               linux/amd64 one, else the first one; a nested index is
//               followed once) -> config + layers, each a descriptor
//               {mediaType, digest "sha256:<64 hex>", size}.
//   docker save manifest.json = [{"Config": "<path>", "Layers": ["<path>"...],
//               "RepoTags": [...]}]; only the first image is imported. The
//               config's digest is the hex in its file name; layers are
//               checked against the config's rootfs.diff_ids.
//
// Errors: kInvalidArgument with a message naming the document and field
// ("index.json: manifests[0].digest: ..."). Messages never quote more than
// 64 bytes of input, with hostile bytes shown as '?'.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace osb::images {

inline constexpr size_t kMaxJsonBytes = 4 << 20;   // any one JSON document
inline constexpr size_t kMaxLayers = 256;

struct Descriptor {
  std::string mediaType;
  std::string digest;  // "sha256:<64 lowercase hex>"
  uint64_t size = 0;
  // For the index: the platform, when present ("linux/amd64").
  std::string platform;
};

struct OciManifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct DockerManifest {
  std::string configPath;           // path inside the tarball
  std::string configDigest;         // "sha256:<hex>" from the file name
  std::vector<std::string> layerPaths;
};

// What a sandbox gets from the image config (config.Env, WorkingDir, User).
struct ImageConfig {
  std::vector<std::string> env;     // "NAME=value" entries, in order
  std::string workingDir;           // absolute or empty
  std::string user;                 // "", "name", "uid", "name:group", "uid:gid"
  std::vector<std::string> diffIds; // rootfs.diff_ids: sha256 of each uncompressed layer
};

// "sha256:" + 64 lowercase hex. Other algorithms are refused by name.
Status ValidateDigest(std::string_view digest, const std::string& field);

// index.json (or a nested index blob): the manifest descriptor to use.
// `nested` is set when the chosen entry is itself an index.
Result<Descriptor> ParseOciIndex(std::string_view json, const std::string& doc);
bool IsIndexMediaType(std::string_view mediaType);

Result<OciManifest> ParseOciManifest(std::string_view json, const std::string& doc);
Result<DockerManifest> ParseDockerManifest(std::string_view json);
Result<ImageConfig> ParseImageConfig(std::string_view json, const std::string& doc);

// Layer compression, from the media type (OCI) or the first bytes.
enum class Compression { kNone, kGzip, kZstd, kUnknown };
Compression CompressionFromMediaType(std::string_view mediaType);
Compression SniffCompression(std::string_view head);

// Resolves an image's User against its /etc/passwd and /etc/group text.
// "" = 0:0. A numeric uid without a group takes the passwd entry's gid if
// there is one, else 0. Ids above 65535 are refused (the sandbox's user
// namespace maps 0..65535). kInvalidArgument naming "User" otherwise.
struct UserIds {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;  // from passwd, empty if none
};
Result<UserIds> ResolveUser(std::string_view user, std::string_view passwd, std::string_view group);

// A path inside a tarball or layer, cleaned: no leading "./" or "/", no
// empty or "." components. nullopt for ".." anywhere, an absolute path, a
// NUL, or more than 4096 bytes. "" means the root itself.
std::optional<std::string> CleanArchivePath(std::string_view path);

// Printable, bounded excerpt of untrusted text for error messages.
std::string Excerpt(std::string_view s);

}  // namespace osb::images
