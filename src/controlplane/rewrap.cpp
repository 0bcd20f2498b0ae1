#include "controlplane/rewrap.h"

#include "common/secure_memory.h"
#include "controlplane/secrets.h"

namespace osb::controlplane {

Result<RewrapReport> RewrapSecrets(store::Store& store, const crypto::Keyring& keyring) {
  RewrapReport report;
  report.primary_key_id = keyring.primary_key_id();
  auto rows = store.ListAllSecrets();
  if (!rows) return rows.error();
  for (const auto& row : *rows) {
    const std::string where = row.group_id + "/" + row.name;
    auto key_id = crypto::Keyring::KeyIdOf(row.ciphertext);
    if (!key_id) {
      report.failures.push_back(where + ": " + key_id.error().message);
      continue;
    }
    if (*key_id == report.primary_key_id) {
      ++report.already_primary;
      continue;
    }
    const std::string aad = SecretAad(row.org_id, row.group_id, row.name);
    auto plain = keyring.Decrypt(row.ciphertext, aad);
    if (!plain) {
      report.failures.push_back(where + ": " + plain.error().message);
      continue;
    }
    auto fresh = keyring.Encrypt(*plain, aad);
    SecureWipe(*plain);
    if (!fresh) {
      report.failures.push_back(where + ": " + fresh.error().message);
      continue;
    }
    auto replaced = store.ReplaceCiphertext(row.group_id, row.name, row.ciphertext, *fresh,
                                            report.primary_key_id);
    if (!replaced) {
      report.failures.push_back(where + ": " + replaced.error().message);
    } else if (*replaced) {
      ++report.moved_by_key_id[*key_id];
    } else {
      ++report.changed_concurrently;
    }
  }
  return report;
}

}  // namespace osb::controlplane
