#include "cli/context.h"

#include "cli/exit_codes.h"

namespace osb::cli {

Result<ResolvedConfig> Context::Resolve() {
  if (resolved_) return *resolved_;
  FileConfig file;
  std::string label = "(none)";
  auto path = ConfigFilePath(env());
  if (path) {
    label = path->string();
    std::string warning;
    auto loaded = LoadConfigFile(*path, &warning);
    if (!loaded) return loaded.error();
    if (!warning.empty()) Warn(warning);
    file = std::move(*loaded);
  }
  std::optional<std::string> url_flag, key_flag;
  if (!api_url_flag.empty()) url_flag = api_url_flag;
  if (!api_key_flag.empty()) key_flag = api_key_flag;
  std::optional<std::string> ca_flag;
  if (!ca_file_flag.empty()) ca_flag = ca_file_flag;
  auto resolved = ResolveConfig(url_flag, key_flag, env(), file, label, ca_flag);
  if (verbose) {
    err() << "oc: api url " << resolved.api_url << " (from " << resolved.api_url_source << ")\n"
          << "oc: api key " << (resolved.api_key.empty() ? "not set" : "set")
          << " (from " << resolved.api_key_source << ")\n"
          << "oc: ca file " << (resolved.ca_file.empty() ? "system trust store" : resolved.ca_file)
          << " (from " << resolved.ca_file_source << ")\n";
  }
  resolved_ = resolved;
  return resolved;
}

ApiClient* Context::Api(int* exit_code, bool require_key) {
  if (api_) return api_.get();
  auto resolved = Resolve();
  if (!resolved) {
    *exit_code = Fail(resolved.error());
    return nullptr;
  }
  auto url = ParseApiUrl(resolved->api_url);
  if (!url) {
    *exit_code = Usage(url.error().message + " (from " + resolved->api_url_source + ")");
    return nullptr;
  }
  if (require_key && resolved->api_key.empty()) {
    *exit_code = Fail(MakeError(ErrorCode::kUnauthenticated,
                                "no API key: run `oc login`, set OPENSANDBOX_API_KEY or pass --api-key"));
    return nullptr;
  }
  api_ = std::make_unique<ApiClient>(HttpClient(std::move(*url), resolved->ca_file), resolved->api_key,
                                     verbose ? &err() : nullptr);
  api_->set_allow_plain_http_secrets(insecure);
  return api_.get();
}

int Context::Fail(const Error& error) {
  std::string line = error.message;
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  err() << "error: " << line << "\n";
  return ExitCodeFor(error.code);
}

int Context::Usage(const std::string& message) {
  err() << "error: " << message << "\n";
  return kExitUsage;
}

void Context::Warn(const std::string& message) { err() << "warning: " << message << "\n"; }

}  // namespace osb::cli
