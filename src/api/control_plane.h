// ControlPlane: the assembled `osb server` — store, keyring, auth, domain
// services, router with every REST route, and the HTTP server. `osb server`
// and `osb dev` both build one through RunControlPlane(); the worker
// integration (issue 5) registers its routes and the secret-change hook in
// `before_start`, e.g.
//
//   RunControlPlane(options, keyring, [&](ControlPlane& cp) -> Status {
//     cp.router().Add("POST", "/api/sandboxes", ...);   // uses cp.resolver()
//     cp.secrets().SetListener([&](const SecretChange& c) { ... });
//     return {};
//   });
//
// Lifetime: the ControlPlane owns everything; Stop()+Wait() (or destruction)
// shuts the server down gracefully before the store is closed.
// Thread safety: configure (router(), SetListener) before Start().
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "api/http_server.h"
#include "api/router.h"
#include "common/result.h"
#include "controlplane/api_keys.h"
#include "controlplane/auth.h"
#include "controlplane/projects.h"
#include "controlplane/resolution.h"
#include "controlplane/secrets.h"
#include "crypto/keyring.h"
#include "store/store.h"

namespace osb::api {

struct ControlPlaneOptions {
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; port 0 = any free port
  std::string db_url;                      // sqlite:///abs/path.db or postgresql://...
  // When set, this key becomes the admin key of the default org (created if
  // missing). Normally OPENSANDBOX_API_KEY.
  std::optional<std::string> bootstrap_api_key;
  HttpServerOptions http;                  // host/port are taken from `listen`
};

class ControlPlane {
 public:
  // Opens the store (applying migrations) and bootstraps the admin key.
  static Result<std::unique_ptr<ControlPlane>> Create(const ControlPlaneOptions& options,
                                                      std::shared_ptr<const crypto::Keyring> keyring);
  ~ControlPlane();

  Router& router() { return *router_; }
  store::Store& store() { return *store_; }
  const crypto::Keyring& keyring() const { return *keyring_; }
  controlplane::ProjectService& projects() { return *projects_; }
  controlplane::SecretService& secrets() { return *secrets_; }
  controlplane::Resolver& resolver() { return *resolver_; }

  // Readiness (GET /readyz): OK when the database answers and the check set
  // here (SandboxPlane: a worker can take a sandbox) passes; without a
  // check nothing can take a sandbox, so not ready. Set before Start().
  void SetReadinessCheck(std::function<Status()> check) { readiness_check_ = std::move(check); }
  Status Ready();

  Status Start();
  uint16_t port() const;  // valid after Start()
  void Stop();
  void Wait();

 private:
  ControlPlane() = default;
  ControlPlaneOptions options_;
  std::shared_ptr<const crypto::Keyring> keyring_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<controlplane::Authenticator> auth_;
  std::unique_ptr<controlplane::ProjectService> projects_;
  std::unique_ptr<controlplane::GroupService> groups_;
  std::unique_ptr<controlplane::SecretService> secrets_;
  std::unique_ptr<controlplane::ApiKeyService> api_keys_;
  std::unique_ptr<controlplane::Resolver> resolver_;
  std::shared_ptr<Router> router_;
  std::unique_ptr<HttpServer> server_;
  std::function<Status()> readiness_check_;
};

// Builds, starts and runs a control plane until SIGINT or SIGTERM, then shuts
// it down gracefully. `before_start` (optional) customises it first;
// `on_started` (optional) runs once it is listening (e.g. to print the URL).
// Returns a process exit code; errors are printed to stderr.
// `on_stopped` (optional) runs after the HTTP server has stopped and before
// the store closes (e.g. to stop a gRPC server that uses the store).
int RunControlPlane(const ControlPlaneOptions& options, std::shared_ptr<const crypto::Keyring> keyring,
                    const std::function<Status(ControlPlane&)>& before_start = {},
                    const std::function<void(ControlPlane&)>& on_started = {},
                    const std::function<void()>& on_stopped = {});

// The message `osb server` prints when no encryption key is configured.
std::string MissingKeyMessage(const Error& keyring_error);

}  // namespace osb::api
