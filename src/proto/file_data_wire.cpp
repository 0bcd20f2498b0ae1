#include "proto/file_data_wire.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace osb::proto::filedata {
namespace {

constexpr char kMagic[4] = {'O', 'S', 'B', 'F'};

Error Fail(ErrorCode code, const std::string& what) {
  std::string detail;
  if (const unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    detail = std::string(": ") + buf;
  }
  ERR_clear_error();
  return MakeError(code, "file data port: " + what + detail);
}

// The socket under a connection's TLS: sends with MSG_NOSIGNAL (a peer that
// went away is an EPIPE error for this transfer, never a SIGPIPE for the
// whole process) and gathers the records of one SSL_write (16 KiB each) into
// sends of up to 256 KiB: one system call instead of sixteen. Conn flushes
// after every write; OpenSSL flushes during the handshake.
struct SockBio {
  int fd;
  std::string out;
};
constexpr size_t kSendBatchBytes = 256 << 10;

bool SendAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    const ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}
bool Flush(SockBio* b) {
  const bool ok = SendAll(b->fd, b->out.data(), b->out.size());
  b->out.clear();
  return ok;
}
int BioWrite(BIO* bio, const char* data, int len) {
  auto* b = static_cast<SockBio*>(BIO_get_data(bio));
  if (b->out.size() + static_cast<size_t>(len) > kSendBatchBytes && !Flush(b)) return -1;
  if (static_cast<size_t>(len) >= kSendBatchBytes) return SendAll(b->fd, data, static_cast<size_t>(len)) ? len : -1;
  b->out.append(data, static_cast<size_t>(len));
  return len;
}
int BioRead(BIO* bio, char* data, int len) {
  auto* b = static_cast<SockBio*>(BIO_get_data(bio));
  for (;;) {
    const ssize_t n = recv(b->fd, data, static_cast<size_t>(len), 0);
    if (n < 0 && errno == EINTR) continue;
    return static_cast<int>(n);
  }
}
long BioCtrl(BIO* bio, int cmd, long, void*) {
  if (cmd != BIO_CTRL_FLUSH) return 0;
  auto* b = static_cast<SockBio*>(BIO_get_data(bio));
  return b == nullptr || Flush(b) ? 1 : 0;
}
int BioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}
int BioDestroy(BIO* bio) {
  delete static_cast<SockBio*>(BIO_get_data(bio));
  BIO_set_data(bio, nullptr);
  return 1;
}

const BIO_METHOD* SocketMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "osb-file-data-socket");
    BIO_meth_set_write(m, BioWrite);
    BIO_meth_set_read(m, BioRead);
    BIO_meth_set_ctrl(m, BioCtrl);
    BIO_meth_set_create(m, BioCreate);
    BIO_meth_set_destroy(m, BioDestroy);
    return m;
  }();
  return method;
}

BIO* NewSocketBio(int fd) {
  BIO* bio = BIO_new(SocketMethod());
  if (bio != nullptr) BIO_set_data(bio, new SockBio{fd, {}});
  return bio;
}

void SetSocketTimeout(int fd, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Status CheckPeer(SSL* ssl, GrpcRole want) {
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return MakeError(ErrorCode::kUnauthenticated, "file data port: the peer sent no certificate");
  std::string pem;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    if (PEM_write_bio_X509(bio, cert) == 1) {
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio, &data);
      if (n > 0) pem.assign(data, static_cast<size_t>(n));
    }
    BIO_free(bio);
  }
  X509_free(cert);
  const auto role = CertificateRole(pem);
  if (role && *role == want) return {};
  return MakeError(ErrorCode::kUnauthenticated, std::string("file data port: the peer's certificate is not a ") +
                                                    RoleUnit(want) + " certificate (OU=" + RoleUnit(want) + ")");
}

void PutU16(std::string& out, size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

}  // namespace

