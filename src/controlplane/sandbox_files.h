// SandboxFiles: files inside running sandboxes (issue 15, docs/files.md),
// as the REST layer uses them. Every call goes to the sandbox's worker,
// which has the sandbox itself resolve the path as the sandbox user
// (src/sandbox/file_ops.h). Transfers run on the sandbox service's
// long-call executor (no REST handler thread waits; an org over its cap
// gets kResourceExhausted before anything starts) and move bounded chunks.
//
// Errors: kNotFound (sandbox or path), kConflict (sandbox not running, a
// non-empty directory), kInvalidArgument (path, special file, magic link),
// kAlreadyExists, kFailedPrecondition (permission denied), kTooLarge (the
// sandbox's disk quota is full), kUnavailable (worker unreachable).
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "controlplane/sandboxes.h"
#include "controlplane/worker_client.h"

namespace osb::controlplane {

class SandboxFiles {
 public:
  explicit SandboxFiles(SandboxService& sandboxes, std::chrono::seconds transfer_deadline = std::chrono::hours(6))
      : sandboxes_(sandboxes), transfer_deadline_(transfer_deadline) {}

  // Runs the upload on the long-call executor, pulling chunks from `next`;
  // `done` gets the final size or the error (an unknown or stopped sandbox
  // too). Only admission (kResourceExhausted) is returned, and then `done`
  // is not called. Never blocks: safe on an I/O thread.
  Status UploadAsync(const std::string& org_id, const std::string& id, const std::string& path, uint32_t mode,
                     ChunkSource next, std::function<void(Result<int64_t>)> done);
  // Runs the download on the long-call executor; `sink` receives the size
  // then the chunks; `done` gets the outcome (also after on_size). Returns
  // like UploadAsync.
  Status DownloadAsync(const std::string& org_id, const std::string& id, const std::string& path, DownloadSink sink,
                       std::function<void(Status)> done);
  Result<FileListing> List(const std::string& org_id, const std::string& id, const std::string& path);
  Status MakeDirectory(const std::string& org_id, const std::string& id, const std::string& path, bool parents,
                       uint32_t mode);
  Status Remove(const std::string& org_id, const std::string& id, const std::string& path, bool recursive);

 private:
  Deadline TransferDeadline() const { return std::chrono::system_clock::now() + transfer_deadline_; }
  static Deadline CallDeadline() { return std::chrono::system_clock::now() + std::chrono::seconds(90); }

  SandboxService& sandboxes_;
  const std::chrono::seconds transfer_deadline_;
};

}  // namespace osb::controlplane
