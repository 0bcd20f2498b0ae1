// REST routes for sandboxes (docs/api.md "Sandboxes"):
//   POST   /api/sandboxes                 create (project defaults, explicit fields win)
//   GET    /api/sandboxes                 list (the caller's org)
//   GET    /api/sandboxes/{id}
//   DELETE /api/sandboxes/{id}            destroy and forget (then 404)
//   POST   /api/sandboxes/{id}/exec/run   {cmd, args?, envs?, cwd?, timeout?}
//                                         -> {exitCode, stdout, stderr, ...}
// 503 when no worker is healthy; 409 exec in a stopped sandbox.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "api/router.h"
#include "controlplane/sandboxes.h"

namespace osb::api {

void RegisterSandboxRoutes(Router& router, controlplane::SandboxService& sandboxes);

// Checkpoints and lifetime (checkpoint_routes.cpp, docs/api.md "Checkpoints"):
//   POST   /api/sandboxes/{id}/checkpoints          save files + config -> 201 checkpoint
//   GET    /api/sandboxes/{id}/checkpoints          that sandbox's checkpoints
//   DELETE /api/sandboxes/{id}/checkpoints/{cid}    204
//   GET    /api/checkpoints                         every checkpoint of the org
//   POST   /api/sandboxes/{id}/timeout {timeoutSec} new deadline = now + timeoutSec
//   POST   /api/sandboxes/{id}/hibernate            checkpoint, free everything -> "hibernated"
//   POST   /api/sandboxes/{id}/wake                 restore under the same id -> "running"
// (POST /api/sandboxes {fromCheckpoint} is the restore / warm fork.)
void RegisterCheckpointRoutes(Router& router, controlplane::SandboxService& sandboxes);
// The sandbox JSON every route returns.
nlohmann::json SandboxViewJson(const controlplane::SandboxView& v);

}  // namespace osb::api
