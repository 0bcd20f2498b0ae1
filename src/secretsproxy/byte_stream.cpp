#include "secretsproxy/byte_stream.h"

#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace osb::secretsproxy {
namespace asio = boost::asio;
using boost::system::error_code;

void ByteStream::Arm(asio::steady_timer& timer, Millis timeout) {
  timed_out_ = false;
  const uint64_t gen = ++generation_;
  timer.expires_after(timeout);
  std::weak_ptr<ByteStream> weak = weak_from_this();
  timer.async_wait([weak, gen](const error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self || self->generation_ != gen) return;
    self->timed_out_ = true;
    error_code ignored;
    self->socket().cancel(ignored);
  });
}

void ByteStream::Disarm(asio::steady_timer& timer) {
  ++generation_;
  timer.cancel();
}

PlainStream::PlainStream(asio::ip::tcp::socket s) : sock_(std::move(s)), timer_(sock_.get_executor()) {}

asio::awaitable<size_t> PlainStream::ReadSome(char* data, size_t size, Millis timeout, error_code& ec) {
  Arm(timer_, timeout);
  size_t n = co_await sock_.async_read_some(asio::buffer(data, size), asio::redirect_error(asio::use_awaitable, ec));
  Disarm(timer_);
  if (timed_out_) ec = asio::error::timed_out;
  co_return n;
}

asio::awaitable<void> PlainStream::WriteAll(std::string_view data, Millis timeout, error_code& ec) {
  Arm(timer_, timeout);
  co_await asio::async_write(sock_, asio::buffer(data.data(), data.size()),
                             asio::redirect_error(asio::use_awaitable, ec));
  Disarm(timer_);
  if (timed_out_) ec = asio::error::timed_out;
}

asio::awaitable<void> PlainStream::GracefulClose() {
  error_code ec;
  sock_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  Close();
  co_return;
}

void PlainStream::Close() {
  error_code ec;
  timer_.cancel();
  sock_.close(ec);
}

TlsStream::TlsStream(asio::ip::tcp::socket s, asio::ssl::context& ctx)
    : stream_(std::move(s), ctx), timer_(stream_.get_executor()) {}

asio::awaitable<void> TlsStream::Handshake(asio::ssl::stream_base::handshake_type type, Millis timeout,
                                           error_code& ec) {
  Arm(timer_, timeout);
  co_await stream_.async_handshake(type, asio::redirect_error(asio::use_awaitable, ec));
  Disarm(timer_);
  if (timed_out_) ec = asio::error::timed_out;
}

asio::awaitable<size_t> TlsStream::ReadSome(char* data, size_t size, Millis timeout, error_code& ec) {
  Arm(timer_, timeout);
  size_t n =
      co_await stream_.async_read_some(asio::buffer(data, size), asio::redirect_error(asio::use_awaitable, ec));
  Disarm(timer_);
  if (timed_out_) ec = asio::error::timed_out;
  co_return n;
}

asio::awaitable<void> TlsStream::WriteAll(std::string_view data, Millis timeout, error_code& ec) {
  Arm(timer_, timeout);
  co_await asio::async_write(stream_, asio::buffer(data.data(), data.size()),
                             asio::redirect_error(asio::use_awaitable, ec));
  Disarm(timer_);
  if (timed_out_) ec = asio::error::timed_out;
}

asio::awaitable<void> TlsStream::GracefulClose() {
  error_code ec;
  if (socket().is_open()) {
    Arm(timer_, Millis(1000));
    co_await stream_.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    Disarm(timer_);
  }
  Close();
}

void TlsStream::Close() {
  error_code ec;
  timer_.cancel();
  socket().close(ec);
}

}  // namespace osb::secretsproxy
