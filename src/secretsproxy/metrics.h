// Metrics: the proxy's Prometheus counters, apart from the audit lines
// (audit.h). Every member is an atomic: thread-safe, lock-free, updated on
// the data path without allocation. Text() renders the Prometheus text
// exposition format (served on metrics_listen and by Proxy::MetricsText).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace osb::secretsproxy {

struct AuditRecord;

class Metrics {
 public:
  std::atomic<uint64_t> connections_total{0};
  std::atomic<int64_t> connections_active{0};
  std::atomic<uint64_t> requests_forwarded{0};
  std::atomic<uint64_t> requests_blocked{0};
  std::atomic<uint64_t> substitutions{0};
  std::atomic<uint64_t> scrubbed_responses{0};
  std::atomic<uint64_t> bytes_up{0};
  std::atomic<uint64_t> bytes_down{0};
  std::atomic<uint64_t> upstream_errors{0};
  std::atomic<uint64_t> tls_handshake_failures{0};

  // Counts one audited request or refused connection: forwarded or
  // blocked, the secrets it substituted, whether its response was scrubbed.
  // (Bytes are counted where they move.)
  void CountRequest(const AuditRecord& r);
  std::string Text(uint64_t leaves_generated) const;
};

}  // namespace osb::secretsproxy
