// Fuzzes the checkpoint archive decoder (src/sandbox/state_archive.h): any
// byte string is accepted or refused with an error, never a crash; every
// entry handed to the sink has a valid relative path, a mode without
// setuid/setgid, inside ids, and extents in order within the file's size;
// whiteouts and opaque dirs only in the overlay upper dir's root.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "sandbox/state_archive.h"

using namespace osb::sandbox;

namespace {

class CheckingSink final : public ArchiveSink {
 public:
  osb::Status Begin(const ArchiveEntry& e) override {
    const std::string p = "/" + e.path + "/";
    if (e.path.empty() || p.find("//") != std::string::npos || p.find("/../") != std::string::npos ||
        p.find("/./") != std::string::npos || e.path.find('\0') != std::string::npos)
      std::abort();
    if ((e.mode & ~01777u) != 0 || e.uid >= 65536 || e.gid >= 65536) std::abort();
    if (e.root > kUpperRoot || ((e.type == 'W' || e.type == 'O') && e.root != kUpperRoot)) std::abort();
    size_ = e.size;
    next_ = 0;
    return {};
  }
  osb::Status Data(uint64_t offset, std::string_view bytes) override {
    if (offset < next_ || offset + bytes.size() > size_) std::abort();
    next_ = offset + bytes.size();
    return {};
  }
  osb::Status End() override { return {}; }

 private:
  uint64_t size_ = 0, next_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  size_t pos = 0;
  CheckingSink sink;
  (void)DecodeStateArchive(
      [&](void* out, size_t n) -> ssize_t {
        const size_t take = std::min(n, size - pos);
        std::memcpy(out, data + pos, take);
        pos += take;
        return static_cast<ssize_t>(take);
      },
      sink, {1 << 20, 1000, 1 << 20});
  return 0;
}
