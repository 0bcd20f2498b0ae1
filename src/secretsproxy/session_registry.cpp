#include "secretsproxy/session_registry.h"

#include <algorithm>

#include <boost/asio/ip/address.hpp>
#include <set>

#include "common/secure_memory.h"
#include "secretsproxy/stream_replacer.h"

namespace osb::secretsproxy {
namespace {

constexpr size_t kMaxValue = 64 * 1024;

void WipeBinding(SecretBinding& b) {
  SecureWipe(b.value);
  SecureWipe(b.material);
}

void WipeSession(Session& s) {
  for (auto& sec : s.secrets) WipeBinding(sec);
}

void WipeValues(std::vector<std::string>& values) {
  for (auto& v : values) SecureWipe(v);
}

// A binding's value (value kind) or material (other kinds) is well formed;
// `field` names it in the error.
Status CheckBinding(const SecretBinding& s, const std::string& field) {
  auto kind = ParseSecretKind(s.kind);
  if (!kind) return MakeError(ErrorCode::kInvalidArgument, field + ".kind: unknown secret kind");
  if (*kind == SecretKind::kValue) {
    if (s.value.empty() || s.value.size() > kMaxValue) {
      return MakeError(ErrorCode::kInvalidArgument, field + ".value: must be 1 byte to 64 KiB");
    }
    if (!s.aux_token.empty()) return MakeError(ErrorCode::kInvalidArgument, field + ".auxToken: only for aws-sigv4");
    return {};
  }
  if (!s.value.empty()) return MakeError(ErrorCode::kInvalidArgument, field + ".value: a " + s.kind + " secret has material, not a value");
  if (s.material.empty() || s.material.size() > kMaxValue) {
    return MakeError(ErrorCode::kInvalidArgument, field + ".material: must be 1 byte to 64 KiB");
  }
  auto m = SecretMaterial::Parse(*kind, s.material);
  if (!m) return MakeError(ErrorCode::kInvalidArgument, field + "." + m.error().message);
  if (NeedsAuxToken(*kind, &*m) != !s.aux_token.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, field + ".auxToken: required exactly for aws-sigv4 with a sessionToken");
  }
  if (!s.aux_token.empty() && !IsSealedToken(s.aux_token)) {
    return MakeError(ErrorCode::kInvalidArgument, field + ".auxToken: must be osb_sealed_ + 32 lowercase hex");
  }
  return {};
}

bool ValidName(const std::string& n) {
  if (n.empty() || n.size() > 256) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    char c = n[i];
    bool ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool IsSealedToken(std::string_view s) {
  constexpr std::string_view kPrefix = "osb_sealed_";
  if (s.size() != kPrefix.size() + 32 || s.substr(0, kPrefix.size()) != kPrefix) return false;
  for (char c : s.substr(kPrefix.size())) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string NormalizeSourceIp(const std::string& ip) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(ip, ec);
  if (ec) return "";
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  return a.to_string();
}

SessionSnapshot::~SessionSnapshot() = default;  // PatternSets wipe themselves

bool SessionSnapshot::Expired() const { return expiry_ && std::chrono::system_clock::now() >= *expiry_; }

bool SessionSnapshot::EgressAllowed(std::string_view host, uint16_t port) const {
  return allowlist_.empty() || allowlist_.Matches(host, port);
}

std::string_view SessionSnapshot::WithheldReason(size_t i, std::string_view host, uint16_t port) const {
  const HostList& own = secrets_[i].allowed_hosts;
  if (!own.empty()) return own.Matches(host, port) ? "" : "host_not_in_allowed_hosts";
  // No allowedHosts: the project's allowlist decides, and an empty one
  // (= "every host" for traffic) sends the secret nowhere.
  if (allowlist_.empty()) return "no_allowed_hosts";
  return allowlist_.Matches(host, port) ? "" : "host_not_in_allowed_hosts";
}

std::vector<bool> SessionSnapshot::EnabledFor(std::string_view host, uint16_t port) const {
  std::vector<bool> enabled(secrets_.size());
  for (size_t i = 0; i < secrets_.size(); ++i) {
    enabled[i] = secrets_[i].is_value() && WithheldReason(i, host, port).empty();
  }
  return enabled;
}

std::string_view SessionSnapshot::RequestWithheldReason(size_t i, std::string_view host, uint16_t port,
                                                        std::string_view method, std::string_view path) const {
  std::string_view why = WithheldReason(i, host, port);
  if (!why.empty()) return why;
  const auto& rules = secrets_[i].allowed_requests;
  if (rules.empty()) return "";
  for (const auto& r : rules) {
    if (r.Matches(host, port, method, path)) return "";
  }
  return "request_not_allowed";
}

std::vector<bool> SessionSnapshot::EnabledForRequest(std::string_view host, uint16_t port, std::string_view method,
                                                     std::string_view path) const {
  std::vector<bool> enabled(secrets_.size());
  for (size_t i = 0; i < secrets_.size(); ++i) {
    enabled[i] = secrets_[i].is_value() && RequestWithheldReason(i, host, port, method, path).empty();
  }
  return enabled;
}

WithheldTokens::WithheldTokens(std::shared_ptr<const SessionSnapshot> session, const std::vector<bool>& enabled)
    : session_(std::move(session)) {
  std::vector<bool> disabled(enabled.size());
  for (size_t i = 0; i < enabled.size(); ++i) {
    disabled[i] = !enabled[i];
    active_ = active_ || disabled[i];
  }
  if (!active_) return;
  stream_ = std::make_unique<StreamReplacer>(session_->tokens(), disabled);
  whole_ = std::make_unique<StreamReplacer>(session_->tokens(), std::move(disabled));
}

WithheldTokens::~WithheldTokens() = default;

void WithheldTokens::Scan(std::string_view bytes) {
  if (!active_) return;
  scratch_.clear();
  stream_->Feed(bytes, &scratch_);  // token -> the same token: nothing to keep
}

void WithheldTokens::ScanWhole(std::string* s) {
  if (!active_ || s->size() < 43) return;  // shorter than any sealed token
  (void)whole_->ReplaceInPlace(s);
}

std::vector<std::pair<std::string, std::string>> WithheldTokens::Found(std::string_view host, uint16_t port,
                                                                       std::string_view method,
                                                                       std::string_view path) const {
  std::vector<std::pair<std::string, std::string>> out;
  if (!active_) return out;
  const auto& secrets = session_->secrets();
  for (size_t i = 0; i < secrets.size(); ++i) {
    const bool seen = (i < stream_->matched().size() && stream_->matched()[i]) ||
                      (i < whole_->matched().size() && whole_->matched()[i]);
    if (!seen) continue;
    std::string why(session_->RequestWithheldReason(i, host, port, method, path));
    // A non-value secret allowed for this request is not withheld: a
    // signing stage used it (or it passed unused).
    if (why.empty()) continue;
    if (why == "request_not_allowed") {
      why += " (allowedRequests: ";
      for (size_t r = 0; r < secrets[i].allowed_requests.size(); ++r) {
        why += (r ? "; " : "") + secrets[i].allowed_requests[r].Text();
      }
      why += ")";
    }
    out.emplace_back(secrets[i].name, std::move(why));
  }
  return out;
}

SessionRegistry::~SessionRegistry() {
  for (auto& [id, e] : by_sandbox_) {
    WipeSession(e.session);
    for (auto& [n, v] : e.derived) WipeValues(v);
  }
}

Result<std::shared_ptr<const SessionSnapshot>> SessionRegistry::Build(const Entry& e) {
  auto snap = std::make_shared<SessionSnapshot>();
  snap->sandbox_id_ = e.session.sandbox_id;
  snap->project_id_ = e.session.project_id;
  auto allow = HostList::Parse(e.session.egress_allowlist, "allowlist");
  if (!allow) return allow.error();
  snap->allowlist_ = std::move(*allow);
  snap->expiry_ = e.session.expiry;
  snap->connections_ = e.connections;
  snap->buffered_body_bytes_ = e.buffered_body_bytes;
  std::vector<PatternSet::Pattern> subs, scrub, tokens;
  for (size_t i = 0; i < e.session.secrets.size(); ++i) {
    const auto& s = e.session.secrets[i];
    auto hosts = HostList::Parse(s.allowed_hosts, "secrets[" + std::to_string(i) + "].allowedHosts",
                                 HostList::Star::kAllow);
    if (!hosts) return hosts.error();
    SessionSnapshot::Secret sec;
    sec.name = s.name;
    sec.token = s.token;
    sec.allowed_hosts = std::move(*hosts);
    sec.kind = ParseSecretKind(s.kind).value_or(SecretKind::kValue);
    sec.aux_token = s.aux_token;
    sec.allowed_requests = s.allowed_requests;
    sec.refuse_disallowed = s.refuse_disallowed;
    if (sec.is_value()) {
      subs.push_back({s.token, s.value});
      scrub.push_back({s.value, s.token});
    } else {
      auto m = SecretMaterial::Parse(sec.kind, s.material);
      if (!m) return MakeError(ErrorCode::kInvalidArgument, "secrets[" + std::to_string(i) + "]." + m.error().message);
      sec.material = std::make_shared<const SecretMaterial>(std::move(*m));
      subs.push_back({s.token, s.token});  // index alignment only: never enabled (EnabledFor)
      // The secret fields never travel, but an echo of one still comes back
      // as the token (an AWS session token as its own placeholder).
      for (std::string_view v : sec.material->SecretValues()) {
        const bool session_token = sec.kind == SecretKind::kAwsSigV4 && v == sec.material->Get("sessionToken");
        scrub.push_back({std::string(v), session_token && !s.aux_token.empty() ? s.aux_token : s.token});
      }
    }
    auto derived = e.derived.find(s.name);
    if (derived != e.derived.end()) {
      for (const auto& v : derived->second) scrub.push_back({v, s.token});
    }
    tokens.push_back({s.token, s.token});
    snap->secrets_.push_back(std::move(sec));
  }
  snap->substitutions_ = std::make_shared<PatternSet>(std::move(subs));
  snap->scrubber_ = std::make_shared<PatternSet>(std::move(scrub));
  snap->tokens_ = std::make_shared<PatternSet>(std::move(tokens));
  return std::shared_ptr<const SessionSnapshot>(std::move(snap));
}

Status SessionRegistry::Register(const std::string& source, Session session) {
  struct Wiper {
    Session& s;
    ~Wiper() { WipeSession(s); }
  } wiper{session};
  const std::string src = NormalizeSourceIp(source);
  if (src.empty()) return MakeError(ErrorCode::kInvalidArgument, "source: not an IP address");
  if (session.sandbox_id.empty()) return MakeError(ErrorCode::kInvalidArgument, "sandboxId: empty");
  std::set<std::string> names, tokens;
  for (size_t i = 0; i < session.secrets.size(); ++i) {
    const auto& s = session.secrets[i];
    const std::string field = "secrets[" + std::to_string(i) + "]";
    if (!ValidName(s.name)) return MakeError(ErrorCode::kInvalidArgument, field + ".name: invalid");
    if (!IsSealedToken(s.token)) {
      return MakeError(ErrorCode::kInvalidArgument, field + ".token: must be osb_sealed_ + 32 lowercase hex");
    }
    if (Status st = CheckBinding(s, field); !st) return st;
    if (!names.insert(s.name).second) return MakeError(ErrorCode::kInvalidArgument, field + ".name: duplicate");
    if (!tokens.insert(s.token).second) return MakeError(ErrorCode::kInvalidArgument, field + ".token: duplicate");
    if (!s.aux_token.empty() && !tokens.insert(s.aux_token).second) {
      return MakeError(ErrorCode::kInvalidArgument, field + ".auxToken: duplicate");
    }
  }
  Entry e;
  e.source = src;
  e.connections = std::make_shared<std::atomic<int>>(0);
  e.buffered_body_bytes = std::make_shared<std::atomic<size_t>>(0);
  e.session = std::move(session);
  auto snap = Build(e);
  if (!snap) {
    WipeSession(e.session);
    return snap.error();
  }
  e.snapshot = *snap;
  std::lock_guard lock(mu_);
  if (by_sandbox_.count(e.session.sandbox_id)) {
    WipeSession(e.session);
    return MakeError(ErrorCode::kAlreadyExists, "sandboxId: already registered");
  }
  if (sandbox_by_source_.count(src)) {
    WipeSession(e.session);
    return MakeError(ErrorCode::kAlreadyExists, "source: already registered to another sandbox");
  }
  sandbox_by_source_[src] = e.session.sandbox_id;
  std::string id = e.session.sandbox_id;
  by_sandbox_.emplace(std::move(id), std::move(e));
  return {};
}

Status SessionRegistry::UpdateSecretValue(const std::string& sandbox_id, const std::string& name,
                                          std::string new_value) {
  struct Wiper {
    std::string& v;
    ~Wiper() { SecureWipe(v); }
  } wiper{new_value};
  if (new_value.empty() || new_value.size() > kMaxValue) {
    return MakeError(ErrorCode::kInvalidArgument, "value: must be 1 byte to 64 KiB");
  }
  std::lock_guard lock(mu_);
  auto it = by_sandbox_.find(sandbox_id);
  if (it == by_sandbox_.end()) return MakeError(ErrorCode::kNotFound, "sandboxId: unknown");
  for (auto& s : it->second.session.secrets) {
    if (s.name != name) continue;
    std::string& slot = s.kind == "value" ? s.value : s.material;
    std::string old = std::move(slot);
    slot = new_value;
    if (s.kind != "value") {
      if (Status st = CheckBinding(s, "secret"); !st) {
        SecureWipe(slot);
        slot = std::move(old);
        return st;
      }
    }
    auto snap = Build(it->second);
    if (!snap) {
      SecureWipe(slot);
      slot = std::move(old);
      return snap.error();
    }
    SecureWipe(old);
    it->second.snapshot = *snap;
    return {};
  }
  return MakeError(ErrorCode::kNotFound, "name: no such secret in this sandbox");
}

Status SessionRegistry::SetSecret(const std::string& sandbox_id, SecretBinding binding) {
  struct Wiper {
    SecretBinding& b;
    ~Wiper() { WipeBinding(b); }
  } wiper{binding};
  if (Status st = CheckBinding(binding, "secret"); !st) return st;
  std::lock_guard lock(mu_);
  auto it = by_sandbox_.find(sandbox_id);
  if (it == by_sandbox_.end()) return MakeError(ErrorCode::kNotFound, "sandboxId: unknown");
  auto& secrets = it->second.session.secrets;
  auto existing = std::find_if(secrets.begin(), secrets.end(),
                               [&](const SecretBinding& s) { return s.name == binding.name; });
  std::optional<SecretBinding> previous;
  if (existing != secrets.end()) {
    if (existing->token != binding.token || existing->aux_token != binding.aux_token) {
      return MakeError(ErrorCode::kInvalidArgument, "token: a secret keeps its token");
    }
    if (existing->kind != binding.kind) {
      return MakeError(ErrorCode::kInvalidArgument, "kind: a running sandbox's secret keeps its kind");
    }
    previous = std::move(*existing);
    *existing = binding;
  } else {
    secrets.push_back(binding);
  }
  auto snap = Build(it->second);
  if (!snap) {  // restore what was there
    auto pos = std::find_if(secrets.begin(), secrets.end(),
                            [&](const SecretBinding& s) { return s.name == binding.name; });
    WipeBinding(*pos);
    if (previous) {
      *pos = std::move(*previous);
    } else {
      secrets.erase(pos);
    }
    return snap.error();
  }
  if (previous) WipeBinding(*previous);
  it->second.snapshot = *snap;
  return {};
}

Status SessionRegistry::RemoveSecret(const std::string& sandbox_id, const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = by_sandbox_.find(sandbox_id);
  if (it == by_sandbox_.end()) return MakeError(ErrorCode::kNotFound, "sandboxId: unknown");
  auto& secrets = it->second.session.secrets;
  for (auto s = secrets.begin(); s != secrets.end(); ++s) {
    if (s->name != name) continue;
    WipeBinding(*s);
    secrets.erase(s);
    auto d = it->second.derived.find(name);
    if (d != it->second.derived.end()) {
      WipeValues(d->second);
      it->second.derived.erase(d);
    }
    auto snap = Build(it->second);
    if (!snap) return snap.error();
    it->second.snapshot = *snap;
    return {};
  }
  return MakeError(ErrorCode::kNotFound, "name: no such secret in this sandbox");
}

size_t SessionRegistry::SetDerivedValues(const std::string& project_id, const std::string& name,
                                         std::vector<std::string> values) {
  struct Wiper {
    std::vector<std::string>& v;
    ~Wiper() { WipeValues(v); }
  } wiper{values};
  std::erase_if(values, [](const std::string& v) { return v.empty() || v.size() > kMaxValue; });
  std::lock_guard lock(mu_);
  size_t changed = 0;
  for (auto& [id, e] : by_sandbox_) {
    if (e.session.project_id != project_id) continue;
    const bool has = std::any_of(e.session.secrets.begin(), e.session.secrets.end(),
                                 [&](const SecretBinding& b) { return b.name == name; });
    if (!has) continue;
    auto& slot = e.derived[name];
    if (slot == values) continue;
    std::vector<std::string> old = std::move(slot);
    slot = values;
    auto snap = Build(e);
    if (!snap) {
      WipeValues(slot);
      slot = std::move(old);
      continue;
    }
    WipeValues(old);
    e.snapshot = *snap;
    ++changed;
  }
  return changed;
}

Status SessionRegistry::Unregister(const std::string& sandbox_id) {
  std::lock_guard lock(mu_);
  auto it = by_sandbox_.find(sandbox_id);
  if (it == by_sandbox_.end()) return MakeError(ErrorCode::kNotFound, "sandboxId: unknown");
  sandbox_by_source_.erase(it->second.source);
  WipeSession(it->second.session);
  for (auto& [n, v] : it->second.derived) WipeValues(v);
  by_sandbox_.erase(it);
  return {};
}

std::shared_ptr<const SessionSnapshot> SessionRegistry::Lookup(const std::string& source_ip) const {
  const std::string src = NormalizeSourceIp(source_ip);
  std::lock_guard lock(mu_);
  auto s = sandbox_by_source_.find(src);
  if (s == sandbox_by_source_.end()) return nullptr;
  auto it = by_sandbox_.find(s->second);
  if (it == by_sandbox_.end() || it->second.snapshot->Expired()) return nullptr;
  return it->second.snapshot;
}

size_t SessionRegistry::size() const {
  std::lock_guard lock(mu_);
  return by_sandbox_.size();
}

}  // namespace osb::secretsproxy
