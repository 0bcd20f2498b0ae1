// Internal: admission of a sandbox connection, shared by every listener
// (explicit, transparent TLS, transparent HTTP). A connection counts against
// its sandbox from accept, before a single byte is read:
//   1. the worker's descriptor budget (common/fd_budget.h)  -> closed
//   2. the session, found by source address                  -> kNoSession
//   3. the sandbox's live connections  (limits.max_connections_per_session)
//   4. the sandbox's connections still in their handshake or request head
//      (limits.max_pending_per_session)                      -> closed at once
// and each refusal is audited through a per-sandbox, per-kind rate-limited
// line (" (N similar suppressed)").
//
// The pending phase has deadlines measured from accept, never reset by a
// trickle of bytes: request head by accept + header_timeout; ClientHello and
// TLS handshake by accept + handshake_timeout (after a CONNECT head: by the
// head's end + handshake_timeout); the first request head inside TLS by the
// handshake's end + header_timeout. Established() ends the phase.
//
// Thread-safe: the tables are shared by all connections; one Admitted
// belongs to one connection's coroutine.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/fd_budget.h"
#include "common/keyed_slots.h"
#include "common/memory_trim.h"
#include "common/rate_limited_log.h"
#include "secretsproxy/session_registry.h"

namespace osb::secretsproxy {

class AuditLog;
class Metrics;
struct ProxyLimits;

// Descriptors one proxy connection may hold: the client's and its upstream's.
inline constexpr size_t kFdsPerConnection = 2;

struct AdmissionTables {
  KeyedSlots connections;  // by sandbox id
  KeyedSlots pending;      // by sandbox id: handshake or head not done yet
  RateLimitedLog refusals{RateLimitedLog::Options{}};
  MemoryTrimmer trimmer;
  std::atomic<uint64_t> refused_budget{0}, refused_connections{0}, refused_pending{0};
  Metrics* metrics = nullptr;  // audited refusals are counted here (requests_blocked)
};

class Admitted {
 public:
  using Clock = std::chrono::steady_clock;
  const std::shared_ptr<const SessionSnapshot>& session() const { return session_; }
  const std::string& sandbox_id() const { return session_->sandbox_id(); }
  Clock::time_point accepted_at() const { return accepted_at_; }
  bool pending() const { return pending_.held(); }
  // The pending phase is over (first request head complete): the connection
  // no longer counts against the handshake/head cap.
  void Established() { pending_.Release(); }

 private:
  friend struct Admission;
  std::shared_ptr<const SessionSnapshot> session_;
  FdBudget::Lease fds_;
  KeyedSlots::Slot connection_;
  KeyedSlots::Slot pending_;
  Clock::time_point accepted_at_;
};

struct Admission {
  enum class Outcome { kAdmitted, kNoSession, kRefused };
  struct Result {
    Outcome outcome = Outcome::kRefused;
    std::optional<Admitted> admitted;
    std::string reason;  // fixed text for kNoSession / kRefused
  };
  // `fd` is the accepted descriptor; `source` the normalized source address.
  // On kRefused the caller closes at once; the refusal is already audited
  // (rate-limited).
  static Result Admit(AdmissionTables& tables, const SessionRegistry& sessions, const ProxyLimits& limits,
                      AuditLog& audit, int fd, const std::string& source);
};

// Prometheus text: refusals at admission, the descriptor budget, suppressed
// log lines, memory trims.
std::string AdmissionMetrics(const AdmissionTables& tables);

// Writes a blocked audit record unless (sandbox or source, reason) is over
// its rate: the admitted line carries " (N similar suppressed)".
void AuditRefusal(AdmissionTables& tables, AuditLog& audit, const std::string& source, const std::string& sandbox,
                  const std::string& host, const std::string& method, int status, const std::string& reason);

}  // namespace osb::secretsproxy
