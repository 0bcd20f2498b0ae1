// ByteStream: one connection end (plain TCP or TLS over TCP) with a timeout
// on every operation, so the relay code is written once for both.
// Expected failures (EOF, reset, timeout = boost::asio::error::timed_out)
// come back as error codes, never exceptions. Created with std::make_shared
// (timer handlers hold a weak_ptr). Not thread-safe: use from the
// connection's strand only.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which needs std::exchange
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace osb::secretsproxy {

using Millis = std::chrono::milliseconds;

class ByteStream : public std::enable_shared_from_this<ByteStream> {
 public:
  virtual ~ByteStream() = default;
  // Reads at least one byte, or returns 0 with ec set (eof, timed_out, ...).
  virtual boost::asio::awaitable<size_t> ReadSome(char* data, size_t size, Millis timeout,
                                                  boost::system::error_code& ec) = 0;
  virtual boost::asio::awaitable<void> WriteAll(std::string_view data, Millis timeout,
                                                boost::system::error_code& ec) = 0;
  // Orderly close: TLS close_notify / FIN, then a bounded lingering read
  // (<= 500 ms, <= 1 MiB discarded) so the peer still reads our last
  // response even if it was sending, then Close().
  virtual boost::asio::awaitable<void> GracefulClose() = 0;
  virtual void Close() = 0;
  virtual boost::asio::ip::tcp::socket& socket() = 0;
  // Frees per-connection buffers that an idle connection need not hold
  // (TLS record buffers); they come back on the next read or write.
  virtual void ReleaseIdleBuffers() {}
  // A stream whose buffers should be released together with ours when we sit
  // idle in ReadSome (a client connection's kept-alive upstream connection).
  void set_idle_peer(std::weak_ptr<ByteStream> peer) { idle_peer_ = std::move(peer); }

  // How long a read waits before the stream counts as idle.
  static constexpr Millis kIdleBufferGrace{100};

 protected:
  // Arms the per-operation timer: on expiry the socket's operations are
  // cancelled and *timed_out becomes true. With idle_grace > 0 (and shorter
  // than timeout) the same timer first fires after idle_grace to release idle
  // buffers (ours and the idle peer's), then waits out the rest.
  void Arm(boost::asio::steady_timer& timer, Millis timeout, Millis idle_grace = Millis{0});
  void Disarm(boost::asio::steady_timer& timer);
  boost::asio::awaitable<void> Linger();
  bool timed_out_ = false;
  uint64_t generation_ = 0;
  std::weak_ptr<ByteStream> idle_peer_;

 private:
  void ArmDeadline(boost::asio::steady_timer& timer, uint64_t gen);
};

class PlainStream final : public ByteStream {
 public:
  explicit PlainStream(boost::asio::ip::tcp::socket s);
  boost::asio::awaitable<size_t> ReadSome(char* data, size_t size, Millis timeout,
                                          boost::system::error_code& ec) override;
  boost::asio::awaitable<void> WriteAll(std::string_view data, Millis timeout, boost::system::error_code& ec) override;
  boost::asio::awaitable<void> GracefulClose() override;
  void Close() override;
  boost::asio::ip::tcp::socket& socket() override { return sock_; }

 private:
  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer timer_;
};

// TLS directly over the non-blocking socket with OpenSSL (no Asio ssl
// engine, which would pin 2 x 17 KiB of buffers per stream): OpenSSL
// reads/writes the fd itself and the coroutine waits for readiness on
// WANT_READ/WANT_WRITE. OpenSSL keeps its record buffers while the
// connection is busy; they are freed after kIdleBufferGrace of waiting in
// ReadSome, so an idle connection keeps only OpenSSL's small state.
class TlsStream final : public ByteStream {
 public:
  enum class Role { kClient, kServer };
  // `initial`: bytes already read from the socket (a ClientHello read to
  // find its SNI); OpenSSL reads them first, then the socket.
  TlsStream(boost::asio::ip::tcp::socket s, SSL_CTX* ctx, Role role, std::string initial = {});
  ~TlsStream() override;
  SSL* native() { return ssl_; }
  boost::asio::awaitable<void> Handshake(Millis timeout, boost::system::error_code& ec);
  boost::asio::awaitable<size_t> ReadSome(char* data, size_t size, Millis timeout,
                                          boost::system::error_code& ec) override;
  boost::asio::awaitable<void> WriteAll(std::string_view data, Millis timeout, boost::system::error_code& ec) override;
  boost::asio::awaitable<void> GracefulClose() override;
  void Close() override;
  boost::asio::ip::tcp::socket& socket() override { return sock_; }
  void ReleaseIdleBuffers() override;

 private:
  // Waits for the socket to become readable/writable (per SSL_get_error).
  boost::asio::awaitable<void> WaitFor(int ssl_error, boost::system::error_code& ec);
  // After SSL_ERROR_WANT_READ: true if OpenSSL has used up the initial bytes
  // and now reads the socket (retry at once, without waiting).
  bool SwitchToSocket();
  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer timer_;
  SSL* ssl_ = nullptr;
  std::string initial_;         // backs initial_bio_
  BIO* initial_bio_ = nullptr;  // owned by ssl_ while set
};

}  // namespace osb::secretsproxy
