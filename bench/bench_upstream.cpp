// A small fast TLS HTTP/1.1 upstream for benchmarks: keep-alive, consumes
// any Content-Length or chunked body, answers {"bytes":N}. Thread per
// connection, blocking OpenSSL. Usage:
//   bench_upstream ADDR CERT KEY PORT_FILE
#include <openssl/ssl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include "bench_net.h"
#include "secretsproxy/chunked.h"
#include "secretsproxy/http_message.h"

using namespace osb::secretsproxy;

namespace {

bool ReadMore(SSL* ssl, std::string& buf) {
  char tmp[65536];
  int n = SSL_read(ssl, tmp, sizeof(tmp));
  if (n <= 0) return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

void Serve(SSL_CTX* ctx, int fd) {
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  std::string buf;
  if (SSL_accept(ssl) == 1) {
    HeadLimits limits{1 << 20, 1 << 20, 1000};
    while (true) {
      RequestHead head;
      ParseOutcome r;
      while ((r = ParseRequestHead(buf, limits, &head)).status == ParseStatus::kNeedMore) {
        if (!ReadMore(ssl, buf)) goto done;
      }
      if (r.status != ParseStatus::kComplete) break;
      buf.erase(0, r.consumed);
      BodyFraming f;
      if (AnalyzeRequestFraming(head, &f)) break;
      uint64_t bytes = 0;
      if (f.kind == BodyFraming::kContentLength) {
        uint64_t left = f.length;
        while (left > 0) {
          if (buf.empty() && !ReadMore(ssl, buf)) goto done;
          const size_t take = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
          buf.erase(0, take);
          left -= take;
          bytes += take;
        }
      } else if (f.kind == BodyFraming::kChunked) {
        ChunkedDecoder dec;
        std::string data;
        while (true) {
          size_t consumed = 0;
          data.clear();
          auto st = dec.Decode(buf, &consumed, &data);
          buf.erase(0, consumed);
          bytes += data.size();
          if (st == ChunkedDecoder::Status::kDone) break;
          if (st == ChunkedDecoder::Status::kBad || !ReadMore(ssl, buf)) goto done;
        }
      }
      const std::string body = "{\"bytes\":" + std::to_string(bytes) + "}";
      const std::string resp =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n\r\n" + body;
      if (SSL_write(ssl, resp.data(), static_cast<int>(resp.size())) <= 0) break;
    }
  }
done:
  SSL_free(ssl);
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: bench_upstream ADDR CERT KEY PORT_FILE\n");
    return 2;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
    fprintf(stderr, "cannot load cert/key\n");
    return 2;
  }
  const int lfd = osb::bench::ListenAndPublishPort(argv[1], argv[4]);
  if (lfd < 0) return 2;
  osb::bench::AcceptLoop(lfd, [&](int fd) { std::thread(Serve, ctx, fd).detach(); });
}
