// WorkerService: the gRPC Worker service (src/proto/worker.proto) over the
// sandbox runtime and the secrets proxy's session registry.
//
// CreateSandbox mints one sealed token per secret, starts the sandbox with
// tokens (never values) in its environment, and registers a proxy session
// keyed by the sandbox's source address holding token -> value. Values live
// only in the session registry's memory; the worker's disk gets names and
// tokens (SandboxRecords) so a restarted worker can serve the sandbox again
// once the control plane re-sends the values (Restore).
//
// Thread safety: gRPC calls arrive concurrently; per-sandbox state is
// guarded by one mutex, and the runtime/registry are themselves thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proto/worker.grpc.pb.h"
#include "sandbox/runtime.h"
#include "secretsproxy/session_registry.h"
#include "worker/sandbox_records.h"

namespace osb::worker {

struct WorkerServiceConfig {
  std::string worker_id;
  int capacity = 50;
  sandbox::NetworkSpec network;   // proxy + DNS ports the sandboxes reach
  std::string ca_bundle_pem;      // system CAs + the worker's proxy CA
  std::string rootfs_template;    // "" = host system dirs
  std::string templates_dir;      // when set, templateID picks <dir>/<templateID>
  // Imported images (images::ImageStore dir, <state-dir>/images): a create
  // whose config names a template_digest runs on that image's overlay.
  std::string images_dir;
  uint64_t default_disk_mb = 1024;
  uint64_t pids_max = 256;
  std::string checkpoints_dir;    // where checkpoint archives live ("" = checkpoints refused)
  // Gets a template_digest the store lacks (TemplateFetcher::Ensure: from
  // the control plane, verified by import); unset = such a create fails.
  std::function<Status(const std::string& digest)> fetch_image;
};

// Points `spec` at the imported image `digest` in the store at imagesDir:
// overlay root with a diskMB disk, the image's Env (below spec.env), its
// WorkingDir and its User resolved against the image's /etc/passwd.
// kFailedPrecondition naming template_digest when the image is not here.
Status ApplyImageTemplate(const std::string& imagesDir, const std::string& digest, uint64_t diskMB,
                          sandbox::SandboxSpec& spec);

class WorkerService final : public v1::Worker::Service {
 public:
  WorkerService(WorkerServiceConfig config, sandbox::SandboxRuntime& runtime,
                std::shared_ptr<secretsproxy::SessionRegistry> sessions, SandboxRecords records);

  grpc::Status CreateSandbox(grpc::ServerContext*, const v1::CreateSandboxRequest*,
                             v1::SandboxInfo*) override;
  grpc::Status DestroySandbox(grpc::ServerContext*, const v1::DestroySandboxRequest*,
                              v1::DestroySandboxResponse*) override;
  grpc::Status Exec(grpc::ServerContext*, const v1::ExecRequest*, v1::ExecResponse*) override;
  grpc::Status ListSandboxes(grpc::ServerContext*, const v1::ListSandboxesRequest*,
                             v1::ListSandboxesResponse*) override;
  grpc::Status UpdateSecret(grpc::ServerContext*, const v1::UpdateSecretRequest*,
                            v1::UpdateSecretResponse*) override;
  grpc::Status Health(grpc::ServerContext*, const v1::HealthRequest*, v1::HealthResponse*) override;
  // Checkpoints and lifetime (worker_checkpoints.cpp).
  grpc::Status CheckpointSandbox(grpc::ServerContext*, const v1::CheckpointSandboxRequest*,
                                 v1::CheckpointSandboxResponse*) override;
  grpc::Status DeleteCheckpoint(grpc::ServerContext*, const v1::DeleteCheckpointRequest*,
                                v1::DeleteCheckpointResponse*) override;
  grpc::Status SetSandboxTimeout(grpc::ServerContext*, const v1::SetSandboxTimeoutRequest*,
                                 v1::SandboxInfo*) override;
  // Files (file_service.cpp).
  grpc::Status UploadFile(grpc::ServerContext*, grpc::ServerReader<v1::FileUploadRequest>*,
                          v1::FileUploadResponse*) override;
  grpc::Status DownloadFile(grpc::ServerContext*, const v1::FileDownloadRequest*,
                            grpc::ServerWriter<v1::FileDownloadChunk>*) override;
  grpc::Status ListFiles(grpc::ServerContext*, const v1::ListFilesRequest*, v1::ListFilesResponse*) override;
  grpc::Status MakeDirectory(grpc::ServerContext*, const v1::MakeDirectoryRequest*, v1::FileOpResponse*) override;
  grpc::Status RemoveFile(grpc::ServerContext*, const v1::RemoveFileRequest*, v1::FileOpResponse*) override;

  // Called by the runtime when a sandbox ended on its own (timeout, died):
  // drops its proxy session and record.
  void OnSandboxEnded(const std::string& id, const std::string& reason);

  // Ids of running sandboxes (for heartbeats).
  std::vector<std::string> RunningIds() const;

  // A sandbox re-adopted after a worker restart: served again (Exec,
  // Destroy, List) but without a proxy session until RestoreSession.
  void Adopt(const SandboxRecord& record);
  // Registers the adopted sandbox's proxy session: its tokens from the
  // record, values from the control plane (a name without a value stays
  // sealed). Wipes the values it is given.
  struct CurrentSecret {
    std::string value;  // non-value kinds: the material JSON
    std::vector<std::string> allowed_hosts;
    std::string kind = "value";
    std::vector<RequestRule> allowed_requests;
    bool refuse_disallowed = false;
  };
  Status RestoreSession(const std::string& id, std::map<std::string, CurrentSecret> current);

 private:
  struct Running {
    SandboxRecord record;
  };
  void Forget(const std::string& id);
  std::string CheckpointPath(const std::string& checkpoint_id) const;
  // The checkpoint archive, opened for SandboxSpec.restoreFd (the runtime's
  // Create fills the new sandbox from it before any process runs in it and
  // before its proxy session exists). The caller closes the fd.
  Result<int> OpenCheckpoint(const std::string& checkpoint_id) const;

  WorkerServiceConfig config_;
  sandbox::SandboxRuntime& runtime_;
  std::shared_ptr<secretsproxy::SessionRegistry> sessions_;
  SandboxRecords records_;
  mutable std::mutex mu_;
  std::map<std::string, Running> running_;
  int pending_creates_ = 0;
};

}  // namespace osb::worker