Result<SslCtx> MakeContext(const GrpcTlsMaterial& tls, bool server) {
  SslCtx ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return Fail(ErrorCode::kInternal, "SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx.get(), 0);  // one connection per transfer: nothing to resume
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_AUTO_RETRY);
  // Bulk reads: take whole records and more per recv() (without read-ahead
  // OpenSSL makes two recv() calls per 16 KiB record).
  SSL_CTX_set_read_ahead(ctx.get(), 1);
  SSL_CTX_set_default_read_buffer_len(ctx.get(), 256 << 10);
  BIO* cert_bio = BIO_new_mem_buf(tls.cert_pem.data(), static_cast<int>(tls.cert_pem.size()));
  X509* cert = cert_bio ? PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(cert_bio);
  const bool cert_ok = cert != nullptr && SSL_CTX_use_certificate(ctx.get(), cert) == 1;
  X509_free(cert);
  if (!cert_ok) return Fail(ErrorCode::kInvalidArgument, "cannot use the certificate");
  BIO* key_bio = BIO_new_mem_buf(tls.key_pem.data(), static_cast<int>(tls.key_pem.size()));
  EVP_PKEY* key = key_bio ? PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(key_bio);
  const bool key_ok = key != nullptr && SSL_CTX_use_PrivateKey(ctx.get(), key) == 1;
  EVP_PKEY_free(key);
  if (!key_ok || SSL_CTX_check_private_key(ctx.get()) != 1) return Fail(ErrorCode::kInvalidArgument, "cannot use the key");
  // Trust exactly the CA given (not the system store).
  X509_STORE* store = X509_STORE_new();
  BIO* ca_bio = BIO_new_mem_buf(tls.ca_pem.data(), static_cast<int>(tls.ca_pem.size()));
  int added = 0;
  while (ca_bio != nullptr) {
    X509* ca = PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr);
    if (ca == nullptr) break;
    added += X509_STORE_add_cert(store, ca) == 1;
    X509_free(ca);
  }
  BIO_free(ca_bio);
  ERR_clear_error();  // the end of the PEM list
  if (added == 0) {
    X509_STORE_free(store);
    return Fail(ErrorCode::kInvalidArgument, "no CA certificate");
  }
  SSL_CTX_set_cert_store(ctx.get(), store);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  return ctx;
}

Conn::~Conn() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<Conn>> Conn::Accept(SSL_CTX* ctx, int fd, GrpcRole peer,
                                           std::chrono::milliseconds handshake_timeout) {
  SSL* ssl = SSL_new(ctx);
  std::unique_ptr<Conn> c(new Conn(fd, ssl));
  auto refuse = [&](Error e) {
    c->fd_ = -1;  // the caller keeps the socket on failure
    return e;
  };
  if (ssl == nullptr) return refuse(Fail(ErrorCode::kInternal, "SSL_new"));
  SetSocketTimeout(fd, handshake_timeout);
  BIO* bio = NewSocketBio(fd);
  if (bio == nullptr) return refuse(Fail(ErrorCode::kInternal, "BIO_new"));
  SSL_set_bio(ssl, bio, bio);
  if (SSL_accept(ssl) != 1) return refuse(Fail(ErrorCode::kUnauthenticated, "TLS handshake failed"));
  if (auto s = CheckPeer(ssl, peer); !s) return refuse(s.error());
  return c;
}

Result<std::unique_ptr<Conn>> Conn::Dial(SSL_CTX* ctx, const std::string& host, int port, GrpcRole peer,
                                         std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string bare = host.size() > 2 && host.front() == '[' && host.back() == ']'
                               ? host.substr(1, host.size() - 2)
                               : host;
  if (getaddrinfo(bare.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || res == nullptr)
    return MakeError(ErrorCode::kUnavailable, "file data port: cannot resolve " + bare);
  int fd = -1;
  int err = 0;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    SetSocketTimeout(fd, timeout);  // on Linux SO_SNDTIMEO bounds connect() too
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    err = errno;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    return MakeError(ErrorCode::kUnavailable, "file data port: cannot connect to " + bare + ":" +
                                                  std::to_string(port) + ": " + std::strerror(err));
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SSL* ssl = SSL_new(ctx);
  std::unique_ptr<Conn> c(new Conn(fd, ssl));
  if (ssl == nullptr) return Fail(ErrorCode::kInternal, "SSL_new");
  BIO* bio = NewSocketBio(fd);
  if (bio == nullptr) return Fail(ErrorCode::kInternal, "BIO_new");
  SSL_set_bio(ssl, bio, bio);
  // The worker's certificate must name the host we dialled, as gRPC checks.
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  in6_addr probe{};
  const bool is_ip = inet_pton(AF_INET, bare.c_str(), &probe) == 1 || inet_pton(AF_INET6, bare.c_str(), &probe) == 1;
  const int named = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, bare.c_str())
                          : X509_VERIFY_PARAM_set1_host(param, bare.c_str(), bare.size());
  if (named != 1) return Fail(ErrorCode::kInternal, "cannot set the expected peer name");
  if (!is_ip) SSL_set_tlsext_host_name(ssl, bare.c_str());
  if (SSL_connect(ssl) != 1) return Fail(ErrorCode::kUnavailable, "TLS handshake with " + bare + " failed");
  if (auto s = CheckPeer(ssl, peer); !s) return s.error();
  return c;
}

void Conn::SetTimeout(std::chrono::milliseconds t) { SetSocketTimeout(fd_, t); }

Status Conn::WriteAll(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    size_t n = 0;
    if (SSL_write_ex(ssl_, p, size, &n) != 1 || n == 0) {
      const int e = errno;
      return Fail(ErrorCode::kUnavailable,
                  std::string("write failed") + (e == EAGAIN ? " (timed out)" : e != 0 ? std::string(": ") + std::strerror(e) : ""));
    }
    p += n;
    size -= n;
  }
  if (BIO_flush(SSL_get_wbio(ssl_)) != 1) {
    const int e = errno;
    return Fail(ErrorCode::kUnavailable,
                std::string("write failed") + (e == EAGAIN ? " (timed out)" : e != 0 ? std::string(": ") + std::strerror(e) : ""));
  }
  return {};
}

