#include "secretsproxy/byte_stream.h"

#include <openssl/err.h>

#include <cerrno>
#include <cstring>
#include <cstdlib>

#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace osb::secretsproxy {
namespace asio = boost::asio;
using boost::system::error_code;

void ByteStream::Arm(asio::steady_timer& timer, Millis timeout, Millis idle_grace) {
  timed_out_ = false;
  const uint64_t gen = ++generation_;
  if (idle_grace.count() <= 0 || idle_grace >= timeout) {
    timer.expires_after(timeout);
    ArmDeadline(timer, gen);
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  timer.expires_after(idle_grace);
  std::weak_ptr<ByteStream> weak = weak_from_this();
  timer.async_wait([weak, gen, deadline, &timer](const error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self || self->generation_ != gen) return;
    self->ReleaseIdleBuffers();
    if (auto peer = self->idle_peer_.lock()) peer->ReleaseIdleBuffers();
    timer.expires_at(deadline);
    self->ArmDeadline(timer, gen);
  });
}

void ByteStream::ArmDeadline(asio::steady_timer& timer, uint64_t gen) {
  std::weak_ptr<ByteStream> weak = weak_from_this();
  timer.async_wait([weak, gen](const error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self || self->generation_ != gen) return;
    self->timed_out_ = true;
    self->CancelIo();
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

namespace {
// Lingering close: after our side is shut, read and discard what the peer is
// still sending (bounded in time and bytes) so closing with unread data does
// not reset the connection before the peer has read our final response.
constexpr size_t kLingerBytes = 1 << 20;
constexpr Millis kLingerTime{500};
}  // namespace

asio::awaitable<void> ByteStream::Linger() {
  std::string sink(4096, '\0');
  size_t total = 0;
  const auto deadline = std::chrono::steady_clock::now() + kLingerTime;
  while (total < kLingerBytes) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    error_code ec;
    const size_t n = co_await ReadSome(sink.data(), sink.size(), left, ec);
    if (n == 0) break;
    total += n;
  }
}

asio::awaitable<void> PlainStream::GracefulClose() {
  error_code ec;
  sock_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  if (!ec) co_await Linger();
  Close();
}

void PlainStream::CancelIo() {
  error_code ignored;
  sock_.cancel(ignored);
}

void PlainStream::Close() {
  error_code ec;
  timer_.cancel();
  sock_.close(ec);
}

TlsStream::TlsStream(asio::ip::tcp::socket s, SSL_CTX* ctx, Role role, std::string initial)
    : sock_(std::move(s)), timer_(sock_.get_executor()), ssl_(SSL_new(ctx)), initial_(std::move(initial)) {
  if (ssl_ == nullptr) std::abort();  // allocation failure: nothing sensible to do
  error_code ec;
  sock_.non_blocking(true, ec);
  SSL_set_fd(ssl_, static_cast<int>(sock_.native_handle()));
  if (!initial_.empty()) {
    // Read the initial bytes from memory first (retry, not EOF, when they
    // run out), writes go to the socket; SwitchToSocket() swaps the read side.
    initial_bio_ = BIO_new_mem_buf(initial_.data(), static_cast<int>(initial_.size()));
    if (initial_bio_ == nullptr) std::abort();
    BIO_set_mem_eof_return(initial_bio_, -1);
    SSL_set0_rbio(ssl_, initial_bio_);  // drops the read side's reference to the socket BIO
  }
  if (role == Role::kServer) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

bool TlsStream::SwitchToSocket() {
  if (initial_bio_ == nullptr || BIO_ctrl_pending(initial_bio_) > 0) return false;
  BIO* sock_bio = SSL_get_wbio(ssl_);
  BIO_up_ref(sock_bio);
  SSL_set0_rbio(ssl_, sock_bio);  // frees the memory BIO
  initial_bio_ = nullptr;
  return true;
}

void TlsStream::ReleaseIdleBuffers() {
  // Refuses (returns 0) while a partial record is buffered; that is fine.
  (void)SSL_free_buffers(ssl_);
}

asio::awaitable<void> TlsStream::WaitFor(int ssl_error, error_code& ec) {
  const auto what = ssl_error == SSL_ERROR_WANT_WRITE ? asio::ip::tcp::socket::wait_write
                                                      : asio::ip::tcp::socket::wait_read;
  co_await sock_.async_wait(what, asio::redirect_error(asio::use_awaitable, ec));
}

namespace {
error_code SslFailure(int err) {
  if (err == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
  if (err == SSL_ERROR_SYSCALL && errno == 0) return asio::error::eof;  // peer closed without close_notify
  if (err == SSL_ERROR_SYSCALL) return error_code(errno, boost::system::system_category());
  return asio::error::connection_aborted;  // protocol error (details in the OpenSSL queue)
}
}  // namespace

asio::awaitable<void> TlsStream::Handshake(Millis timeout, error_code& ec) {
  Arm(timer_, timeout);
  while (true) {
    ERR_clear_error();
    errno = 0;
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) break;
    const int err = SSL_get_error(ssl_, r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      ec = SslFailure(err);
      break;
    }
    if (err == SSL_ERROR_WANT_READ && SwitchToSocket()) continue;
    co_await WaitFor(err, ec);
    if (ec) break;
  }
  Disarm(timer_);
  if (timed_out_) ec = asio::error::timed_out;
}

asio::awaitable<size_t> TlsStream::ReadSome(char* data, size_t size, Millis timeout, error_code& ec) {
  if (size == 0) co_return 0;
  const int want = static_cast<int>(std::min<size_t>(size, 1 << 30));
  SwitchToSocket();
  // Fast path: decrypted data or a readable socket, no timer needed.
  ERR_clear_error();
  errno = 0;
  int r = SSL_read(ssl_, data, want);
  if (r > 0) co_return static_cast<size_t>(r);
  int err = SSL_get_error(ssl_, r);
  if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
    ec = SslFailure(err);
    co_return 0;
  }
  Arm(timer_, timeout, kIdleBufferGrace);
  size_t n = 0;
  while (true) {
    if (err != SSL_ERROR_WANT_READ || !SwitchToSocket()) co_await WaitFor(err, ec);
    if (ec) break;
    ERR_clear_error();
    errno = 0;
    r = SSL_read(ssl_, data, want);
    if (r > 0) {
      n = static_cast<size_t>(r);
      break;
    }
    err = SSL_get_error(ssl_, r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      ec = SslFailure(err);
      break;
    }
  }
  Disarm(timer_);
  if (timed_out_) ec = asio::error::timed_out;
  co_return n;
}

asio::awaitable<void> TlsStream::WriteAll(std::string_view data, Millis timeout, error_code& ec) {
  bool armed = false;
  size_t off = 0;
  while (off < data.size()) {
    ERR_clear_error();
    errno = 0;
    const int chunk = static_cast<int>(std::min<size_t>(data.size() - off, 1 << 30));
    const int r = SSL_write(ssl_, data.data() + off, chunk);
    if (r > 0) {
      off += static_cast<size_t>(r);
      continue;
    }
    const int err = SSL_get_error(ssl_, r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      ec = SslFailure(err);
      break;
    }
    if (!armed) {
      Arm(timer_, timeout);
      armed = true;
    }
    co_await WaitFor(err, ec);
    if (ec) break;
  }
  if (armed) {
    Disarm(timer_);
    if (timed_out_) ec = asio::error::timed_out;
  }
}

asio::awaitable<void> TlsStream::GracefulClose() {
  if (sock_.is_open()) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // sends close_notify (non-blocking, best effort)
    error_code ec;
    sock_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    if (!ec) co_await Linger();
  }
  Close();
}

