#include "api/control_plane.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <pthread.h>

#include "api/routes.h"

namespace osb::api {

namespace {

// An SQLite database holds every ciphertext and key hash: its file is made
// 0600 before SQLite opens it (SQLite gives its -wal, -shm and -journal
// files the database file's mode), and files of an older install are
// tightened to 0600.
Status PrepareSqliteFiles(const std::string& db_url) {
  if (!db_url.starts_with("sqlite://")) return {};
  const std::string path = db_url.substr(std::string("sqlite://").size());
  if (path.empty() || path.front() != '/') return {};  // OpenStore names the problem
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return MakeError(ErrorCode::kFailedPrecondition, "--db: cannot create " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string file = path + suffix;
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 077) != 0) ::chmod(file.c_str(), 0600);
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<ControlPlane>> ControlPlane::Create(const ControlPlaneOptions& options,
                                                           std::shared_ptr<const crypto::Keyring> keyring) {
  auto listen = ParseListenAddress("--listen", options.listen);
  if (!listen) return listen.error();
  if (!keyring) return MakeError(ErrorCode::kFailedPrecondition, "no encryption keyring");
  std::unique_ptr<ControlPlane> cp(new ControlPlane());
  cp->options_ = options;
  cp->options_.http.host = listen->first;
  cp->options_.http.port = listen->second;
  cp->keyring_ = std::move(keyring);
  if (Status st = PrepareSqliteFiles(options.db_url); !st) return st.error();
  auto store = store::OpenStore(options.db_url);
  if (!store) return store.error();
  cp->store_ = std::move(*store);
  if (options.bootstrap_api_key) {
    auto org = controlplane::BootstrapAdminKey(*cp->store_, *options.bootstrap_api_key);
    if (!org) return org.error();
    spdlog::info("auth: bootstrap admin key installed for org '{}' ({})", org->name, org->id);
  }
  cp->auth_ = std::make_unique<controlplane::Authenticator>(*cp->store_);
  cp->projects_ = std::make_unique<controlplane::ProjectService>(*cp->store_);
  cp->groups_ = std::make_unique<controlplane::GroupService>(*cp->store_);
  cp->secrets_ = std::make_unique<controlplane::SecretService>(*cp->store_, cp->keyring_);
  cp->api_keys_ = std::make_unique<controlplane::ApiKeyService>(*cp->store_);
  cp->resolver_ = std::make_unique<controlplane::Resolver>(*cp->store_, *cp->secrets_);
  cp->router_ = std::make_shared<Router>();
  auto* auth = cp->auth_.get();
  cp->router_->SetAuthenticator([auth](const Request& req) -> Result<Caller> {
    auto key = auth->Authenticate(req.Header("X-API-Key"));
    if (!key) return key.error();
    // A scope this build does not know gets the least one (fail closed).
    return Caller{key->org_id, ParseKeyScope(key->scope).value_or(KeyScope::kSandbox)};
  });
  ControlPlane* self = cp.get();
  RegisterHealthRoutes(*cp->router_, [self] { return self->Ready(); });
  RegisterProjectRoutes(*cp->router_, *cp->projects_);
  RegisterGroupRoutes(*cp->router_, *cp->groups_);
  RegisterSecretRoutes(*cp->router_, *cp->secrets_);
  RegisterApiKeyRoutes(*cp->router_, *cp->api_keys_);
  return cp;
}

Status ControlPlane::Ready() {
  if (auto version = store_->SchemaVersion(); !version) {
    return MakeError(ErrorCode::kUnavailable, "database not answering: " + version.error().message);
  }
  if (!readiness_check_) return MakeError(ErrorCode::kUnavailable, "no worker can take a sandbox");
  if (Status st = readiness_check_(); !st) {
    return MakeError(ErrorCode::kUnavailable, st.error().message);
  }
  return {};
}

ControlPlane::~ControlPlane() {
  if (server_) {
    server_->Stop();
    server_->Wait();
  }
}

Status ControlPlane::Start() {
  server_ = std::make_unique<HttpServer>(options_.http, router_);
  return server_->Start();
}

uint16_t ControlPlane::port() const { return server_ ? server_->port() : 0; }

void ControlPlane::Stop() {
  if (server_) server_->Stop();
}

void ControlPlane::Wait() {
  if (server_) server_->Wait();
}

std::string MissingKeyMessage(const Error& keyring_error) {
  return "error: no usable secret encryption key (" + keyring_error.message +
         ").\n  osb server refuses to start without one: set OPENSANDBOX_SECRET_ENCRYPTION_KEY "
         "(64 hex chars)\n  or OPENSANDBOX_SECRET_ENCRYPTION_KEY_FILE. Generate a key with `osb keygen`.\n"
         "  (`osb dev` creates one in its data dir automatically.)";
}

int RunControlPlane(const ControlPlaneOptions& options, std::shared_ptr<const crypto::Keyring> keyring,
                    const std::function<Status(ControlPlane&)>& before_start,
                    const std::function<void(ControlPlane&)>& on_started,
                    const std::function<void()>& on_stopped) {
  // Block the signals in every thread (threads inherit the mask) and wait for
  // them synchronously here: no async-signal-safety concerns.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto cp = ControlPlane::Create(options, std::move(keyring));
  if (!cp) {
    std::cerr << "error: " << cp.error().message << "\n";
    return 1;
  }
  if (before_start) {
    if (Status st = before_start(**cp); !st) {
      std::cerr << "error: " << st.error().message << "\n";
      return 1;
    }
  }
  if (Status st = (*cp)->Start(); !st) {
    std::cerr << "error: " << st.error().message << "\n";
    if (on_stopped) on_stopped();
    return 1;
  }
  if (on_started) on_started(**cp);
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  (*cp)->Stop();
  (*cp)->Wait();
  if (on_stopped) on_stopped();
  spdlog::info("stopped");
  return 0;
}

}  // namespace osb::api
