// osb rewrap: re-encrypt every stored secret, and the OAuth state kept for
// oauth2-refresh secrets (oauth_tokens: access and rotated refresh tokens),
// under the keyring's primary key so previous keys can be retired. One
// transaction per row (a compare-and-swap on the old ciphertexts, so a
// concurrent write or refresh is never overwritten), idempotent (rows
// already under the primary are left alone), and a row that cannot be
// decrypted is reported and skipped, never altered.
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
  // Secrets (org_secrets), counted in rows.
  std::map<std::string, int> moved_by_key_id;  // old key id → rows moved to the primary
  int already_primary = 0;
  int changed_concurrently = 0;  // rewritten by someone else meanwhile (already primary)
  // OAuth state (oauth_tokens), counted in tokens: a row holds up to two
  // (the access token and the rotated refresh token).
  std::map<std::string, int> oauth_moved_by_key_id;  // old key id → tokens moved to the primary
  int oauth_already_primary = 0;
  int oauth_changed_concurrently = 0;  // rows refreshed or reset meanwhile (left to the writer)
  // "group/NAME: reason" or "oauth project/NAME access|refresh: reason"
  // (never a value).
  std::vector<std::string> failures;
};

Result<RewrapReport> RewrapSecrets(store::Store& store, const crypto::Keyring& keyring);

// The OAuth half of RewrapSecrets over rows read earlier (a test seam: a
// refresh can complete between the read and the compare-and-set).
// report.primary_key_id must be keyring.primary_key_id().
void RewrapOAuthTokens(store::Store& store, const crypto::Keyring& keyring,
                       const std::vector<store::OAuthTokenRow>& rows, RewrapReport& report);

// What `osb rewrap` prints (stdout; failures go to stderr separately):
// counts and key ids only, never a value.
std::string RewrapSummary(const RewrapReport& report);

}  // namespace osb::controlplane
