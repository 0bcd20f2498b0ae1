#include "worker/file_data_port.h"

#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "proto/file_data_wire.h"
#include "proto/status_mapping.h"
#include "worker/request_validation.h"

namespace osb::worker {

namespace fd = proto::filedata;
using Clock = std::chrono::steady_clock;

namespace {

// A transfer authorised by Open, waiting for its data connection.
struct Pending {
  fd::Ticket ticket{};
  fd::Direction direction = fd::Direction::kUpload;
  std::string sandbox_id;
  std::string path;
  Clock::time_point expires;
  std::unique_ptr<sandbox::SandboxRuntime::FileUpload> upload;  // dropped = temp file removed
  int file = -1;                                                // download
  int64_t size = 0;
  Pending() = default;
  Pending(Pending&& o) noexcept
      : ticket(o.ticket), direction(o.direction), sandbox_id(std::move(o.sandbox_id)), path(std::move(o.path)),
        expires(o.expires), upload(std::move(o.upload)), file(std::exchange(o.file, -1)), size(o.size) {}
  Pending& operator=(Pending&& o) noexcept {
    if (this != &o) {
      if (file >= 0) close(file);
      ticket = o.ticket;
      direction = o.direction;
      sandbox_id = std::move(o.sandbox_id);
      path = std::move(o.path);
      expires = o.expires;
      upload = std::move(o.upload);
      file = std::exchange(o.file, -1);
      size = o.size;
    }
    return *this;
  }
  ~Pending() {
    if (file >= 0) close(file);
  }
};

}  // namespace

struct FileDataPort::Impl {
  sandbox::SandboxRuntime& runtime;
  FileDataPortOptions opt;
  fd::SslCtx ctx;
  int listen_fd = -1;
  int wake_fd = -1;
  int port = 0;
  std::thread acceptor;

  std::mutex mu;
  std::condition_variable idle;
  std::vector<Pending> pending;
  std::set<int> live;  // sockets of connections being served
  bool stopping = false;

  Impl(sandbox::SandboxRuntime& r, FileDataPortOptions o) : runtime(r), opt(std::move(o)) {}

  void SweepLocked(Clock::time_point now) {
    pending.erase(std::remove_if(pending.begin(), pending.end(), [&](const Pending& p) { return p.expires <= now; }),
                  pending.end());
  }

  // The transfer a header names: consumed whatever the outcome.
  Result<Pending> Take(const fd::Header& h) {
    Pending p;  // destroyed outside the lock on refusal (an upload's cleanup talks to the helper)
    bool found = false;
    {
      std::lock_guard lock(mu);
      std::optional<size_t> hit;
      for (size_t i = 0; i < pending.size(); ++i) {
        // Every entry compared in constant time; no early exit.
        if (CRYPTO_memcmp(pending[i].ticket.data(), h.ticket.data(), h.ticket.size()) == 0) hit = i;
      }
      if (hit) {
        found = true;
        p = std::move(pending[*hit]);
        pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(*hit));
      }
    }
    if (!found || p.expires <= Clock::now())
      return MakeError(ErrorCode::kUnauthenticated, "file data port: unknown, used or expired ticket");
    if (p.direction != h.direction || p.sandbox_id != h.sandbox_id || p.path != h.path)
      return MakeError(ErrorCode::kUnauthenticated,
                       "file data port: the ticket was issued for another sandbox, path or direction");
    return p;
  }

