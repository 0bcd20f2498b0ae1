// Small blocking-socket helpers shared by the benchmark programs (not the
// product: the proxy uses Asio). Header-only.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace osb::bench {

// Connects to "A.B.C.D:PORT" with TCP_NODELAY; -1 on failure.
inline int DialTcp(const std::string& hostport) {
  const auto colon = hostport.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(hostport.substr(colon + 1))));
  inet_pton(AF_INET, hostport.substr(0, colon).c_str(), &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Listens on addr (port picked by the kernel) and writes the port to
// port_file atomically (so a script can wait for it); -1 on failure.
inline int ListenAndPublishPort(const char* addr, const std::string& port_file) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  inet_pton(AF_INET, addr, &sa.sin_addr);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || listen(lfd, 4096) != 0) {
    perror("bind/listen");
    close(lfd);
    return -1;
  }
  socklen_t len = sizeof(sa);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
  std::ofstream(port_file + ".tmp") << ntohs(sa.sin_port) << "\n";
  rename((port_file + ".tmp").c_str(), port_file.c_str());
  return lfd;
}

// Accepts connections for ever, each with TCP_NODELAY, handing them to serve.
template <class Serve>
[[noreturn]] void AcceptLoop(int lfd, Serve serve) {
  int one = 1;
  while (true) {
    int fd = accept(lfd, nullptr, nullptr);
    if (fd < 0) continue;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    serve(fd);
  }
}

}  // namespace osb::bench
