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

namespace {
using SteadyClock = std::chrono::steady_clock;
// now + d without overflowing (timeouts are configuration).
SteadyClock::time_point After(SteadyClock::time_point now, Millis d) {
  if (d > std::chrono::duration_cast<Millis>(SteadyClock::time_point::max() - now)) return SteadyClock::time_point::max();
  return now + d;
}
}  // namespace

void ByteStream::Arm(asio::steady_timer& timer, Millis timeout, Millis idle_grace) {
  timed_out_ = false;
  op_active_ = true;
  const auto now = SteadyClock::now();
  op_deadline_ = After(now, timeout);
  op_idle_at_ = idle_grace.count() > 0 && idle_grace < timeout ? After(now, idle_grace) : TimePoint::max();
  const TimePoint next = std::min(op_deadline_, op_idle_at_);
  // An outstanding wait that fires no later than we need re-checks then.
  if (timer_waiting_ && timer_expiry_ <= next) return;
  Schedule(timer, next);
}

void ByteStream::Schedule(asio::steady_timer& timer, TimePoint at) {
  timer_waiting_ = true;
  timer_expiry_ = at;
  const uint64_t gen = ++wait_generation_;
  timer.expires_at(at);  // cancels an outstanding wait: its handler sees a stale generation
  std::weak_ptr<ByteStream> weak = weak_from_this();
  timer.async_wait([weak, gen, &timer](const error_code& ec) {
    auto self = weak.lock();
    if (!self || self->wait_generation_ != gen) return;
    self->timer_waiting_ = false;
    if (ec) return;  // Close()
    self->OnTimer(timer);
  });
}

void ByteStream::OnTimer(asio::steady_timer& timer) {
  if (!op_active_) return;  // nothing pending: the next Arm schedules again
  const auto now = SteadyClock::now();
  if (now >= op_deadline_) {
    timed_out_ = true;
    CancelIo();
    return;
  }
  if (now >= op_idle_at_) {
    op_idle_at_ = TimePoint::max();
    ReleaseIdleBuffers();
    if (auto peer = idle_peer_.lock()) peer->ReleaseIdleBuffers();
  }
  Schedule(timer, std::min(op_deadline_, op_idle_at_));
}

