// HttpServer lifecycle: graceful shutdown lets an in-flight request finish
// and closes idle keep-alive connections; handlers run off the I/O threads.
#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <future>
#include <thread>

#include "api/http_server.h"
#include "api_harness.h"

namespace osb::api {
namespace {

TEST(HttpServerLifecycle, GracefulShutdownFinishesInFlightRequests) {
  std::promise<void> entered, release;
  auto released = release.get_future().share();
  auto router = std::make_shared<Router>();
  router->AddPublic("GET", "/slow", [&](Request&) {
    entered.set_value();
    released.wait();
    Response r;
    r.body = "{\"done\":true}";
    return r;
  });
  router->AddPublic("GET", "/fast", [](Request&) { return Response{200, "{}"}; });
  HttpServerOptions options;
  options.port = 0;
  options.io_threads = 1;  // a blocked handler must not block other connections
  HttpServer server(options, router);
  ASSERT_TRUE(server.Start().ok());

  // An idle keep-alive connection, to be closed by the shutdown.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket idle(ioc);
  idle.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});

  auto slow = std::async(std::launch::async, [&] {
    testing::HttpClient c(server.port());
    return c.Do("GET", "/slow");
  });
  entered.get_future().wait();
  // While /slow blocks a handler thread, other requests are still served.
  testing::HttpClient c(server.port());
  EXPECT_EQ(c.Do("GET", "/fast").status, 200);

  server.Stop();
  release.set_value();
  auto result = slow.get();
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "{\"done\":true}");
  EXPECT_EQ(result.headers["connection"], "close");
  server.Wait();

  // The idle connection was closed by the server (EOF, not a hang).
  boost::system::error_code ec;
  char byte;
  boost::asio::read(idle, boost::asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) << ec.message();
}

TEST(HttpServerLifecycle, IdleAndSlowConnectionsAreClosedByTimeouts) {
  HttpServerOptions options;
  options.port = 0;
  options.idle_timeout = std::chrono::seconds(1);
  options.io_timeout = std::chrono::seconds(1);
  HttpServer server(options, std::make_shared<Router>());
  ASSERT_TRUE(server.Start().ok());
  boost::asio::io_context ioc;
  // Idle: never sends anything. Slow: sends half a request line.
  boost::asio::ip::tcp::socket idle(ioc), slow(ioc);
  idle.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
  slow.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
  boost::asio::write(slow, boost::asio::buffer(std::string("GET /healthz HT")));
  for (auto* sock : {&idle, &slow}) {
    boost::system::error_code ec;
    char byte;
    // Blocks until the server closes the connection (its timeout fires).
    boost::asio::read(*sock, boost::asio::buffer(&byte, 1), ec);
    EXPECT_TRUE(ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) << ec.message();
  }
}

TEST(HttpServerLifecycle, RefusesABadAddress) {
  HttpServerOptions options;
  options.host = "not-an-ip";
  HttpServer server(options, std::make_shared<Router>());
  EXPECT_EQ(server.Start().error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace osb::api

namespace osb::api {
namespace {

// A flood of idle connections cannot take the server down: beyond
// max_connections a new client gets a clear 503 at once, and capacity comes
// back as connections close.
TEST(HttpServerLifecycle, ConnectionsBeyondTheLimitGetA503) {
  auto router = std::make_shared<Router>();
  router->AddPublic("GET", "/ok", [](Request&) { return Response{200, "{}"}; });
  HttpServerOptions options;
  options.port = 0;
  options.max_connections = 2;
  HttpServer server(options, router);
  ASSERT_TRUE(server.Start().ok());

  // Two keep-alive connections, each proven registered by a served request.
  boost::asio::io_context ioc;
  const boost::asio::ip::tcp::endpoint ep{boost::asio::ip::make_address("127.0.0.1"), server.port()};
  auto open_served = [&] {
    auto s = std::make_unique<boost::asio::ip::tcp::socket>(ioc);
    s->connect(ep);
    const std::string req = "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n";
    boost::asio::write(*s, boost::asio::buffer(req));
    std::string got;
    char buf[4096];
    while (got.find("\r\n\r\n{}") == std::string::npos) got.append(buf, s->read_some(boost::asio::buffer(buf)));
    EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
    return s;
  };
  auto first = open_served();
  auto second = open_served();

  // The third is refused with a 503 JSON body and closed.
  boost::asio::ip::tcp::socket third(ioc);
  third.connect(ep);
  std::string refused;
  boost::system::error_code ec;
  char buf[4096];
  for (size_t n; (n = third.read_some(boost::asio::buffer(buf), ec)) > 0;) refused.append(buf, n);
  EXPECT_EQ(ec, boost::asio::error::eof);
  EXPECT_EQ(refused.rfind("HTTP/1.1 503 ", 0), 0u) << refused;
  EXPECT_NE(refused.find("Retry-After: 1"), std::string::npos);
  EXPECT_NE(refused.find("{\"error\":\"server busy: too many open connections\"}"), std::string::npos);

  // Closing one frees a slot (the server notices the close on its own time:
  // poll until a new connection is served).
  first->close();
  bool served = false;
  for (int attempt = 0; attempt < 500 && !served; ++attempt) {
    testing::HttpClient c(server.port());
    served = c.Do("GET", "/ok").status == 200;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(served);
  server.Stop();
  server.Wait();
}

}  // namespace
}  // namespace osb::api
