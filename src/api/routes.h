// REST routes of the control plane (docs/api.md). Each Register* adds its
// routes to the router; the services must outlive the router. Handlers only
// translate HTTP ⇄ domain calls in src/controlplane.
#pragma once

#include <functional>
#include <string>

#include "api/router.h"
#include "common/result.h"
#include "controlplane/api_keys.h"
#include "controlplane/projects.h"
#include "controlplane/resolution.h"
#include "controlplane/secrets.h"

namespace osb::api {

// GET /healthz (liveness: the process answers) and GET /readyz (200 when
// `ready` passes, else 503 {"status":"not ready","error":reason}); both
// without an API key.
void RegisterHealthRoutes(Router& router, std::function<Status()> ready);
// /api/projects, /api/projects/{project}
void RegisterProjectRoutes(Router& router, controlplane::ProjectService& projects);
// /api/secret-groups, /api/secret-groups/{group}
void RegisterGroupRoutes(Router& router, controlplane::GroupService& groups);
// /api/projects/{project}/secrets[/{name}], /api/secret-groups/{group}/secrets[/{name}]
void RegisterSecretRoutes(Router& router, controlplane::SecretService& secrets);
// /api/api-keys, /api/api-keys/{id}
void RegisterApiKeyRoutes(Router& router, controlplane::ApiKeyService& keys);

// For POST /api/sandboxes (issue 5): parses {project?, templateID?,
// cpuCount?, memoryMB?, timeout?, envs?, egressAllowlist?} with the same
// strict rules (400 naming the field).
Result<controlplane::SandboxRequest> ParseSandboxRequest(const std::string& body);

}  // namespace osb::api
