#include "cli/ws_client.h"

#include "cli/await_one.h"
#include "cli/tls_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <nlohmann/json.hpp>

#include <deque>
#include <optional>

namespace osb::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

ErrorCode CodeForStatus(int status) {
  switch (status) {
    case 400: return ErrorCode::kInvalidArgument;
    case 401: case 403: return ErrorCode::kUnauthenticated;
    case 404: return ErrorCode::kNotFound;
    case 409: return ErrorCode::kConflict;
    case 429: return ErrorCode::kResourceExhausted;
    case 503: return ErrorCode::kUnavailable;
    default: return ErrorCode::kInternal;
  }
}

template <class Next>
class Session final : public WsClient {
 public:
  template <class... Args>
  explicit Session(std::unique_ptr<asio::io_context> io, std::unique_ptr<asio::ssl::context> tls, Args&&... args)
      : io_(std::move(io)), tls_(std::move(tls)), ws_(std::forward<Args>(args)...) {}

  websocket::stream<Next>& ws() { return ws_; }
  asio::io_context& io() { return *io_; }

  int Run(const std::function<void(bool, std::string&)>& on_message) override {
    on_message_ = &on_message;
    ReadNext();
    io_->restart();
    io_->run();
    return close_code_;
  }

  void Send(bool binary, std::string data) override {
    asio::post(*io_, [this, binary, data = std::move(data)]() mutable {
      if (closed_) return;
      queue_.push_back({binary, std::move(data)});
      if (queue_.size() == 1) WriteNext();
    });
  }

  void Close() override {
    asio::post(*io_, [this] {
      if (closed_ || closing_) return;
      closing_ = true;
      if (queue_.empty()) DoClose();
    });
  }

  std::string CloseReason() const override { return close_reason_; }

 private:
  void ReadNext() {
    ws_.async_read(buffer_, [this](beast::error_code ec, size_t) {
      if (ec) {
        closed_ = true;
        if (ec == websocket::error::closed) {
          close_code_ = ws_.reason().code;
          close_reason_ = std::string(ws_.reason().reason.c_str());
        }
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        return;
      }
      std::string data = beast::buffers_to_string(buffer_.data());
      buffer_.consume(buffer_.size());
      (*on_message_)(ws_.got_binary(), data);
      ReadNext();
    });
  }

  void WriteNext() {
    auto& front = queue_.front();
    ws_.binary(front.first);
    ws_.async_write(asio::buffer(front.second), [this](beast::error_code ec, size_t) {
      queue_.pop_front();
      if (ec) {
        queue_.clear();
        return;
      }
      if (!queue_.empty()) return WriteNext();
      if (closing_) DoClose();
    });
  }

  void DoClose() {
    ws_.async_close(websocket::close_code::normal, [](beast::error_code) {});
  }

  std::unique_ptr<asio::io_context> io_;
  std::unique_ptr<asio::ssl::context> tls_;
  websocket::stream<Next> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::pair<bool, std::string>> queue_;
  const std::function<void(bool, std::string&)>* on_message_ = nullptr;
  bool closed_ = false;
  bool closing_ = false;
  int close_code_ = 0;
  std::string close_reason_;
};

template <class S>
Result<std::unique_ptr<WsClient>> Handshake(std::unique_ptr<S> s, const ApiUrl& base, const std::string& api_key,
                                            const std::string& target) {
  auto& ws = s->ws();
  ws.set_option(websocket::stream_base::decorator([api_key](websocket::request_type& req) {
    req.set(http::field::user_agent, "oc/" OSB_VERSION);
    req.set("X-API-Key", api_key);
  }));
  ws.read_message_max(8 * 1024 * 1024);
  bool default_port = (base.tls && base.port == "443") || (!base.tls && base.port == "80");
  std::string host = base.host.find(':') != std::string::npos ? "[" + base.host + "]" : base.host;
  if (!default_port) host += ":" + base.port;
  websocket::response_type res;
  const std::string path = base.base_path + target;
  beast::error_code ec = AwaitOne(s->io(), [&](auto handler) { ws.async_handshake(res, host, path, handler); });
  if (ec == websocket::error::upgrade_declined || (ec && res.result_int() >= 400)) {
    std::string message = "HTTP " + std::to_string(res.result_int());
    auto j = nlohmann::json::parse(res.body(), nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) message = j["error"].get<std::string>();
    return MakeError(CodeForStatus(static_cast<int>(res.result_int())), message);
  }
  if (ec) return NetError(base, "WebSocket handshake", ec);
  beast::get_lowest_layer(ws).expires_never();
  return std::unique_ptr<WsClient>(std::move(s));
}

// Stdin frames and keystrokes are small writes back to back: without
// TCP_NODELAY each waits for the ACK of the one before.
void NoDelay(beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
}

}  // namespace

Result<std::unique_ptr<WsClient>> WsClient::Connect(const ApiUrl& base, const std::string& ca_file,
                                                    const std::string& api_key, const std::string& target,
                                                    std::chrono::milliseconds timeout) {
  auto io = std::make_unique<asio::io_context>();
  tcp::resolver resolver(*io);
  tcp::resolver::results_type endpoints;
  beast::error_code ec = AwaitOne(*io, [&](auto handler) {
    resolver.async_resolve(base.host, base.port,
                           [&endpoints, handler](beast::error_code e, tcp::resolver::results_type r) mutable {
                             endpoints = std::move(r);
                             handler(e);
                           });
  });
  if (ec) return NetError(base, "resolving " + base.host, ec);
  if (!base.tls) {
    auto& io_ref = *io;
    auto plain = std::make_unique<Session<beast::tcp_stream>>(std::move(io), nullptr, io_ref);
    auto& lowest = beast::get_lowest_layer(plain->ws());
    lowest.expires_after(timeout);
    ec = AwaitOne(plain->io(), [&](auto handler) { lowest.async_connect(endpoints, handler); });
    if (ec) return NetError(base, "connecting", ec);
    NoDelay(lowest);
    return Handshake(std::move(plain), base, api_key, target);
  }
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  if (auto configured = ConfigureTlsClient(*ctx, ca_file); !configured) return configured.error();
  auto& io_ref = *io;
  auto& ctx_ref = *ctx;
  auto s = std::make_unique<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(io), std::move(ctx), io_ref,
                                                                            ctx_ref);
  auto& tls_stream = s->ws().next_layer();
  auto& lowest = beast::get_lowest_layer(s->ws());
  lowest.expires_after(timeout);
  ec = AwaitOne(s->io(), [&](auto handler) { lowest.async_connect(endpoints, handler); });
  if (ec) return NetError(base, "connecting", ec);
  NoDelay(lowest);
  SetTlsPeerName(tls_stream.native_handle(), base.host);
  ec = AwaitOne(s->io(), [&](auto handler) { tls_stream.async_handshake(asio::ssl::stream_base::client, handler); });
  if (ec) return NetError(base, "TLS handshake", ec);
  return Handshake(std::move(s), base, api_key, target);
}

}  // namespace osb::cli
