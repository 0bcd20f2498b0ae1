// Sandbox metadata (issue 15 item 6): an optional map of strings the caller
// sets at create and gets back everywhere a sandbox is shown. Limits, each
// a 400 naming the field: at most 64 keys; a key is 1-64 bytes of
// [A-Za-z0-9._-]; a value at most 512 bytes of valid UTF-8; keys + values
// at most 16 KiB in all.
#pragma once

#include <map>
#include <string>

#include "common/result.h"

namespace osb::controlplane {

inline constexpr size_t kMaxMetadataKeys = 64;
inline constexpr size_t kMaxMetadataKeyBytes = 64;
inline constexpr size_t kMaxMetadataValueBytes = 512;
inline constexpr size_t kMaxMetadataTotalBytes = 16 * 1024;

Status ValidateSandboxMetadata(const std::map<std::string, std::string>& metadata);

}  // namespace osb::controlplane
