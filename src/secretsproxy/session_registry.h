// Sessions: which sandbox a connection belongs to (found by the connection's
// source IP), its egress allowlist and its secrets.
//
// The registry stores an immutable SessionSnapshot per sandbox and swaps it
// atomically on every change: a request in flight keeps the snapshot it
// started with, the next request sees the new one (UpdateSecretValue keeps the
// token, changes the value). Real values live only in memory; every copy the
// registry owns is wiped when replaced or removed (SecureWipe).
// Thread-safe: all methods may be called concurrently from any thread.
// Errors name the field; they never contain a value or a token.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/secret_kinds.h"
#include "secretsproxy/host_rules.h"
#include "secretsproxy/pattern_set.h"

namespace osb::secretsproxy {

class StreamReplacer;

struct SecretBinding {
  std::string name;                        // env var name, e.g. OPENAI_API_KEY
  std::string token;                       // osb_sealed_ + 32 lowercase hex
  std::string value;                       // real value, 1 B .. 64 KiB
  // Hosts this secret may be substituted toward ("host", "*.suffix", each
  // with an optional ":port"; ["*"] = any host the sandbox may reach).
  // Empty = only the hosts of the session's egress allowlist, and nowhere
  // when that allowlist is empty (see SessionSnapshot::EnabledFor).
  std::vector<std::string> allowed_hosts;
  // Secret kinds (issue 16, common/secret_kinds.h). "value": `value` is
  // substituted for `token`. Any other kind: `value` is empty and `material`
  // holds the material JSON (wiped like a value); the token is NEVER
  // replaced by the material — a signing stage (signing_stage.h) signs or
  // injects instead.
  std::string kind = "value";
  std::string material = {};
  // aws-sigv4 with a sessionToken: the AWS_SESSION_TOKEN placeholder
  // (another osb_sealed_ token); "" otherwise.
  std::string aux_token = {};
  // allowedRequests: empty = every request (subject to allowed_hosts).
  std::vector<RequestRule> allowed_requests = {};
  // A request outside allowed_requests that carries the token: false = the
  // token passes sealed (audited), true = the request is refused (403).
  bool refuse_disallowed = false;
};

struct Session {
  std::string sandbox_id;
  // The project the sandbox belongs to: signing state shared by a
  // project's sandboxes (the OAuth access-token cache) is keyed by it.
  std::string project_id;
  std::vector<std::string> egress_allowlist;  // empty = every host (for traffic, not for secrets)
  std::vector<SecretBinding> secrets;
  std::optional<std::chrono::system_clock::time_point> expiry;
};

// What a connection sees: immutable, shared.
class SessionSnapshot {
 public:
  struct Secret {
    std::string name;
    std::string token;
    HostList allowed_hosts;
    SecretKind kind = SecretKind::kValue;
    std::string aux_token = {};                      // see SecretBinding
    std::vector<RequestRule> allowed_requests = {};  // empty = every request
    bool refuse_disallowed = false;
    // Non-value kinds: the parsed material, secret fields included — what a
    // signing stage signs with. Never copy it into anything that leaves the
    // proxy. Wiped when the last snapshot holding it goes.
    std::shared_ptr<const SecretMaterial> material = {};
    bool is_value() const { return kind == SecretKind::kValue; }
  };
  ~SessionSnapshot();

  const std::string& sandbox_id() const { return sandbox_id_; }
  const std::string& project_id() const { return project_id_; }
  const HostList& allowlist() const { return allowlist_; }
  // The egress allowlist's verdict: may the sandbox reach host:port at all?
  // (An empty allowlist permits every host.)
  bool EgressAllowed(std::string_view host, uint16_t port) const;
  const std::vector<Secret>& secrets() const { return secrets_; }
  bool Expired() const;
  // token -> value (pattern i = secrets()[i]).
  const std::shared_ptr<const PatternSet>& substitutions() const { return substitutions_; }
  // value -> token (pattern i = secrets()[i]).
  const std::shared_ptr<const PatternSet>& scrubber() const { return scrubber_; }
  // Which substitutions may be applied toward host:port (index = secrets()).
  // A secret is enabled when its allowedHosts match; `*` matches every
  // host; a secret WITHOUT allowedHosts is enabled only for hosts on the
  // egress allowlist, so never when that allowlist is empty. A non-value
  // secret is never enabled (its token is not substituted; signing stages
  // use it).
  std::vector<bool> EnabledFor(std::string_view host, uint16_t port) const;
  // EnabledFor narrowed by each secret's allowedRequests for this request
  // (method, path of the request target).
  std::vector<bool> EnabledForRequest(std::string_view host, uint16_t port, std::string_view method,
                                      std::string_view path) const;
  // Whether secret i may be used (by substitution or a signing stage)
  // toward host:port for this method and path: "" when it may, otherwise
  // the fixed reason (as WithheldReason, or "request_not_allowed").
  std::string_view RequestWithheldReason(size_t i, std::string_view host, uint16_t port, std::string_view method,
                                         std::string_view path) const;
  // Why secret i is not enabled toward host:port: "no_allowed_hosts" (it has
  // no allowedHosts and the allowlist is empty), "host_not_in_allowed_hosts"
  // (its own list or the allowlist it follows does not name the host), or
  // "" when it is enabled. Fixed texts, fit for audit lines.
  std::string_view WithheldReason(size_t i, std::string_view host, uint16_t port) const;
  // token -> token (pattern i = secrets()[i]): finds sealed tokens without
  // producing values, e.g. to audit the ones forwarded unreplaced.
  const std::shared_ptr<const PatternSet>& tokens() const { return tokens_; }
  // Live connections of this sandbox (shared by all its snapshots).
  std::atomic<int>& connections() const { return *connections_; }
  // Bytes of bodies held in memory for this sandbox (memory_budget.h).
  std::atomic<size_t>& buffered_body_bytes() const { return *buffered_body_bytes_; }