void TlsStream::CancelIo() {
  error_code ignored;
  sock_.cancel(ignored);
}

void TlsStream::Close() {
  error_code ec;
  timer_.cancel();
  sock_.close(ec);
}

// ---------------------------------------------------------------- memory --

// One direction. The timers serve as condition variables: a waiter sleeps on
// one until its deadline; a state change cancels it (= wake up).
struct MemoryStream::Pipe {
  explicit Pipe(asio::any_io_executor ex, size_t cap) : readable(ex), writable(ex), capacity(cap) {}
  std::string data;
  size_t read_pos = 0;
  bool write_closed = false;  // writer is done: EOF after data
  bool read_closed = false;   // reader is gone: writes fail
  asio::steady_timer readable;
  asio::steady_timer writable;
  size_t capacity;
  size_t available() const { return data.size() - read_pos; }
};

namespace {
using SteadyClock = std::chrono::steady_clock;

// Sleeps on `t` until woken (Wake) or the deadline.
asio::awaitable<void> SleepOn(asio::steady_timer& t, SteadyClock::time_point deadline) {
  t.expires_at(deadline);
  error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}
void Wake(asio::steady_timer& t) { t.cancel(); }
}  // namespace

MemoryStream::MemoryStream(asio::any_io_executor ex, std::shared_ptr<Pipe> in, std::shared_ptr<Pipe> out)
    : ex_(std::move(ex)), in_(std::move(in)), out_(std::move(out)) {}

