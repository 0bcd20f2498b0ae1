#include "controlplane/file_data_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "proto/status_mapping.h"

namespace osb::controlplane {

namespace fd = proto::filedata;

namespace {

std::chrono::milliseconds Until(Deadline deadline, std::chrono::milliseconds cap) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::system_clock::now());
  return std::clamp(left, std::chrono::milliseconds(1), cap);
}

constexpr std::chrono::milliseconds kConnectTimeout{10'000};
constexpr std::chrono::milliseconds kIdleTimeout{120'000};

}  // namespace

std::string HostOfAddress(const std::string& address) {
  std::string a = address;
  if (const auto scheme = a.find(":///"); scheme != std::string::npos) a = a.substr(scheme + 4);
  if (!a.empty() && a.front() == '[') {
    const auto close = a.find(']');
    return close == std::string::npos ? a : a.substr(1, close - 1);
  }
  const auto colon = a.rfind(':');
  return colon == std::string::npos ? a : a.substr(0, colon);
}

std::unique_ptr<FileDataClient> FileDataClient::Make(const std::shared_ptr<grpc::Channel>& channel, std::string host,
                                                     const proto::GrpcTlsMaterial& tls) {
  auto ctx = fd::MakeContext(tls, /*server=*/false);
  if (!ctx) {
    spdlog::warn("file data port disabled: {}", ctx.error().message);
    return nullptr;
  }
  return std::unique_ptr<FileDataClient>(
      new FileDataClient(v1::WorkerFileTransfers::NewStub(channel), std::move(host), std::move(*ctx)));
}

std::optional<Result<std::pair<v1::FileTransferGrant, std::unique_ptr<fd::Conn>>>> FileDataClient::Begin(
    const v1::FileTransferRequest& req, Deadline deadline) {
  if (unsupported_.load()) return std::nullopt;
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline);
  v1::FileTransferGrant grant;
  const grpc::Status st = stub_->Open(&ctx, req, &grant);
  if (st.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    unsupported_.store(true);  // an older worker: gRPC streaming from now on
    return std::nullopt;
  }
  if (!st.ok()) return Result<std::pair<v1::FileTransferGrant, std::unique_ptr<fd::Conn>>>(proto::FromGrpcStatus(st));
  if (grant.ticket().size() != fd::kTicketBytes || grant.port() <= 0 || grant.port() > 65535)
    return Result<std::pair<v1::FileTransferGrant, std::unique_ptr<fd::Conn>>>(
        MakeError(ErrorCode::kInternal, "file data port: malformed grant from the worker"));
  auto conn = fd::Conn::Dial(ctx_.get(), host_, grant.port(), proto::GrpcRole::kWorker,
                             Until(deadline, kConnectTimeout));
  if (!conn) {
    // Unreachable (a firewall between control plane and worker?): stream
    // over gRPC instead; the unused ticket expires on the worker.
    spdlog::warn("file data port of {} not usable, streaming over gRPC: {}", host_, conn.error().message);
    return std::nullopt;
  }
  fd::Header h;
  h.direction = req.direction() == v1::FileTransferRequest::UPLOAD ? fd::Direction::kUpload : fd::Direction::kDownload;
  std::copy(grant.ticket().begin(), grant.ticket().end(), h.ticket.begin());
  h.sandbox_id = req.sandbox_id();
  h.path = req.path();
  using R = Result<std::pair<v1::FileTransferGrant, std::unique_ptr<fd::Conn>>>;
  if (auto s = (*conn)->WriteHeader(h); !s) return R(s.error());
  if (auto s = (*conn)->ReadStatus(); !s) return R(s.error());
  (*conn)->SetTimeout(kIdleTimeout);
  return R(std::pair{std::move(grant), std::move(*conn)});
}

std::optional<Result<int64_t>> FileDataClient::Upload(const std::string& sandbox_id, const std::string& path,
                                                      uint32_t mode, const ChunkSource& next, Deadline deadline) {
  v1::FileTransferRequest req;
  req.set_sandbox_id(sandbox_id);
  req.set_path(path);
  req.set_direction(v1::FileTransferRequest::UPLOAD);
  req.set_mode(mode);
  auto begun = Begin(req, deadline);
  if (!begun) return std::nullopt;
  if (!*begun) return Result<int64_t>(begun->error());
  fd::Conn& c = *(*begun)->second;
  // The worker's verdict when it stopped reading (disk full, ...).
  auto verdict = [&c](const Error& fallback) -> Error {
    c.SetTimeout(std::chrono::milliseconds(2000));
    auto st = c.ReadStatus();
    return st ? fallback : st.error();
  };
  for (;;) {
    if (c.Readable()) return Result<int64_t>(verdict(MakeError(ErrorCode::kInternal, "upload: unexpected reply")));
    auto chunk = next();
    if (!chunk) return Result<int64_t>(chunk.error());  // the client went away: no end frame, no file
    if (!*chunk) break;
    const std::string& piece = **chunk;
    for (size_t off = 0; off < piece.size(); off += fd::kMaxFrameBytes) {
      const size_t n = std::min(fd::kMaxFrameBytes, piece.size() - off);
      const unsigned char len[4] = {static_cast<unsigned char>(n >> 24), static_cast<unsigned char>(n >> 16),
                                    static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
      auto s = c.WriteAll(len, 4);
      if (s) s = c.WriteAll(piece.data() + off, n);
      if (!s) return Result<int64_t>(verdict(s.error()));
    }
  }
  const unsigned char end[4] = {0, 0, 0, 0};
  if (auto s = c.WriteAll(end, 4); !s) return Result<int64_t>(verdict(s.error()));
  if (auto s = c.ReadStatus(); !s) return Result<int64_t>(s.error());
  unsigned char size[8];
  if (auto s = c.ReadAll(size, 8); !s) return Result<int64_t>(s.error());
  uint64_t v = 0;
  for (unsigned char b : size) v = (v << 8) | b;
  return Result<int64_t>(static_cast<int64_t>(v));
}

std::optional<Status> FileDataClient::Download(const std::string& sandbox_id, const std::string& path,
                                               const DownloadSink& sink, Deadline deadline) {
  v1::FileTransferRequest req;
  req.set_sandbox_id(sandbox_id);
  req.set_path(path);
  req.set_direction(v1::FileTransferRequest::DOWNLOAD);
  auto begun = Begin(req, deadline);
  if (!begun) return std::nullopt;
  if (!*begun) return Status(begun->error());
  const int64_t size = (*begun)->first.size();
  fd::Conn& c = *(*begun)->second;
  if (!sink.on_size(size)) return Status(MakeError(ErrorCode::kUnavailable, "download: the reader went away"));
  int64_t got = 0;
  while (got < size) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(fd::kMaxFrameBytes, size - got));
    std::string piece(n, '\0');
    if (auto s = c.ReadAll(piece.data(), n); !s)
      return Status(MakeError(ErrorCode::kDataLoss, "download: incomplete stream from the worker"));
    got += static_cast<int64_t>(n);
    if (!sink.on_chunk(std::move(piece))) return Status(MakeError(ErrorCode::kUnavailable, "download: the reader went away"));
  }
  return Status();
}

}  // namespace osb::controlplane
