// REST routes for sandboxes (docs/api.md "Sandboxes"):
//   POST   /api/sandboxes                 create (project defaults, explicit fields win)
//   GET    /api/sandboxes                 list (the caller's org)
//   GET    /api/sandboxes/{id}
//   DELETE /api/sandboxes/{id}            destroy and forget (then 404)
//   POST   /api/sandboxes/{id}/exec/run   {cmd, args?, envs?, cwd?, timeout?}
//                                         -> {exitCode, stdout, stderr, ...}
// 503 when no worker is healthy; 409 exec in a stopped sandbox.
#pragma once

#include "api/router.h"
#include "controlplane/sandboxes.h"

namespace osb::api {

void RegisterSandboxRoutes(Router& router, controlplane::SandboxService& sandboxes);

}  // namespace osb::api
