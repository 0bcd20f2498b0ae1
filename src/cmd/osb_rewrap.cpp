// osb rewrap: re-encrypt every stored secret and OAuth token under the primary key.
#include <iostream>
#include <memory>

#include "cmd/osb_command.h"
#include "controlplane/rewrap.h"
#include "crypto/keyring.h"
#include "store/store.h"

namespace {

int Rewrap(const std::string& db) {
  auto keyring = osb::crypto::Keyring::FromEnvironment();
  if (!keyring) {
    std::cerr << "error: " << keyring.error().message
              << "\n  set OPENSANDBOX_SECRET_ENCRYPTION_KEY (the new primary key) and the old keys in "
                 "OPENSANDBOX_SECRET_ENCRYPTION_KEY_V1..V9\n";
    return 2;
  }
  auto store = osb::store::OpenStore(db);
  if (!store) {
    std::cerr << "error: " << store.error().message << "\n";
    return 1;
  }
  auto report = osb::controlplane::RewrapSecrets(**store, *keyring);
  if (!report) {
    std::cerr << "error: " << report.error().message << "\n";
    return 1;
  }
  std::cout << osb::controlplane::RewrapSummary(*report);
  for (const auto& f : report->failures) std::cerr << "error: " << f << "\n";
  return report->failures.empty() ? 0 : 1;
}

const bool registered = osb::cmd::RegisterOsbCommand(50, [](CLI::App& root, int& exit_code) {
  auto db = std::make_shared<std::string>();
  auto* sub = root.add_subcommand("rewrap",
                                  "Re-encrypt every stored secret and OAuth token under the primary key (after a key rotation)");
  sub->add_option("--db", *db, "Database URL: sqlite:///abs/path.db or postgresql://...")->required();
  sub->callback([db, &exit_code] { exit_code = Rewrap(*db); });
});

}  // namespace
