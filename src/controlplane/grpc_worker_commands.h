// The gRPC half of the command calls of GrpcWorkerClient (WorkerCommands
// service in worker.proto). Internal to grpc_worker_client.cpp.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "controlplane/worker_client.h"
#include "proto/worker.grpc.pb.h"

namespace osb::controlplane::grpc_commands {

Result<std::unique_ptr<CommandStream>> Open(v1::WorkerCommands::StubInterface& stub, const std::string& sandbox_id,
                                            const CommandSpec* spec, const std::string& command_id);
// The same without a thread (a callback reactor; command_types.h).
Result<std::shared_ptr<AsyncCommandStream>> OpenAsync(v1::WorkerCommands::StubInterface& stub,
                                                      const std::string& sandbox_id, const CommandSpec* spec,
                                                      const std::string& command_id);
Result<CommandInfo> Start(v1::WorkerCommands::StubInterface& stub, const std::string& sandbox_id,
                          const CommandSpec& spec, Deadline deadline);
Result<std::vector<CommandInfo>> List(v1::WorkerCommands::StubInterface& stub, const std::string& sandbox_id,
                                      Deadline deadline);
Result<CommandInfo> Kill(v1::WorkerCommands::StubInterface& stub, const std::string& sandbox_id,
                         const std::string& command_id, int signal, Deadline deadline);
Result<CommandInfo> Wait(v1::WorkerCommands::StubInterface& stub, const std::string& sandbox_id,
                         const std::string& command_id, std::chrono::milliseconds wait, Deadline deadline);

}  // namespace osb::controlplane::grpc_commands
