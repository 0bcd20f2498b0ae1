// The cheapest program we can write that moves one file along the product's
// chain — HTTP from curl, mutual TLS 1.3 between an "API" and a "worker", a
// UNIX socket to a "helper" that splices into the file (upload), the worker
// reading the file itself (download, as with the product's helper's
// read-only descriptor) —
// as a yardstick for the product's file throughput (bench/files_bench.py),
// like min_relay is for the proxy. Blocking sockets, one thread per box,
// 1 MiB buffers, OpenSSL read-ahead, TLS records sent 256 KiB at a time; no authentication, no gRPC grant, no
// framing, no namespaces, no error handling beyond giving up. It serves
// exactly one transfer and exits. Usage:
//   min_file_chain upload|download FILE CA CERT KEY PORT_FILE
// upload: PUT (Content-Length, Expect: 100-continue) writes FILE;
// download: GET answers with FILE.
#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_net.h"

namespace {

constexpr size_t kPiece = 1 << 20;

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "min_file_chain: %s\n", what);
  std::exit(1);
}

void WriteAllFd(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w <= 0) Die("write");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void SslWriteAll(SSL* s, const char* p, size_t n) {
  size_t w = 0;
  if (SSL_write_ex(s, p, n, &w) != 1 || w != n || BIO_flush(SSL_get_wbio(s)) != 1) Die("SSL_write");
}

// TLS over fd, its records gathered into sends of up to 256 KiB (one
// system call per sixteen 16 KiB records; SslWriteAll flushes).
SSL* NewSsl(SSL_CTX* ctx, int fd) {
  SSL* s = SSL_new(ctx);
  BIO* sock = BIO_new_socket(fd, BIO_NOCLOSE);
  BIO* batch = BIO_new(BIO_f_buffer());
  BIO_set_write_buffer_size(batch, 256 << 10);
  BIO_push(batch, sock);
  BIO_up_ref(sock);
  SSL_set_bio(s, sock, batch);
  return s;
}

// Fills up to `want` bytes from TLS (several records); 0 at the end.
size_t SslRead(SSL* s, char* p, size_t want) {
  size_t got = 0;
  while (got < want) {
    size_t n = 0;
    if (SSL_read_ex(s, p + got, want - got, &n) != 1) break;
    got += n;
    if (SSL_pending(s) == 0 && got >= want / 2) break;
  }
  return got;
}

void SslReadExact(SSL* s, char* p, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t r = 0;
    if (SSL_read_ex(s, p + got, n - got, &r) != 1) Die("SSL_read");
    got += r;
  }
}

SSL_CTX* Context(bool server, const char* ca, const char* cert, const char* key) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, 256 << 10);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(ctx, ca, nullptr) != 1)
    Die("cannot load cert/key/ca");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

// The HTTP request head from curl; returns it (and any body bytes after it in `rest`).
std::string ReadHead(int fd, std::string& rest) {
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) Die("request head");
    head.append(buf, static_cast<size_t>(n));
  }
  const size_t end = head.find("\r\n\r\n") + 4;
  rest = head.substr(end);
  head.resize(end);
  return head;
}

uint64_t ContentLength(const std::string& head) {
  const char* p = strcasestr(head.c_str(), "\r\ncontent-length:");
  if (p == nullptr) Die("no Content-Length");
  return std::strtoull(p + 17, nullptr, 10);
}

// The helper: splices from the socket into the file, like the product's
// file helper does for an upload. (For a download the product's helper hands
// the worker a read-only descriptor of the file, so there is no helper hop.)
void Helper(int sock, const char* path) {
  {
    const int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int pipefd[2];
    if (fd < 0 || pipe(pipefd) != 0) Die("helper open");
    fcntl(pipefd[1], F_SETPIPE_SZ, kPiece);
    while (true) {
      const ssize_t in = splice(sock, nullptr, pipefd[1], nullptr, kPiece, SPLICE_F_MOVE);
      if (in < 0) Die("splice in");
      if (in == 0) break;
      for (ssize_t left = in; left > 0;) {
        const ssize_t out = splice(pipefd[0], nullptr, fd, nullptr, static_cast<size_t>(left), SPLICE_F_MOVE);
        if (out <= 0) Die("splice out");
        left -= out;
      }
    }
    close(fd);
    WriteAllFd(sock, "k", 1);  // stored
  }
  close(sock);
}

