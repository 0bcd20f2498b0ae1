#include "crypto/random.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/hex.h"

namespace osb::crypto {

void RandomBytes(std::span<uint8_t> out) {
  if (out.empty()) return;
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    std::fputs("fatal: OpenSSL RAND_bytes failed\n", stderr);
    std::abort();
  }
}

std::string RandomHex(size_t n) {
  std::vector<uint8_t> bytes(n);
  RandomBytes(bytes);
  return HexEncode(bytes);
}

}  // namespace osb::crypto
