// osb: the OpenSandbox server-side binary (server, worker, dev, admin verbs).
#include <algorithm>
#include <vector>

#include "cmd/osb_command.h"
#include "common/log.h"

namespace osb::cmd {
namespace {
std::vector<std::pair<int, CommandSetup>>& Registry() {
  static std::vector<std::pair<int, CommandSetup>> registry;
  return registry;
}
}  // namespace

bool RegisterOsbCommand(int order, CommandSetup setup) {
  Registry().emplace_back(order, std::move(setup));
  return true;
}
}  // namespace osb::cmd

int main(int argc, char** argv) {
  CLI::App app{"osb: OpenSandbox server, worker and administration", "osb"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->envname("OSB_LOG_LEVEL");

  int exit_code = 0;
  auto& registry = osb::cmd::Registry();
  std::stable_sort(registry.begin(), registry.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, setup] : registry) setup(app, exit_code);
  app.parse_complete_callback([&] { osb::InitLogging(log_level); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
