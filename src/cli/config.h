// Client configuration for `oc`: where the API is and which key to send.
//
// Sources, highest precedence first (documented in docs/cli.md):
//   1. flags   --api-url, --api-key, --ca-file
//   2. env     OPENSANDBOX_API_URL, OPENSANDBOX_API_KEY, OSB_CA_FILE
//   3. file    $XDG_CONFIG_HOME/opensandbox/config, else
//              $HOME/.config/opensandbox/config
//              JSON {"apiUrl": "...", "apiKey": "...", "caFile": "..."}, mode 0600
//   4. default apiUrl http://127.0.0.1:8080 (no default key)
// Each field is resolved on its own: a flag URL and a file key combine.
//
// The same file is written by `oc login` and by `osb dev`
// (WriteConfigFile); other components may call it. Not thread-safe with
// respect to concurrent writers of the same file (last rename wins).
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"

namespace osb::cli {

inline constexpr char kDefaultApiUrl[] = "http://127.0.0.1:8080";

// Looks up an environment variable; std::nullopt when unset. Injected so
// tests do not have to mutate the process environment.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
EnvLookup ProcessEnv();

struct FileConfig {
  std::optional<std::string> api_url;
  std::optional<std::string> api_key;
  std::optional<std::string> ca_file;  // PEM CA bundle for an https:// API URL
};

struct ResolvedConfig {
  std::string api_url;
  std::string api_key;            // may be empty: no key anywhere
  std::string api_url_source;     // "flag", "env", "file <path>", "default"
  std::string api_key_source;     // "flag", "env", "file <path>", "none"
  std::string ca_file;            // empty: the system trust store
  std::string ca_file_source;     // "flag", "env", "file <path>", "none"
};

// $XDG_CONFIG_HOME/opensandbox/config, else $HOME/.config/opensandbox/config.
// Error (kFailedPrecondition) when neither variable is set.
Result<std::filesystem::path> ConfigFilePath(const EnvLookup& env);

// A missing file is an empty FileConfig, not an error. Unreadable file or
// invalid JSON / wrong field types -> kFailedPrecondition naming the file.
// `warning` receives a note when the file is readable by group or others.
Result<FileConfig> LoadConfigFile(const std::filesystem::path& path, std::string* warning);

// Creates the parent directory (0700) if needed and atomically replaces the
// file with mode 0600 (written to a temporary file in the same directory,
// fsync'd, renamed). Fields that are nullopt are omitted.
Status WriteConfigFile(const std::filesystem::path& path, const FileConfig& config);

// Applies the precedence rules above. Empty flag/env values count as unset.
ResolvedConfig ResolveConfig(const std::optional<std::string>& flag_url,
                             const std::optional<std::string>& flag_key, const EnvLookup& env,
                             const FileConfig& file, const std::string& file_label,
                             const std::optional<std::string>& flag_ca_file = std::nullopt);

}  // namespace osb::cli
