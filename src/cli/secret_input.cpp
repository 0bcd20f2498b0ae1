#include "cli/secret_input.h"

#include "common/secure_memory.h"

namespace osb::cli {

Result<std::string> ReadSecretFromStream(std::istream& in, size_t max_bytes) {
  std::string value;
  char buffer[4096];
  // Read one byte past the limit (plus the strippable newline) to detect
  // oversize input without buffering all of it.
  const size_t cap = max_bytes + 2;
  while (value.size() < cap && in) {
    in.read(buffer, static_cast<std::streamsize>(std::min(sizeof(buffer), cap - value.size())));
    value.append(buffer, static_cast<size_t>(in.gcount()));
  }
  SecureWipe(buffer, sizeof(buffer));
  if (in.bad()) {
    SecureWipe(value);
    return MakeError(ErrorCode::kFailedPrecondition, "cannot read the value from standard input");
  }
  if (!value.empty() && value.back() == '\n') value.pop_back();
  if (value.empty()) {
    return MakeError(ErrorCode::kFailedPrecondition, "the value read from standard input is empty");
  }
  if (value.size() > max_bytes) {
    SecureWipe(value);
    return MakeError(ErrorCode::kFailedPrecondition,
                     "the value read from standard input is larger than " +
                         std::to_string(max_bytes) + " bytes");
  }
  return value;
}

}  // namespace osb::cli
