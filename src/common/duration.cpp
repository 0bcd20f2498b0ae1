#include "common/duration.h"

#include <climits>

namespace osb {

Result<int> ParseDurationSeconds(std::string_view field, std::string_view text) {
  auto bad = [&] {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(field) + ": expected seconds or a number with s, m, h or d (e.g. 24h)");
  };
  if (text.empty()) return bad();
  long long unit = 1;
  switch (text.back()) {
    case 's': unit = 1; text.remove_suffix(1); break;
    case 'm': unit = 60; text.remove_suffix(1); break;
    case 'h': unit = 3600; text.remove_suffix(1); break;
    case 'd': unit = 86400; text.remove_suffix(1); break;
    default: break;
  }
  if (text.empty() || text.size() > 9) return bad();
  long long n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return bad();
    n = n * 10 + (c - '0');
  }
  if (n <= 0 || n * unit > INT_MAX) return bad();
  return static_cast<int>(n * unit);
}

}  // namespace osb
