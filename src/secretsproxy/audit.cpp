#include "secretsproxy/audit.h"

#include <chrono>
#include <nlohmann/json.hpp>

namespace osb::secretsproxy {

AuditLog::AuditLog(const std::string& path) {
  if (path.empty()) {
    out_ = stderr;
  } else {
    out_ = std::fopen(path.c_str(), "ae");
    owned_ = true;
  }
}

AuditLog::~AuditLog() {
  if (owned_ && out_) std::fclose(out_);
}

void AuditLog::Write(const AuditRecord& r) {
  if (r.forwarded) {
    requests_forwarded++;
  } else {
    requests_blocked++;
  }
  if (!r.secrets.empty()) substitutions += r.secrets.size();
  if (r.scrubbed) scrubbed_responses++;
  nlohmann::json j;
  j["ts"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch()).count();
  j["audit"] = "secretsproxy";
  j["sandbox"] = r.sandbox;
  j["source"] = r.source;
  j["host"] = r.host;
  j["method"] = r.method;
  j["action"] = r.forwarded ? "forwarded" : "blocked";
  if (!r.reason.empty()) j["reason"] = r.reason;
  j["secrets"] = r.secrets;
  j["scrubbed"] = r.scrubbed;
  j["status"] = r.status;
  j["bytesUp"] = r.bytes_up;
  j["bytesDown"] = r.bytes_down;
  j["durationMs"] = static_cast<int64_t>(r.duration_ms * 1000) / 1000.0;
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard lock(mu_);
  if (out_) {
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
  }
}

std::string AuditLog::Metrics(uint64_t leaves_generated) const {
  std::string s;
  auto counter = [&](const char* name, const char* help, uint64_t v, const char* type = "counter") {
    s += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         std::to_string(v) + "\n";
  };
  counter("osb_proxy_connections_total", "Client connections accepted.", connections_total.load());
  counter("osb_proxy_connections_active", "Client connections open now.",
          static_cast<uint64_t>(std::max<int64_t>(0, connections_active.load())), "gauge");
  counter("osb_proxy_requests_forwarded_total", "Requests forwarded upstream.", requests_forwarded.load());
  counter("osb_proxy_requests_blocked_total", "Requests or connections refused.", requests_blocked.load());
  counter("osb_proxy_substitutions_total", "Secrets substituted (per request and secret).", substitutions.load());
  counter("osb_proxy_scrubbed_responses_total", "Responses in which a real value was replaced by its token.",
          scrubbed_responses.load());
  counter("osb_proxy_bytes_up_total", "Bytes sent upstream.", bytes_up.load());
  counter("osb_proxy_bytes_down_total", "Bytes sent to clients.", bytes_down.load());
  counter("osb_proxy_upstream_errors_total", "Upstream connect/TLS/protocol failures.", upstream_errors.load());
  counter("osb_proxy_tls_handshake_failures_total", "Failed client TLS handshakes.", tls_handshake_failures.load());
  counter("osb_proxy_leaf_certificates_generated_total", "Leaf certificates signed.", leaves_generated);
  return s;
}

}  // namespace osb::secretsproxy