  void AcceptLoop() {
    for (;;) {
      pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
      const int n = poll(fds, 2, 1000);
      {
        std::vector<Pending> expired;
        std::lock_guard lock(mu);
        if (stopping) return;
        const auto now = Clock::now();
        for (auto& p : pending)
          if (p.expires <= now) expired.push_back(std::move(p));
        SweepLocked(now);
      }
      if (n <= 0 || !(fds[0].revents & POLLIN)) continue;
      const int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));  // back off: no spin on a full fd table
        }
        continue;
      }
      std::lock_guard lock(mu);
      if (live.size() >= opt.max_connections) {
        close(c);  // over the cap: refused before any handshake work
        continue;
      }
      live.insert(c);
      std::thread([this, c] { Serve(c); }).detach();
    }
  }

  void Serve(int sock) {
    auto conn = fd::Conn::Accept(ctx.get(), sock, proto::GrpcRole::kControlPlane, opt.handshake_timeout);
    if (!conn) {
      spdlog::debug("file data port: refused a connection: {}", conn.error().message);
      Finish(sock, nullptr);
      return;
    }
    auto& c = **conn;
    auto st = Transfer(c);
    if (!st) spdlog::info("file data port: transfer failed: {}", st.error().message);
    Finish(sock, std::move(*conn));
  }

  void Finish(int sock, std::unique_ptr<fd::Conn> conn) {
    std::lock_guard lock(mu);
    live.erase(sock);
    if (conn) conn.reset();  // closes sock (still reserved: removed from `live` under the same lock)
    else close(sock);
    if (live.empty()) idle.notify_all();
  }

  // After an error record, let a client still sending see it: stop
  // reading frames, drain (bounded) so its writes complete, then close.
  static void Drain(fd::Conn& c) {
    c.SetTimeout(std::chrono::milliseconds(2000));
    std::vector<char> sink(64 << 10);
    for (size_t drained = 0; drained < (8u << 20); drained += sink.size()) {
      if (!c.ReadAll(sink.data(), sink.size())) break;  // the end, or 2 s of silence
    }
  }

  Status Reply(fd::Conn& c, const Error& e) {
    (void)c.WriteError(e);
    return e;
  }

  Status Transfer(fd::Conn& c) {
    auto h = c.ReadHeader();
    if (!h) return Reply(c, h.error());
    auto p = Take(*h);
    if (!p) return Reply(c, p.error());
    c.SetTimeout(opt.idle_timeout);
    if (auto s = c.WriteAll("K", 1); !s) return s;
    std::string buf(fd::kMaxFrameBytes, '\0');
    if (p->direction == fd::Direction::kDownload) {
      int64_t sent = 0;
      while (sent < p->size) {
        const size_t want = static_cast<size_t>(std::min<int64_t>(fd::kMaxFrameBytes, p->size - sent));
        const ssize_t n = read(p->file, buf.data(), want);
        if (n < 0 && errno == EINTR) continue;
        // Closing early tells the client: it expects exactly `size` bytes.
        if (n < 0) return MakeError(ErrorCode::kInternal, std::string("download: read failed: ") + std::strerror(errno));
        if (n == 0) return MakeError(ErrorCode::kDataLoss, "download: " + p->path + " shrank while being read");
        if (auto s = c.WriteAll(buf.data(), static_cast<size_t>(n)); !s) return s;
        sent += n;
      }
      return {};
    }
    for (;;) {
      unsigned char len_bytes[4];
      if (auto s = c.ReadAll(len_bytes, 4); !s) return s;  // no end frame: nothing committed
      const size_t len = (size_t{len_bytes[0]} << 24) | (size_t{len_bytes[1]} << 16) | (size_t{len_bytes[2]} << 8) |
                         size_t{len_bytes[3]};
      if (len == 0) break;
      if (len > fd::kMaxFrameBytes) {
        auto st = Reply(c, MakeError(ErrorCode::kInvalidArgument, "upload: frame larger than 1 MiB"));
        Drain(c);
        return st;
      }
      if (auto s = c.ReadAll(buf.data(), len); !s) return s;
      if (auto s = p->upload->Write(buf.data(), len); !s) {
        auto st = Reply(c, s.error());
        Drain(c);
        return st;
      }
    }
    auto size = p->upload->Commit();
    if (!size) return Reply(c, size.error());
    unsigned char out[9] = {'K'};
    for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<unsigned char>(static_cast<uint64_t>(*size) >> (56 - 8 * i));
    return c.WriteAll(out, sizeof out);
  }
};

Result<std::unique_ptr<FileDataPort>> FileDataPort::Start(sandbox::SandboxRuntime& runtime,
                                                          FileDataPortOptions options) {
  auto im = std::make_unique<Impl>(runtime, std::move(options));
  auto ctx = fd::MakeContext(im->opt.tls, /*server=*/true);
  if (!ctx) return ctx.error();
  im->ctx = std::move(*ctx);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string& host = im->opt.host;
  if (getaddrinfo(host.c_str(), std::to_string(im->opt.port).c_str(), &hints, &res) != 0 || res == nullptr)
    return MakeError(ErrorCode::kInvalidArgument, "--file-data-listen: " + host + " cannot be resolved");
  int s = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  // SO_REUSEADDR only (TIME_WAIT); never SO_REUSEPORT: no second process may share this port.
  if (s >= 0) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool ok = s >= 0 && bind(s, res->ai_addr, res->ai_addrlen) == 0 && listen(s, 64) == 0;
  freeaddrinfo(res);
  if (!ok) {
    const int e = errno;
    if (s >= 0) close(s);
    return MakeError(ErrorCode::kUnavailable, "--file-data-listen: cannot listen on " + host + ":" +
                                                  std::to_string(im->opt.port) + ": " + std::strerror(e));
  }
  sockaddr_storage addr{};
  socklen_t alen = sizeof addr;
  getsockname(s, reinterpret_cast<sockaddr*>(&addr), &alen);
  im->port = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  im->listen_fd = s;
  im->wake_fd = eventfd(0, EFD_CLOEXEC);
  if (im->wake_fd < 0) {
    close(s);
    return MakeError(ErrorCode::kInternal, "file data port: eventfd failed");
  }
  Impl* raw = im.get();
  im->acceptor = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<FileDataPort>(new FileDataPort(std::move(im)));
}

