#include "secretsproxy/admission.h"

#include "secretsproxy/audit.h"
#include "secretsproxy/metrics.h"
#include "secretsproxy/proxy.h"

namespace osb::secretsproxy {

void AuditRefusal(AdmissionTables& tables, AuditLog& audit, const std::string& source, const std::string& sandbox,
                  const std::string& host, const std::string& method, int status, const std::string& reason) {
  const auto admitted = tables.refusals.Admit(sandbox.empty() ? source : sandbox, reason);
  if (!admitted) return;
  AuditRecord rec;
  rec.source = source;
  rec.sandbox = sandbox;
  rec.host = host;
  rec.method = method;
  rec.status = status;
  rec.reason = reason + RateLimitedLog::Suffix(*admitted);
  if (tables.metrics != nullptr) tables.metrics->CountRequest(rec);
  audit.Write(rec);
}

std::string AdmissionMetrics(const AdmissionTables& t) {
  std::string s;
  auto metric = [&](const char* name, const char* help, uint64_t v, const char* type) {
    s += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         std::to_string(v) + "\n";
  };
  metric("osb_proxy_refused_budget_total", "Connections closed at accept: the worker's descriptor budget was spent.",
         t.refused_budget.load(), "counter");
  metric("osb_proxy_refused_connections_total", "Connections closed at accept: the sandbox's connection cap.",
         t.refused_connections.load(), "counter");
  metric("osb_proxy_refused_pending_total",
         "Connections closed at accept: the sandbox's cap on connections in handshake or head.",
         t.refused_pending.load(), "counter");
  metric("osb_proxy_pending_connections", "Connections still in their handshake or first request head.",
         t.pending.Total(), "gauge");
  metric("osb_proxy_log_lines_suppressed_total", "Refusal audit lines left out by the per-sandbox rate limit.",
         t.refusals.suppressed_total(), "counter");
  const FdBudget& b = FdBudget::Process();
  metric("osb_worker_fd_limit", "RLIMIT_NOFILE of the process.", b.limit(), "gauge");
  metric("osb_worker_fd_budget", "Descriptors sandbox connections may use (limit - control-channel reserve).",
         b.capacity(), "gauge");
  metric("osb_worker_fd_budget_in_use", "Descriptors taken from the budget by live sandbox connections.",
         b.in_use(), "gauge");
  metric("osb_worker_memory_trims_total", "Times freed heap memory was returned to the OS (malloc_trim).",
         t.trimmer.trims(), "counter");
  return s;
}

Admission::Result Admission::Admit(AdmissionTables& tables, const SessionRegistry& sessions,
                                   const ProxyLimits& limits, AuditLog& audit, int fd, const std::string& source) {
  Result r;
  auto fds = FdBudget::Process().TryAcquire(kFdsPerConnection, fd);
  if (!fds) {
    ++tables.refused_budget;
    r.reason = "worker connection budget spent";
    AuditRefusal(tables, audit, source, "", "", "", 0, r.reason);
    return r;
  }
  auto session = sessions.Lookup(source);
  if (!session) {
    r.outcome = Outcome::kNoSession;
    r.reason = "no sandbox session for this source address";
    return r;
  }
  const std::string& id = session->sandbox_id();
  auto conn = tables.connections.TryAcquire(id, limits.max_connections_per_session);
  if (!conn) {
    ++tables.refused_connections;
    r.reason = "too many connections";
    AuditRefusal(tables, audit, source, id, "", "", 0, r.reason);
    return r;
  }
  auto pending = tables.pending.TryAcquire(id, limits.max_pending_per_session);
  if (!pending) {
    ++tables.refused_pending;
    r.reason = "too many connections in handshake or request head";
    AuditRefusal(tables, audit, source, id, "", "", 0, r.reason);
    return r;
  }
  r.outcome = Outcome::kAdmitted;
  Admitted& a = r.admitted.emplace();
  a.session_ = std::move(session);
  a.fds_ = std::move(*fds);
  a.connection_ = std::move(*conn);
  a.pending_ = std::move(*pending);
  a.accepted_at_ = Admitted::Clock::now();
  return r;
}

}  // namespace osb::secretsproxy
