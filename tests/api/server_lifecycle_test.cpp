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
  router->Add("GET", "/slow", [&](Request&) {
    entered.set_value();
    released.wait();
    Response r;
    r.body = "{\"done\":true}";
    return r;
  });
  router->Add("GET", "/fast", [](Request&) { return Response{200, "{}"}; });
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
