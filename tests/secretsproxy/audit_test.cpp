#include "secretsproxy/audit.h"
#include "secretsproxy/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace osb::secretsproxy {
namespace {

AuditRecord Sample() {
  AuditRecord r;
  r.sandbox = "sbx_1";
  r.source = "10.0.0.2";
  r.host = "api.example.com";
  r.method = "POST";
  r.forwarded = true;
  r.secrets = {"API_KEY", "OTHER"};
  r.status = 201;
  r.bytes_up = 1234;
  r.bytes_down = 56;
  r.duration_ms = 1.23456;
  r.scrubbed = true;
  return r;
}

TEST(AuditLine, IsOneJsonObjectWithEveryField) {
  const std::string line = FormatAuditLine(Sample(), 1700000000123);
  ASSERT_EQ(line.back(), '\n');
  ASSERT_EQ(line.find('\n'), line.size() - 1);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["ts"], 1700000000123);
  EXPECT_EQ(j["audit"], "secretsproxy");
  EXPECT_EQ(j["sandbox"], "sbx_1");
  EXPECT_EQ(j["source"], "10.0.0.2");
  EXPECT_EQ(j["host"], "api.example.com");
  EXPECT_EQ(j["method"], "POST");
  EXPECT_EQ(j["action"], "forwarded");
  EXPECT_FALSE(j.contains("reason"));
  EXPECT_EQ(j["secrets"], nlohmann::json({"API_KEY", "OTHER"}));
  EXPECT_EQ(j["scrubbed"], true);
  EXPECT_EQ(j["status"], 201);
  EXPECT_EQ(j["bytesUp"], 1234);
  EXPECT_EQ(j["bytesDown"], 56);
  EXPECT_DOUBLE_EQ(j["durationMs"].get<double>(), 1.235);
}

TEST(AuditLine, BlockedCarriesTheReason) {
  AuditRecord r;
  r.reason = "host is not on the sandbox's egress allowlist";
  r.status = 403;
  const auto j = nlohmann::json::parse(FormatAuditLine(r, 0));
  EXPECT_EQ(j["action"], "blocked");
  EXPECT_EQ(j["reason"], r.reason);
  EXPECT_EQ(j["secrets"], nlohmann::json::array());
}

TEST(AuditLine, ForwardedNamesWithheldSecretsAndWhy) {
  AuditRecord r;
  r.forwarded = true;
  r.status = 200;
  r.reason = "no_allowed_hosts";
  r.withheld = {{"OPEN", "no_allowed_hosts"}, {"KEY\"", "host_not_in_allowed_hosts"}};
  const auto j = nlohmann::json::parse(FormatAuditLine(r, 0));
  EXPECT_EQ(j["action"], "forwarded");
  EXPECT_EQ(j["reason"], "no_allowed_hosts");
  EXPECT_EQ(j["withheld"], nlohmann::json::parse(R"([{"name":"OPEN","reason":"no_allowed_hosts"},
                                                    {"name":"KEY\"","reason":"host_not_in_allowed_hosts"}])"));
  AuditRecord plain;
  EXPECT_FALSE(nlohmann::json::parse(FormatAuditLine(plain, 0)).contains("withheld"));
}

// Hostile bytes (a host or method from the sandbox) cannot break the line
// or forge fields: quotes, backslashes, newlines and control bytes are
// escaped, valid UTF-8 is kept, invalid UTF-8 becomes U+FFFD.
TEST(AuditLine, EscapesEverythingHostile) {
  AuditRecord r;
  r.host = std::string("a\"b\\c\nd\re\tf\x01g\x7f", 15) + "\",\"forged\":\"x";
  r.method = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\x91";  // é € 🔑
  r.sandbox = std::string("bad\xC3(\xED\xA0\x80\xC0\xAF\xF5\x80\x80\x80\xF0\x82\x82\xAC.");
  r.source = std::string("nul\0byte", 8);
  const std::string line = FormatAuditLine(r, 0);
  ASSERT_EQ(line.find('\n'), line.size() - 1);
  for (char c : line.substr(0, line.size() - 1)) EXPECT_GE(static_cast<unsigned char>(c), 0x20);
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["host"], r.host);
  EXPECT_FALSE(j.contains("forged"));
  EXPECT_EQ(j["method"], r.method);
  EXPECT_EQ(j["source"], r.source);
  const std::string sbx = j["sandbox"];
  EXPECT_EQ(sbx.rfind("bad", 0), 0u);
  EXPECT_EQ(sbx.back(), '.');
  EXPECT_NE(sbx.find("\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(sbx.find("\xC3("), std::string::npos);
}

TEST(AuditLog, WritesEveryLineInOrderBeforeFlushReturns) {
  const auto path = std::filesystem::temp_directory_path() / ("osb_audit_" + std::to_string(getpid()));
  std::filesystem::remove(path);
  {
    AuditLog log(path.string());
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 5000; ++i) {
      AuditRecord r = Sample();
      r.status = i;
      log.Write(r);
    }
    log.Flush();
    std::ifstream in(path);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) EXPECT_EQ(nlohmann::json::parse(line)["status"], n++);
    EXPECT_EQ(n, 5000);
    log.Write(Sample());  // queued, written by the destructor
  }
  std::ifstream in(path);
  int lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  EXPECT_EQ(lines, 5001);
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
  std::filesystem::remove(path);
}

