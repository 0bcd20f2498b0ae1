#include "cli/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/secure_memory.h"

namespace osb::cli {

namespace fs = std::filesystem;

EnvLookup ProcessEnv() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<fs::path> ConfigFilePath(const EnvLookup& env) {
  if (auto xdg = env("XDG_CONFIG_HOME"); xdg && !xdg->empty()) {
    return fs::path(*xdg) / "opensandbox" / "config";
  }
  if (auto home = env("HOME"); home && !home->empty()) {
    return fs::path(*home) / ".config" / "opensandbox" / "config";
  }
  return MakeError(ErrorCode::kFailedPrecondition,
                   "cannot locate the config file: neither XDG_CONFIG_HOME nor HOME is set");
}

Result<FileConfig> LoadConfigFile(const fs::path& path, std::string* warning) {
  FileConfig out;
  std::error_code ec;
  if (!fs::exists(path, ec)) return out;

  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "cannot read config file " + path.string() + ": " + std::strerror(errno));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();

  struct stat st {};
  if (warning != nullptr && ::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    *warning = "config file " + path.string() +
               " is readable by other users; it holds an API key (chmod 600 it)";
  }

  // The parse error message could quote file content (the key), so it is
  // not passed on.
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  SecureWipe(text);
  if (doc.is_discarded() || !doc.is_object()) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "config file " + path.string() + " is not a JSON object");
  }
  for (const auto& [field, target] : {std::pair{"apiUrl", &out.api_url}, std::pair{"apiKey", &out.api_key},
                                 std::pair{"caFile", &out.ca_file}}) {
    auto it = doc.find(field);
    if (it == doc.end() || it->is_null()) continue;
    if (!it->is_string()) {
      return MakeError(ErrorCode::kFailedPrecondition,
                       "config file " + path.string() + ": field '" + field + "' must be a string");
    }
    *target = it->get<std::string>();
  }
  return out;
}

Status WriteConfigFile(const fs::path& path, const FileConfig& config) {
  std::error_code ec;
  fs::path dir = path.parent_path();
  if (!dir.empty() && !fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) {
      return MakeError(ErrorCode::kInternal,
                       "cannot create directory " + dir.string() + ": " + ec.message());
    }
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  }
  nlohmann::json doc = nlohmann::json::object();
  if (config.api_url) doc["apiUrl"] = *config.api_url;
  if (config.api_key) doc["apiKey"] = *config.api_key;
  if (config.ca_file) doc["caFile"] = *config.ca_file;
  std::string text = doc.dump(2) + "\n";

  std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    SecureWipe(text);
    return MakeError(ErrorCode::kInternal, "cannot write " + tmp + ": " + std::strerror(errno));
  }
  ::fchmod(fd, 0600);  // in case umask or an old file got in the way
  size_t done = 0;
  bool ok = true;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { ok = false; break; }
    done += static_cast<size_t>(n);
  }
  SecureWipe(text);
  int saved_errno = errno;
  if (ok && ::fsync(fd) != 0) { ok = false; saved_errno = errno; }
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) saved_errno = errno;
    ::unlink(tmp.c_str());
    return MakeError(ErrorCode::kInternal,
                     "cannot write config file " + path.string() + ": " + std::strerror(saved_errno));
  }
  return {};
}

ResolvedConfig ResolveConfig(const std::optional<std::string>& flag_url,
                             const std::optional<std::string>& flag_key, const EnvLookup& env,
                             const FileConfig& file, const std::string& file_label,
                             const std::optional<std::string>& flag_ca_file) {
  ResolvedConfig out;
  auto present = [](const std::optional<std::string>& v) { return v && !v->empty(); };

  auto env_url = env("OPENSANDBOX_API_URL");
  if (present(flag_url)) {
    out.api_url = *flag_url, out.api_url_source = "flag --api-url";
  } else if (present(env_url)) {
    out.api_url = *env_url, out.api_url_source = "env OPENSANDBOX_API_URL";
  } else if (present(file.api_url)) {
    out.api_url = *file.api_url, out.api_url_source = "file " + file_label;
  } else {
    out.api_url = kDefaultApiUrl, out.api_url_source = "default";
  }

  auto env_key = env("OPENSANDBOX_API_KEY");
  if (present(flag_key)) {
    out.api_key = *flag_key, out.api_key_source = "flag --api-key";
  } else if (present(env_key)) {
    out.api_key = *env_key, out.api_key_source = "env OPENSANDBOX_API_KEY";
  } else if (present(file.api_key)) {
    out.api_key = *file.api_key, out.api_key_source = "file " + file_label;
  } else {
    out.api_key_source = "none";
  }
  auto env_ca = env("OSB_CA_FILE");
  if (present(flag_ca_file)) {
    out.ca_file = *flag_ca_file, out.ca_file_source = "flag --ca-file";
  } else if (present(env_ca)) {
    out.ca_file = *env_ca, out.ca_file_source = "env OSB_CA_FILE";
  } else if (present(file.ca_file)) {
    out.ca_file = *file.ca_file, out.ca_file_source = "file " + file_label;
  } else {
    out.ca_file_source = "none";
  }
  return out;
}

}  // namespace osb::cli
