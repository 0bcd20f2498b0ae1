#include "sandbox/id_registry.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace osb::sandbox {
namespace {

constexpr uint32_t kRangeSize = 65536;

// Holds an exclusive flock on the registry dir for its lifetime.
class DirLock {
 public:
  explicit DirLock(const std::string& dir) {
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return;
    fd_ = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ >= 0 && flock(fd_, LOCK_EX) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~DirLock() {
    if (fd_ >= 0) close(fd_);  // releases the lock
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

std::string ReadOwner(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return "";
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

bool WriteOwner(const std::string& path, const std::string& owner) {
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return false;
  bool ok = write(fd, owner.data(), owner.size()) == static_cast<ssize_t>(owner.size());
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

// Free: no file, an empty one, or an owner whose run dir is gone.
bool IsFree(const std::string& path, const std::string& owner) {
  const std::string current = ReadOwner(path);
  if (current.empty() || current == owner) return true;
  struct stat st {};
  return current.front() == '/' && lstat(current.c_str(), &st) != 0 && errno == ENOENT;
}

}  // namespace

Result<uint32_t> IdRegistry::Claim(const std::string& owner) const {
  DirLock lock(dir_);
  if (!lock.ok()) return MakeError(ErrorCode::kInternal, "uid registry " + dir_ + ": " + std::strerror(errno));
  for (uint32_t n = 0; n < count_; ++n) {
    const uint32_t base = first_ + n * kRangeSize;
    const std::string path = dir_ + "/" + std::to_string(base);
    if (!IsFree(path, owner)) continue;
    if (!WriteOwner(path, owner))
      return MakeError(ErrorCode::kInternal, "uid registry: cannot write " + path + ": " + std::strerror(errno));
    return base;
  }
  return MakeError(ErrorCode::kUnavailable, "no free host uid range (idRangeCount sandboxes are running)");
}

bool IdRegistry::ClaimExact(uint32_t base, const std::string& owner) const {
  if (base < first_ || (base - first_) % kRangeSize != 0 || (base - first_) / kRangeSize >= count_) return false;
  DirLock lock(dir_);
  const std::string path = dir_ + "/" + std::to_string(base);
  return lock.ok() && IsFree(path, owner) && WriteOwner(path, owner);
}

void IdRegistry::Release(uint32_t base, const std::string& owner) const {
  DirLock lock(dir_);
  const std::string path = dir_ + "/" + std::to_string(base);
  if (lock.ok() && ReadOwner(path) == owner) unlink(path.c_str());
}

}  // namespace osb::sandbox