FileDataPort::FileDataPort(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

FileDataPort::~FileDataPort() { Stop(); }

int FileDataPort::port() const { return impl_->port; }

void FileDataPort::Stop() {
  std::vector<Pending> dropped;
  {
    std::unique_lock lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
    dropped = std::move(impl_->pending);
    impl_->pending.clear();
    for (int s : impl_->live) shutdown(s, SHUT_RDWR);
  }
  const uint64_t one = 1;
  (void)!write(impl_->wake_fd, &one, sizeof one);
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  {
    std::unique_lock lock(impl_->mu);
    impl_->idle.wait(lock, [&] { return impl_->live.empty(); });
  }
  close(impl_->listen_fd);
  close(impl_->wake_fd);
}

Result<v1::FileTransferGrant> FileDataPort::Open(const v1::FileTransferRequest& req) {
  if (auto s = ValidateSandboxIdField(req.sandbox_id()); !s) return s.error();
  if (req.path().empty() || req.path().size() > fd::kMaxPathBytes)
    return MakeError(ErrorCode::kInvalidArgument, "path: empty or longer than 4096 bytes");
  Pending p;
  p.sandbox_id = req.sandbox_id();
  p.path = req.path();
  if (req.direction() == v1::FileTransferRequest::UPLOAD) {
    p.direction = fd::Direction::kUpload;
    auto up = impl_->runtime.BeginFileUpload(req.sandbox_id(), req.path(), req.mode() ? req.mode() : 0644);
    if (!up) return up.error();
    p.upload = std::move(*up);
  } else if (req.direction() == v1::FileTransferRequest::DOWNLOAD) {
    p.direction = fd::Direction::kDownload;
    auto opened = impl_->runtime.OpenFileForRead(req.sandbox_id(), req.path());
    if (!opened) return opened.error();
    p.file = opened->first;
    p.size = opened->second;
  } else {
    return MakeError(ErrorCode::kInvalidArgument, "direction: must be UPLOAD or DOWNLOAD");
  }
  if (RAND_bytes(p.ticket.data(), static_cast<int>(p.ticket.size())) != 1)
    return MakeError(ErrorCode::kInternal, "file data port: no randomness for a ticket");
  p.expires = Clock::now() + impl_->opt.ticket_lifetime;
  v1::FileTransferGrant grant;
  grant.set_ticket(std::string(reinterpret_cast<const char*>(p.ticket.data()), p.ticket.size()));
  grant.set_port(impl_->port);
  grant.set_size(p.size);
  grant.set_expires_ms(static_cast<int32_t>(impl_->opt.ticket_lifetime.count()));
  std::vector<Pending> expired;
  std::lock_guard lock(impl_->mu);
  if (impl_->stopping) return MakeError(ErrorCode::kUnavailable, "file data port: stopping");
  const auto now = Clock::now();
  for (auto& q : impl_->pending)
    if (q.expires <= now) expired.push_back(std::move(q));
  impl_->SweepLocked(now);
  if (impl_->pending.size() >= impl_->opt.max_pending)
    return MakeError(ErrorCode::kResourceExhausted, "file data port: too many transfers waiting for their connection");
  impl_->pending.push_back(std::move(p));
  return grant;
}

grpc::Status FileTransferService::Open(grpc::ServerContext*, const v1::FileTransferRequest* req,
                                       v1::FileTransferGrant* out) {
  auto grant = port_.Open(*req);
  if (!grant) return proto::ToGrpcStatus(grant.error());
  *out = std::move(*grant);
  return grpc::Status::OK;
}

}  // namespace osb::worker