Status Conn::ReadAll(void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    size_t n = 0;
    errno = 0;
    if (SSL_read_ex(ssl_, p, size, &n) != 1 || n == 0) {
      const int e = errno;
      return Fail(ErrorCode::kDataLoss,
                  std::string("the stream ended early") + (e == EAGAIN ? " (timed out)" : ""));
    }
    p += n;
    size -= n;
  }
  return {};
}

bool Conn::Readable() {
  if (SSL_pending(ssl_) > 0) return true;
  pollfd p{fd_, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

void Conn::Abort() { shutdown(fd_, SHUT_RDWR); }

std::string EncodeHeader(const Header& h) {
  std::string out(kMagic, sizeof kMagic);
  out.push_back(static_cast<char>(h.direction));
  out.append(reinterpret_cast<const char*>(h.ticket.data()), h.ticket.size());
  PutU16(out, h.sandbox_id.size());
  out += h.sandbox_id;
  PutU16(out, h.path.size());
  out += h.path;
  return out;
}

Result<Header> DecodeHeader(std::string_view wire, size_t* need) {
  auto u16 = [&](size_t at) {
    return (size_t{static_cast<unsigned char>(wire[at])} << 8) | static_cast<unsigned char>(wire[at + 1]);
  };
  auto more = [&](size_t n) -> Result<Header> {
    *need = n;
    return MakeError(ErrorCode::kDataLoss, "file data port: the header is incomplete");
  };
  *need = 0;
  constexpr size_t kFixed = sizeof kMagic + 1 + kTicketBytes + 2;
  if (wire.size() < kFixed) return more(kFixed);
  if (wire.substr(0, sizeof kMagic) != std::string_view(kMagic, sizeof kMagic))
    return MakeError(ErrorCode::kInvalidArgument, "file data port: not a file transfer");
  Header h;
  const char dir = wire[sizeof kMagic];
  if (dir != 'U' && dir != 'D') return MakeError(ErrorCode::kInvalidArgument, "file data port: direction must be U or D");
  h.direction = static_cast<Direction>(dir);
  std::memcpy(h.ticket.data(), wire.data() + sizeof kMagic + 1, kTicketBytes);
  const size_t id_len = u16(kFixed - 2);
  if (id_len == 0 || id_len > kMaxSandboxIdBytes)
    return MakeError(ErrorCode::kInvalidArgument, "file data port: sandbox_id: empty or too long");
  if (wire.size() < kFixed + id_len + 2) return more(kFixed + id_len + 2);
  h.sandbox_id.assign(wire.substr(kFixed, id_len));
  const size_t path_len = u16(kFixed + id_len);
  if (path_len == 0 || path_len > kMaxPathBytes)
    return MakeError(ErrorCode::kInvalidArgument, "file data port: path: empty or longer than 4096 bytes");
  const size_t total = kFixed + id_len + 2 + path_len;
  if (wire.size() < total) return more(total);
  if (wire.size() > total) return MakeError(ErrorCode::kInvalidArgument, "file data port: bytes after the header");
  h.path.assign(wire.substr(kFixed + id_len + 2, path_len));
  return h;
}

Status Conn::WriteHeader(const Header& h) {
  const std::string out = EncodeHeader(h);
  return WriteAll(out.data(), out.size());
}

Result<Header> Conn::ReadHeader() {
  // Read exactly what the header says it needs, never past it (the bytes
  // after it are the transfer's).
  std::string wire;
  size_t need = 0;
  for (;;) {
    auto h = DecodeHeader(wire, &need);
    if (h || need == 0) return h;
    const size_t have = wire.size();
    wire.resize(need);
    if (auto s = ReadAll(wire.data() + have, need - have); !s) return s.error();
  }
}

Status Conn::WriteError(const Error& e) {
  std::string out = "E";
  out.push_back(static_cast<char>(e.code));
  const std::string msg = e.message.substr(0, 4096);
  PutU16(out, msg.size());
  out += msg;
  return WriteAll(out.data(), out.size());
}

Status Conn::ReadStatus() {
  char tag = 0;
  if (auto s = ReadAll(&tag, 1); !s) return s.error();
  if (tag == 'K') return {};
  unsigned char head[3];
  if (tag != 'E') return MakeError(ErrorCode::kInternal, "file data port: malformed reply");
  if (auto s = ReadAll(head, 3); !s) return s.error();
  const size_t n = (size_t{head[1]} << 8) | head[2];
  std::string msg(n, '\0');
  if (auto s = ReadAll(msg.data(), n); !s) return s.error();
  const auto code = head[0] <= static_cast<unsigned char>(ErrorCode::kInternal) ? static_cast<ErrorCode>(head[0])
                                                                                : ErrorCode::kInternal;
  return MakeError(code, msg);
}

}  // namespace osb::proto::filedata
