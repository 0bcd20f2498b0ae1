#include "controlplane/rewrap.h"

#include <sstream>

#include "common/secure_memory.h"
#include "controlplane/oauth_tokens.h"
#include "controlplane/secrets.h"

namespace osb::controlplane {

namespace {

// One ciphertext: `out` becomes it under the primary (unchanged when
// already there or absent) and `moved_from` the old key id when it was
// re-encrypted. False, with a failure naming `where`, when it cannot be.
bool Reencrypt(const crypto::Keyring& keyring, const std::string& ciphertext, const std::string& aad,
               const std::string& where, RewrapReport& report, std::string& out, std::string& moved_from) {
  out = ciphertext;
  moved_from.clear();
  if (ciphertext.empty()) return true;  // no such token (yet)
  auto key_id = crypto::Keyring::KeyIdOf(ciphertext);
  if (!key_id) {
    report.failures.push_back(where + ": " + key_id.error().message);
    return false;
  }
  if (*key_id == report.primary_key_id) return true;
  auto plain = keyring.Decrypt(ciphertext, aad);
  if (!plain) {
    report.failures.push_back(where + ": " + plain.error().message);
    return false;
  }
  auto fresh = keyring.Encrypt(*plain, aad);
  SecureWipe(*plain);
  if (!fresh) {
    report.failures.push_back(where + ": " + fresh.error().message);
    return false;
  }
  out = std::move(*fresh);
  moved_from = *key_id;
  return true;
}

void RewrapOrgSecrets(store::Store& store, const crypto::Keyring& keyring, const std::vector<store::SecretRow>& rows,
                      RewrapReport& report) {
  for (const auto& row : rows) {
    const std::string where = row.group_id + "/" + row.name;
    std::string fresh, moved_from;
    if (!Reencrypt(keyring, row.ciphertext, SecretAad(row.org_id, row.group_id, row.name), where, report, fresh,
                   moved_from)) {
      continue;
    }
    if (moved_from.empty()) {
      ++report.already_primary;
      continue;
    }
    auto replaced = store.ReplaceCiphertext(row.group_id, row.name, row.ciphertext, fresh, report.primary_key_id);
    if (!replaced) {
      report.failures.push_back(where + ": " + replaced.error().message);
    } else if (*replaced) {
      ++report.moved_by_key_id[moved_from];
    } else {
      ++report.changed_concurrently;
    }
  }
}

}  // namespace

void RewrapOAuthTokens(store::Store& store, const crypto::Keyring& keyring,
                       const std::vector<store::OAuthTokenRow>& rows, RewrapReport& report) {
  for (const auto& row : rows) {
    const std::string where = "oauth " + row.project_id + "/" + row.name;
    std::string access, refresh, access_from, refresh_from;
    const bool access_ok = Reencrypt(keyring, row.access_ciphertext, OAuthAccessAad(row.project_id, row.name),
                                     where + " access", report, access, access_from);
    const bool refresh_ok = Reencrypt(keyring, row.refresh_ciphertext, OAuthRefreshAad(row.project_id, row.name),
                                      where + " refresh", report, refresh, refresh_from);
    if (!access_ok || !refresh_ok) continue;  // the row is left as it is
    const int present = (row.access_ciphertext.empty() ? 0 : 1) + (row.refresh_ciphertext.empty() ? 0 : 1);
    const int moving = (access_from.empty() ? 0 : 1) + (refresh_from.empty() ? 0 : 1);
    report.oauth_already_primary += present - moving;
    if (moving == 0) continue;
    // Both columns in one compare-and-set against what was read: a refresh
    // completed meanwhile wrote tokens under the primary already.
    auto replaced = store.ReplaceOAuthCiphertexts(row.project_id, row.name, row.access_ciphertext,
                                                  row.refresh_ciphertext, access, refresh);
    if (!replaced) {
      report.failures.push_back(where + ": " + replaced.error().message);
    } else if (*replaced) {
      if (!access_from.empty()) ++report.oauth_moved_by_key_id[access_from];
      if (!refresh_from.empty()) ++report.oauth_moved_by_key_id[refresh_from];
    } else {
      ++report.oauth_changed_concurrently;
    }
  }
}

Result<RewrapReport> RewrapSecrets(store::Store& store, const crypto::Keyring& keyring) {
  RewrapReport report;
  report.primary_key_id = keyring.primary_key_id();
  auto secrets = store.ListAllSecrets();
  if (!secrets) return secrets.error();
  RewrapOrgSecrets(store, keyring, *secrets, report);
  auto tokens = store.ListAllOAuthTokens();
  if (!tokens) return tokens.error();
  RewrapOAuthTokens(store, keyring, *tokens, report);
  return report;
}

std::string RewrapSummary(const RewrapReport& report) {
  std::ostringstream out;
  // One block per kind; returns how many moved.
  const auto counts = [&](const std::map<std::string, int>& moved_by_key_id, int already_primary,
                          int changed_concurrently, const char* what, const char* concurrently) {
    int moved = 0;
    for (const auto& [key_id, count] : moved_by_key_id) {
      out << "key " << key_id << ": " << count << " " << what << " re-encrypted under primary key "
          << report.primary_key_id << "\n";
      moved += count;
    }
    out << "key " << report.primary_key_id << " (primary): " << already_primary << " " << what
        << " already current\n";
    if (changed_concurrently > 0) {
      out << changed_concurrently << " " << concurrently << " (already current)\n";
    }
    return moved;
  };
  const int moved = counts(report.moved_by_key_id, report.already_primary, report.changed_concurrently,
                           "secret(s)", "secret(s) were rewritten concurrently");
  const int oauth_moved = counts(report.oauth_moved_by_key_id, report.oauth_already_primary,
                                 report.oauth_changed_concurrently, "oauth token(s)",
                                 "oauth token row(s) were refreshed concurrently");
  out << "rewrap: " << moved << " moved, " << oauth_moved << " oauth token(s) moved, " << report.failures.size()
      << " failed\n";
  return out.str();
}

}  // namespace osb::controlplane
