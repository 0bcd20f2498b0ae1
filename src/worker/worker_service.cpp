#include "worker/worker_service.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <set>

#include "common/secure_memory.h"
#include "images/image_store.h"
#include "proto/status_mapping.h"
#include "worker/request_validation.h"
#include "worker/sealing.h"

namespace osb::worker {

Status ApplyImageTemplate(const std::string& imagesDir, const std::string& digest, uint64_t diskMB,
                          sandbox::SandboxSpec& spec) {
  if (imagesDir.empty())
    return MakeError(ErrorCode::kFailedPrecondition, "template_digest: this worker has no image store");
  images::ImageStore store(imagesDir);
  auto image = store.Find(digest);
  if (!image) {
    if (image.error().code == ErrorCode::kNotFound)
      return MakeError(ErrorCode::kFailedPrecondition, "template_digest: image " + digest + " is not on this worker");
    return image.error();
  }
  auto run = images::ResolveRunConfig(*image);
  if (!run) return run.error();
  spec.rootfsTemplate.clear();
  spec.imageRootfs = image->rootfs;
  spec.diskMB = diskMB;
  spec.runAsUid = run->uid;
  spec.runAsGid = run->gid;
  spec.workingDir = run->workingDir;
  // The image's Env sits below everything the request and the project set.
  for (const auto& [k, v] : run->env) spec.env.emplace(k, v);
  return {};
}


namespace {

grpc::Status Invalid(const std::string& msg) { return {grpc::StatusCode::INVALID_ARGUMENT, msg}; }

void FillInfo(const SandboxRecord& r, v1::SandboxInfo* out) {
  out->set_sandbox_id(r.id);
  out->set_status("running");
  out->set_started_at_unix_ms(r.started_at_unix * 1000);
  out->set_end_at_unix_ms(r.ends_at_unix * 1000);
  auto* c = out->mutable_config();
  c->set_project_id(r.project_id);
  c->set_template_id(r.template_id);
  c->set_cpu_count(r.cpu_count);
  c->set_memory_mb(r.memory_mb);
  c->set_timeout_sec(r.timeout_sec);
  for (const auto& h : r.egress_allowlist) c->add_egress_allowlist(h);
}

// Values arrive in gRPC-owned request objects that are freed after the
// handler; wipe them first so no copy lingers in freed memory.
void WipeValues(const google::protobuf::RepeatedPtrField<v1::SecretSpec>& secrets) {
  for (const auto& s : secrets) {
    auto& value = const_cast<std::string&>(s.value());
    SecureWipe(value.data(), value.size());
  }
}

template <typename Msg>
std::vector<RequestRule> RulesOf(const Msg& m) {
  std::vector<RequestRule> rules;
  for (const auto& r : m.allowed_requests()) {
    rules.push_back({r.host(), {r.methods().begin(), r.methods().end()}, r.path_prefix()});
  }
  return rules;
}

std::string KindOf(const std::string& kind) { return kind.empty() ? "value" : kind; }

// The proxy's binding of one secret: the value, or for a non-value kind the
// material (the same bytes on the wire, see worker.proto SecretSpec).
template <typename Msg>
secretsproxy::SecretBinding BindingOf(const Msg& m, const std::string& name, const std::string& token,
                                      const std::string& aux_token, const std::string& bytes) {
  secretsproxy::SecretBinding b;
  b.name = name;
  b.token = token;
  b.kind = KindOf(m.kind());
  (b.kind == "value" ? b.value : b.material) = bytes;
  b.allowed_hosts.assign(m.allowed_hosts().begin(), m.allowed_hosts().end());
  b.aux_token = aux_token;
  b.allowed_requests = RulesOf(m);
  b.refuse_disallowed = m.on_disallowed_request() == kOnDisallowedRefuse;
  return b;
}

}  // namespace

WorkerService::WorkerService(WorkerServiceConfig config, sandbox::SandboxRuntime& runtime,
                             std::shared_ptr<secretsproxy::SessionRegistry> sessions,
                             SandboxRecords records)
    : config_(std::move(config)),
      runtime_(runtime),
      sessions_(std::move(sessions)),
      records_(std::move(records)) {}

grpc::Status WorkerService::CreateSandbox(grpc::ServerContext*, const v1::CreateSandboxRequest* req,
                                          v1::SandboxInfo* out) {
  struct WipeOnExit {
    const v1::CreateSandboxRequest* r;
    ~WipeOnExit() { WipeValues(r->secrets()); }
  } wipe{req};

  const std::string& id = req->sandbox_id();
  if (auto s = ValidateCreateRequest(*req); !s) return proto::ToGrpcStatus(s.error());
  {
    std::lock_guard lock(mu_);
    if (running_.count(id)) return {grpc::StatusCode::ALREADY_EXISTS, "sandbox " + id + " exists"};
    if (static_cast<int>(running_.size()) + pending_creates_ >= config_.capacity) {
      return {grpc::StatusCode::RESOURCE_EXHAUSTED,
              "worker " + config_.worker_id + " is at capacity (" +
                  std::to_string(config_.capacity) + " sandboxes)"};
    }
    ++pending_creates_;
  }
  struct Pending {
    WorkerService* self;
    ~Pending() {
      std::lock_guard lock(self->mu_);
      --self->pending_creates_;
    }
  } pending{this};

  const auto& cfg = req->config();
  SandboxRecord record;
  record.id = id;
  record.project_id = cfg.project_id();
  record.template_id = cfg.template_id();
  record.cpu_count = cfg.cpu_count() > 0 ? cfg.cpu_count() : 1;
  record.memory_mb = cfg.memory_mb() > 0 ? cfg.memory_mb() : 512;
  record.timeout_sec = cfg.timeout_sec() > 0 ? cfg.timeout_sec() : 300;
  record.egress_allowlist.assign(cfg.egress_allowlist().begin(), cfg.egress_allowlist().end());

  // Seal: one fresh token per secret.
  secretsproxy::Session session;
  session.sandbox_id = id;
  session.project_id = record.project_id;
  session.egress_allowlist = record.egress_allowlist;
  std::map<std::string, std::string> name_to_token;  // env var -> token (or aws-sigv4's plain key id)
  std::set<std::string> seen;
  for (const auto& s : req->secrets()) {
    if (!seen.insert(s.name()).second) return Invalid("secrets: duplicate name " + s.name());
    if (cfg.envs().count(s.name())) continue;  // a plaintext env of that name wins
    // Per-kind tokens and environment (common/secret_kinds.h SandboxEnvFor).
    auto sealed = SealSecret(s.kind(), s.name(), s.value());
    if (!sealed) return Invalid("secrets." + s.name() + "." + sealed.error().message);
    for (const auto& [env, v] : sealed->env) name_to_token.emplace(env, v);  // first secret wins a shared name
    std::vector<std::string> hosts(s.allowed_hosts().begin(), s.allowed_hosts().end());
    record.secrets.push_back({s.name(), sealed->token, hosts, KindOf(s.kind()), sealed->aux_token});
    session.secrets.push_back(BindingOf(s, s.name(), sealed->token, sealed->aux_token, s.value()));
  }

  sandbox::SandboxSpec spec;
  spec.id = id;
  spec.cpuCount = record.cpu_count;
  spec.memoryMB = static_cast<uint64_t>(record.memory_mb);
  spec.pidsMax = config_.pids_max;
  spec.timeoutSec = static_cast<uint64_t>(record.timeout_sec);
  spec.env = ComposeSandboxEnv({cfg.envs().begin(), cfg.envs().end()}, name_to_token);
  spec.rootfsTemplate = config_.rootfs_template;
  if (!config_.templates_dir.empty() && !record.template_id.empty() && record.template_id != "base") {
    spec.rootfsTemplate = config_.templates_dir + "/" + record.template_id;
  }
  // An imported image: named by digest (template_digest), or a template
  // name tagged in this worker's image store (`osb image import --name`).
  std::string imageDigest = cfg.template_digest();
  if (imageDigest.empty() && !config_.images_dir.empty() && !record.template_id.empty() &&
      record.template_id != "base") {
    if (auto tagged = images::ImageStore(config_.images_dir).Resolve(record.template_id)) imageDigest = *tagged;
  }
  if (!cfg.template_digest().empty() && config_.fetch_image && !config_.images_dir.empty() &&
      !images::ImageStore(config_.images_dir).Find(imageDigest)) {
    if (auto fetched = config_.fetch_image(imageDigest); !fetched) {
      for (auto& s : session.secrets) SecureWipe(s.value);
      return proto::ToGrpcStatus(fetched.error());
    }
  }
  if (!imageDigest.empty()) {
    const uint64_t diskMB =
        cfg.disk_mb() > 0 ? static_cast<uint64_t>(cfg.disk_mb()) : config_.default_disk_mb;
    auto applied = ApplyImageTemplate(config_.images_dir, imageDigest, diskMB, spec);
    if (!applied) {
      for (auto& s : session.secrets) SecureWipe(s.value);
      return proto::ToGrpcStatus(applied.error());
    }
    record.template_digest = imageDigest;
    record.disk_mb = static_cast<int>(diskMB);
  }
  spec.caBundlePem = config_.ca_bundle_pem;
  spec.dnsAllowlist = record.egress_allowlist;
  spec.network = config_.network;

  // A checkpoint is restored by Create itself, before it returns: an image
  // sandbox's upper dir must be filled before its overlay is mounted.
  int checkpointFd = -1;
  if (!req->from_checkpoint().empty()) {
    auto opened = OpenCheckpoint(req->from_checkpoint());
    if (!opened) {
      for (auto& s : session.secrets) SecureWipe(s.value);
      return proto::ToGrpcStatus(opened.error());
    }
    checkpointFd = *opened;
    spec.restoreFd = checkpointFd;
  }
  auto created = runtime_.Create(spec);
  if (checkpointFd >= 0) close(checkpointFd);
  if (!created) {
    for (auto& s : session.secrets) {
      SecureWipe(s.value);
      SecureWipe(s.material);
    }
    return proto::ToGrpcStatus(created.error());
  }
  if (!req->from_checkpoint().empty())
    spdlog::info("sandbox {}: restored checkpoint {}", id, req->from_checkpoint());
  record.sandbox_address = created->sandboxAddress;
  record.host_address = created->hostAddress;
  record.started_at_unix = created->startedAtUnix;
  record.ends_at_unix = created->endsAtUnix;

  if (auto s = sessions_->Register(record.sandbox_address, std::move(session)); !s) {
    (void)runtime_.Destroy(id);
    return proto::ToGrpcStatus(s.error());
  }
  if (auto s = records_.Save(record); !s) {
    spdlog::warn("sandbox {}: {} (it keeps running; a worker restart would not recover it)", id,
                 s.error().message);
  }
  FillInfo(record, out);
  {
    std::lock_guard lock(mu_);
    running_[id] = Running{record};
  }
  spdlog::info("sandbox {} created: {} secret(s) sealed, address {}", id, record.secrets.size(),
               record.sandbox_address);
  return grpc::Status::OK;
}

void WorkerService::Forget(const std::string& id) {
  std::string source;
  {
    std::lock_guard lock(mu_);
    running_.erase(id);
  }
  (void)sessions_->Unregister(id);
  (void)records_.Remove(id);
}

grpc::Status WorkerService::DestroySandbox(grpc::ServerContext*, const v1::DestroySandboxRequest* req,
                                           v1::DestroySandboxResponse*) {
  const std::string& id = req->sandbox_id();
  if (auto s = ValidateSandboxIdField(id); !s) return proto::ToGrpcStatus(s.error());
  {
    std::lock_guard lock(mu_);
    if (!running_.count(id)) return {grpc::StatusCode::NOT_FOUND, "sandbox " + id + " not found"};
  }
  (void)sessions_->Unregister(id);
  auto st = runtime_.Destroy(id);
  Forget(id);
  if (!st && st.error().code != ErrorCode::kNotFound) return proto::ToGrpcStatus(st.error());
  spdlog::info("sandbox {} destroyed", id);
  return grpc::Status::OK;
}

grpc::Status WorkerService::Exec(grpc::ServerContext*, const v1::ExecRequest* req, v1::ExecResponse* out) {
  if (auto s = ValidateExecRequest(*req); !s) return proto::ToGrpcStatus(s.error());
  sandbox::ExecRequest exec;
  exec.cmd = req->cmd();
  exec.args.assign(req->args().begin(), req->args().end());
  exec.env = {req->envs().begin(), req->envs().end()};
  exec.cwd = req->cwd();
  exec.timeoutSec = req->timeout_sec() > 0 ? static_cast<uint64_t>(req->timeout_sec()) : 60;
  auto result = runtime_.Exec(req->sandbox_id(), exec);
  if (!result) return proto::ToGrpcStatus(result.error());
  out->set_exit_code(result->exitCode);
  out->set_stdout(std::move(result->stdoutData));
  out->set_stderr(std::move(result->stderrData));
  out->set_stdout_truncated(result->stdoutTruncated);
  out->set_stderr_truncated(result->stderrTruncated);
  out->set_timed_out(result->timedOut);
  return grpc::Status::OK;
}

grpc::Status WorkerService::ListSandboxes(grpc::ServerContext*, const v1::ListSandboxesRequest*,
                                          v1::ListSandboxesResponse* out) {
  std::lock_guard lock(mu_);
  for (const auto& [id, r] : running_) FillInfo(r.record, out->add_sandboxes());
  return grpc::Status::OK;
}

grpc::Status WorkerService::UpdateSecret(grpc::ServerContext*, const v1::UpdateSecretRequest* req,
                                         v1::UpdateSecretResponse* out) {
  const Status valid = ValidateUpdateSecretRequest(*req);  // looks at the value's size only
  std::string value = req->value();
  SecureWipe(const_cast<std::string&>(req->value()).data(), req->value().size());
  struct Wiper {
    std::string& v;
    ~Wiper() { SecureWipe(v); }
  } wiper{value};
  if (!valid) return proto::ToGrpcStatus(valid.error());
  std::optional<SealedSecret> sealed;
  {
    std::lock_guard lock(mu_);
    auto it = running_.find(req->sandbox_id());
    if (it == running_.end()) {
      return {grpc::StatusCode::NOT_FOUND, "sandbox " + req->sandbox_id() + " not found"};
    }
    for (const auto& s : it->second.record.secrets) {
      if (s.name == req->name()) sealed = s;
    }
  }
  if (!sealed) {  // the sandbox has no token for it: nothing to refresh
    out->set_applied(false);
    return grpc::Status::OK;
  }
  Status st;
  if (req->deleted()) {
    st = sessions_->RemoveSecret(req->sandbox_id(), req->name());
    if (!st && st.error().code == ErrorCode::kNotFound) st = {};  // already gone
  } else if (KindOf(req->kind()) != sealed->kind) {
    // Its environment was made for the old kind and a running sandbox
    // cannot get new variables: the old binding goes, the token stays sealed.
    (void)sessions_->RemoveSecret(req->sandbox_id(), req->name());
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "secret " + req->name() + " changed kind; this sandbox keeps its token sealed (create a new sandbox)"};
  } else {
    st = sessions_->SetSecret(req->sandbox_id(), BindingOf(*req, req->name(), sealed->token, sealed->aux_token, value));
  }
  if (!st) return proto::ToGrpcStatus(st.error());
  out->set_applied(true);
  spdlog::info("sandbox {}: secret {} {}", req->sandbox_id(), req->name(), req->deleted() ? "removed" : "updated");
  return grpc::Status::OK;
}

