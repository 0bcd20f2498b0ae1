// Audit: one JSON line per request (or per refused connection):
//   {"ts":..., "sandbox":..., "source":..., "host":..., "method":...,
//    "action":"forwarded"|"blocked", "reason":..., "secrets":[names],
//    "withheld":[{"name":..., "reason":...}] (only when non-empty),
//    "status":N, "bytesUp":N, "bytesDown":N, "durationMs":N}
// Never a secret value or token->value mapping: the record has no field that
// could hold one, and `reason` strings are fixed texts chosen by the proxy.
// Counters live apart, in Metrics (metrics.h). Thread-safe.
//
// Lines are handed to a writer thread, so a request never waits for the
// disk and costs no system call: the writer wakes when the first line of a
// batch arrives, lets the batch fill for at most kBatchWindow (or
// kBatchBytes), and writes it with one write(2). So a line reaches the file
// within ~kBatchWindow; lines keep their order; Flush() and the destructor
// write whatever is queued. If the disk falls behind by more than
// kMaxQueuedBytes, Write blocks (back-pressure) rather than dropping lines.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace osb {
class RateLimitedLog;
class RotatingFile;
}

namespace osb::secretsproxy {

struct AuditRecord {
  std::string sandbox;   // "" when the source is unknown
  std::string source;
  std::string host;
  std::string method;
  bool forwarded = false;
  std::string reason;    // why blocked, or why secrets were withheld (fixed text)
  std::vector<std::string> secrets;  // names of substituted secrets
  // Secrets whose sealed token was forwarded unreplaced because they may not
  // go to this host: {name, fixed reason such as "no_allowed_hosts"}.
  std::vector<std::pair<std::string, std::string>> withheld;
  int status = 0;
  uint64_t bytes_up = 0;
  uint64_t bytes_down = 0;
  double duration_ms = 0;
  bool scrubbed = false;  // a real value was replaced in the response
};

// The JSON line for r (with its trailing newline); ts_ms is the "ts" field.
// Strings are escaped per RFC 8259; invalid UTF-8 becomes U+FFFD.
std::string FormatAuditLine(const AuditRecord& r, int64_t ts_ms);

class AuditLog {
 public:
  static constexpr std::chrono::milliseconds kBatchWindow{10};
  static constexpr size_t kBatchBytes = 64 << 10;
  static constexpr size_t kMaxQueuedBytes = 8 << 20;
  // path "" = stderr. On open failure ok() is false and lines are discarded.
  // A file is capped at max_bytes (0 = no cap) and rotated, keeping `keep`
  // older files (common/rotating_file.h); lines that cannot be written are
  // counted in lines_dropped.
  explicit AuditLog(const std::string& path, uint64_t max_bytes = 0, unsigned keep = 0);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  bool ok() const;
  void Write(const AuditRecord& r);
  // Rate-limits blocked records (a sandbox can cause as many as it sends
  // requests): per (sandbox, or source when unknown; reason), `burst` per
  // window are written, the rest only counted (lines_suppressed); the next
  // one written ends its reason with " (N similar suppressed)". Forwarded
  // records are never limited. Off until called; call before traffic.
  void LimitBlockedRecords(size_t burst, std::chrono::milliseconds window);
  // Blocks until every line queued so far has been written.
  void Flush();

  // The log's own counters (Prometheus text via MetricsText(); the
  // request counters live in Metrics, metrics.h).
  std::atomic<uint64_t> lines_dropped{0};     // write failures (disk full, ...)
  std::atomic<uint64_t> lines_suppressed{0};  // blocked records over their rate
  std::string MetricsText() const;

 private:
  void WriterLoop();
  std::mutex mu_;
  std::condition_variable wake_;     // writer: lines queued or stopping
  std::condition_variable drained_;  // producers: queue shrank / written
  std::string queued_;
  uint64_t queued_seq_ = 0;   // lines ever queued
  uint64_t written_seq_ = 0;  // lines ever written
  bool writer_idle_ = false;
  bool flush_wanted_ = false;
  bool stopping_ = false;
  int fd_ = -1;                          // stderr
  std::unique_ptr<osb::RotatingFile> file_;  // a file
  std::unique_ptr<osb::RateLimitedLog> blocked_limit_;
  std::thread writer_;
};

}  // namespace osb::secretsproxy
