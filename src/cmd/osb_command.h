// `osb` subcommands register themselves: each lives in its own osb_<verb>.cpp
// next to this header and calls RegisterOsbCommand from a static initializer,
// so adding a verb never means editing main. (These files are compiled
// straight into the executable, not a static library, so the initializers
// are never dropped by the linker.)
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace osb::cmd {

// Adds one subcommand to `root`. Its callback stores the process exit code
// in `exit_code` (0 unless set).
using CommandSetup = std::function<void(CLI::App& root, int& exit_code)>;

// Registers a setup function; `order` sorts the verbs in `osb --help`.
bool RegisterOsbCommand(int order, CommandSetup setup);

}  // namespace osb::cmd
