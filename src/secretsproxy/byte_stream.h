// ByteStream: one connection end (plain TCP, TLS over TCP, or an in-memory
// twin for tests) with a timeout on every operation, so the relay code is
// written once for all of them.
// Expected failures (EOF, reset, timeout = boost::asio::error::timed_out)
// come back as error codes, never exceptions. Created with std::make_shared
// (timer handlers hold a weak_ptr). Not thread-safe: use from the
// connection's strand only.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which needs std::exchange
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

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
  // The executor the stream's operations run on (Stop() posts Close there).
  virtual boost::asio::any_io_executor get_executor() = 0;
  // Frees per-connection buffers that an idle connection need not hold
  // (TLS record buffers); they come back on the next read or write.
  virtual void ReleaseIdleBuffers() {}
  // A stream whose buffers should be released together with ours when we sit
  // idle in ReadSome (a client connection's kept-alive upstream connection).
  void set_idle_peer(std::weak_ptr<ByteStream> peer) { idle_peer_ = std::move(peer); }

  // How long a read waits before the stream counts as idle.
  static constexpr Millis kIdleBufferGrace{100};

 protected:
  // The per-operation deadline. Arm starts an operation that ends with
  // timed_out_ set and CancelIo() called once `timeout` has passed; with
  // idle_grace > 0 (and shorter than timeout) the stream's idle buffers (ours
  // and the idle peer's) are released once the same operation has waited
  // that long. Disarm ends the operation. Both are cheap: the timer is armed
  // lazily and not cancelled per operation (one wait per stream that, when
  // it fires, checks the operation then pending and re-arms for it), so a
  // busy keep-alive connection costs no timer-queue work or timerfd update
  // per request.
  void Arm(boost::asio::steady_timer& timer, Millis timeout, Millis idle_grace = Millis{0});
  void Disarm(boost::asio::steady_timer& timer);
  boost::asio::awaitable<void> Linger();
  // Cancels the pending operations (called by the timer armed by Arm).
  virtual void CancelIo() = 0;
  bool timed_out_ = false;
  std::weak_ptr<ByteStream> idle_peer_;

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  void Schedule(boost::asio::steady_timer& timer, TimePoint at);
  void OnTimer(boost::asio::steady_timer& timer);
  bool op_active_ = false;
  TimePoint op_deadline_{};
  TimePoint op_idle_at_{};        // TimePoint::max(): no idle release pending
  bool timer_waiting_ = false;    // a wait is outstanding on the timer
  TimePoint timer_expiry_{};      // ... expiring then
  uint64_t wait_generation_ = 0;  // identifies the outstanding wait
};

class PlainStream final : public ByteStream {
 public:
  explicit PlainStream(boost::asio::ip::tcp::socket s);
  boost::asio::awaitable<size_t> ReadSome(char* data, size_t size, Millis timeout,
                                          boost::system::error_code& ec) override;
  boost::asio::awaitable<void> WriteAll(std::string_view data, Millis timeout, boost::system::error_code& ec) override;
  boost::asio::awaitable<void> GracefulClose() override;
  void Close() override;
  boost::asio::any_io_executor get_executor() override { return sock_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return sock_; }

 private:
  void CancelIo() override;
  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer timer_;
};

// TLS with OpenSSL (no Asio ssl engine, which would pin 2 x 17 KiB of
// buffers per stream). Reads: ciphertext is read from the socket into the
// caller's buffer and handed to OpenSSL through a memory BIO. When the last
// read on this stream found its bytes already there, the next one is first
// tried as a plain non-blocking read (one system call, no trip through the
// event loop); otherwise, and with a growing back-off after a miss, it goes
// straight to the socket's async_read_some, whose own read attempt is then
// the only one and whose descriptor stays registered with epoll. (Waiting
// with async_wait, as before, re-armed the descriptor with EPOLL_CTL_MOD on
// every wait, after a read that had already failed with EAGAIN.) Writes go
// from OpenSSL straight to the socket: one SSL_write (one TLS record up to
// 16 KiB) = one write(2).
// OpenSSL keeps its record buffers while the connection is busy; they (and
// the memory BIO's) are freed after kIdleBufferGrace of waiting in
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
  boost::asio::any_io_executor get_executor() override { return sock_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return sock_; }
  void ReleaseIdleBuffers() override;

 private:
  void CancelIo() override;
  // Serves OpenSSL's SSL_ERROR_WANT_READ / WANT_WRITE: reads ciphertext from
  // the socket into `scratch` (any size >= 1) and feeds it to OpenSSL, or
  // waits until the socket is writable.
  boost::asio::awaitable<void> Serve(int ssl_error, char* scratch, size_t size, boost::system::error_code& ec);
  boost::asio::ip::tcp::socket sock_;
  boost::asio::steady_timer timer_;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // memory BIO OpenSSL reads ciphertext from (owned by ssl_)
  // Read probing (see Serve): waits left before the next probe, and the
  // current back-off (0 = probing every time: the last probe found bytes).
  uint8_t probe_skip_ = 0;
  uint8_t probe_backoff_ = 0;
};

// The in-memory twin of a connection (the seam that lets the whole exchange
// run in unit tests without sockets). Bytes written to one end are read from
// the other, in order, in whatever pieces the reader asks for. Each
// direction buffers at most `capacity` bytes (0 = unbounded); a writer then
// waits for room, like a full socket buffer. Close() ends both directions
// (the peer reads what was already written, then EOF; its writes fail with
// broken_pipe); GracefulClose() ends our sending side, then closes. Timeouts
// behave as for sockets (boost::asio::error::timed_out). Both ends must be
// used from one thread (one io_context or strand).
class MemoryStream final : public ByteStream {
 public:
  struct Pipe;  // one direction
  MemoryStream(boost::asio::any_io_executor ex, std::shared_ptr<Pipe> in, std::shared_ptr<Pipe> out);
  ~MemoryStream() override;
  boost::asio::awaitable<size_t> ReadSome(char* data, size_t size, Millis timeout,
                                          boost::system::error_code& ec) override;
  boost::asio::awaitable<void> WriteAll(std::string_view data, Millis timeout, boost::system::error_code& ec) override;
  boost::asio::awaitable<void> GracefulClose() override;
  void Close() override;
  boost::asio::any_io_executor get_executor() override { return ex_; }
  // Ends our sending side only (the peer reads EOF after the buffered bytes).
  void ShutdownSend();
  // Waits until the peer has read every byte we wrote (true), or the peer
  // closed / the timeout passed (false). Tests use it to deliver a message
  // in two reads split at an exact offset.
  boost::asio::awaitable<bool> WaitDrained(Millis timeout);
  // Bytes written to us and not yet read.
  size_t buffered() const;

 private:
  void CancelIo() override {}
  boost::asio::any_io_executor ex_;
  std::shared_ptr<Pipe> in_;
  std::shared_ptr<Pipe> out_;
};

std::pair<std::shared_ptr<MemoryStream>, std::shared_ptr<MemoryStream>> MakeMemoryStreamPair(
    boost::asio::any_io_executor ex, size_t capacity = 0);

}  // namespace osb::secretsproxy
