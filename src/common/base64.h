// Standard base64 (RFC 4648 section 4, with padding): encoding and strict
// decoding. Decoding never reveals its input (it may be key material).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace osb {

std::string Base64Encode(std::string_view bytes);
// nullopt unless `text` is canonical padded base64 (no whitespace).
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace osb
