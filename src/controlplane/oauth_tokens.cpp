#include "controlplane/oauth_tokens.h"

#include <algorithm>
#include <span>
#include <spdlog/spdlog.h>

#include "common/hex.h"
#include "common/hmac.h"
#include "common/secret_kinds.h"
#include "common/secure_memory.h"

namespace osb::controlplane {

namespace {

using SysClock = std::chrono::system_clock;


SysClock::time_point ParseMs(const std::string& rfc3339) {
  // The store's fixed format: YYYY-MM-DDTHH:MM:SS.mmmZ
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(rfc3339.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &ms) < 6) {
    return {};
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return SysClock::from_time_t(timegm(&tm)) + std::chrono::milliseconds(ms);
}

}  // namespace

// Which token a ciphertext holds is part of its binding: an access-token
// ciphertext cannot be replayed as the refresh token, nor moved to another
// project or name.
std::string OAuthAccessAad(const std::string& project_id, const std::string& name) {
  return SecretAad("oauth2-refresh/access", project_id, name);
}
std::string OAuthRefreshAad(const std::string& project_id, const std::string& name) {
  return SecretAad("oauth2-refresh/refresh", project_id, name);
}

struct OAuthTokenService::Target {
  std::string project_id;
  std::string material_fp;
  std::string refresh_token;  // the material's own
  ~Target() { SecureWipe(refresh_token); }
};

OAuthTokenService::OAuthTokenService(store::Store& store, Resolver& resolver, const crypto::Keyring& keyring,
                                     Clock now)
    : store_(store), resolver_(resolver), keyring_(keyring), now_(std::move(now)) {
  if (!now_) now_ = [] { return SysClock::now(); };
}

Result<OAuthTokenService::Target> OAuthTokenService::Authorize(const std::string& worker_id,
                                                               const std::string& sandbox_id,
                                                               const std::string& name) {
  if (worker_id.empty()) return MakeError(ErrorCode::kInvalidArgument, "worker_id: required");
  if (sandbox_id.empty()) return MakeError(ErrorCode::kInvalidArgument, "sandbox_id: required");
  if (name.empty()) return MakeError(ErrorCode::kInvalidArgument, "name: required");
  auto rows = store_.ListRunningSandboxes(worker_id, std::nullopt);
  if (!rows) return rows.error();
  const store::SandboxRow* row = nullptr;
  for (const auto& r : *rows) {
    if (r.id == sandbox_id && r.worker_id == worker_id) row = &r;
  }
  if (row == nullptr) return MakeError(ErrorCode::kNotFound, "sandbox " + sandbox_id + " does not run on this worker");
  if (!row->project_id) return MakeError(ErrorCode::kNotFound, "sandbox " + sandbox_id + " has no project");
  SandboxRequest probe;
  probe.project = *row->project_id;
  auto resolved = resolver_.ResolveSandbox(row->org_id, probe);
  if (!resolved) return resolved.error();
  for (const auto& s : resolved->secrets) {
    if (s.name != name || s.kind != SecretKindName(SecretKind::kOAuth2Refresh)) continue;
    auto material = SecretMaterial::Parse(SecretKind::kOAuth2Refresh, s.value);
    if (!material) return MakeError(ErrorCode::kDataLoss, "secret " + name + ": stored material is invalid");
    Target t;
    t.project_id = *row->project_id;
    const std::string mac = Hmac(HashAlg::kSha256, "osb-oauth-material-generation", s.value);
    t.material_fp = HexEncode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(mac.data()), mac.size()));
    t.refresh_token = std::string(material->Get("refreshToken"));
    return t;
  }
  return MakeError(ErrorCode::kNotFound, "secret " + name + ": no oauth2-refresh secret of that name in the project");
}

