// Result<T>: a value or an Error, returned at module boundaries instead of
// throwing. Modelled on leveldb::Status / std::expected (C++23, which g++ 12
// does not offer in C++20 mode).
//
// Contract: an Error's message is safe to show to a user and to log. Code
// that builds one must never put secret material (keys, secret values,
// plaintexts) into it.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace osb {

enum class ErrorCode {
  kInvalidArgument,   // caller's input is malformed (HTTP 400)
  kNotFound,          // HTTP 404
  kAlreadyExists,     // HTTP 409
  kConflict,          // the resource's state forbids it, e.g. exec in a stopped sandbox (HTTP 409)
  kTooLarge,          // HTTP 413
  kResourceExhausted, // over a cap (per-org limits, concurrent calls): HTTP 429, retry later
  kUnauthenticated,   // HTTP 401
  kUnavailable,       // a dependency is down (HTTP 503)
  kFailedPrecondition,// the system is not configured for this (e.g. a key is missing)
  kDataLoss,          // stored data failed an integrity check
  kInternal,          // a bug or an environment failure (HTTP 500)
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

inline Error MakeError(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}      // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace osb
