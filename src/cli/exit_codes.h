// Exit codes of `oc`, one per error class, so scripts can branch on them.
// Documented in docs/cli.md ("Exit codes"); changing a value is a breaking
// change for users' scripts.
//
// `oc exec` is the exception: on success it exits with the exit code of the
// command that ran in the sandbox (see docs/cli.md).
#pragma once

#include "common/result.h"

namespace osb::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,     // server error (5xx, including 503 no worker), network or TLS failure, local I/O
  kExitUsage = 2,       // bad flags or arguments, rejected before any request is sent
  kExitRejected = 3,    // the server rejected the input (400, 405, 413)
  kExitNotFound = 4,    // 404: no such project, secret, group or sandbox
  kExitAuth = 5,        // 401/403, or no API key configured
  kExitConflict = 6,    // 409: the name is taken
};

// Maps an error from the API client (see api_client.h) to its exit code.
int ExitCodeFor(ErrorCode code);

}  // namespace osb::cli
