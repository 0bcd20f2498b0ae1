#include "api/http.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <strings.h>

namespace osb::api {

bool CaseInsensitiveLess::operator()(const std::string& a, const std::string& b) const {
  return strcasecmp(a.c_str(), b.c_str()) < 0;
}

std::string Request::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

const std::string& Request::Param(const std::string& name) const {
  static const std::string empty;
  auto it = params.find(name);
  return it == params.end() ? empty : it->second;
}

Response ErrorResponse(int status, const std::string& message) {
  Response r;
  r.status = status;
  // replace: an error may quote user input that is not valid UTF-8.
  r.body = nlohmann::json{{"error", message}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response ErrorResponse(const Error& error) {
  switch (error.code) {
    case ErrorCode::kInvalidArgument: return ErrorResponse(400, error.message);
    case ErrorCode::kUnauthenticated: return ErrorResponse(401, error.message);
    case ErrorCode::kNotFound: return ErrorResponse(404, error.message);
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kConflict: return ErrorResponse(409, error.message);
    case ErrorCode::kTooLarge: return ErrorResponse(413, error.message);
    case ErrorCode::kResourceExhausted: {
      Response r = ErrorResponse(429, error.message);
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    case ErrorCode::kUnavailable:
      spdlog::warn("unavailable: {}", error.message);
      return ErrorResponse(503, "service unavailable: " + error.message);
    default:
      spdlog::error("internal error: {}", error.message);
      return ErrorResponse(500, "internal error");
  }
}

}  // namespace osb::api
