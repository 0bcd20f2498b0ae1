#include "common/secure_memory.h"

#include <openssl/crypto.h>

namespace osb {

void SecureWipe(void* data, size_t size) {
  if (data != nullptr && size > 0) OPENSSL_cleanse(data, size);
}

}  // namespace osb
