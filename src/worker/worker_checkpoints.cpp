// WorkerService: checkpoints (the sandbox's files, never env, tokens or
// values) and deadline changes. Archives live in <state-dir>/checkpoints,
// mode 0600, written to a temp name and renamed when complete.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "proto/status_mapping.h"
#include "worker/request_validation.h"
#include "worker/worker_service.h"

namespace osb::worker {

std::string WorkerService::CheckpointPath(const std::string& checkpoint_id) const {
  return config_.checkpoints_dir + "/" + checkpoint_id + ".state";
}

Result<int> WorkerService::OpenCheckpoint(const std::string& checkpoint_id) const {
  if (config_.checkpoints_dir.empty()) return MakeError(ErrorCode::kFailedPrecondition, "checkpoints are not enabled");
  const std::string path = CheckpointPath(checkpoint_id);
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return MakeError(ErrorCode::kNotFound, "checkpoint " + checkpoint_id + " is not on worker " + config_.worker_id);
    return MakeError(ErrorCode::kInternal, "cannot open checkpoint " + checkpoint_id + ": " + std::strerror(errno));
  }
  return fd;
}

grpc::Status WorkerService::CheckpointSandbox(grpc::ServerContext*, const v1::CheckpointSandboxRequest* req,
                                              v1::CheckpointSandboxResponse* out) {
  if (auto s = ValidateSandboxIdField(req->sandbox_id()); !s) return proto::ToGrpcStatus(s.error());
  if (auto s = ValidateCheckpointId(req->checkpoint_id()); !s) return proto::ToGrpcStatus(s.error());
  if (config_.checkpoints_dir.empty()) return {grpc::StatusCode::FAILED_PRECONDITION, "checkpoints are not enabled"};
  SandboxRecord record;
  {
    std::lock_guard lock(mu_);
    auto it = running_.find(req->sandbox_id());
    if (it == running_.end()) return {grpc::StatusCode::NOT_FOUND, "sandbox " + req->sandbox_id() + " not found"};
    record = it->second.record;
  }
  if (mkdir(config_.checkpoints_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return {grpc::StatusCode::INTERNAL, "cannot create the checkpoints dir: " + std::string(std::strerror(errno))};
  const std::string path = CheckpointPath(req->checkpoint_id());
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return {grpc::StatusCode::INTERNAL, "cannot create the checkpoint file: " + std::string(std::strerror(errno))};
  auto stats = runtime_.CaptureState(req->sandbox_id(), fd);
  struct stat st {};
  const bool synced = stats && fsync(fd) == 0 && fstat(fd, &st) == 0;
  close(fd);
  if (!stats || !synced || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    if (!stats) return proto::ToGrpcStatus(stats.error());
    return {grpc::StatusCode::INTERNAL, "cannot write the checkpoint file: " + std::string(std::strerror(errno))};
  }
  out->set_size_bytes(st.st_size);
  out->set_entries(static_cast<int64_t>(stats->entries));
  out->set_template_digest(record.template_digest);
  out->set_disk_mb(record.disk_mb);
  spdlog::info("sandbox {}: checkpoint {} saved ({} entries, {} bytes)", req->sandbox_id(), req->checkpoint_id(),
               stats->entries, st.st_size);
  return grpc::Status::OK;
}

grpc::Status WorkerService::DeleteCheckpoint(grpc::ServerContext*, const v1::DeleteCheckpointRequest* req,
                                             v1::DeleteCheckpointResponse*) {
  if (auto s = ValidateCheckpointId(req->checkpoint_id()); !s) return proto::ToGrpcStatus(s.error());
  if (config_.checkpoints_dir.empty()) return {grpc::StatusCode::FAILED_PRECONDITION, "checkpoints are not enabled"};
  if (unlink(CheckpointPath(req->checkpoint_id()).c_str()) != 0) {
    if (errno == ENOENT) return {grpc::StatusCode::NOT_FOUND, "checkpoint " + req->checkpoint_id() + " not found"};
    return {grpc::StatusCode::INTERNAL, "cannot delete the checkpoint: " + std::string(std::strerror(errno))};
  }
  return grpc::Status::OK;
}

grpc::Status WorkerService::SetSandboxTimeout(grpc::ServerContext*, const v1::SetSandboxTimeoutRequest* req,
                                              v1::SandboxInfo* out) {
  if (auto s = ValidateSandboxIdField(req->sandbox_id()); !s) return proto::ToGrpcStatus(s.error());
  if (req->end_at_unix_ms() <= 0) return {grpc::StatusCode::INVALID_ARGUMENT, "end_at_unix_ms: must be positive"};
  SandboxRecord record;
  {
    std::lock_guard lock(mu_);
    auto it = running_.find(req->sandbox_id());
    if (it == running_.end()) return {grpc::StatusCode::NOT_FOUND, "sandbox " + req->sandbox_id() + " not found"};
    record = it->second.record;
  }
  const int64_t ends = (req->end_at_unix_ms() + 999) / 1000;
  if (ends - record.started_at_unix > 2592000)
    return {grpc::StatusCode::INVALID_ARGUMENT, "end_at_unix_ms: more than 30 days after the sandbox's start"};
  auto info = runtime_.SetDeadline(req->sandbox_id(), ends);
  if (!info) return proto::ToGrpcStatus(info.error());
  {
    std::lock_guard lock(mu_);
    auto it = running_.find(req->sandbox_id());
    if (it != running_.end()) {
      it->second.record.ends_at_unix = info->endsAtUnix;
      record = it->second.record;
    }
  }
  if (auto s = records_.Save(record); !s) spdlog::warn("sandbox {}: {}", record.id, s.error().message);
  out->set_sandbox_id(record.id);
  out->set_status("running");
  out->set_started_at_unix_ms(record.started_at_unix * 1000);
  out->set_end_at_unix_ms(record.ends_at_unix * 1000);
  return grpc::Status::OK;
}

}  // namespace osb::worker
