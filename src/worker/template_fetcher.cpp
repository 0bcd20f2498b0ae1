#include "worker/template_fetcher.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>

#include "images/image_manifest.h"

namespace osb::worker {

struct TemplateFetcher::Flight {
  std::condition_variable cv;
  bool done = false;
  Status result;
};

int TemplateFetcher::fetches() const {
  std::lock_guard lock(mu_);
  return fetches_;
}

Status TemplateFetcher::Ensure(const std::string& digest) {
  if (auto st = images::ValidateDigest(digest, "template_digest"); !st) return st;
  if (store_.Find(digest)) return {};
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::unique_lock lock(mu_);
    auto& slot = flights_[digest];
    if (!slot) {
      slot = std::make_shared<Flight>();
      leader = true;
      ++fetches_;
    }
    flight = slot;
    if (!leader) {
      flight->cv.wait(lock, [&] { return flight->done; });
      return flight->result;
    }
  }
  Status result = store_.Find(digest) ? Status{} : FetchAndImport(digest);
  {
    std::lock_guard lock(mu_);
    flight->done = true;
    flight->result = result;
    flights_.erase(digest);
  }
  flight->cv.notify_all();
  return result;
}

Status TemplateFetcher::FetchAndImport(const std::string& digest) {
  if (!source_) return MakeError(ErrorCode::kFailedPrecondition, "template_digest: image " + digest +
                                                                     " is not on this worker and it cannot fetch images");
  for (const auto& d : {store_.dir(), store_.dir() + "/tmp"})
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST)
      return MakeError(ErrorCode::kInternal, "mkdir " + d + ": " + std::strerror(errno));
  std::string tmp = store_.dir() + "/tmp/fetch-XXXXXX";
  const int fd = mkstemp(tmp.data());
  if (fd < 0) return MakeError(ErrorCode::kInternal, "create " + tmp + ": " + std::strerror(errno));
  struct Temp {
    std::string path;
    int fd;
    ~Temp() {
      close(fd);
      unlink(path.c_str());
    }
  } temp{tmp, fd};
  const auto started = std::chrono::steady_clock::now();
  auto size = source_(digest, fd);
  if (!size) return MakeError(size.error().code, "template_digest: fetching " + digest + " from the control plane: " +
                                                     size.error().message);
  if (fsync(fd) != 0) return MakeError(ErrorCode::kInternal, "fsync " + tmp + ": " + std::strerror(errno));
  auto image = store_.Import(tmp, limits_);
  if (!image) return MakeError(image.error().code, "template_digest: image " + digest + " from the control plane: " +
                                                       image.error().message);
  if (image->configDigest != digest) {
    (void)store_.Remove(image->configDigest);
    return MakeError(ErrorCode::kInvalidArgument, "template_digest: the control plane sent image " +
                                                      image->configDigest + " for " + digest);
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("image {} fetched from the control plane and imported ({} bytes, {} ms)", digest, *size, ms);
  return {};
}

}  // namespace osb::worker
