// An append-only log file with a size cap. When appending would take the
// file past max_bytes, the file is rotated: PATH.{keep-1} -> PATH.{keep},
// ..., PATH -> PATH.1 (the oldest beyond `keep` is deleted), and a fresh
// PATH is opened (mode 0600). keep == 0: PATH is truncated instead. So the
// disk holds at most (keep + 1) * (max_bytes + one Append) bytes of log.
// max_bytes == 0: no cap. A single Append larger than max_bytes is written
// whole to a fresh file (lines are never split).
// Not thread-safe: one writer (the audit writer thread).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace osb {

class RotatingFile {
 public:
  RotatingFile(std::string path, uint64_t max_bytes, unsigned keep);
  ~RotatingFile();
  RotatingFile(const RotatingFile&) = delete;
  RotatingFile& operator=(const RotatingFile&) = delete;

  bool ok() const { return fd_ >= 0; }
  // Writes all of data (after rotating if needed). false on a write error:
  // the data is lost (the caller counts it) and the next Append tries again.
  bool Append(std::string_view data);
  uint64_t rotations() const { return rotations_; }

 private:
  void Open();
  void Rotate();
  const std::string path_;
  const uint64_t max_bytes_;
  const unsigned keep_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t rotations_ = 0;
};

}  // namespace osb
