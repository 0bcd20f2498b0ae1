#include "secretsproxy/sigv4_signing_stage.h"

#include <chrono>

#include "secretsproxy/request_pipeline.h"
#include "secretsproxy/sigv4_stage.h"

namespace osb::secretsproxy {
namespace {

// The session's aws-sigv4 secrets as the pure stage sees them (views into
// the snapshot, which the action keeps alive).
std::vector<SigV4Secret> Secrets(const SessionSnapshot& s, const std::vector<size_t>& usable,
                                 const std::vector<size_t>& withheld) {
  std::vector<SigV4Secret> out;
  auto add = [&](size_t i, bool enabled) {
    const auto& sec = s.secrets()[i];
    if (!sec.material) return;
    const SecretMaterial& m = *sec.material;
    out.push_back(SigV4Secret{sec.name, m.Get("accessKeyId"), sec.token, m.Get("secretAccessKey"),
                              m.Has("sessionToken") ? std::string_view(sec.aux_token) : std::string_view{},
                              m.Get("sessionToken"), enabled, m.Get("region"), m.Get("service")});
  };
  for (size_t i : usable) add(i, true);
  for (size_t i : withheld) add(i, false);
  return out;
}

int64_t UnixNow(const SigningEnv& env) {
  return std::chrono::duration_cast<std::chrono::seconds>(env.now().time_since_epoch()).count();
}

// Payload hash = SHA-256(body): signs once the body is known.
class WholeBody final : public SigningAction {
 public:
  WholeBody(std::shared_ptr<const SessionSnapshot> session, std::vector<SigV4Secret> secrets, int64_t now,
            std::vector<std::string>* used)
      : session_(std::move(session)), secrets_(std::move(secrets)), now_(now), used_(used) {}
  Body body() const override { return Body::kWhole; }
  StageResult OnBody(RequestContext& ctx, std::string* body) override {
    SigV4Result r;
    StageResult st = ResignSigV4(&ctx.head, secrets_, now_, body, &r);
    if (!st.ok()) return st;
    if (r.signed_request && used_) used_->push_back(r.secret_name);
    return {};
  }

 private:
  std::shared_ptr<const SessionSnapshot> session_;  // secrets_ views into it
  std::vector<SigV4Secret> secrets_;
  int64_t now_;
  std::vector<std::string>* used_;
};

// aws-chunked: every chunk signature re-signed while the body streams.
class Chunks final : public SigningAction {
 public:
  explicit Chunks(std::unique_ptr<sigv4::ChunkResigner> chunks) : chunks_(std::move(chunks)) {}
  Body body() const override { return Body::kStream; }
  bool length_preserving() const override { return true; }
  StageResult Feed(std::string_view in, std::string* out) override {
    if (!chunks_->Feed(in, out)) return {400, chunks_->reason()};
    return {};
  }
  StageResult Finish(std::string* out) override {
    (void)out;
    if (!chunks_->done()) return {400, "aws-chunked body ended before its final chunk"};
    return {};
  }

 private:
  std::unique_ptr<sigv4::ChunkResigner> chunks_;
};

}  // namespace

boost::asio::awaitable<StageResult> SigV4SigningStage::OnHead(SigningCall& call,
                                                              std::unique_ptr<SigningAction>* action) const {
  auto secrets = Secrets(*call.ctx.session, call.usable, call.withheld);
  const int64_t now = UnixNow(call.env);
  SigV4Result r;
  StageResult st = ResignSigV4(&call.ctx.head, secrets, now, nullptr, &r);
  if (!st.ok()) co_return st;
  if (r.needs_body) {
    *action = std::make_unique<WholeBody>(call.ctx.session, std::move(secrets), now, call.used_names);
    co_return StageResult{};
  }
  if (r.signed_request && call.used_names) call.used_names->push_back(r.secret_name);
  if (r.chunks) *action = std::make_unique<Chunks>(std::move(r.chunks));
  co_return StageResult{};
}

const SigningStage& SigV4Stage() {
  static const SigV4SigningStage stage;
  return stage;
}

}  // namespace osb::secretsproxy
