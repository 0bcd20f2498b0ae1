// The worker's file data port header (src/proto/file_data_wire.h): any
// bytes decode to a header, a request for more, or a clear error - never
// a crash or an over-read; a decoded header encodes back to the same bytes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proto/file_data_wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view wire(reinterpret_cast<const char*>(data), size);
  size_t need = 0;
  auto h = osb::proto::filedata::DecodeHeader(wire, &need);
  if (h) {
    if (osb::proto::filedata::EncodeHeader(*h) != wire) std::abort();
  } else if (need != 0 && need <= size) {
    std::abort();  // "read more" must ask for more than it has
  }
  return 0;
}
