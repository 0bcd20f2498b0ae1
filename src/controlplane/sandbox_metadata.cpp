#include "controlplane/sandbox_metadata.h"

namespace osb::controlplane {
namespace {

bool KeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

bool ValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += n;
  }
  return true;
}

}  // namespace

Status ValidateSandboxMetadata(const std::map<std::string, std::string>& metadata) {
  if (metadata.size() > kMaxMetadataKeys)
    return MakeError(ErrorCode::kInvalidArgument, "metadata: at most 64 keys");
  size_t total = 0;
  for (const auto& [k, v] : metadata) {
    if (k.empty() || k.size() > kMaxMetadataKeyBytes)
      return MakeError(ErrorCode::kInvalidArgument, "metadata: keys must be 1-64 bytes");
    for (char c : k) {
      if (!KeyChar(c))
        return MakeError(ErrorCode::kInvalidArgument, "metadata: key '" + k + "' may only use [A-Za-z0-9._-]");
    }
    if (v.size() > kMaxMetadataValueBytes)
      return MakeError(ErrorCode::kInvalidArgument, "metadata." + k + ": value longer than 512 bytes");
    if (!ValidUtf8(v)) return MakeError(ErrorCode::kInvalidArgument, "metadata." + k + ": value is not valid UTF-8");
    total += k.size() + v.size();
  }
  if (total > kMaxMetadataTotalBytes)
    return MakeError(ErrorCode::kInvalidArgument, "metadata: keys and values exceed 16 KiB in all");
  return {};
}

}  // namespace osb::controlplane
