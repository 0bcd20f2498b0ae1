#include "common/port.h"

namespace osb {

bool ParsePort(std::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5 || text[0] == '0') return false;
  uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

}  // namespace osb
