#include <iostream>

#include "cmd/osb_command.h"

namespace {
const bool registered = osb::cmd::RegisterOsbCommand(100, [](CLI::App& root, int&) {
  root.add_subcommand("version", "Print the OpenSandbox version")->callback([] {
    std::cout << "osb " << OSB_VERSION << "\n";
  });
});
}  // namespace
