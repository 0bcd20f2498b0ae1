#include "secretsproxy/metrics.h"

#include <algorithm>

#include "secretsproxy/audit.h"

namespace osb::secretsproxy {

void Metrics::CountRequest(const AuditRecord& r) {
  if (r.forwarded) {
    requests_forwarded++;
  } else {
    requests_blocked++;
  }
  if (!r.secrets.empty()) substitutions += r.secrets.size();
  if (r.scrubbed) scrubbed_responses++;
}

std::string Metrics::Text(uint64_t leaves_generated) const {
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
