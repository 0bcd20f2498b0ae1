#include "api/control_plane.h"

#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>
#include <pthread.h>

#include "api/routes.h"

namespace osb::api {

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
  cp->router_->SetAuthenticator([auth](const Request& req) { return auth->Authenticate(req.Header("X-API-Key")); });
  RegisterHealthRoutes(*cp->router_);
  RegisterProjectRoutes(*cp->router_, *cp->projects_);
  RegisterGroupRoutes(*cp->router_, *cp->groups_);
  RegisterSecretRoutes(*cp->router_, *cp->secrets_);
  RegisterApiKeyRoutes(*cp->router_, *cp->api_keys_);
  return cp;
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
