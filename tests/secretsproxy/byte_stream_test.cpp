// TlsStream and PlainStream over real loopback sockets and real TLS: the
// read path (ciphertext read through Asio's reactor into the caller's
// buffer, fed to OpenSSL through a memory BIO), bytes already read before
// the handshake (the ClientHello the listener peeked for its SNI) at several
// split points, caller buffers of any size, and the lazily armed
// per-operation timer (deadlines, a shorter deadline after a longer one,
// idle buffer release during a pending read, no stale timeout afterwards).
#include "secretsproxy/byte_stream.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <random>

#include "secretsproxy/certificate_authority.h"

namespace osb::secretsproxy {
namespace {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr Millis kLong{10'000};
// Messages (named: GCC 12 mishandles string literals in co_await arguments).
const std::string kRequest = "GET / HTTP/1.1\r\n\r\n";
const std::string kPong = "pong";
const std::string kAbc = "abc";
const std::string kLate = "late";
const std::string kLast = "last";
const std::string kX = "x";
const std::string kY = "y";


// Runs `body` on a fresh io_context until it returns (or a test deadline).
void RunCoroutine(std::function<asio::awaitable<void>(asio::io_context&)> body) {
  asio::io_context io;
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await body(io);
        done = true;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run_for(std::chrono::seconds(60));
  ASSERT_TRUE(done) << "coroutine did not finish";
}

// A connected loopback TCP pair.
asio::awaitable<std::pair<tcp::socket, tcp::socket>> SocketPair(asio::io_context& io) {
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(io);
  co_await client.async_connect(acceptor.local_endpoint(), asio::use_awaitable);
  tcp::socket server = co_await acceptor.async_accept(asio::use_awaitable);
  client.set_option(tcp::no_delay(true));
  server.set_option(tcp::no_delay(true));
  co_return std::make_pair(std::move(client), std::move(server));
}

class TlsStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/osb_stream_test_XXXXXX";
    dir_ = fs::path(mkdtemp(tmpl));
    auto ca = CertificateAuthority::LoadOrCreate(dir_);
    ASSERT_TRUE(ca.ok());
    ca_ = std::move(*ca).release();
    auto ctx = ca_->ServerContextFor("stream.test");
    ASSERT_TRUE(ctx.ok());
    server_ctx_ = new std::shared_ptr<asio::ssl::context>(*ctx);
    client_ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(client_ctx_, SSL_VERIFY_NONE, nullptr);
  }
  static void TearDownTestSuite() {
    SSL_CTX_free(client_ctx_);
    delete server_ctx_;
    delete ca_;
    fs::remove_all(dir_);
  }

  // A handshaken pair (client, server). The server first reads `peek`
  // bytes of the ClientHello from the raw socket and hands them over as
  // the stream's initial bytes, as the listeners do.
  static asio::awaitable<std::pair<std::shared_ptr<TlsStream>, std::shared_ptr<TlsStream>>> Pair(
      asio::io_context& io, size_t peek = 0) {
    auto [c, s] = co_await SocketPair(io);
    auto client = std::make_shared<TlsStream>(std::move(c), client_ctx_, TlsStream::Role::kClient);
    SSL_set_tlsext_host_name(client->native(), "stream.test");
    error_code cec;
    bool client_done = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await client->Handshake(kLong, cec);
          client_done = true;
        },
        asio::detached);
    std::string initial(peek, '\0');
    if (peek > 0) co_await asio::async_read(s, asio::buffer(initial), asio::use_awaitable);
    auto server = std::make_shared<TlsStream>(std::move(s), (*server_ctx_)->native_handle(), TlsStream::Role::kServer,
                                              initial);
    error_code sec;
    co_await server->Handshake(kLong, sec);
    EXPECT_FALSE(sec) << sec.message();
    asio::steady_timer wait(io);
    while (!client_done) {
      wait.expires_after(Millis{1});
      co_await wait.async_wait(asio::use_awaitable);
    }
    EXPECT_FALSE(cec) << cec.message();
    co_return std::make_pair(client, server);
  }

  // Reads exactly n bytes through reads of `chunk` bytes.
  static asio::awaitable<std::string> ReadN(ByteStream& s, size_t n, size_t chunk) {
    std::string out;
    std::string buf(chunk, '\0');
    while (out.size() < n) {
      error_code ec;
      const size_t got = co_await s.ReadSome(buf.data(), std::min(chunk, n - out.size()), kLong, ec);
      if (got == 0) break;
      out.append(buf.data(), got);
    }
    co_return out;
  }

  static inline fs::path dir_;
  static inline CertificateAuthority* ca_ = nullptr;
  static inline std::shared_ptr<asio::ssl::context>* server_ctx_ = nullptr;
  static inline SSL_CTX* client_ctx_ = nullptr;
};

