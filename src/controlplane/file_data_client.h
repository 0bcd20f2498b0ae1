// The control plane's side of the worker's file data port (wire format in
// src/proto/file_data_wire.h, the worker's side in src/worker/file_data_port.h):
// WorkerFileTransfers.Open authorises the transfer over gRPC, the bytes go
// over one mutual-TLS 1.3 connection to the worker (its certificate must
// name the host dialled and carry the worker role).
//
// Upload/Download return nullopt when the data port is not usable (a worker
// without the service, or the port unreachable) before any byte was taken
// from the source or given to the sink: the caller then streams over gRPC.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "controlplane/worker_client.h"
#include "proto/file_data_wire.h"
#include "proto/worker.grpc.pb.h"

namespace osb::controlplane {

class FileDataClient {
 public:
  // `host`: the host part of the worker's gRPC address.
  static std::unique_ptr<FileDataClient> Make(const std::shared_ptr<grpc::Channel>& channel, std::string host,
                                              const proto::GrpcTlsMaterial& tls);

  std::optional<Result<int64_t>> Upload(const std::string& sandbox_id, const std::string& path, uint32_t mode,
                                        const ChunkSource& next, Deadline deadline);
  std::optional<Status> Download(const std::string& sandbox_id, const std::string& path, const DownloadSink& sink,
                                 Deadline deadline);

 private:
  FileDataClient(std::unique_ptr<v1::WorkerFileTransfers::StubInterface> stub, std::string host,
                 proto::filedata::SslCtx ctx)
      : stub_(std::move(stub)), host_(std::move(host)), ctx_(std::move(ctx)) {}
  // The grant and the connection that presented its ticket; nullopt = fall back.
  std::optional<Result<std::pair<v1::FileTransferGrant, std::unique_ptr<proto::filedata::Conn>>>> Begin(
      const v1::FileTransferRequest& req, Deadline deadline);

  std::unique_ptr<v1::WorkerFileTransfers::StubInterface> stub_;
  std::string host_;
  proto::filedata::SslCtx ctx_;
  std::atomic<bool> unsupported_{false};  // the worker answered UNIMPLEMENTED once
};

// The host part of "HOST:PORT" / "[V6]:PORT" / "dns:///HOST:PORT".
std::string HostOfAddress(const std::string& address);

}  // namespace osb::controlplane
