// A small blocking-setup WebSocket client (RFC 6455 over Boost.Beast, plain
// or TLS with the same verification rules as http_client.h) for the `oc`
// verbs that stream: exec, attach, shell.
//
// Connect() resolves, connects, handshakes (TLS, then the upgrade with the
// X-API-Key header) within `timeout`; a refused upgrade is an error carrying
// the server's JSON error message and HTTP status (mapped to an ErrorCode).
// Run() then reads messages on the calling thread until the connection ends
// and hands each to `on_message`; Send()/Close() may be called from any
// thread meanwhile (they are posted to Run's thread).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "cli/api_url.h"
#include "common/result.h"

namespace osb::cli {

class WsClient {
 public:
  virtual ~WsClient() = default;
  static Result<std::unique_ptr<WsClient>> Connect(const ApiUrl& base, const std::string& ca_file,
                                                   const std::string& api_key, const std::string& target,
                                                   std::chrono::milliseconds timeout);
  // Until the connection ends; returns the close code received (0 if none).
  virtual int Run(const std::function<void(bool binary, std::string& data)>& on_message) = 0;
  virtual void Send(bool binary, std::string data) = 0;
  virtual void Close() = 0;
  // The close reason received, if any.
  virtual std::string CloseReason() const = 0;
};

}  // namespace osb::cli
