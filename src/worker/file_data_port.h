// The worker's file data port (issue 15 benchmarks; wire format in
// src/proto/file_data_wire.h, operator view in docs/files.md): file bytes
// between the control plane and this worker outside gRPC's message path.
//
// WorkerFileTransfers.Open (gRPC, control-plane certificate) authorises one
// transfer exactly as UploadFile/DownloadFile do - the sandbox, the path
// resolved inside it by its file helper (the upload's temp file is created,
// the download's file opened) - and parks it under a ticket: 32 random
// bytes, single use, expiring after `ticket_lifetime`. The bytes then flow
// on one mutual-TLS 1.3 connection to this port, which must present a
// control-plane certificate, the ticket (compared in constant time) and the
// same sandbox, path and direction. A ticket is consumed by its first
// presentation, matching or not; an expired one is dropped (an upload's temp
// file removed). An upload commits only after its end frame; anything less
// leaves no file.
//
// Bounded: at most `max_connections` connections (more are closed before
// the handshake), at most `max_pending` tickets, a handshake deadline and
// an idle timeout on every read and write. Listens without SO_REUSEPORT.
// It is one of the worker's own doors: worker_node forbids it to sandboxes.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/result.h"
#include "proto/tls_credentials.h"
#include "proto/worker.grpc.pb.h"
#include "sandbox/runtime.h"

namespace osb::worker {

struct FileDataPortOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 = any free port
  proto::GrpcTlsMaterial tls;
  size_t max_connections = 16;
  size_t max_pending = 64;
  std::chrono::milliseconds ticket_lifetime{10'000};
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{120'000};
};

class FileDataPort {
 public:
  static Result<std::unique_ptr<FileDataPort>> Start(sandbox::SandboxRuntime& runtime, FileDataPortOptions options);
  ~FileDataPort();
  FileDataPort(const FileDataPort&) = delete;
  FileDataPort& operator=(const FileDataPort&) = delete;

  int port() const;
  // Authorises one transfer and parks it under a fresh ticket.
  Result<v1::FileTransferGrant> Open(const v1::FileTransferRequest& req);
  // Closes the listener, ends every connection, drops every ticket.
  void Stop();

  struct Impl;

 private:
  explicit FileDataPort(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// WorkerFileTransfers over a FileDataPort.
class FileTransferService final : public v1::WorkerFileTransfers::Service {
 public:
  explicit FileTransferService(FileDataPort& port) : port_(port) {}
  grpc::Status Open(grpc::ServerContext*, const v1::FileTransferRequest* req, v1::FileTransferGrant* out) override;

 private:
  FileDataPort& port_;
};

}  // namespace osb::worker
