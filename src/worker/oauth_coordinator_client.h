// The worker's OAuthCoordinator (secretsproxy/oauth_coordinator.h): the
// ControlPlane rpcs AcquireOAuthToken / CompleteOAuthRefresh /
// FailOAuthRefresh over the worker's (mutual-TLS) channel, asynchronous
// (gRPC's callback API: no proxy thread ever blocks on the control plane).
// Each call has its own deadline (OAuthTokenCache::kCoordinatorTimeout).
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "proto/worker.grpc.pb.h"
#include "secretsproxy/oauth_coordinator.h"

namespace osb::worker {

class GrpcOAuthCoordinator final : public secretsproxy::OAuthCoordinator {
 public:
  GrpcOAuthCoordinator(std::shared_ptr<grpc::Channel> channel, std::string worker_id);
  // Waits for the calls in flight (each ends by its deadline).
  ~GrpcOAuthCoordinator() override;

  void Acquire(const std::string& sandbox_id, const std::string& name,
               std::function<void(Result<secretsproxy::OAuthGrant>)> done) override;
  void Complete(const std::string& sandbox_id, const std::string& name, int64_t generation,
                const std::string& access_token, int64_t expires_in_sec, const std::string& rotated_refresh_token,
                std::function<void(Result<bool>)> done) override;
  void Fail(const std::string& sandbox_id, const std::string& name, int64_t generation,
            std::function<void(Status)> done) override;

 private:
  // Runs one unary call: start(call, callback) issues it; on_done(status,
  // *call) runs in gRPC's callback; then the call's context and messages go,
  // and only then the call stops counting as in flight (the destructor
  // waits for that).
  template <typename C, typename Start, typename OnDone>
  void Launch(std::shared_ptr<C> call, Start start, OnDone on_done);
  void Begin();
  void End();
  std::unique_ptr<v1::ControlPlane::Stub> stub_;
  std::string worker_id_;
  std::mutex mu_;
  std::condition_variable idle_;
  int in_flight_ = 0;
};

}  // namespace osb::worker
