// Cryptographically secure randomness (OpenSSL's DRBG). Aborts the process if
// the CSPRNG fails: continuing with weak randomness is never acceptable.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace osb::crypto {

void RandomBytes(std::span<uint8_t> out);

// n random bytes, hex-encoded (2n lower-case characters).
std::string RandomHex(size_t n);

}  // namespace osb::crypto
