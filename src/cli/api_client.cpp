#include "cli/api_client.h"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/address_v4.hpp>

#include "common/secure_memory.h"

namespace osb::cli {

std::string Redact(std::string text, const std::vector<std::string>& needles) {
  for (const auto& needle : needles) {
    if (needle.empty()) continue;
    for (size_t pos = text.find(needle); pos != std::string::npos;
         pos = text.find(needle, pos + 10)) {
      text.replace(pos, needle.size(), "[redacted]");
    }
  }
  return text;
}

Error ErrorFromResponse(int status, std::string_view reason, std::string_view body) {
  std::string message;
  auto doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded() && doc.is_object() && doc.contains("error") && doc["error"].is_string()) {
    message = doc["error"].get<std::string>();
  }
  // One line: a multi-line server message would break `error: ...` parsing.
  for (char& c : message) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (message.empty()) {
    message = "HTTP " + std::to_string(status) + (reason.empty() ? "" : " " + std::string(reason));
  }
  ErrorCode code = ErrorCode::kInternal;
  switch (status) {
    case 400: case 405: case 422: code = ErrorCode::kInvalidArgument; break;
    case 413: code = ErrorCode::kTooLarge; break;
    case 401: case 403: code = ErrorCode::kUnauthenticated; break;
    case 404: code = ErrorCode::kNotFound; break;
    case 409: code = ErrorCode::kAlreadyExists; break;
    case 503: code = ErrorCode::kUnavailable; break;
    default: break;
  }
  if (code == ErrorCode::kInternal && status >= 400 && status < 500) code = ErrorCode::kInvalidArgument;
  return MakeError(code, std::move(message));
}

// Removes any "value" member, recursively: no API response carries one, so
// a server bug must not become a leak through oc's output. Done here, once,
// for every response and every verb.
static void ScrubValues(nlohmann::json& doc) {
  if (doc.is_object()) {
    doc.erase("value");
    for (auto& [key, member] : doc.items()) ScrubValues(member);
  } else if (doc.is_array()) {
    for (auto& item : doc) ScrubValues(item);
  }
}

// Whether a request body carries a secret value: any "value" member.
static bool CarriesValue(const nlohmann::json& doc) {
  if (doc.is_object()) {
    if (doc.contains("value")) return true;
    for (const auto& [key, member] : doc.items()) {
      if (CarriesValue(member)) return true;
    }
  } else if (doc.is_array()) {
    for (const auto& item : doc) {
      if (CarriesValue(item)) return true;
    }
  }
  return false;
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(host, ec);
  if (ec) return false;
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, addr.to_v6()).is_loopback();
  }
  return addr.is_loopback();
}

Result<nlohmann::json> ApiClient::Call(std::string_view method, const std::string& path,
                                       const nlohmann::json* body, const CallOptions& options) {
  if (body != nullptr && !http_.base().tls && !allow_plain_http_secrets_ &&
      !IsLoopbackHost(http_.base().host) && CarriesValue(*body)) {
    return MakeError(ErrorCode::kFailedPrecondition,
                     "refusing to send a secret value over plain HTTP to " + http_.base().ToString() +
                         " (not a loopback address): use an https:// API URL, or pass --insecure to send "
                         "it unencrypted anyway");
  }
  HttpRequest req;
  req.method = std::string(method);
  req.target = path;
  req.timeout = options.timeout;
  req.upload_file = options.upload_file;
  req.upload_progress = options.upload_progress;
  req.download_progress = options.download_progress;
  req.download_fd = options.download_fd;
  if (!api_key_.empty()) req.headers.emplace_back("X-API-Key", api_key_);
  if (body != nullptr) {
    try {
      req.body = body->dump();
    } catch (const nlohmann::json::exception&) {
      // The text of this exception may quote the offending bytes.
      return MakeError(ErrorCode::kFailedPrecondition,
                       "request contains text that is not valid UTF-8");
    }
  }

  auto started = std::chrono::steady_clock::now();
  if (verbose_ != nullptr) {
    *verbose_ << "oc: > " << req.method << " " << http_.base().ToString() << path << "\n";
  }
  auto response = http_.Send(req);
  SecureWipe(req.body);
  if (!response) {
    if (verbose_ != nullptr) *verbose_ << "oc: < failed\n";
    return MakeError(response.error().code, Redact(response.error().message, options.redact));
  }
  if (verbose_ != nullptr) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - started).count();
    *verbose_ << "oc: < " << response->status << " " << response->reason << " (" << ms << " ms, "
              << response->body.size() << " bytes)\n";
  }
  if (response->status < 200 || response->status >= 300) {
    Error e = ErrorFromResponse(response->status, response->reason, response->body);
    e.message = Redact(std::move(e.message), options.redact);
    return e;
  }
  if (response->body.empty()) return nlohmann::json(nullptr);
  auto doc = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return MakeError(ErrorCode::kInternal, "the server answered HTTP " +
                                               std::to_string(response->status) +
                                               " with a body that is not JSON");
  }
  ScrubValues(doc);
  return doc;
}

}  // namespace osb::cli
