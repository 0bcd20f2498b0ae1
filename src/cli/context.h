// Per-invocation state shared by the verb implementations: the streams, the
// global flags, and the lazily built API client. Internal to osb_cli.
//
// Error reporting contract: every failure is reported exactly once, as one
// line "error: <message>" on the error stream, and the verb returns the
// exit code from Fail()/Usage(). Warnings are "warning: <message>".
#pragma once

#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "cli/api_client.h"
#include "cli/app.h"
#include "cli/config.h"

namespace osb::cli {

class Context {
 public:
  explicit Context(const Io& io) : io_(io) {}

  std::istream& in() { return io_.in; }
  std::ostream& out() { return io_.out; }
  std::ostream& err() { return io_.err; }
  const EnvLookup& env() const { return io_.env; }

  // Global flags (filled by CLI11).
  std::string api_url_flag;
  std::string api_key_flag;
  std::string ca_file_flag;
  bool insecure = false;  // allow secret values over plain HTTP to a remote host
  bool json = false;
  bool verbose = false;

  // The chosen verb; set by its CLI11 callback, run after parsing.
  std::function<int()> action;

  // Builds the API client from the resolved configuration. Requires an API
  // key unless `require_key` is false. On failure the error is printed and
  // nullptr returned; `exit_code` receives the code to return.
  ApiClient* Api(int* exit_code, bool require_key = true);

  // The configuration the client uses: flags > env > file > default.
  // Computed once (warnings print once); set the flag fields before the
  // first call.
  Result<ResolvedConfig> Resolve();

  int Fail(const Error& error);
  int Usage(const std::string& message);
  void Warn(const std::string& message);

 private:
  Io io_;
  std::optional<ResolvedConfig> resolved_;
  std::unique_ptr<ApiClient> api_;
};

}  // namespace osb::cli
