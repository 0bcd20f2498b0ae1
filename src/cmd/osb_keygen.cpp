// osb keygen: print a fresh encryption key, or the ids of the configured keys.
#include <iostream>
#include <memory>

#include "cmd/osb_command.h"
#include "crypto/keyring.h"

namespace {

int PrintKeyIds() {
  auto ring = osb::crypto::Keyring::FromEnvironment();
  if (!ring) {
    std::cerr << "error: " << ring.error().message << "\n";
    return 1;
  }
  for (const auto& key : ring->keys()) {
    std::cout << key.key_id << "  " << key.slot << (key.primary ? "  (primary)" : "") << "\n";
  }
  return 0;
}

const bool registered = osb::cmd::RegisterOsbCommand(10, [](CLI::App& root, int& exit_code) {
  auto* sub = root.add_subcommand(
      "keygen",
      "Print a new random 256-bit encryption key (64 hex chars) for "
      "OPENSANDBOX_SECRET_ENCRYPTION_KEY");
  auto show_ids = std::make_shared<bool>(false);
  sub->add_flag("--id", *show_ids,
                "Instead, print the key id of every configured key (never the key itself)");
  sub->callback([show_ids, &exit_code] {
    if (*show_ids) {
      exit_code = PrintKeyIds();
    } else {
      std::cout << osb::crypto::GenerateKeyHex() << "\n";
    }
  });
});

}  // namespace
