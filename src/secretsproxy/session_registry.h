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
};

struct Session {
  std::string sandbox_id;
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
  };
  ~SessionSnapshot();

  const std::string& sandbox_id() const { return sandbox_id_; }
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
  // egress allowlist, so never when that allowlist is empty.
  std::vector<bool> EnabledFor(std::string_view host, uint16_t port) const;
  // Why secret i is not enabled toward host:port: "no_allowed_hosts" (it has
  // no allowedHosts and the allowlist is empty), "host_not_in_allowed_hosts"
  // (its own list or the allowlist it follows does not name the host), or
  // "" when it is enabled. Fixed texts, fit for audit lines.
  std::string_view WithheldReason(size_t i, std::string_view host, uint16_t port) const;
  // token -> token (pattern i = secrets()[i]): finds sealed tokens without
  // producing values, e.g. to audit the ones forwarded unreplaced.
  const std::shared_ptr<const PatternSet>& tokens() const { return tokens_; }
  // Bytes of bodies held in memory for this sandbox (memory_budget.h).
  std::atomic<size_t>& buffered_body_bytes() const { return *buffered_body_bytes_; }

 private:
  friend class SessionRegistry;
  std::string sandbox_id_;
  HostList allowlist_;
  std::vector<Secret> secrets_;
  std::optional<std::chrono::system_clock::time_point> expiry_;
  std::shared_ptr<const PatternSet> substitutions_;
  std::shared_ptr<const PatternSet> scrubber_;
  std::shared_ptr<const PatternSet> tokens_;
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
  std::vector<std::pair<std::string, std::string>> Found(std::string_view host, uint16_t port) const;

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
  Status Unregister(const std::string& sandbox_id);

  // nullptr when no live session owns this source IP.
  std::shared_ptr<const SessionSnapshot> Lookup(const std::string& source_ip) const;
  size_t size() const;
  // Bumped by every change. A caller that read generation() G before a
  // Lookup may keep that Lookup's answer while generation() is still G
  // (re-checking Expired()): the per-request session stage of a keep-alive
  // connection then costs one atomic load instead of a lock, an address
  // normalisation and two map searches.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  struct Entry {
    std::string source;
    Session session;  // owns the values
    std::shared_ptr<std::atomic<size_t>> buffered_body_bytes;
    std::shared_ptr<const SessionSnapshot> snapshot;
  };
  static Result<std::shared_ptr<const SessionSnapshot>> Build(const Entry& e);

  mutable std::mutex mu_;
  std::atomic<uint64_t> generation_{0};  // bumped under mu_ by every mutation
  std::map<std::string, Entry> by_sandbox_;
  std::map<std::string, std::string> sandbox_by_source_;
};

// Normalizes an IP literal ("::ffff:127.0.0.1" -> "127.0.0.1"); "" if invalid.
std::string NormalizeSourceIp(const std::string& ip);
// True for osb_sealed_ followed by exactly 32 lowercase hex characters.
bool IsSealedToken(std::string_view s);

}  // namespace osb::secretsproxy
