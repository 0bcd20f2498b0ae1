// osb rewrap: re-encrypt every stored secret under the keyring's primary key
// so previous keys can be retired. One transaction per row (a compare-and-
// swap on the old ciphertext, so a concurrent write is never overwritten),
// idempotent (rows already under the primary are left alone), and a row that
// cannot be decrypted is reported and skipped, never altered.
// Thread safety: may run while servers are serving.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"
#include "crypto/keyring.h"
#include "store/store.h"

namespace osb::controlplane {

struct RewrapReport {
  std::string primary_key_id;
  std::map<std::string, int> moved_by_key_id;  // old key id → rows moved to the primary
  int already_primary = 0;
  int changed_concurrently = 0;  // rewritten by someone else meanwhile (already primary)
  std::vector<std::string> failures;  // "group/NAME: reason" (never a value)
};

Result<RewrapReport> RewrapSecrets(store::Store& store, const crypto::Keyring& keyring);

}  // namespace osb::controlplane