 private:
  friend class SessionRegistry;
  std::string sandbox_id_;
  std::string project_id_;
  HostList allowlist_;
  std::vector<Secret> secrets_;
  std::optional<std::chrono::system_clock::time_point> expiry_;
  std::shared_ptr<const PatternSet> substitutions_;
  std::shared_ptr<const PatternSet> scrubber_;
  std::shared_ptr<const PatternSet> tokens_;
  std::shared_ptr<std::atomic<int>> connections_;
  std::shared_ptr<std::atomic<size_t>> buffered_body_bytes_;
};

// Finds, in request bytes bound for one host, the sealed tokens of secrets
// that are NOT enabled toward it (they pass sealed), so the audit line can
// say which secrets were withheld and why. Streams (tokens split across
// pieces are found); holds no value. One per request; not thread-safe.
class WithheldTokens {
 public:
  WithheldTokens(std::shared_ptr<const SessionSnapshot> session, const std::vector<bool>& enabled);
  ~WithheldTokens();
  // False when every secret is enabled (nothing to look for).
  bool active() const { return active_; }
  void Scan(std::string_view bytes);
  // A complete string (request target, a header value, a buffered body),
  // scanned in place: a token is "replaced" by itself, so *s is unchanged,
  // and nothing is allocated unless a withheld token occurs.
  void ScanWhole(std::string* s);
  // {name, reason} of each secret whose token was seen, in secrets() order.
  // The reason is WithheldReason's, or for a secret allowed toward the
  // host whose allowedRequests do not match method and path,
  // "request_not_allowed (allowedRequests: <rule>; <rule>)" — user-written
  // rules, never a value.
  std::vector<std::pair<std::string, std::string>> Found(std::string_view host, uint16_t port,
                                                         std::string_view method = {},
                                                         std::string_view path = {}) const;

 private:
  std::shared_ptr<const SessionSnapshot> session_;
  std::unique_ptr<StreamReplacer> stream_;  // over tokens(), only disabled ones enabled
  std::unique_ptr<StreamReplacer> whole_;
  std::string scratch_;  // Scan's output: the same bytes, dropped
  bool active_ = false;
};

class SessionRegistry {
 public:
  SessionRegistry() = default;
  ~SessionRegistry();
  SessionRegistry(const SessionRegistry&) = delete;
  SessionRegistry& operator=(const SessionRegistry&) = delete;

  // `source` is an IP literal. Fails (kAlreadyExists) if the source or the
  // sandbox id is taken; kInvalidArgument names the bad field. Takes
  // ownership of the values and wipes the caller's copies.
  Status Register(const std::string& source, Session session);
  // kNotFound if the sandbox or the secret name is unknown.
  Status UpdateSecretValue(const std::string& sandbox_id, const std::string& name, std::string new_value);
  Status RemoveSecret(const std::string& sandbox_id, const std::string& name);
  // Adds the secret, or replaces the one with that name (value and allowed
  // hosts; the token must stay the same: kInvalidArgument otherwise). Used
  // for live refresh, including a secret set again after a removal.
  Status SetSecret(const std::string& sandbox_id, SecretBinding binding);
  // Values a signing stage derived from secret `name` (an OAuth access
  // token) for every session of `project_id` that has it: each is scrubbed
  // back to that secret's token in responses. Replaces the previous list
  // (keep a value that is still valid in it). Returns how many sessions
  // changed. Wipes the given values.
  size_t SetDerivedValues(const std::string& project_id, const std::string& name, std::vector<std::string> values);
  Status Unregister(const std::string& sandbox_id);

  // nullptr when no live session owns this source IP.
  std::shared_ptr<const SessionSnapshot> Lookup(const std::string& source_ip) const;
  size_t size() const;

 private:
  struct Entry {
    std::string source;
    Session session;  // owns the values
    std::shared_ptr<std::atomic<int>> connections;
    std::shared_ptr<std::atomic<size_t>> buffered_body_bytes;
    std::shared_ptr<const SessionSnapshot> snapshot;
    // SetDerivedValues: secret name -> values scrubbed to its token.
    std::map<std::string, std::vector<std::string>> derived;
  };
  static Result<std::shared_ptr<const SessionSnapshot>> Build(const Entry& e);

  mutable std::mutex mu_;
  std::map<std::string, Entry> by_sandbox_;
  std::map<std::string, std::string> sandbox_by_source_;
};

// Normalizes an IP literal ("::ffff:127.0.0.1" -> "127.0.0.1"); "" if invalid.
std::string NormalizeSourceIp(const std::string& ip);
// True for osb_sealed_ followed by exactly 32 lowercase hex characters.
bool IsSealedToken(std::string_view s);

}  // namespace osb::secretsproxy