MemoryStream::~MemoryStream() { Close(); }

asio::awaitable<size_t> MemoryStream::ReadSome(char* data, size_t size, Millis timeout, error_code& ec) {
  ec.clear();
  if (size == 0) co_return 0;
  const auto deadline = SteadyClock::now() + timeout;
  while (in_->available() == 0) {
    if (in_->read_closed) {
      ec = asio::error::operation_aborted;  // we closed our end
      co_return 0;
    }
    if (in_->write_closed) {
      ec = asio::error::eof;
      co_return 0;
    }
    if (SteadyClock::now() >= deadline) {
      ec = asio::error::timed_out;
      co_return 0;
    }
    co_await SleepOn(in_->readable, deadline);
  }
  const size_t n = std::min(size, in_->available());
  std::memcpy(data, in_->data.data() + in_->read_pos, n);
  in_->read_pos += n;
  if (in_->read_pos == in_->data.size()) {
    in_->data.clear();
    in_->read_pos = 0;
  }
  Wake(in_->writable);
  co_return n;
}

asio::awaitable<void> MemoryStream::WriteAll(std::string_view data, Millis timeout, error_code& ec) {
  ec.clear();
  const auto deadline = SteadyClock::now() + timeout;
  while (!data.empty()) {
    if (out_->read_closed || out_->write_closed) {
      ec = asio::error::broken_pipe;
      co_return;
    }
    size_t room = data.size();
    if (out_->capacity != 0) room = std::min(room, out_->capacity - std::min(out_->capacity, out_->available()));
    if (room == 0) {
      if (SteadyClock::now() >= deadline) {
        ec = asio::error::timed_out;
        co_return;
      }
      co_await SleepOn(out_->writable, deadline);
      continue;
    }
    out_->data.append(data.data(), room);
    data.remove_prefix(room);
    Wake(out_->readable);
  }
}

void MemoryStream::ShutdownSend() {
  out_->write_closed = true;
  Wake(out_->readable);
  Wake(out_->writable);
}

asio::awaitable<void> MemoryStream::GracefulClose() {
  ShutdownSend();
  Close();
  co_return;
}

void MemoryStream::Close() {
  ShutdownSend();
  in_->read_closed = true;
  in_->data.clear();
  in_->read_pos = 0;
  Wake(in_->readable);
  Wake(in_->writable);
}

asio::awaitable<bool> MemoryStream::WaitDrained(Millis timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (out_->available() != 0) {
    if (out_->read_closed || SteadyClock::now() >= deadline) co_return false;
    co_await SleepOn(out_->writable, deadline);
  }
  co_return !out_->read_closed;
}

size_t MemoryStream::buffered() const { return in_->available(); }

std::pair<std::shared_ptr<MemoryStream>, std::shared_ptr<MemoryStream>> MakeMemoryStreamPair(
    asio::any_io_executor ex, size_t capacity) {
  auto a_to_b = std::make_shared<MemoryStream::Pipe>(ex, capacity);
  auto b_to_a = std::make_shared<MemoryStream::Pipe>(ex, capacity);
  auto a = std::make_shared<MemoryStream>(ex, b_to_a, a_to_b);
  auto b = std::make_shared<MemoryStream>(ex, a_to_b, b_to_a);
  return {a, b};
}

}  // namespace osb::secretsproxy
