#include "controlplane/sandbox_files.h"

namespace osb::controlplane {

namespace {
Error NoFiles() { return MakeError(ErrorCode::kFailedPrecondition, "this worker client does not support files"); }
}  // namespace

// WorkerClient's defaults for clients without file support (test fakes).
Result<int64_t> WorkerClient::UploadFile(const std::string&, const std::string&, uint32_t, const ChunkSource&,
                                         Deadline) {
  return NoFiles();
}
Status WorkerClient::DownloadFile(const std::string&, const std::string&, const DownloadSink&, Deadline) {
  return NoFiles();
}
Result<FileListing> WorkerClient::ListFiles(const std::string&, const std::string&, Deadline) { return NoFiles(); }
Status WorkerClient::MakeDirectory(const std::string&, const std::string&, bool, uint32_t, Deadline) {
  return NoFiles();
}
Status WorkerClient::RemoveFile(const std::string&, const std::string&, bool, Deadline) { return NoFiles(); }

Status SandboxFiles::UploadAsync(const std::string& org_id, const std::string& id, const std::string& path,
                                 uint32_t mode, ChunkSource next, std::function<void(Result<int64_t>)> done) {
  // The sandbox lookup (a store query) runs on the long-call thread too:
  // callers may be on an I/O thread.
  return sandboxes_.SubmitLongCall(
      org_id, [this, org_id, id, path, mode, next = std::move(next), done = std::move(done)] {
        auto client = sandboxes_.RunningClient(org_id, id);
        if (!client) return done(client.error());
        done((*client)->UploadFile(id, path, mode, next, TransferDeadline()));
      });
}

Status SandboxFiles::DownloadAsync(const std::string& org_id, const std::string& id, const std::string& path,
                                   DownloadSink sink, std::function<void(Status)> done) {
  return sandboxes_.SubmitLongCall(
      org_id, [this, org_id, id, path, sink = std::move(sink), done = std::move(done)] {
        auto client = sandboxes_.RunningClient(org_id, id);
        if (!client) return done(client.error());
        done((*client)->DownloadFile(id, path, sink, TransferDeadline()));
      });
}

Result<FileListing> SandboxFiles::List(const std::string& org_id, const std::string& id, const std::string& path) {
  auto client = sandboxes_.RunningClient(org_id, id);
  if (!client) return client.error();
  return (*client)->ListFiles(id, path, CallDeadline());
}

Status SandboxFiles::MakeDirectory(const std::string& org_id, const std::string& id, const std::string& path,
                                   bool parents, uint32_t mode) {
  auto client = sandboxes_.RunningClient(org_id, id);
  if (!client) return client.error();
  return (*client)->MakeDirectory(id, path, parents, mode, CallDeadline());
}

Status SandboxFiles::Remove(const std::string& org_id, const std::string& id, const std::string& path,
                            bool recursive) {
  auto client = sandboxes_.RunningClient(org_id, id);
  if (!client) return client.error();
  return (*client)->RemoveFile(id, path, recursive, CallDeadline());
}

}  // namespace osb::controlplane
