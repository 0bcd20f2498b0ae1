// Fuzzes Keyring::Decrypt with arbitrary ciphertexts: it must return an error
// (never crash, never succeed on garbage) for anything it did not produce.
// Also mutates a genuine ciphertext so the fuzzer reaches the GCM path.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "crypto/keyring.h"

namespace {
const osb::crypto::Keyring& Ring() {
  static const auto ring = osb::crypto::Keyring::FromHex(std::string(64, 'a'));
  return ring.value();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto r = Ring().Decrypt(input, "org/group/NAME");
  // Only a genuine ciphertext authenticates; random input must not.
  if (r.ok()) {
    auto again = Ring().Decrypt(input, "org/group/OTHER");
    if (again.ok()) std::abort();  // associated data was ignored
  }
  (void)osb::crypto::Keyring::KeyIdOf(input);
  return 0;
}
