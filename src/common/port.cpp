#include "common/port.h"

namespace osb {

namespace {

// 1 to 5 decimal digits, nothing else; the value, whatever it is.
bool Digits(std::string_view text, uint32_t* value) {
  if (text.empty() || text.size() > 5) return false;
  uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  *value = v;
  return true;
}

}  // namespace

bool ParsePort(std::string_view text, uint16_t* port) {
  uint32_t v = 0;
  if (!Digits(text, &v) || text[0] == '0' || v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

bool ParsePortFlag(std::string_view text, uint16_t* port, PortFlagSyntax syntax) {
  uint32_t v = 0;
  if (!Digits(text, &v) || v > 65535 || (v == 0 && !syntax.allow_zero)) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

}  // namespace osb
