// Starts osb-sandbox-init in fresh namespaces from the (multi-threaded)
// worker. Internal to src/sandbox.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/result.h"

namespace osb::sandbox {

struct LaunchedInit {
  pid_t pid = -1;     // host pid of the sandbox's PID 1 (our child)
  int pidfd = -1;     // readable when it exits
  int setupFd = -1;   // our end of the setup/control SEQPACKET socket
};

// clone(CLONE_NEWNS|NEWPID|NEWUTS|NEWIPC|NEWNET) + execve(initBinary) with
// the other end of the socket as fd 3, /dev/null as stdin/stdout, stderr
// inherited, an empty environment. The child only calls async-signal-safe
// functions before execve.
Result<LaunchedInit> LaunchInit(const std::string& initBinary);

// Default location: "osb-sandbox-init" next to /proc/self/exe.
std::string DefaultInitBinary();

}  // namespace osb::sandbox
