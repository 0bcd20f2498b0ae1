// HttpClient against tiny loopback servers made of plain sockets: a normal
// exchange, a server that never answers (the deadline fires), and a closed
// port.
#include "cli/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace osb::cli {
namespace {

// A listening socket on 127.0.0.1 with a kernel-chosen port.
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd, 4), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  ~Listener() {
    if (fd >= 0) ::close(fd);
  }
  ApiUrl Url() const { return *ParseApiUrl("http://127.0.0.1:" + std::to_string(port)); }
};

TEST(HttpClient, SendsTheRequestAndReadsTheResponse) {
  Listener listener;
  std::string received;
  std::thread server([&] {
    int conn = ::accept(listener.fd, nullptr, nullptr);
    char buf[4096];
    // Read until the end of the body ("{}" is the last thing sent).
    while (received.find("\r\n\r\n{\"a\":1}") == std::string::npos) {
      ssize_t n = ::read(conn, buf, sizeof(buf));
      if (n <= 0) break;
      received.append(buf, static_cast<size_t>(n));
    }
    std::string reply = "HTTP/1.1 201 Created\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{\"b\":2}";
    ASSERT_EQ(::write(conn, reply.data(), reply.size()), static_cast<ssize_t>(reply.size()));
    ::close(conn);
  });
  ApiUrl url = *ParseApiUrl("http://127.0.0.1:" + std::to_string(listener.port) + "/base");
  HttpRequest req{"POST", "/api/x", {{"X-API-Key", "k"}}, "{\"a\":1}"};
  auto res = HttpClient(url).Send(req);
  server.join();
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_EQ(res->status, 201);
  EXPECT_EQ(res->body, "{\"b\":2}");
  EXPECT_NE(received.find("POST /base/api/x HTTP/1.1\r\n"), std::string::npos) << received;
  EXPECT_NE(received.find("X-API-Key: k\r\n"), std::string::npos);
  EXPECT_NE(received.find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(received.find("Host: 127.0.0.1:" + std::to_string(listener.port) + "\r\n"), std::string::npos);
}

TEST(HttpClient, ASilentServerHitsTheDeadline) {
  Listener listener;  // the kernel completes the handshake; nobody ever reads
  HttpRequest req{"GET", "/api/projects", {}, "", std::chrono::milliseconds(200)};
  auto res = HttpClient(listener.Url()).Send(req);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(res.error().message.find("timed out"), std::string::npos) << res.error().message;
}

TEST(HttpClient, AClosedPortIsUnavailable) {
  ApiUrl url;
  {
    Listener listener;
    url = listener.Url();
  }  // closed: connecting is refused
  auto res = HttpClient(url).Send(HttpRequest{"GET", "/"});
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(res.error().message.find("cannot reach http://127.0.0.1:"), std::string::npos);
}

TEST(HttpClient, AnOversizedResponseIsRefused) {
  Listener listener;
  std::thread server([&] {
    int conn = ::accept(listener.fd, nullptr, nullptr);
    char buf[4096];
    (void)::read(conn, buf, sizeof(buf));
    std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " +
                       std::to_string(HttpClient::kMaxResponseBytes + 1) + "\r\n\r\n";
    (void)::write(conn, head.data(), head.size());
    ::shutdown(conn, SHUT_RDWR);
    ::close(conn);
  });
  auto res = HttpClient(listener.Url()).Send(HttpRequest{"GET", "/"});
  server.join();
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.error().code, ErrorCode::kTooLarge);
}

}  // namespace
}  // namespace osb::cli
