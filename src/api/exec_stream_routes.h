// REST + WebSocket routes for commands in a sandbox (docs/api.md, "Streaming
// exec, background commands, terminals"):
//   GET  /api/sandboxes/{id}/exec/stream              WebSocket: start + stream
//   GET  /api/sandboxes/{id}/pty                      WebSocket: same, with a terminal
//   POST /api/sandboxes/{id}/commands                 start detached → 201 {command}
//   GET  /api/sandboxes/{id}/commands                 list
//   GET  /api/sandboxes/{id}/commands/{cmd}           one
//   GET  /api/sandboxes/{id}/commands/{cmd}/attach    WebSocket: replay + follow
//   POST /api/sandboxes/{id}/commands/{cmd}/kill      {signal?}
//   POST /api/sandboxes/{id}/commands/{cmd}/wait      ?timeout=SECONDS (≤ 300)
// The frame protocol is in docs/api.md; api/command_frames.h decodes it.
#pragma once

#include "api/router.h"
#include "controlplane/command_streams.h"

namespace osb::api {

void RegisterCommandRoutes(Router& router, controlplane::CommandService& commands);

}  // namespace osb::api
