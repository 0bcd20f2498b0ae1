// The worker's file data port (issue 15 benchmarks): file bytes between the
// control plane and a worker outside gRPC's message path. WorkerFileTransfers.Open
// (worker.proto) authorises a transfer and returns a ticket; the bytes then
// flow on one blocking mutual-TLS 1.3 connection per transfer:
//
//   client -> worker  "OSBF" DIR TICKET[32] u16 len SANDBOX_ID u16 len PATH
//                     (DIR = 'U' upload, 'D' download; integers big-endian)
//   worker -> client  'K' (accepted) | ERROR
//   upload:   client -> worker  { u32 len (1..1 MiB) BYTES }* u32 0
//             worker -> client  'K' i64 SIZE (committed) | ERROR
//             (a connection that ends before the u32 0 commits nothing)
//   download: worker -> client  exactly SIZE (from the grant) bytes
//   ERROR = 'E' u8 ErrorCode u16 len MESSAGE
//
// The peer must present a certificate of the expected role (the worker
// accepts only control-plane certificates, the control plane dials only
// worker certificates), as on gRPC (tls_credentials.h).
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "proto/tls_credentials.h"

namespace osb::proto::filedata {

constexpr size_t kTicketBytes = 32;
constexpr size_t kMaxFrameBytes = 1 << 20;
constexpr size_t kMaxSandboxIdBytes = 128;
constexpr size_t kMaxPathBytes = 4096;
using Ticket = std::array<unsigned char, kTicketBytes>;

enum class Direction : char { kUpload = 'U', kDownload = 'D' };

struct Header {
  Direction direction = Direction::kUpload;
  Ticket ticket{};
  std::string sandbox_id;
  std::string path;
};

// The header as bytes, and back. DecodeHeader: the header when `wire` is
// exactly one; when it is a valid beginning, an error with *need set to the
// length to read next (> wire.size()); any other error: *need = 0.
std::string EncodeHeader(const Header& h);
Result<Header> DecodeHeader(std::string_view wire, size_t* need);

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using SslCtx = std::unique_ptr<SSL_CTX, SslCtxFree>;

// A TLS 1.3-only context with our certificate, trusting only the CA in
// `tls`, requiring the peer's certificate (both sides).
Result<SslCtx> MakeContext(const GrpcTlsMaterial& tls, bool server);

// One blocking TLS connection (owns the socket). Every read and write is
// bounded by the socket's timeouts (SetTimeout).
class Conn {
 public:
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Server side: the TLS handshake on an accepted socket, then the peer's
  // role. Takes the socket over on success; on failure the caller keeps it.
  static Result<std::unique_ptr<Conn>> Accept(SSL_CTX* ctx, int fd, GrpcRole peer,
                                              std::chrono::milliseconds handshake_timeout);
  // Client side: TCP connect to host:port, the handshake (the server's
  // certificate must name `host`), then the peer's role.
  static Result<std::unique_ptr<Conn>> Dial(SSL_CTX* ctx, const std::string& host, int port, GrpcRole peer,
                                            std::chrono::milliseconds timeout);

  void SetTimeout(std::chrono::milliseconds t);
  Status WriteAll(const void* data, size_t size);
  Status ReadAll(void* data, size_t size);  // kDataLoss on a short stream
  // True when bytes (or the end) can be read without blocking.
  bool Readable();
  // Shuts the socket down (unblocks a thread in a read or write).
  void Abort();

  Status WriteHeader(const Header& h);
  Result<Header> ReadHeader();
  Status WriteError(const Error& e);
  // Reads 'K' (ok) or an ERROR record, returned as the error.
  Status ReadStatus();

 private:
  Conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  int fd_;
  SSL* ssl_;
};

}  // namespace osb::proto::filedata
