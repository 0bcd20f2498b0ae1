#include "worker/worker_node.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "common/fd_budget.h"
#include "common/secure_memory.h"
#include "crypto/random.h"
#include "proto/worker.grpc.pb.h"
#include "sandbox/dns_server.h"
#include "sandbox/runtime.h"
#include "secretsproxy/proxy.h"
#include "worker/worker_service.h"
#include "worker/command_service.h"
#include "worker/file_data_port.h"
#include "worker/oauth_coordinator_client.h"
#include "worker/template_fetcher.h"

namespace osb::worker {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";
constexpr auto kRegisterRetry = std::chrono::seconds(1);

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<std::pair<std::string, uint16_t>> SplitHostPort(const std::string& what, const std::string& hp) {
  const auto colon = hp.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return MakeError(ErrorCode::kInvalidArgument, what + ": expected HOST:PORT, got " + hp);
  }
  try {
    const int port = std::stoi(hp.substr(colon + 1));
    if (port < 0 || port > 65535) throw std::out_of_range("port");
    return std::pair{hp.substr(0, colon), static_cast<uint16_t>(port)};
  } catch (const std::exception&) {
    return MakeError(ErrorCode::kInvalidArgument, what + ": bad port in " + hp);
  }
}

std::string JoinHostPort(const std::string& host, int port) {
  const bool bare_v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (bare_v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string LoadOrMakeWorkerId(const std::string& state_dir) {
  const fs::path path = fs::path(state_dir) / "worker-id";
  std::string id = ReadFile(path);
  while (!id.empty() && std::isspace(static_cast<unsigned char>(id.back()))) id.pop_back();
  if (!id.empty()) return id;
  id = "w-" + crypto::RandomHex(6);
  std::ofstream(path) << id << "\n";
  return id;
}

}  // namespace

int HostCpuCount() {
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int HostMemoryMb() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  const long long mb = static_cast<long long>(pages) * page / (1024 * 1024);
  return mb > 0x7fffffff ? 0x7fffffff : static_cast<int>(mb);
}

namespace {

// The control plane's ControlPlaneTemplates.FetchTemplate, over the same
// mutual-TLS channel settings as registration.
TemplateSource MakeGrpcTemplateSource(const WorkerOptions& opt, const std::string& worker_id) {
  auto stub = std::shared_ptr<v1::ControlPlaneTemplates::Stub>(v1::ControlPlaneTemplates::NewStub(
      proto::MakeChannel(opt.control_plane, opt.tls, proto::GrpcRole::kControlPlane)));
  return [stub, worker_id](const std::string& digest, int fd) -> Result<int64_t> {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
    v1::FetchTemplateRequest req;
    req.set_worker_id(worker_id);
    req.set_digest(digest);
    auto reader = stub->FetchTemplate(&ctx, req);
    v1::TemplateChunk chunk;
    int64_t total = 0;
    while (reader->Read(&chunk)) {
      const std::string& data = chunk.data();
      for (size_t off = 0; off < data.size();) {
        ssize_t w = write(fd, data.data() + off, data.size() - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          ctx.TryCancel();
          (void)reader->Finish();
          return MakeError(ErrorCode::kInternal, std::string("write: ") + std::strerror(errno));
        }
        off += static_cast<size_t>(w);
      }
      total += static_cast<int64_t>(data.size());
    }
    grpc::Status st = reader->Finish();
    if (!st.ok()) {
      const ErrorCode code = st.error_code() == grpc::StatusCode::NOT_FOUND           ? ErrorCode::kNotFound
                             : st.error_code() == grpc::StatusCode::PERMISSION_DENIED ? ErrorCode::kFailedPrecondition
                                                                                      : ErrorCode::kUnavailable;
      return MakeError(code, st.error_message());
    }
    return total;
  };
}

}  // namespace

struct WorkerNode::Impl {
  WorkerOptions opt;
  std::string worker_id;
  std::shared_ptr<secretsproxy::SessionRegistry> sessions;
  std::unique_ptr<secretsproxy::Proxy> proxy;
  std::unique_ptr<sandbox::DnsServer> dns;
  std::unique_ptr<sandbox::SandboxRuntime> runtime;
  std::unique_ptr<WorkerService> service;
  std::unique_ptr<TemplateFetcher> templates;  // images fetched from the control plane by digest
  std::unique_ptr<CommandService> commands;  // streaming exec, background commands, terminals
  std::unique_ptr<FileDataPort> file_data;               // file bytes outside gRPC (mutual TLS only)
  std::unique_ptr<FileTransferService> file_transfers;
  std::unique_ptr<grpc::Server> server;
  int grpc_port = 0;

  std::thread agent;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  bool stopped = false;
  std::vector<std::string> pending_restore;  // adopted, waiting for values

  void RunAgent();
  void RestoreAdopted(v1::ControlPlane::Stub& stub);
};

void WorkerNode::Impl::RestoreAdopted(v1::ControlPlane::Stub& stub) {
  if (pending_restore.empty()) return;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
  v1::FetchSandboxSecretsRequest req;
  req.set_worker_id(worker_id);
  for (const auto& id : pending_restore) req.add_sandbox_ids(id);
  v1::FetchSandboxSecretsResponse resp;
  const grpc::Status st = stub.FetchSandboxSecrets(&ctx, req, &resp);
  if (!st.ok()) {
    spdlog::warn("cannot fetch secrets of adopted sandboxes yet: {}", st.error_message());
    return;
  }
  for (auto& sb : *resp.mutable_sandboxes()) {
    std::map<std::string, WorkerService::CurrentSecret> values;
    for (auto& secret : *sb.mutable_secrets()) {
      auto& v = values[secret.name()];
      v.value = secret.value();
      v.allowed_hosts.assign(secret.allowed_hosts().begin(), secret.allowed_hosts().end());
      v.kind = secret.kind().empty() ? "value" : secret.kind();
      for (const auto& r : secret.allowed_requests()) {
        v.allowed_requests.push_back({r.host(), {r.methods().begin(), r.methods().end()}, r.path_prefix()});
      }
      v.refuse_disallowed = secret.on_disallowed_request() == "refuse";
      SecureWipe(*secret.mutable_value());
    }
    if (auto s = service->RestoreSession(sb.sandbox_id(), std::move(values)); !s) {
      spdlog::warn("sandbox {}: {}", sb.sandbox_id(), s.error().message);
    }
  }
  // The control plane answers only for sandboxes it still knows to run
  // here; the others were deleted meanwhile.
  for (const auto& id : pending_restore) {
    bool answered = false;
    for (const auto& sb : resp.sandboxes()) answered |= sb.sandbox_id() == id;
    if (!answered) {
      spdlog::info("sandbox {}: the control plane no longer runs it here; destroying it", id);
      (void)runtime->Destroy(id);
      service->OnSandboxEnded(id, "unknown to the control plane");
    }
  }
  pending_restore.clear();
}

void WorkerNode::Impl::RunAgent() {
  const std::string advertise = opt.advertise.empty() ? opt.listen : opt.advertise;
  auto stub = v1::ControlPlane::NewStub(proto::MakeChannel(opt.control_plane, opt.tls, proto::GrpcRole::kControlPlane));
  bool registered = false;
  bool warned = false;
  auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(5); };
  std::unique_lock lock(mu);
  while (!stopping) {
    lock.unlock();
    grpc::Status status;
    if (!registered) {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      v1::RegisterWorkerRequest req;
      v1::RegisterWorkerResponse resp;
      req.set_worker_id(worker_id);
      req.set_address(advertise);
      req.set_capacity(opt.capacity);
      req.set_cpu_count(opt.cpu_count);
      req.set_memory_mb(opt.memory_mb);
      status = stub->RegisterWorker(&ctx, req, &resp);
      if (status.ok()) {
        registered = true;
        warned = false;
        spdlog::info("worker {} registered with the control plane at {}", worker_id, opt.control_plane);
        if (!opt.tls) {
          spdlog::warn("INSECURE: worker {} registered over PLAINTEXT gRPC (--insecure-grpc): secret values "
                       "cross this channel unencrypted and unauthenticated",
                       worker_id);
        }
        RestoreAdopted(*stub);
      }
    } else {
      if (!pending_restore.empty()) RestoreAdopted(*stub);
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline());
      v1::HeartbeatRequest req;
      v1::HeartbeatResponse resp;
      req.set_worker_id(worker_id);
      for (const auto& id : service->RunningIds()) req.add_sandbox_ids(id);
      status = stub->Heartbeat(&ctx, req, &resp);
      if (status.error_code() == grpc::StatusCode::NOT_FOUND) registered = false;  // CP forgot us
    }
    if (!status.ok() && !warned) {
      spdlog::warn("control plane at {} not reachable: {}", opt.control_plane, status.error_message());
      warned = true;
    }
    lock.lock();
    const auto wait = registered ? opt.heartbeat_interval
                                 : std::chrono::duration_cast<std::chrono::milliseconds>(kRegisterRetry);
    cv.wait_for(lock, wait, [&] { return stopping; });
  }
}