TEST(AuditLog, UnopenableFileIsReported) {
  AuditLog log("/nonexistent-dir/audit.log");
  EXPECT_FALSE(log.ok());
  log.Write(Sample());  // discarded, must not crash
  log.Flush();
}

size_t CountLines(const std::filesystem::path& p) {
  std::ifstream in(p);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

TEST(AuditLog, FileIsCappedAndRotated) {
  const auto dir = std::filesystem::temp_directory_path() / ("osb_audit_rot_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto path = dir / "audit.log";
  const size_t line_size = FormatAuditLine(Sample(), 0).size();
  {
    AuditLog log(path.string(), 4096, 2);
    ASSERT_TRUE(log.ok());
    for (int i = 0; i < 2000; ++i) {
      log.Write(Sample());
      if (i % 10 == 9) log.Flush();  // small batches, so each file stays near the cap
    }
    log.Flush();
    EXPECT_EQ(log.lines_dropped.load(), 0u);
    EXPECT_NE(log.MetricsText().find("osb_proxy_audit_lines_dropped_total 0"), std::string::npos);
  }
  // At most the cap plus one batch per file, and only 2 rotated files kept.
  for (const auto& p : {path, dir / "audit.log.1", dir / "audit.log.2"}) {
    ASSERT_TRUE(std::filesystem::exists(p)) << p;
    EXPECT_LE(std::filesystem::file_size(p), 4096 + 10 * line_size) << p;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "audit.log.3"));
  EXPECT_LT(CountLines(path) + CountLines(dir / "audit.log.1") + CountLines(dir / "audit.log.2"), 2000u);
  std::filesystem::remove_all(dir);
}

TEST(AuditLog, LinesThatCannotBeWrittenAreCounted) {
  AuditLog log("/dev/full", 0, 0);  // every write fails with ENOSPC
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 3; ++i) log.Write(Sample());
  log.Flush();
  EXPECT_EQ(log.lines_dropped.load(), 3u);
  EXPECT_NE(log.MetricsText().find("osb_proxy_audit_lines_dropped_total 3"), std::string::npos);
}

TEST(AuditLog, BlockedRecordsAreRateLimitedPerSandboxAndReason) {
  const auto path = std::filesystem::temp_directory_path() / ("osb_audit_rl_" + std::to_string(getpid()));
  std::filesystem::remove(path);
  {
    AuditLog log(path.string());
    log.LimitBlockedRecords(3, std::chrono::milliseconds(60'000));
    AuditRecord blocked = Sample();
    blocked.forwarded = false;
    blocked.reason = "host is not on the sandbox's egress allowlist";
    for (int i = 0; i < 1000; ++i) log.Write(blocked);      // a flood from one sandbox
    for (int i = 0; i < 10; ++i) log.Write(Sample());       // forwarded: never limited
    AuditRecord other = blocked;
    other.sandbox = "sbx_2";
    log.Write(other);                                       // another sandbox: its own rate
    log.Flush();
    // (requests are counted in Metrics by the exchange, before the line is written)
    EXPECT_EQ(log.lines_suppressed.load(), 997u);
  }
  EXPECT_EQ(CountLines(path), 3u + 10u + 1u);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace osb::secretsproxy

namespace osb::secretsproxy {
namespace {
TEST(Metrics, CountsRequestsApartFromTheLog) {
  Metrics m;
  AuditRecord fwd = Sample();
  fwd.forwarded = true;
  fwd.scrubbed = true;
  m.CountRequest(fwd);
  AuditRecord blocked = Sample();
  blocked.forwarded = false;
  blocked.secrets.clear();
  blocked.scrubbed = false;
  m.CountRequest(blocked);
  EXPECT_EQ(m.requests_forwarded.load(), 1u);
  EXPECT_EQ(m.requests_blocked.load(), 1u);
  EXPECT_EQ(m.substitutions.load(), fwd.secrets.size());
  EXPECT_EQ(m.scrubbed_responses.load(), 1u);
  const std::string text = m.Text(7);
  EXPECT_NE(text.find("osb_proxy_requests_forwarded_total 1\n"), std::string::npos);
  EXPECT_NE(text.find("osb_proxy_leaf_certificates_generated_total 7\n"), std::string::npos);
}
}  // namespace
}  // namespace osb::secretsproxy
