// WorkerService's file RPCs (worker.proto "files"): thin adapters over
// SandboxRuntime's file operations. Bytes move in chunks of at most
// kChunkBytes, so memory per transfer stays bounded whatever the size
// (gRPC flow control blocks Write/Read when the other side is slow).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proto/status_mapping.h"
#include "worker/request_validation.h"
#include "worker/worker_service.h"

namespace osb::worker {
namespace {

// 1 MiB: large enough that the per-message costs (a gRPC write, a wake-up
// on each side, a helper read) are small next to the copying; the same
// bound the upload check has always enforced, so older control planes
// (256 KiB chunks) and newer ones agree.
constexpr size_t kChunkBytes = 1024 * 1024;

grpc::Status FromError(const Error& e) { return proto::ToGrpcStatus(e); }

}  // namespace

grpc::Status WorkerService::UploadFile(grpc::ServerContext* ctx, grpc::ServerReader<v1::FileUploadRequest>* reader,
                                       v1::FileUploadResponse* out) {
  v1::FileUploadRequest msg;
  if (!reader->Read(&msg) || !msg.has_header())
    return {grpc::StatusCode::INVALID_ARGUMENT, "upload: the first message must be the header"};
  const v1::FileUploadHeader header = msg.header();
  if (auto s = ValidateSandboxIdField(header.sandbox_id()); !s) return FromError(s.error());
  auto up = runtime_.BeginFileUpload(header.sandbox_id(), header.path(), header.mode() ? header.mode() : 0644);
  if (!up) return FromError(up.error());
  while (reader->Read(&msg)) {
    if (ctx->IsCancelled()) return {grpc::StatusCode::CANCELLED, "upload cancelled"};
    if (msg.part_case() != v1::FileUploadRequest::kChunk)
      return {grpc::StatusCode::INVALID_ARGUMENT, "upload: only chunks may follow the header"};
    if (msg.chunk().size() > kChunkBytes)
      return {grpc::StatusCode::INVALID_ARGUMENT, "upload: chunk larger than 1 MiB"};
    if (auto s = (*up)->Write(msg.chunk().data(), msg.chunk().size()); !s) return FromError(s.error());
  }
  // A client that went away without finishing must not commit a partial
  // file: Read() returns false on cancellation as well as on a clean end.
  if (ctx->IsCancelled()) return {grpc::StatusCode::CANCELLED, "upload cancelled"};
  auto size = (*up)->Commit();
  if (!size) return FromError(size.error());
  out->set_size(*size);
  return grpc::Status::OK;
}

grpc::Status WorkerService::DownloadFile(grpc::ServerContext* ctx, const v1::FileDownloadRequest* req,
                                         grpc::ServerWriter<v1::FileDownloadChunk>* writer) {
  if (auto s = ValidateSandboxIdField(req->sandbox_id()); !s) return FromError(s.error());
  auto opened = runtime_.OpenFileForRead(req->sandbox_id(), req->path());
  if (!opened) return FromError(opened.error());
  struct Close {
    int fd;
    ~Close() { close(fd); }
  } file{opened->first};
  const int64_t size = opened->second;
  int64_t sent = 0;
  std::string buf;
  v1::FileDownloadChunk chunk;
  chunk.set_size(size);
  bool first = true;
  while (sent < size || first) {
    if (ctx->IsCancelled()) return {grpc::StatusCode::CANCELLED, "download cancelled"};
    const size_t want = static_cast<size_t>(std::min<int64_t>(kChunkBytes, size - sent));
    buf.resize(want);
    size_t got = 0;
    while (got < want) {
      ssize_t n = read(file.fd, buf.data() + got, want - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return {grpc::StatusCode::INTERNAL, std::string("download: read failed: ") + std::strerror(errno)};
      if (n == 0) return {grpc::StatusCode::DATA_LOSS, "download: " + req->path() + " shrank while being read"};
      got += static_cast<size_t>(n);
    }
    chunk.set_data(std::move(buf));
    buf = std::string();
    if (!writer->Write(chunk)) return {grpc::StatusCode::CANCELLED, "download: the reader went away"};
    sent += static_cast<int64_t>(want);
    chunk.Clear();
    first = false;
  }
  return grpc::Status::OK;
}

grpc::Status WorkerService::ListFiles(grpc::ServerContext*, const v1::ListFilesRequest* req,
                                      v1::ListFilesResponse* out) {
  if (auto s = ValidateSandboxIdField(req->sandbox_id()); !s) return FromError(s.error());
  bool truncated = false;
  auto list = runtime_.ListFiles(req->sandbox_id(), req->path(), &truncated);
  if (!list) return FromError(list.error());
  for (const auto& e : *list) {
    auto* o = out->add_entries();
    o->set_name(e.name);
    o->set_type(e.type);
    o->set_size(e.size);
    o->set_mode(e.mode);
    o->set_mtime_unix_ms(e.mtime_unix_ms);
  }
  out->set_truncated(truncated);
  return grpc::Status::OK;
}

grpc::Status WorkerService::MakeDirectory(grpc::ServerContext*, const v1::MakeDirectoryRequest* req,
                                          v1::FileOpResponse*) {
  if (auto s = ValidateSandboxIdField(req->sandbox_id()); !s) return FromError(s.error());
  if (auto s = runtime_.MakeDirectory(req->sandbox_id(), req->path(), req->parents(), req->mode() ? req->mode() : 0755);
      !s)
    return FromError(s.error());
  return grpc::Status::OK;
}

grpc::Status WorkerService::RemoveFile(grpc::ServerContext*, const v1::RemoveFileRequest* req, v1::FileOpResponse*) {
  if (auto s = ValidateSandboxIdField(req->sandbox_id()); !s) return FromError(s.error());
  if (auto s = runtime_.RemoveFile(req->sandbox_id(), req->path(), req->recursive()); !s) return FromError(s.error());
  return grpc::Status::OK;
}

}  // namespace osb::worker