// The worker: TLS on one side, the helper's socket (upload) or the file
// (download) on the other.
void Worker(bool upload, SSL_CTX* ctx, int lfd, int helper, const char* path) {
  const int fd = accept(lfd, nullptr, nullptr);
  SSL* s = NewSsl(ctx, fd);
  if (SSL_accept(s) != 1) Die("worker handshake");
  std::vector<char> buf(kPiece);
  if (upload) {
    uint64_t size = 0;
    SslReadExact(s, reinterpret_cast<char*>(&size), sizeof size);
    for (uint64_t got = 0; got < size;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kPiece, size - got));
      SslReadExact(s, buf.data(), n);
      WriteAllFd(helper, buf.data(), n);
      got += n;
    }
    shutdown(helper, SHUT_WR);
    char ack = 0;
    if (read(helper, &ack, 1) != 1) Die("helper ack");
    SslWriteAll(s, &ack, 1);
  } else {
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || fstat(fd, &st) != 0) Die("worker open");
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    SslWriteAll(s, reinterpret_cast<const char*>(&size), sizeof size);
    while (true) {
      const ssize_t n = read(fd, buf.data(), kPiece);
      if (n < 0) Die("worker read");
      if (n == 0) break;
      SslWriteAll(s, buf.data(), static_cast<size_t>(n));
    }
    close(fd);
  }
  SSL_shutdown(s);
  SSL_free(s);
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7 || (std::strcmp(argv[1], "upload") != 0 && std::strcmp(argv[1], "download") != 0)) {
    std::fprintf(stderr, "usage: min_file_chain upload|download FILE CA CERT KEY PORT_FILE\n");
    return 2;
  }
  const bool upload = std::strcmp(argv[1], "upload") == 0;
  SSL_CTX* server_ctx = Context(true, argv[3], argv[4], argv[5]);
  SSL_CTX* client_ctx = Context(false, argv[3], argv[4], argv[5]);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) Die("socketpair");
  const int worker_lfd = osb::bench::ListenAndPublishPort("127.0.0.1", std::string(argv[6]) + ".worker");
  std::thread helper;
  if (upload) helper = std::thread(Helper, pair[1], argv[2]);
  std::thread worker(Worker, upload, server_ctx, worker_lfd, pair[0], argv[2]);

  // The API: one HTTP exchange with curl, the body through TLS to the worker.
  const int lfd = osb::bench::ListenAndPublishPort("127.0.0.1", argv[6]);
  if (lfd < 0 || worker_lfd < 0) Die("listen");
  const int client = accept(lfd, nullptr, nullptr);
  std::string rest;
  const std::string head = ReadHead(client, rest);
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  getsockname(worker_lfd, reinterpret_cast<sockaddr*>(&sa), &len);
  const int wfd = osb::bench::DialTcp("127.0.0.1:" + std::to_string(ntohs(sa.sin_port)));
  SSL* s = NewSsl(client_ctx, wfd);
  if (SSL_connect(s) != 1) Die("api handshake");
  std::vector<char> buf(kPiece);
  if (upload) {
    const uint64_t size = ContentLength(head);
    if (strcasestr(head.c_str(), "\r\nexpect: 100-continue") != nullptr) {
      const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      WriteAllFd(client, cont, sizeof cont - 1);
    }
    SslWriteAll(s, reinterpret_cast<const char*>(&size), sizeof size);
    if (!rest.empty()) SslWriteAll(s, rest.data(), rest.size());
    for (uint64_t got = rest.size(); got < size;) {
      // Whole 1 MiB pieces, as the product reads them.
      const ssize_t n = recv(client, buf.data(), static_cast<size_t>(std::min<uint64_t>(kPiece, size - got)), MSG_WAITALL);
      if (n <= 0) Die("api: short body");
      SslWriteAll(s, buf.data(), static_cast<size_t>(n));
      got += static_cast<uint64_t>(n);
    }
    char ack = 0;
    SslReadExact(s, &ack, 1);
    const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    WriteAllFd(client, ok, sizeof ok - 1);
  } else {
    uint64_t size = 0;
    SslReadExact(s, reinterpret_cast<char*>(&size), sizeof size);
    const std::string ok = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                           std::to_string(size) + "\r\nConnection: close\r\n\r\n";
    WriteAllFd(client, ok.data(), ok.size());
    for (uint64_t got = 0; got < size;) {
      const size_t n = SslRead(s, buf.data(), static_cast<size_t>(std::min<uint64_t>(kPiece, size - got)));
      if (n == 0) Die("api: short download");
      WriteAllFd(client, buf.data(), n);
      got += n;
    }
  }
  worker.join();
  if (helper.joinable()) helper.join();
  close(client);
  return 0;
}
