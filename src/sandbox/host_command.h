// Runs a host tool (`ip`, `nft`) with arguments and optional stdin, capturing
// its output. Uses posix_spawn, so it is safe in the multi-threaded worker.
//
// Errors: kInternal with the tool's name, exit status and the first line(s)
// of its stderr (our inputs to these tools never contain secrets).
#pragma once

#include <string>
#include <vector>

#include "common/result.h"

namespace osb::sandbox {

struct CommandOutput {
  int exitCode = -1;
  std::string out;  // stdout and stderr interleaved, capped at 64 KiB
};

// Runs argv[0] (looked up in /usr/sbin:/sbin:/usr/bin:/bin) and waits.
Result<CommandOutput> RunHostCommand(const std::vector<std::string>& argv, const std::string& stdinData = "");

// Like RunHostCommand but a non-zero exit is an error.
Status RunHostCommandOk(const std::vector<std::string>& argv, const std::string& stdinData = "");

}  // namespace osb::sandbox
