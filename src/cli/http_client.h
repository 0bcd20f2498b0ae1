// A small blocking HTTP/1.1 client over Boost.Beast, plain or TLS (OpenSSL).
//
// One connection per request: `oc` makes one or two requests per run, so
// keep-alive would buy nothing. TLS verifies the server certificate against
// OpenSSL's default trust store (which honours SSL_CERT_FILE / SSL_CERT_DIR),
// or only against the PEM CA bundle `ca_file` when one is given, and checks
// the host name or IP address; TLS 1.2 is the minimum. An unreadable CA file
// is kFailedPrecondition naming it.
//
// Errors (never exceptions): kUnavailable for resolve/connect/TLS/timeout
// failures, with a message naming the URL and the cause; kTooLarge when the
// response body exceeds the limit. Any HTTP status is a successful Send —
// mapping statuses to errors is the API client's job.
//
// Thread safety: a HttpClient is immutable after construction; Send may be
// called from several threads (each call has its own io_context).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "cli/api_url.h"
#include "common/result.h"

namespace osb::cli {

struct HttpRequest {
  std::string method;  // "GET", "POST", "PUT", "PATCH", "DELETE"
  std::string target;  // path + query, appended to the base URL's path
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;    // sent with Content-Type: application/json when non-empty
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};  // whole exchange
  // File transfers (oc files / oc cp), streamed with bounded memory:
  // upload_file set: its content is the body (Content-Length, `body` ignored);
  // download_fd >= 0: a 2xx response body is written there as it arrives
  // (HttpResponse::body stays empty; other statuses keep their body).
  std::string upload_file;
  std::string upload_content_type = "application/octet-stream";
  // With upload_file: called as the body goes out (bytes sent, file size).
  std::function<void(uint64_t, uint64_t)> upload_progress;
  int download_fd = -1;
  // With download_fd: called as a 2xx body arrives (bytes written, the
  // Content-Length or 0 when the server streams without one).
  std::function<void(uint64_t, uint64_t)> download_progress;
};

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::string body;
};

class HttpClient {
 public:
  explicit HttpClient(ApiUrl base, std::string ca_file = {})
      : base_(std::move(base)), ca_file_(std::move(ca_file)) {}

  // Responses larger than this are refused (kTooLarge).
  static constexpr size_t kMaxResponseBytes = 64u * 1024u * 1024u;

  Result<HttpResponse> Send(const HttpRequest& request) const;

  const ApiUrl& base() const { return base_; }

 private:
  ApiUrl base_;
  std::string ca_file_;  // empty: the default trust store
};

}  // namespace osb::cli
