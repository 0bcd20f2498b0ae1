// osb migrate: apply pending schema migrations and print the version.
#include <iostream>
#include <memory>

#include "cmd/osb_command.h"
#include "store/store.h"

namespace {

const bool registered = osb::cmd::RegisterOsbCommand(40, [](CLI::App& root, int& exit_code) {
  auto db = std::make_shared<std::string>();
  auto* sub = root.add_subcommand("migrate", "Apply pending database schema migrations");
  sub->add_option("--db", *db, "Database URL: sqlite:///abs/path.db or postgresql://...")->required();
  sub->callback([db, &exit_code] {
    auto version = osb::store::MigrateStore(*db);
    if (!version) {
      std::cerr << "error: " << version.error().message << "\n";
      exit_code = 1;
      return;
    }
    std::cout << "schema is at version " << *version << "\n";
  });
});

}  // namespace
