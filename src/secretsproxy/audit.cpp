#include "secretsproxy/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

#include <optional>

#include "common/rate_limited_log.h"
#include "common/rotating_file.h"

namespace osb::secretsproxy {

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  out += '"';
}

void AppendField(std::string& out, const char* name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  AppendJsonString(out, value);
}

void AppendField(std::string& out, const char* name, uint64_t value) {
  out += ",\"";
  out += name;
  out += "\":";
  out += std::to_string(value);
}

bool WriteFully(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

std::string FormatAuditLine(const AuditRecord& r, int64_t ts_ms) {
  std::string out;
  out.reserve(256);
  out += "{\"ts\":";
  out += std::to_string(ts_ms);
  out += ",\"audit\":\"secretsproxy\"";
  AppendField(out, "sandbox", r.sandbox);
  AppendField(out, "source", r.source);
  AppendField(out, "host", r.host);
  AppendField(out, "method", r.method);
  AppendField(out, "action", r.forwarded ? "forwarded" : "blocked");
  if (!r.reason.empty()) AppendField(out, "reason", r.reason);
  out += ",\"secrets\":[";
  for (size_t i = 0; i < r.secrets.size(); ++i) {
    if (i > 0) out += ',';
    AppendJsonString(out, r.secrets[i]);
  }
  out += ']';
  if (!r.withheld.empty()) {
    out += ",\"withheld\":[";
    for (size_t i = 0; i < r.withheld.size(); ++i) {
      if (i > 0) out += ',';
      out += "{\"name\":";
      AppendJsonString(out, r.withheld[i].first);
      out += ",\"reason\":";
      AppendJsonString(out, r.withheld[i].second);
      out += '}';
    }
    out += ']';
  }
  out += ",\"scrubbed\":";
  out += r.scrubbed ? "true" : "false";
  out += ",\"status\":";
  out += std::to_string(r.status);
  AppendField(out, "bytesUp", r.bytes_up);
  AppendField(out, "bytesDown", r.bytes_down);
  // Milliseconds with three decimals, formatted as integers (no printf).
  const double ms = r.duration_ms >= 0 && r.duration_ms < 1e12 ? r.duration_ms : 0.0;
  const auto micros = static_cast<uint64_t>(ms * 1000 + 0.5);
  const std::string frac = std::to_string(1000 + micros % 1000);
  out += ",\"durationMs\":";
  out += std::to_string(micros / 1000);
  out += '.';
  out.append(frac, 1, 3);
  out += "}\n";
  return out;
}

AuditLog::AuditLog(const std::string& path, uint64_t max_bytes, unsigned keep) {
  if (path.empty()) {
    fd_ = STDERR_FILENO;
  } else {
    file_ = std::make_unique<RotatingFile>(path, max_bytes, keep);
  }
  writer_ = std::thread([this] { WriterLoop(); });
}

void AuditLog::LimitBlockedRecords(size_t burst, std::chrono::milliseconds window) {
  blocked_limit_ = std::make_unique<RateLimitedLog>(RateLimitedLog::Options{burst, window, 4096});
}

bool AuditLog::ok() const { return fd_ >= 0 || (file_ && file_->ok()); }

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

void AuditLog::Write(const AuditRecord& r) {
  std::optional<AuditRecord> with_count;
  if (!r.forwarded && blocked_limit_) {
    const auto admitted = blocked_limit_->Admit(r.sandbox.empty() ? r.source : r.sandbox, r.reason);
    if (!admitted) {
      lines_suppressed++;
      return;
    }
    if (*admitted > 0) {
      with_count = r;
      with_count->reason += RateLimitedLog::Suffix(*admitted);
    }
  }
  const std::string line = FormatAuditLine(
      with_count ? *with_count : r, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
             .count());
  std::unique_lock lock(mu_);
  drained_.wait(lock, [&] { return queued_.size() < kMaxQueuedBytes || stopping_; });
  queued_ += line;
  ++queued_seq_;
  // Wake the writer only to start a batch window or when a batch is big;
  // in between, lines just queue (no system call per request).
  const bool wake = writer_idle_ || (queued_.size() >= kBatchBytes && queued_.size() - line.size() < kBatchBytes);
  writer_idle_ = false;
  lock.unlock();
  if (wake) wake_.notify_one();
}

void AuditLog::Flush() {
  std::unique_lock lock(mu_);
  const uint64_t target = queued_seq_;
  flush_wanted_ = true;
  wake_.notify_one();
  drained_.wait(lock, [&] { return written_seq_ >= target; });
}

void AuditLog::WriterLoop() {
  std::string batch;
  std::unique_lock lock(mu_);
  while (true) {
    if (queued_.empty()) {
      if (stopping_) return;
      writer_idle_ = true;
      wake_.wait(lock, [&] { return !queued_.empty() || stopping_; });
      continue;
    }
    // A line is queued: let the batch fill for up to kBatchWindow.
    wake_.wait_for(lock, kBatchWindow, [&] { return queued_.size() >= kBatchBytes || stopping_ || flush_wanted_; });
    flush_wanted_ = false;
    batch.clear();
    batch.swap(queued_);
    const uint64_t seq = queued_seq_;
    const uint64_t lines = seq - written_seq_;
    lock.unlock();
    drained_.notify_all();  // producers blocked on a full queue
    // A failing disk must not stop the proxy: the lines are counted as dropped.
    const bool written = file_ ? file_->Append(batch) : fd_ >= 0 && WriteFully(fd_, batch);
    if (!written) lines_dropped += lines;
    lock.lock();
    written_seq_ = seq;
    drained_.notify_all();
  }
}

std::string AuditLog::MetricsText() const {
  std::string s;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    s += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
         std::to_string(v) + "\n";
  };
  counter("osb_proxy_audit_lines_dropped_total", "Audit lines that could not be written.", lines_dropped.load());
  counter("osb_proxy_audit_lines_suppressed_total", "Blocked-request audit lines left out by the per-sandbox rate.",
          lines_suppressed.load());
  return s;
}

}  // namespace osb::secretsproxy
