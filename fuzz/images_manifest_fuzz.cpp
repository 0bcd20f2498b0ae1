// Fuzzes the image documents an import parses before trusting anything:
// index.json, an OCI manifest, docker's manifest.json, the image config,
// the User resolution against /etc/passwd + /etc/group, and archive path
// cleaning. Properties: never crashes; a cleaned path has no "..", no
// leading '/' and cleans to itself; digests that parse are sha256 hex.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "images/image_manifest.h"

using namespace osb::images;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto d = ParseOciIndex(in, "index.json"); d && !ValidateDigest(d->digest, "d")) abort();
  if (auto m = ParseOciManifest(in, "manifest")) {
    if (!ValidateDigest(m->config.digest, "d")) abort();
    for (const auto& l : m->layers)
      if (CompressionFromMediaType(l.mediaType) == Compression::kUnknown) abort();
  }
  if (auto m = ParseDockerManifest(in); m && !ValidateDigest(m->configDigest, "d")) abort();
  if (auto c = ParseImageConfig(in, "config")) {
    for (const auto& e : c->env)
      if (e.find('=') == std::string::npos || e[0] == '=') abort();
    if (!c->workingDir.empty() && c->workingDir[0] != '/') abort();
  }
  // User string | passwd | group, split on the first two 0xff bytes.
  const size_t a = in.find('\xff'), b = a == std::string_view::npos ? a : in.find('\xff', a + 1);
  if (b != std::string_view::npos) {
    auto u = ResolveUser(in.substr(0, a), in.substr(a + 1, b - a - 1), in.substr(b + 1));
    if (u && (u->uid > 65535 || u->gid > 65535)) abort();
  }
  if (auto p = CleanArchivePath(in)) {
    if (!p->empty() && (p->front() == '/' || p->back() == '/')) abort();
    if (p->find("..") != std::string::npos && (*p == ".." || p->starts_with("../") || p->ends_with("/..") ||
                                              p->find("/../") != std::string::npos))
      abort();
    auto again = CleanArchivePath(*p);
    if (!again || *again != *p) abort();
  }
  (void)SniffCompression(in);
  return 0;
}
