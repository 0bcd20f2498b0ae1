// Reading a secret value from a stream for `--from-stdin` / `--api-key-stdin`.
//
// The bytes are taken as-is except that exactly one trailing "\n" is
// removed (what `echo` and most editors add); "\r", spaces and any further
// newline are kept. Empty input (after that strip) is refused, as is input
// larger than `max_bytes`. Errors are kFailedPrecondition (a usage error)
// and never quote the input. The caller owns the returned value and should
// SecureWipe it when done.
#pragma once

#include <cstddef>
#include <istream>
#include <string>

#include "common/result.h"

namespace osb::cli {

inline constexpr size_t kMaxSecretBytes = 64 * 1024;

Result<std::string> ReadSecretFromStream(std::istream& in, size_t max_bytes = kMaxSecretBytes);

}  // namespace osb::cli
