// Starts osb-sandbox-init in fresh namespaces from the (multi-threaded)
// worker. Internal to src/sandbox.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "common/result.h"

namespace osb::sandbox {

struct LaunchedInit {
  pid_t pid = -1;     // host pid of the sandbox's PID 1 (our child)
  int pidfd = -1;     // readable when it exits
  int setupFd = -1;   // our end of the setup/control SEQPACKET socket
};

// Ids of one sandbox's user namespace: inside 0..65535.
inline constexpr uint32_t kIdsPerSandbox = 65536;

// clone(CLONE_NEWUSER|NEWNS|NEWPID|NEWUTS|NEWIPC|NEWNET), then (once we
// wrote its uid_map and gid_map, "0 <hostIdBase> 65536") setresuid/gid(0)
// and execve(initBinary) with the other end of the socket as fd 3,
// /dev/null as stdin/stdout, stderr inherited, an empty environment. Root
// inside is host uid hostIdBase, which must be unprivileged and not used by
// anything else. The child only calls async-signal-safe functions before
// execve.
Result<LaunchedInit> LaunchInit(const std::string& initBinary, uint32_t hostIdBase);

// Default location: "osb-sandbox-init" next to /proc/self/exe.
std::string DefaultInitBinary();

}  // namespace osb::sandbox