Result<std::unique_ptr<WorkerNode>> WorkerNode::Start(WorkerOptions opt) {
  auto im = std::make_unique<Impl>();
  std::error_code ec;
  fs::create_directories(opt.state_dir, ec);
  fs::permissions(opt.state_dir, fs::perms::owner_all, ec);
  if (ec) return MakeError(ErrorCode::kFailedPrecondition, "--state-dir: cannot create " + opt.state_dir);
  if (opt.tls) {
    if (auto s = proto::CheckOwnRole(*opt.tls, proto::GrpcRole::kWorker); !s) return s.error();
  }
  if (opt.worker_id.empty() && opt.tls) {
    // Under mutual TLS the control plane knows a worker by its certificate.
    auto cn = proto::CertificateCommonName(opt.tls->cert_pem);
    if (!cn || cn->empty()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "OPENSANDBOX_GRPC_TLS_CERT: the certificate needs a common name (the worker id)");
    }
    opt.worker_id = *cn;
  }
  im->worker_id = opt.worker_id.empty() ? LoadOrMakeWorkerId(opt.state_dir) : opt.worker_id;

  // 1. Secrets proxy.
  im->sessions = std::make_shared<secretsproxy::SessionRegistry>();
  secretsproxy::ProxyConfig pc;
  pc.listen = {opt.proxy_listen};
  pc.transparent_listen = {opt.transparent_listen};
  pc.transparent_http_listen = {opt.transparent_http_listen};
  pc.metrics_listen = opt.metrics_listen;
  pc.state_dir = fs::path(opt.state_dir) / "proxy";
  pc.upstream_ca_file = opt.upstream_ca;
  pc.allow_private = opt.allow_private;
  pc.resolve = opt.resolve;
  pc.audit_log = opt.audit_log;
  pc.audit_log_max_bytes = opt.audit_log_max_bytes;
  pc.audit_log_keep = opt.audit_log_keep;
  spdlog::info("worker: {}", InitProcessFdBudget(opt.fd_reserve));
  pc.forbidden_endpoints = opt.forbidden_endpoints;
  pc.limits.session_body_budget = opt.proxy_body_budget;
  // oauth2-refresh: one refresh per expiry per project across the
  // deployment, coordinated by the control plane (oauth_stage.h).
  if (!opt.control_plane.empty()) {
    pc.oauth_coordinator = std::make_shared<GrpcOAuthCoordinator>(
        proto::MakeChannel(opt.control_plane, opt.tls, proto::GrpcRole::kControlPlane), im->worker_id);
  }
  im->proxy = std::make_unique<secretsproxy::Proxy>(pc, im->sessions);
  if (auto s = im->proxy->Start(); !s) return s.error();

  // 2. DNS responder.
  auto dns_addr = SplitHostPort("--dns-listen", opt.dns_listen);
  if (!dns_addr) return dns_addr.error();
  sandbox::DnsServer::Options dopt;
  dopt.listenAddress = dns_addr->first;
  dopt.port = dns_addr->second;
  auto dns = sandbox::DnsServer::Start(dopt);
  if (!dns) return dns.error();
  im->dns = std::move(*dns);
  if (auto s = im->proxy->ForbidEndpoint(JoinHostPort(dns_addr->first, im->dns->Port())); !s) return s.error();

  // 3. Sandbox runtime; first clear what a crashed predecessor left.
  sandbox::RuntimeConfig rc;
  rc.addressPool = opt.address_pool;
  rc.namePrefix = opt.name_prefix;
  rc.runDir = opt.run_dir;
  rc.hiddenPaths = opt.hidden_paths;
  rc.hiddenPaths.push_back(fs::canonical(opt.state_dir).string());
  rc.diskDir = (fs::path(opt.state_dir) / "disks").string();
  rc.dns = im->dns.get();
  Impl* raw = im.get();
  rc.onSandboxEnded = [raw](const std::string& id, const std::string& reason) {
    if (raw->service) raw->service->OnSandboxEnded(id, reason);
  };
  auto runtime = sandbox::SandboxRuntime::Create(rc);
  if (!runtime) return runtime.error();
  im->runtime = std::move(*runtime);
  const auto report = im->runtime->ReconcileLeftovers();
  for (const auto& r : report.removed) spdlog::info("reconcile: removed {}", r);
  for (const auto& e : report.errors) spdlog::warn("reconcile: {}", e);
  SandboxRecords records(opt.state_dir);
  std::map<std::string, SandboxRecord> unclaimed;
  for (auto& r : records.LoadAll()) unclaimed[r.id] = std::move(r);
  std::vector<SandboxRecord> adopted;
  for (const auto& info : report.adopted) {
    auto it = unclaimed.find(info.id);
    if (it == unclaimed.end()) {  // no tokens on record: it cannot be served
      spdlog::warn("reconcile: sandbox {} has no record; destroying it", info.id);
      (void)im->runtime->Destroy(info.id);
      continue;
    }
    spdlog::info("reconcile: re-adopted sandbox {}", info.id);
    adopted.push_back(std::move(it->second));
    unclaimed.erase(it);
  }
  for (const auto& [id, stale] : unclaimed) {
    spdlog::info("reconcile: dropped record of ended sandbox {}", id);
    (void)records.Remove(id);
  }

  // 4. The gRPC service.
  WorkerServiceConfig wc;
  wc.worker_id = im->worker_id;
  wc.capacity = opt.capacity;
  wc.network.proxyExplicitPort = im->proxy->listen_ports().at(0);
  wc.network.proxyTransparentTlsPort = im->proxy->transparent_ports().at(0);
  wc.network.proxyTransparentHttpPort = im->proxy->transparent_http_ports().at(0);
  wc.network.dnsPort = im->dns->Port();
  wc.ca_bundle_pem = ReadFile(kSystemCaBundle);
  if (!wc.ca_bundle_pem.empty() && wc.ca_bundle_pem.back() != '\n') wc.ca_bundle_pem += '\n';
  wc.ca_bundle_pem += ReadFile(im->proxy->ca_cert_path());
  wc.rootfs_template = opt.rootfs_template;
  wc.templates_dir = opt.templates_dir;
  wc.checkpoints_dir = (fs::path(opt.state_dir) / "checkpoints").string();
  wc.images_dir = (fs::path(opt.state_dir) / "images").string();
  im->templates = std::make_unique<TemplateFetcher>(wc.images_dir, MakeGrpcTemplateSource(opt, im->worker_id));
  wc.fetch_image = [f = im->templates.get()](const std::string& digest) { return f->Ensure(digest); };
  im->service = std::make_unique<WorkerService>(wc, *im->runtime, im->sessions, records);
  for (const auto& r : adopted) {
    im->service->Adopt(r);
    im->pending_restore.push_back(r.id);
  }

  if (!opt.tls) {
    spdlog::warn("INSECURE: worker gRPC is PLAINTEXT (--insecure-grpc): any local process can create sandboxes, "
                 "exec in them and push secrets; set OPENSANDBOX_GRPC_TLS_CA, _CERT and _KEY for mutual TLS");
  }
  grpc::ServerBuilder builder;
  proto::AddGrpcListener(builder, opt.listen, opt.tls, proto::GrpcRole::kControlPlane, &im->grpc_port);
  builder.RegisterService(im->service.get());
  im->commands = std::make_unique<CommandService>(*im->runtime);
  builder.RegisterService(im->commands.get());
  if (opt.tls) {
    // File bytes on their own mutual-TLS port (file_data_port.h); without
    // TLS the control plane streams them over UploadFile/DownloadFile.
    const std::string& data_listen = opt.file_data_listen.empty() ? opt.listen : opt.file_data_listen;
    auto hp = SplitHostPort(opt.file_data_listen.empty() ? "--listen" : "--file-data-listen", data_listen);
    if (!hp) return hp.error();
    FileDataPortOptions fo;
    fo.host = hp->first.size() > 2 && hp->first.front() == '[' ? hp->first.substr(1, hp->first.size() - 2) : hp->first;
    fo.port = opt.file_data_listen.empty() ? 0 : hp->second;
    fo.tls = *opt.tls;
    auto port = FileDataPort::Start(*im->runtime, std::move(fo));
    if (!port) return port.error();
    im->file_data = std::move(*port);
    // One of the worker's own doors: no sandbox may reach it.
    if (auto s = im->proxy->ForbidEndpoint(JoinHostPort(hp->first, im->file_data->port())); !s) return s.error();
    im->file_transfers = std::make_unique<FileTransferService>(*im->file_data);
    builder.RegisterService(im->file_transfers.get());
  }
  builder.SetMaxReceiveMessageSize(8 << 20);
  im->server = builder.BuildAndStart();
  if (!im->server || im->grpc_port == 0) {
    return MakeError(ErrorCode::kUnavailable,
                     "--listen: cannot listen on " + opt.listen + " (is another process using that port?)");
  }
  if (auto hp = SplitHostPort("--listen", opt.listen); hp) {
    if (auto s = im->proxy->ForbidEndpoint(JoinHostPort(hp->first, im->grpc_port)); !s) return s.error();
  }
  if (opt.advertise.empty()) {
    auto hp = SplitHostPort("--listen", opt.listen);
    if (hp && hp->second == 0) opt.advertise = hp->first + ":" + std::to_string(im->grpc_port);
  }
  im->opt = std::move(opt);
  spdlog::info("worker {} serving gRPC on port {}; file data port {}; proxy ports {}/{}/{}, DNS {}", im->worker_id,
               im->grpc_port, im->file_data ? std::to_string(im->file_data->port()) : "off (no TLS)",
               wc.network.proxyExplicitPort, wc.network.proxyTransparentTlsPort,
               wc.network.proxyTransparentHttpPort, wc.network.dnsPort);

  // 5. Control-plane agent.
  if (!im->opt.control_plane.empty()) im->agent = std::thread([raw] { raw->RunAgent(); });
  return std::unique_ptr<WorkerNode>(new WorkerNode(std::move(im)));
}

WorkerNode::WorkerNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WorkerNode::~WorkerNode() { Stop(); }

void WorkerNode::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopping = true;
    impl_->stopped = true;
  }
  impl_->cv.notify_all();
  if (impl_->agent.joinable()) impl_->agent.join();
  if (impl_->server) impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (impl_->file_data) impl_->file_data->Stop();  // before the runtime its transfers write into
  impl_->runtime.reset();  // destroys every sandbox
  impl_->dns.reset();
  if (impl_->proxy) impl_->proxy->Stop();
}

void WorkerNode::Wait() {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait(lock, [&] { return impl_->stopping; });
}

Status WorkerNode::ForbidEndpoint(const std::string& addr_port) { return impl_->proxy->ForbidEndpoint(addr_port); }

const std::string& WorkerNode::worker_id() const { return impl_->worker_id; }
int WorkerNode::grpc_port() const { return impl_->grpc_port; }
int WorkerNode::file_data_port() const { return impl_->file_data ? impl_->file_data->port() : 0; }

}  // namespace osb::worker
