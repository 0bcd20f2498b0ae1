// Calls the OpenSandbox REST API (docs/api.md) and turns HTTP outcomes into
// Result values.
//
// Status mapping (ErrorCode, see exit_codes.h for the exit codes):
//   2xx -> the parsed JSON body (null for an empty body, e.g. 204)
//   400, 405, 413, 422 -> kInvalidArgument / kTooLarge
//   401, 403 -> kUnauthenticated      404 -> kNotFound      409 -> kAlreadyExists
//   503 -> kUnavailable               other -> kInternal
// The error message is the server's `{"error": "..."}` text when present,
// else "HTTP <status> <reason>" (bodies of other shapes, e.g. HTML from a
// proxy, are not echoed).
//
// Secret hygiene: request bodies are never logged. `redact` values given to a
// call are replaced by "[redacted]" in any error message, so a server that
// echoes a value back in an error cannot make oc print it.
//
// Transport guard: a request whose JSON body carries a secret value (a
// "value" member anywhere) is refused (kFailedPrecondition, before any
// connection) when the API URL is plain http:// and its host is not a
// loopback address (localhost, 127.0.0.0/8, ::1), unless
// set_allow_plain_http_secrets(true) (`oc --insecure`).
//
// Verbose logging (one line per request: method, URL, status, duration) goes
// to the `verbose` stream when set. The API key is never logged.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <ostream>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/http_client.h"
#include "common/result.h"

namespace osb::cli {

class ApiClient {
 public:
  ApiClient(HttpClient http, std::string api_key, std::ostream* verbose)
      : http_(std::move(http)), api_key_(std::move(api_key)), verbose_(verbose) {}

  struct CallOptions {
    std::chrono::milliseconds timeout{std::chrono::seconds(30)};
    std::vector<std::string> redact;  // strings that must not appear in error messages
    // File transfers (see HttpRequest): the body from this file / a 2xx
    // body written to this fd (the result is then null).
    std::string upload_file;
    int download_fd = -1;
    std::function<void(uint64_t, uint64_t)> upload_progress;    // see HttpRequest
    std::function<void(uint64_t, uint64_t)> download_progress;  // see HttpRequest
  };

  Result<nlohmann::json> Call(std::string_view method, const std::string& path,
                              const nlohmann::json* body, const CallOptions& options);

  void set_allow_plain_http_secrets(bool allow) { allow_plain_http_secrets_ = allow; }

  Result<nlohmann::json> Get(const std::string& path) { return Call("GET", path, nullptr, {}); }
  Result<nlohmann::json> Delete(const std::string& path) { return Call("DELETE", path, nullptr, {}); }
  Result<nlohmann::json> Post(const std::string& path, const nlohmann::json& body) {
    return Call("POST", path, &body, {});
  }
  Result<nlohmann::json> Patch(const std::string& path, const nlohmann::json& body) {
    return Call("PATCH", path, &body, {});
  }

 private:
  HttpClient http_;
  std::string api_key_;
  std::ostream* verbose_;
  bool allow_plain_http_secrets_ = false;
};

// True for "localhost" and loopback IP literals (127.0.0.0/8, ::1,
// ::ffff:127.x.y.z). Names are not resolved.
bool IsLoopbackHost(const std::string& host);

// Exposed for tests: the mapping described above.
Error ErrorFromResponse(int status, std::string_view reason, std::string_view body);

// Replaces every occurrence of each non-empty `needle` in `text` with "[redacted]".
std::string Redact(std::string text, const std::vector<std::string>& needles);

}  // namespace osb::cli
