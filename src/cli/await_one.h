// The CLI's one way to run a single Asio operation synchronously (the HTTP
// and WebSocket clients): runs `io` until the operation started by `start`
// completes and returns its error code. Callers bound every operation (a
// stream's expiry, a timer). No C++20 coroutines: Boost 1.74's Asio does
// not enable them under clang 14, which the fuzz build uses.
#pragma once

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/error.hpp>

namespace osb::cli {

template <typename Start>
boost::beast::error_code AwaitOne(boost::asio::io_context& io, Start&& start) {
  boost::beast::error_code result = boost::asio::error::would_block;
  bool done = false;
  start([&result, &done](boost::beast::error_code ec, auto&&...) {
    result = ec;
    done = true;
  });
  io.restart();
  while (!done && io.run_one() > 0) {
  }
  return done ? result : boost::beast::error_code(boost::asio::error::operation_aborted);
}

}  // namespace osb::cli
