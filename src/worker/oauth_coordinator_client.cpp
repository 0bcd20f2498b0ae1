#include "worker/oauth_coordinator_client.h"

#include "common/secure_memory.h"
#include "proto/status_mapping.h"
#include "secretsproxy/oauth_stage.h"

namespace osb::worker {

namespace {

// One call's context and messages, alive until its callback ran.
template <typename Req, typename Resp>
struct Call {
  grpc::ClientContext ctx;
  Req req;
  Resp resp;
  Call() {
    ctx.set_deadline(std::chrono::system_clock::now() + secretsproxy::OAuthTokenCache::kCoordinatorTimeout);
  }
};

}  // namespace

GrpcOAuthCoordinator::GrpcOAuthCoordinator(std::shared_ptr<grpc::Channel> channel, std::string worker_id)
    : stub_(v1::ControlPlane::NewStub(std::move(channel))), worker_id_(std::move(worker_id)) {}

GrpcOAuthCoordinator::~GrpcOAuthCoordinator() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return in_flight_ == 0; });
}

void GrpcOAuthCoordinator::Begin() {
  std::lock_guard lock(mu_);
  ++in_flight_;
}

void GrpcOAuthCoordinator::End() {
  std::lock_guard lock(mu_);
  if (--in_flight_ == 0) idle_.notify_all();
}

template <typename C, typename Start, typename OnDone>
void GrpcOAuthCoordinator::Launch(std::shared_ptr<C> call, Start start, OnDone on_done) {
  Begin();
  C* raw = call.get();
  start(raw, [this, call = std::move(call), on_done = std::move(on_done)](grpc::Status st) mutable {
    struct Finish {
      GrpcOAuthCoordinator* self;
      std::shared_ptr<C>& c;
      ~Finish() {
        c.reset();  // the context and messages go before End()
        self->End();
      }
    } finish{this, call};
    on_done(st, *call);
  });
}

void GrpcOAuthCoordinator::Acquire(const std::string& sandbox_id, const std::string& name,
                                   std::function<void(Result<secretsproxy::OAuthGrant>)> done) {
  auto call = std::make_shared<Call<v1::AcquireOAuthTokenRequest, v1::AcquireOAuthTokenResponse>>();
  call->req.set_worker_id(worker_id_);
  call->req.set_sandbox_id(sandbox_id);
  call->req.set_name(name);
  Launch(
      call,
      [this](auto* c, auto callback) {
        stub_->async()->AcquireOAuthToken(&c->ctx, &c->req, &c->resp, std::move(callback));
      },
      [done = std::move(done)](const grpc::Status& st, auto& c) {
        if (!st.ok()) {
          done(proto::FromGrpcStatus(st));
          return;
        }
        secretsproxy::OAuthGrant g;
        auto& r = c.resp;
        if (r.has_token()) {
          g.kind = secretsproxy::OAuthGrant::Kind::kToken;
          g.access_token = r.token().access_token();
          g.expires_at =
              std::chrono::system_clock::time_point(std::chrono::milliseconds(r.token().expires_at_unix_ms()));
          SecureWipe(*r.mutable_token()->mutable_access_token());
        } else if (r.has_lease()) {
          g.kind = secretsproxy::OAuthGrant::Kind::kLease;
          g.generation = r.lease().generation();
          g.refresh_token = r.lease().refresh_token();
          SecureWipe(*r.mutable_lease()->mutable_refresh_token());
        } else {
          g.kind = secretsproxy::OAuthGrant::Kind::kWait;
          g.retry_after = std::chrono::milliseconds(r.retry_after_ms());
        }
        done(std::move(g));
      });
}

void GrpcOAuthCoordinator::Complete(const std::string& sandbox_id, const std::string& name, int64_t generation,
                                    const std::string& access_token, int64_t expires_in_sec,
                                    const std::string& rotated_refresh_token, std::function<void(Result<bool>)> done) {
  auto call = std::make_shared<Call<v1::CompleteOAuthRefreshRequest, v1::CompleteOAuthRefreshResponse>>();
  call->req.set_worker_id(worker_id_);
  call->req.set_sandbox_id(sandbox_id);
  call->req.set_name(name);
  call->req.set_generation(generation);
  call->req.set_access_token(access_token);
  call->req.set_expires_in_sec(expires_in_sec);
  call->req.set_refresh_token(rotated_refresh_token);
  Launch(
      call,
      [this](auto* c, auto callback) {
        stub_->async()->CompleteOAuthRefresh(&c->ctx, &c->req, &c->resp, std::move(callback));
      },
      [done = std::move(done)](const grpc::Status& st, auto& c) {
        SecureWipe(*c.req.mutable_access_token());
        SecureWipe(*c.req.mutable_refresh_token());
        if (!st.ok()) {
          done(proto::FromGrpcStatus(st));
          return;
        }
        done(c.resp.stored());
      });
}

void GrpcOAuthCoordinator::Fail(const std::string& sandbox_id, const std::string& name, int64_t generation,
                                std::function<void(Status)> done) {
  auto call = std::make_shared<Call<v1::FailOAuthRefreshRequest, v1::FailOAuthRefreshResponse>>();
  call->req.set_worker_id(worker_id_);
  call->req.set_sandbox_id(sandbox_id);
  call->req.set_name(name);
  call->req.set_generation(generation);
  Launch(
      call,
      [this](auto* c, auto callback) {
        stub_->async()->FailOAuthRefresh(&c->ctx, &c->req, &c->resp, std::move(callback));
      },
      [done = std::move(done)](const grpc::Status& st, auto&) {
        done(st.ok() ? Status{} : Status(proto::FromGrpcStatus(st)));
      });
}

}  // namespace osb::worker
