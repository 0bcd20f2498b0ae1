// Wiping buffers that held secret material. Uses OPENSSL_cleanse so the
// compiler cannot elide the write.
#pragma once

#include <string>
#include <vector>
#include <cstdint>

namespace osb {

void SecureWipe(void* data, size_t size);
inline void SecureWipe(std::string& s) { SecureWipe(s.data(), s.size()); s.clear(); }
inline void SecureWipe(std::vector<uint8_t>& v) { SecureWipe(v.data(), v.size()); v.clear(); }

}  // namespace osb
