// TemplateService: an org's imported image templates (issue 14 item 1).
//
// An upload (POST /api/templates?name=N) is streamed chunk by chunk into a
// temp file in <dir>/tmp (bounded memory; more than max_bytes is kTooLarge
// -> 413 and the file is removed at once), then verified without unpacking
// (images::VerifyImageArchive: manifest, config and layer digests, each
// layer's entries), then kept content-addressed by config digest:
//
//   <dir>/sha256/<config hex>.tar   the tarball as uploaded, 0600 (dir 0700)
//   <dir>/tmp/                      uploads in progress and verify scratch
//
// and recorded in the store (TemplateRow: org, name, digest, size). One
// tarball per digest, shared by every org that imported that image; it is
// removed when the last template naming it is deleted.
//
// Workers fetch a tarball by digest (FetchTemplate over mutual TLS,
// template_fetch.h): allowed only for a digest that a sandbox now being
// created on that worker resolved to (its row is "creating" on that worker
// and its org's template of that name has that digest).
//
// Thread safety: every method may be called concurrently; file moves and
// removals of one service are serialised with the store updates they go with.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/store.h"

namespace osb::controlplane {

inline constexpr uint64_t kDefaultMaxTemplateBytes = 4ull << 30;  // osb server --max-template-bytes

struct TemplateOptions {
  std::string dir;  // <data-dir>/templates
  uint64_t max_bytes = kDefaultMaxTemplateBytes;
};

struct TemplateView {
  std::string name;
  std::string digest;  // the image's config digest, "sha256:<hex>"
  int64_t size_bytes = 0;
  std::string created_at;
};

// The next chunk of an upload; nullopt at its clean end; an error when the
// client went away.
using TemplateChunks = std::function<Result<std::optional<std::string>>()>;

class TemplateService {
 public:
  TemplateService(store::Store& store, TemplateOptions options);

  // "name: ..." (kInvalidArgument) unless [A-Za-z0-9][A-Za-z0-9._-]{0,127}
  // and not "base" (the host-dirs root, always available).
  static Status ValidateName(const std::string& name);

  // Checks that an import may start (valid, unused name; a declared
  // Content-Length within the limit), before a byte of the body is read.
  Status Admit(const std::string& org_id, const std::string& name, std::optional<uint64_t> content_length) const;
  // Reads the upload to its end and imports it. kInvalidArgument naming
  // what is wrong with the image, kTooLarge beyond max_bytes,
  // kAlreadyExists if the name is taken.
  Result<TemplateView> Import(const std::string& org_id, const std::string& name, const TemplateChunks& next);

  Result<std::vector<TemplateView>> List(const std::string& org_id);
  Result<TemplateView> Get(const std::string& org_id, const std::string& name);
  // kConflict while a sandbox of the org that is not ended (creating,
  // running, hibernated, waking) was created from it.
  Status Delete(const std::string& org_id, const std::string& name);

  // For sandbox creation: the digest of the org's template `name`, nullopt
  // when the org has no template of that name ("base", or a name a worker
  // resolves itself).
  Result<std::optional<std::string>> DigestFor(const std::string& org_id, const std::string& name);

  // For a worker's fetch: the stored tarball's path, if `worker_id` is
  // creating a sandbox whose org's template has this digest; else
  // kFailedPrecondition (served as PERMISSION_DENIED; kNotFound if no
  // template has that digest).
  Result<std::string> TarballForWorker(const std::string& worker_id, const std::string& digest);

  const TemplateOptions& options() const { return options_; }

 private:
  std::string TarballPath(const std::string& digest) const;

  store::Store& store_;
  const TemplateOptions options_;
  std::mutex files_mu_;  // tarball renames/unlinks with their row changes
};

}  // namespace osb::controlplane
