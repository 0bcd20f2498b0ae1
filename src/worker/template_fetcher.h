// TemplateFetcher: gets an image the worker was asked to run (a create's
// template_digest) from the control plane when its image store does not
// have it: streams the tarball (ControlPlaneTemplates.FetchTemplate, the
// same mutual-TLS channel as registration) into <images>/tmp, imports it
// with images::ImageStore::Import — which verifies every digest again: the
// worker never trusts the control plane's bytes — and checks that the
// stored image is the digest it asked for. The image then stays cached in
// the store (content-addressed) for later creates.
//
// Concurrent Ensure calls for one digest share one fetch and import; other
// digests proceed in parallel. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/result.h"
#include "images/image_store.h"

namespace osb::worker {

// Streams the tarball of `digest` into the open file `fd`; returns its size.
// (gRPC in production, MakeGrpcTemplateSource; anything in tests.)
using TemplateSource = std::function<Result<int64_t>(const std::string& digest, int fd)>;

class TemplateFetcher {
 public:
  TemplateFetcher(std::string images_dir, TemplateSource source, images::ImportLimits limits = {})
      : store_(std::move(images_dir)), source_(std::move(source)), limits_(limits) {}

  // OK when the image is in the store (already, or after one fetch+import).
  Status Ensure(const std::string& digest);
  // How many fetches ran (tests: concurrent creates fetch once).
  int fetches() const;

 private:
  struct Flight;
  Status FetchAndImport(const std::string& digest);

  images::ImageStore store_;
  TemplateSource source_;
  images::ImportLimits limits_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Flight>> flights_;
  int fetches_ = 0;
};

}  // namespace osb::worker