void ByteStream::Disarm(asio::steady_timer&) { op_active_ = false; }

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
    : sock_(std::move(s)), timer_(sock_.get_executor()), ssl_(SSL_new(ctx)) {
  if (ssl_ == nullptr) std::abort();  // allocation failure: nothing sensible to do
  error_code ec;
  sock_.non_blocking(true, ec);
  BIO* wbio = BIO_new_socket(static_cast<int>(sock_.native_handle()), BIO_NOCLOSE);
  rbio_ = BIO_new(BIO_s_mem());
  if (wbio == nullptr || rbio_ == nullptr) std::abort();
  BIO_set_mem_eof_return(rbio_, -1);  // empty = retry (WANT_READ), not EOF
  if (!initial.empty() && BIO_write(rbio_, initial.data(), static_cast<int>(initial.size())) <= 0) std::abort();
  SSL_set_bio(ssl_, rbio_, wbio);
  if (role == Role::kServer) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

void TlsStream::ReleaseIdleBuffers() {
  // Refuses (returns 0) while a partial record is buffered; that is fine.
  (void)SSL_free_buffers(ssl_);
  // A drained memory BIO keeps the capacity of the largest read: swap it
  // for an empty one (a pending async_read_some reads into the caller's
  // buffer, never into the BIO, so this is safe at any time).
  if (BIO_ctrl_pending(rbio_) == 0) {
    BIO* fresh = BIO_new(BIO_s_mem());
    if (fresh == nullptr) return;
    BIO_set_mem_eof_return(fresh, -1);
    SSL_set0_rbio(ssl_, fresh);  // frees the old one
    rbio_ = fresh;
  }
}

namespace {
error_code SslFailure(int err) {
  if (err == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
  if (err == SSL_ERROR_SYSCALL && errno == 0) return asio::error::eof;  // peer closed without close_notify
  if (err == SSL_ERROR_SYSCALL) return error_code(errno, boost::system::system_category());
  return asio::error::connection_aborted;  // protocol error (details in the OpenSSL queue)
}
constexpr size_t kHandshakeRead = 16 * 1024;
// One TLS record with its header and a little more.
constexpr size_t kBulkRead = 17 * 1024 + 512;
}  // namespace

asio::awaitable<void> TlsStream::Serve(int ssl_error, char* scratch, size_t size, error_code& ec) {
  if (ssl_error == SSL_ERROR_WANT_WRITE) {
    co_await sock_.async_wait(asio::ip::tcp::socket::wait_write, asio::redirect_error(asio::use_awaitable, ec));
    co_return;
  }
  size_t n = 0;
  bool done = false;
  if (probe_skip_ == 0) {
    // Probe with a plain non-blocking read: when the bytes are already
    // there this costs one system call and no trip through the event loop
    // (an Asio operation completes through the scheduler, which runs
    // epoll_wait between handlers). When they are not, back off: the next
    // 1, 2, 4, 8 waits go straight to async_read_some, whose own read
    // attempt then is the only one.
    error_code pec;
    n = sock_.read_some(asio::buffer(scratch, size), pec);  // the socket is non-blocking
    if (pec != asio::error::would_block && pec != asio::error::try_again) {
      probe_backoff_ = 0;
      ec = pec;
      done = true;
    } else {
      n = 0;
      probe_backoff_ = static_cast<uint8_t>(std::min(8, std::max(1, probe_backoff_ * 2)));
      probe_skip_ = probe_backoff_;
    }
  } else {
    --probe_skip_;
  }
  if (!done) {
    n = co_await sock_.async_read_some(asio::buffer(scratch, size), asio::redirect_error(asio::use_awaitable, ec));
  }
  if (n > 0 && BIO_write(rbio_, scratch, static_cast<int>(n)) != static_cast<int>(n)) {
    ec = asio::error::no_memory;
  }
  // A small caller buffer (an idle head read uses 2 KiB) filled up: take
  // the rest the socket holds (a record of up to 16 KiB) in one more
  // non-blocking read, not many small ones. Synchronous, so one buffer per
  // thread serves every stream. Errors and EOF show on the next read.
  if (!ec && n == size && size < kBulkRead) {
    thread_local std::unique_ptr<char[]> bulk(new char[kBulkRead]);
    error_code more;
    n = sock_.read_some(asio::buffer(bulk.get(), kBulkRead), more);  // the socket is non-blocking
    if (!more && n > 0 && BIO_write(rbio_, bulk.get(), static_cast<int>(n)) != static_cast<int>(n)) {
      ec = asio::error::no_memory;
    }
  }
  // A peer that closes inside a record: eof, as from OpenSSL on a socket.
}

asio::awaitable<void> TlsStream::Handshake(Millis timeout, error_code& ec) {
  Arm(timer_, timeout);
  std::string scratch;
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
    if (scratch.empty()) scratch.resize(kHandshakeRead);
    co_await Serve(err, scratch.data(), scratch.size(), ec);
    if (ec) break;
  }
  Disarm(timer_);
  if (timed_out_) ec = asio::error::timed_out;
}

asio::awaitable<size_t> TlsStream::ReadSome(char* data, size_t size, Millis timeout, error_code& ec) {
  if (size == 0) co_return 0;
  const int want = static_cast<int>(std::min<size_t>(size, 1 << 30));
  bool armed = false;
  size_t n = 0;
  while (true) {
    // Decrypted data, or a whole record in the memory BIO: no system call.
    ERR_clear_error();
    errno = 0;
    const int r = SSL_read(ssl_, data, want);
    if (r > 0) {
      n = static_cast<size_t>(r);
      break;
    }
    const int err = SSL_get_error(ssl_, r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
      ec = SslFailure(err);
      break;
    }
    if (!armed) {
      Arm(timer_, timeout, kIdleBufferGrace);
      armed = true;
    }
    // The ciphertext goes through the caller's buffer (copied into the BIO
    // before SSL_read writes plaintext there).
    co_await Serve(err, data, size, ec);
    if (ec) break;
  }
  if (armed) {
    Disarm(timer_);
    if (timed_out_) ec = asio::error::timed_out;
  }
  co_return n;
}

asio::awaitable<void> TlsStream::WriteAll(std::string_view data, Millis timeout, error_code& ec) {
  bool armed = false;
  size_t off = 0;
  std::string scratch;  // WANT_READ while writing (a TLS 1.2 renegotiation): rare
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
    if (err == SSL_ERROR_WANT_READ && scratch.empty()) scratch.resize(4096);
    co_await Serve(err, scratch.data(), scratch.size(), ec);
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
