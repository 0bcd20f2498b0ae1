// The worker checks every field the control plane sends it, itself: a
// compromised or buggy control plane (or anyone holding a control-plane
// certificate) must not be able to make the worker use a path, an id or a
// size it would never accept from the REST API. Each function returns
// kInvalidArgument naming the field (gRPC INVALID_ARGUMENT), and never
// includes a secret value in the message.
//
// Rules (the REST API's limits, controlplane/validation.h):
//   sandbox_id       sandbox::ValidateSandboxId
//   template_id      "" or a name [A-Za-z0-9][A-Za-z0-9._-]{0,127}: never a
//                    path (no '/', no "..")
//   project_id       "" or [A-Za-z0-9._-]{1,128}
//   cpu_count        0 (default) or 1..64; memory_mb 0 or 128..262144;
//   timeout_sec      0 or 1..2592000 (the runtime's ceiling)
//   egress_allowlist / allowed_hosts: at most 1000 entries, each a host
//                    pattern of [A-Za-z0-9.*:_-], 1..261 bytes, "*" only as a
//                    leading "*." label ("*" alone
//                    only in allowed_hosts)
//   env and secret names: [A-Za-z_][A-Za-z0-9_]{0,127}; secret names unique
//   secret values    1 byte .. 64 KiB; env values at most 64 KiB, no NUL
//   exec             cmd 1..4096 bytes without NUL, args without NUL, cwd ""
//                    or absolute, timeout 0..86400
// Pure functions; thread-safe.
#pragma once

#include "common/result.h"
#include "proto/worker.pb.h"

namespace osb::worker {

Status ValidateCreateRequest(const v1::CreateSandboxRequest& req);
Status ValidateExecRequest(const v1::ExecRequest& req);
Status ValidateUpdateSecretRequest(const v1::UpdateSecretRequest& req);
Status ValidateSandboxIdField(const std::string& id);
// Checkpoint ids name a file in the worker's state dir: [a-z0-9-]{1,64}.
Status ValidateCheckpointId(const std::string& id);

}  // namespace osb::worker