Result<OAuthTokenService::Grant> OAuthTokenService::Acquire(const std::string& worker_id,
                                                            const std::string& sandbox_id, const std::string& name) {
  auto target = Authorize(worker_id, sandbox_id, name);
  if (!target) return target.error();
  const auto now = now_();
  const auto lease_until = now + kLease;
  auto got = store_.AcquireOAuthLease(target->project_id, name, target->material_fp, worker_id, store::Rfc3339Ms(now),
                                      store::Rfc3339Ms(now + kRefreshMargin), store::Rfc3339Ms(lease_until));
  if (!got) {
    // A concurrent grant won the compare-and-set: ask again shortly.
    if (got.error().code == ErrorCode::kConflict) {
      Grant g;
      g.retry_after = kRetryAfter;
      return g;
    }
    return got.error();
  }
  Grant g;
  if (got->leased) {
    g.kind = Grant::Kind::kLease;
    g.generation = got->row.generation;
    g.lease_until = lease_until;
    if (got->row.refresh_ciphertext.empty()) {
      g.refresh_token = target->refresh_token;
    } else {
      auto plain = keyring_.Decrypt(got->row.refresh_ciphertext, OAuthRefreshAad(target->project_id, name));
      if (!plain) {
        // Undecryptable (its key was removed): give the lease back rather
        // than present the material's probably revoked token.
        (void)store_.ReleaseOAuthLease(target->project_id, name, g.generation, worker_id);
        return MakeError(ErrorCode::kFailedPrecondition,
                         "secret " + name + ": the stored refresh token cannot be decrypted; set the secret again");
      }
      g.refresh_token = std::move(*plain);
    }
    return g;
  }
  if (!got->row.access_ciphertext.empty() && got->row.expires_at > store::Rfc3339Ms(now + kRefreshMargin)) {
    auto plain = keyring_.Decrypt(got->row.access_ciphertext, OAuthAccessAad(target->project_id, name));
    if (plain) {
      g.kind = Grant::Kind::kToken;
      g.access_token = std::move(*plain);
      g.expires_at = ParseMs(got->row.expires_at);
      return g;
    }
    spdlog::warn("oauth2-refresh: the stored access token of {} in project {} cannot be decrypted", name,
                 target->project_id);
  }
  g.kind = Grant::Kind::kWait;
  g.retry_after = kRetryAfter;
  return g;
}

Result<bool> OAuthTokenService::Complete(const std::string& worker_id, const std::string& sandbox_id,
                                         const std::string& name, int64_t generation, const std::string& access_token,
                                         int64_t expires_in_sec, const std::string& rotated_refresh_token) {
  if (access_token.empty() || access_token.size() > 16 * 1024) {
    return MakeError(ErrorCode::kInvalidArgument, "access_token: 1 to 16384 bytes");
  }
  if (rotated_refresh_token.size() > 16 * 1024) {
    return MakeError(ErrorCode::kInvalidArgument, "refresh_token: at most 16384 bytes");
  }
  auto target = Authorize(worker_id, sandbox_id, name);
  if (!target) return target.error();
  const auto lifetime = std::chrono::seconds(std::clamp<int64_t>(expires_in_sec, 1, 366 * 24 * 3600));
  auto access_ct = keyring_.Encrypt(access_token, OAuthAccessAad(target->project_id, name));
  if (!access_ct) return access_ct.error();
  std::string refresh_ct;
  if (!rotated_refresh_token.empty()) {
    auto ct = keyring_.Encrypt(rotated_refresh_token, OAuthRefreshAad(target->project_id, name));
    if (!ct) return ct.error();
    refresh_ct = std::move(*ct);
  }
  return store_.CompleteOAuthLease(target->project_id, name, generation, worker_id, *access_ct,
                                   store::Rfc3339Ms(now_() + lifetime), refresh_ct);
}

Status OAuthTokenService::Fail(const std::string& worker_id, const std::string& sandbox_id, const std::string& name,
                               int64_t generation) {
  auto target = Authorize(worker_id, sandbox_id, name);
  if (!target) return target.error();
  auto released = store_.ReleaseOAuthLease(target->project_id, name, generation, worker_id);
  if (!released) return released.error();
  return {};
}

}  // namespace osb::controlplane
