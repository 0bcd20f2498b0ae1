#include "controlplane/template_fetch.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "proto/status_mapping.h"
#include "proto/tls_credentials.h"

namespace osb::controlplane {

grpc::Status TemplateFetchService::FetchTemplate(grpc::ServerContext* ctx, const v1::FetchTemplateRequest* req,
                                                 grpc::ServerWriter<v1::TemplateChunk>* out) {
  if (req->worker_id().empty()) return {grpc::StatusCode::INVALID_ARGUMENT, "worker_id: required"};
  if (const auto cn = proto::PeerCommonName(*ctx)) {
    if (proto::PeerRole(*ctx) != proto::GrpcRole::kWorker)
      return {grpc::StatusCode::PERMISSION_DENIED, "only worker certificates may call the control plane"};
    if (*cn != req->worker_id())
      return {grpc::StatusCode::PERMISSION_DENIED,
              "worker_id must be the common name of the worker's certificate (" + *cn + ")"};
  }
  auto path = templates_.TarballForWorker(req->worker_id(), req->digest());
  if (!path) {
    if (path.error().code == ErrorCode::kFailedPrecondition) {
      spdlog::warn("template fetch refused: worker {}: {}", req->worker_id(), path.error().message);
      return {grpc::StatusCode::PERMISSION_DENIED, path.error().message};
    }
    return proto::ToGrpcStatus(path.error());
  }
  const int fd = open(path->c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return {grpc::StatusCode::NOT_FOUND, "digest: image " + req->digest() + " is not stored"};
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) return {grpc::StatusCode::INTERNAL, "stat template"};
  std::string buf(256 << 10, '\0');
  bool first = true;
  int64_t sent = 0;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {grpc::StatusCode::INTERNAL, "read template"};
    if (n == 0) break;
    v1::TemplateChunk chunk;
    chunk.set_data(buf.data(), static_cast<size_t>(n));
    if (first) chunk.set_total_size(st.st_size);
    first = false;
    if (!out->Write(chunk)) return {grpc::StatusCode::CANCELLED, "the worker went away"};
    sent += n;
  }
  spdlog::info("template {} sent to worker {} ({} bytes)", req->digest(), req->worker_id(), sent);
  return grpc::Status::OK;
}

}  // namespace osb::controlplane
