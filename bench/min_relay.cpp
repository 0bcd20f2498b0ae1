// The cheapest TLS-terminating relay we can write, as a yardstick for the
// proxy's rate: thread per connection, blocking OpenSSL, no HTTP parsing,
// no substitution, no audit, no timeouts. Each client record is relayed to
// the upstream and the upstream's answer back, in lock step — valid only for
// the benchmark's small request/response exchanges (one record each way),
// which is all it is for. It shows what any proxy that terminates TLS on the
// same cores can reach here. Usage:
//   min_relay LISTEN_ADDR CERT KEY UPSTREAM_ADDR:PORT CA PORT_FILE
#include <openssl/ssl.h>

#include <cstdio>
#include <string>
#include <thread>

#include "bench_net.h"

namespace {

void Relay(SSL_CTX* server_ctx, SSL_CTX* client_ctx, int fd, std::string upstream) {
  SSL* down = SSL_new(server_ctx);
  SSL_set_fd(down, fd);
  SSL* up = nullptr;
  int ufd = -1;
  if (SSL_accept(down) == 1 && (ufd = osb::bench::DialTcp(upstream)) >= 0) {
    up = SSL_new(client_ctx);
    SSL_set_fd(up, ufd);
    SSL_set_tlsext_host_name(up, "api.test");
    if (SSL_connect(up) == 1) {
      char buf[16384];
      while (true) {
        int n = SSL_read(down, buf, sizeof(buf));
        if (n <= 0 || SSL_write(up, buf, n) <= 0) break;
        n = SSL_read(up, buf, sizeof(buf));
        if (n <= 0 || SSL_write(down, buf, n) <= 0) break;
      }
    }
  }
  if (up) SSL_free(up);
  if (ufd >= 0) close(ufd);
  SSL_free(down);
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: min_relay LISTEN_ADDR CERT KEY UPSTREAM_ADDR:PORT CA PORT_FILE\n");
    return 2;
  }
  SSL_CTX* server_ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  if (SSL_CTX_use_certificate_chain_file(server_ctx, argv[2]) != 1 ||
      SSL_CTX_use_PrivateKey_file(server_ctx, argv[3], SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(client_ctx, argv[5], nullptr) != 1) {
    fprintf(stderr, "cannot load cert/key/ca\n");
    return 2;
  }
  SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, nullptr);
  const int lfd = osb::bench::ListenAndPublishPort(argv[1], argv[6]);
  if (lfd < 0) return 2;
  const std::string upstream = argv[4];
  osb::bench::AcceptLoop(lfd, [&](int fd) { std::thread(Relay, server_ctx, client_ctx, fd, upstream).detach(); });
}
