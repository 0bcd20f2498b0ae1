#include "common/rotating_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace osb {

RotatingFile::RotatingFile(std::string path, uint64_t max_bytes, unsigned keep)
    : path_(std::move(path)), max_bytes_(max_bytes), keep_(keep) {
  Open();
}

RotatingFile::~RotatingFile() {
  if (fd_ >= 0) ::close(fd_);
}

void RotatingFile::Open() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  size_ = 0;
  struct stat st {};
  if (fd_ >= 0 && ::fstat(fd_, &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
}

void RotatingFile::Rotate() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (keep_ == 0) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_ = 0;
  } else {
    const std::string oldest = path_ + "." + std::to_string(keep_);
    ::unlink(oldest.c_str());
    for (unsigned i = keep_; i > 1; --i) {
      const std::string from = path_ + "." + std::to_string(i - 1);
      const std::string to = path_ + "." + std::to_string(i);
      std::rename(from.c_str(), to.c_str());  // a missing file is fine
    }
    std::rename(path_.c_str(), (path_ + ".1").c_str());
    Open();
  }
  ++rotations_;
}

bool RotatingFile::Append(std::string_view data) {
  if (max_bytes_ > 0 && size_ > 0 && size_ + data.size() > max_bytes_) Rotate();
  if (fd_ < 0) Open();
  if (fd_ < 0) return false;
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
    size_ += static_cast<uint64_t>(n);
  }
  return true;
}

}  // namespace osb
