// Privilege reduction for processes inside a sandbox. Called only in the
// sandbox init or its freshly forked single-threaded children.
#pragma once

#include <sys/types.h>

#include "common/result.h"

namespace osb::sandbox {

// For a command about to exec: empties the capability bounding, ambient,
// inheritable, permitted and effective sets, drops supplementary groups,
// switches to uid/gid (real, effective and saved) and sets no_new_privs.
// After success the process cannot regain any capability.
Status DropToUser(uid_t uid, gid_t gid);

// For the sandbox init after setup: keeps only the capabilities it still
// needs to start commands (SETUID, SETGID, SETPCAP, KILL) in every set,
// including the bounding set, so a compromised init is still far from root.
Status RestrictInitCapabilities();

}  // namespace osb::sandbox