TEST_F(TlsStreamTest, ClientHelloBytesReadBeforeTheStreamAtAnySplit) {
  for (size_t peek : {size_t{0}, size_t{1}, size_t{5}, size_t{6}, size_t{64}, size_t{200}}) {
    RunCoroutine([peek](asio::io_context& io) -> asio::awaitable<void> {
      auto [client, server] = co_await Pair(io, peek);
      error_code ec;
      co_await client->WriteAll(kRequest, kLong, ec);
      EXPECT_FALSE(ec);
      // (GCC 12: never co_await inside a condition or a macro's expression.)
      const std::string request = co_await ReadN(*server, 18, 4096);
      EXPECT_EQ(request, kRequest) << "peek " << peek;
      co_await server->WriteAll(kPong, kLong, ec);
      const std::string reply = co_await ReadN(*client, 4, 4096);
      EXPECT_EQ(reply, "pong");
    });
  }
}

TEST_F(TlsStreamTest, LargeTransfersThroughCallerBuffersOfAnySize) {
  RunCoroutine([](asio::io_context& io) -> asio::awaitable<void> {
    auto [client, server] = co_await Pair(io);
    std::mt19937 rng(7);
    std::string data(1 << 20, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    // Ciphertext goes through the reader's buffer: 1-byte and odd sizes
    // must still make progress and deliver every byte in order.
    for (size_t chunk : {size_t{1}, size_t{7}, size_t{2048}, size_t{16384}, size_t{100000}}) {
      const size_t n = chunk == 1 ? 20000 : data.size();
      error_code ec;
      auto ex = co_await asio::this_coro::executor;
      std::string_view piece(data.data(), n);
      asio::co_spawn(
          ex,
          [client, piece]() -> asio::awaitable<void> {
            error_code wec;
            co_await client->WriteAll(piece, kLong, wec);
            EXPECT_FALSE(wec);
          },
          asio::detached);
      const std::string up = co_await ReadN(*server, n, chunk);
      EXPECT_TRUE(up == piece) << "chunk " << chunk;
      co_await server->WriteAll(piece.substr(0, 5000), kLong, ec);
      const std::string down = co_await ReadN(*client, 5000, chunk);
      EXPECT_TRUE(down == piece.substr(0, 5000)) << "chunk " << chunk;
    }
  });
}

TEST_F(TlsStreamTest, DeadlinesLongShortAndNoStaleTimeout) {
  RunCoroutine([](asio::io_context& io) -> asio::awaitable<void> {
    auto [client, server] = co_await Pair(io);
    char buf[256];
    error_code ec;
    // The handshake left a long wait outstanding on the timer: a shorter
    // deadline must still fire on time, not when that wait ends.
    auto t0 = Clock::now();
    size_t n = co_await server->ReadSome(buf, sizeof buf, Millis{60}, ec);
    auto took = Clock::now() - t0;
    EXPECT_EQ(n, 0u);
    EXPECT_EQ(ec, asio::error::timed_out);
    EXPECT_GE(took, Millis{60});
    EXPECT_LT(took, Millis{5000});
    // The stream stays usable, and a later operation is not cut by an old
    // deadline.
    co_await client->WriteAll(kAbc, kLong, ec);
    n = co_await server->ReadSome(buf, sizeof buf, kLong, ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(std::string(buf, n), "abc");
    asio::steady_timer later(io);
    later.expires_after(Millis{250});  // past the 60 ms deadline and the idle grace
    asio::co_spawn(
        io,
        [&later, client]() -> asio::awaitable<void> {
          co_await later.async_wait(asio::use_awaitable);
          error_code wec;
          co_await client->WriteAll(kLate, kLong, wec);
        },
        asio::detached);
    t0 = Clock::now();
    n = co_await server->ReadSome(buf, sizeof buf, Millis{5000}, ec);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(std::string(buf, n), "late");
    EXPECT_GE(Clock::now() - t0, Millis{200});
    // Timeouts again after a completed wait.
    n = co_await client->ReadSome(buf, sizeof buf, Millis{30}, ec);
    EXPECT_EQ(ec, asio::error::timed_out);
  });
}

TEST_F(TlsStreamTest, IdleBuffersReleasedDuringAPendingReadThenRefilled) {
  RunCoroutine([](asio::io_context& io) -> asio::awaitable<void> {
    auto [client, server] = co_await Pair(io);
    client->set_idle_peer(server);
    std::string big(64 * 1024, 'x');
    for (int round = 0; round < 3; ++round) {
      // Busy: large records fill OpenSSL's and the memory BIO's buffers.
      error_code ec;
      co_await server->WriteAll(big, kLong, ec);
      const std::string busy = co_await ReadN(*client, big.size(), 16384);
      EXPECT_EQ(busy.size(), big.size());
      // Idle past kIdleBufferGrace with a read pending, then more data.
      asio::steady_timer later(io);
      later.expires_after(ByteStream::kIdleBufferGrace * 3);
      asio::co_spawn(
          io,
          [&later, server, &big]() -> asio::awaitable<void> {
            co_await later.async_wait(asio::use_awaitable);
            error_code wec;
            co_await server->WriteAll(big, kLong, wec);
          },
          asio::detached);
      const std::string got = co_await ReadN(*client, big.size(), 16384);
      EXPECT_EQ(got, big) << "round " << round;
    }
  });
}

TEST_F(TlsStreamTest, PeerCloseIsEof) {
  RunCoroutine([](asio::io_context& io) -> asio::awaitable<void> {
    auto [client, server] = co_await Pair(io);
    error_code ec;
    co_await client->WriteAll(kLast, kLong, ec);
    co_await client->GracefulClose();
    char buf[64];
    size_t n = co_await server->ReadSome(buf, sizeof buf, kLong, ec);
    EXPECT_EQ(std::string(buf, n), "last");
    n = co_await server->ReadSome(buf, sizeof buf, kLong, ec);
    EXPECT_EQ(n, 0u);
    EXPECT_EQ(ec, asio::error::eof);
  });
}

TEST(PlainStreamTest, DeadlineAfterALongerOneAndData) {
  RunCoroutine([](asio::io_context& io) -> asio::awaitable<void> {
    auto [c, s] = co_await SocketPair(io);
    auto client = std::make_shared<PlainStream>(std::move(c));
    auto server = std::make_shared<PlainStream>(std::move(s));
    error_code ec;
    char buf[64];
    co_await client->WriteAll(kX, kLong, ec);
    size_t n = co_await server->ReadSome(buf, sizeof buf, kLong, ec);  // leaves a 10 s wait outstanding
    EXPECT_EQ(n, 1u);
    const auto t0 = Clock::now();
    n = co_await server->ReadSome(buf, sizeof buf, Millis{50}, ec);
    EXPECT_EQ(ec, asio::error::timed_out);
    EXPECT_LT(Clock::now() - t0, Millis{5000});
    co_await client->WriteAll(kY, kLong, ec);
    n = co_await server->ReadSome(buf, sizeof buf, kLong, ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(std::string(buf, n), "y");
  });
}

}  // namespace
}  // namespace osb::secretsproxy
