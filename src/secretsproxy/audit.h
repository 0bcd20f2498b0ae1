// Audit: one JSON line per request (or per refused connection):
//   {"ts":..., "sandbox":..., "source":..., "host":..., "method":...,
//    "action":"forwarded"|"blocked", "reason":..., "secrets":[names],
//    "status":N, "bytesUp":N, "bytesDown":N, "durationMs":N}
// Never a secret value or token->value mapping: the record has no field that
// could hold one, and `reason` strings are fixed texts chosen by the proxy.
// Also keeps the Prometheus counters. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

namespace osb::secretsproxy {

struct AuditRecord {
  std::string sandbox;   // "" when the source is unknown
  std::string source;
  std::string host;
  std::string method;
  bool forwarded = false;
  std::string reason;    // why blocked (fixed text)
  std::vector<std::string> secrets;  // names of substituted secrets
  int status = 0;
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
  double duration_ms = 0;
  bool scrubbed = false;  // a real value was replaced in the response
};

class AuditLog {
 public:
  // path "" = stderr. Returns nullptr-equivalent state on open failure: check ok().
  explicit AuditLog(const std::string& path);
  ~AuditLog();
  bool ok() const { return out_ != nullptr; }
  void Write(const AuditRecord& r);

  // Counters (Prometheus text format via Metrics()).
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
  std::string Metrics(uint64_t leaves_generated) const;

 private:
  std::mutex mu_;
  FILE* out_ = nullptr;
  bool owned_ = false;
};

}  // namespace osb::secretsproxy
