// Lower-case hexadecimal encoding and strict decoding.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace osb {

std::string HexEncode(std::span<const uint8_t> bytes);

// 0-15 for a hex digit (either case), -1 otherwise.
int HexDigitValue(char c);

// Decodes hex (either case). Returns nullopt on odd length or any non-hex
// character; never reveals the input (callers may be decoding key material).
std::optional<std::vector<uint8_t>> HexDecode(std::string_view hex);

}  // namespace osb