grpc::Status WorkerService::Health(grpc::ServerContext*, const v1::HealthRequest*, v1::HealthResponse* out) {
  std::lock_guard lock(mu_);
  out->set_worker_id(config_.worker_id);
  out->set_sandboxes(static_cast<int>(running_.size()));
  out->set_capacity(config_.capacity);
  out->set_version(OSB_VERSION_STRING);
  return grpc::Status::OK;
}

void WorkerService::Adopt(const SandboxRecord& record) {
  std::lock_guard lock(mu_);
  running_[record.id] = Running{record};
}

Status WorkerService::RestoreSession(const std::string& id, std::map<std::string, CurrentSecret> values) {
  SandboxRecord record;
  {
    std::lock_guard lock(mu_);
    auto it = running_.find(id);
    if (it == running_.end()) return MakeError(ErrorCode::kNotFound, "sandbox " + id + " not found");
    record = it->second.record;
  }
  secretsproxy::Session session;
  session.sandbox_id = id;
  session.project_id = record.project_id;
  session.egress_allowlist = record.egress_allowlist;
  for (const auto& s : record.secrets) {
    auto v = values.find(s.name);
    if (v == values.end() || v->second.value.empty()) continue;  // deleted meanwhile: stays sealed
    if (v->second.kind != s.kind) continue;                          // changed kind: stays sealed
    secretsproxy::SecretBinding b;
    b.name = s.name;
    b.token = s.token;
    b.kind = s.kind;
    (b.kind == "value" ? b.value : b.material) = v->second.value;
    b.allowed_hosts = v->second.allowed_hosts;
    b.aux_token = s.aux_token;
    b.allowed_requests = v->second.allowed_requests;
    b.refuse_disallowed = v->second.refuse_disallowed;
    session.secrets.push_back(std::move(b));
  }
  for (auto& [name, current] : values) SecureWipe(current.value);
  const size_t restored = session.secrets.size();
  auto st = sessions_->Register(record.sandbox_address, std::move(session));
  if (st) spdlog::info("sandbox {}: proxy session restored ({} secret(s))", id, restored);
  return st;
}

void WorkerService::OnSandboxEnded(const std::string& id, const std::string& reason) {
  spdlog::info("sandbox {} ended ({})", id, reason);
  Forget(id);
}

std::vector<std::string> WorkerService::RunningIds() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, r] : running_) ids.push_back(id);
  return ids;
}

}  // namespace osb::worker
