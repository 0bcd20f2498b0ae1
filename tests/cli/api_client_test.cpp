#include "cli/api_client.h"

#include <gtest/gtest.h>

#include "cli/exit_codes.h"

namespace osb::cli {
namespace {

TEST(ErrorFromResponse, MapsStatusesToExitCodes) {
  struct Case { int status; int exit; };
  for (auto c : {Case{400, kExitRejected}, Case{405, kExitRejected}, Case{413, kExitRejected},
                 Case{401, kExitAuth}, Case{403, kExitAuth}, Case{404, kExitNotFound},
                 Case{409, kExitConflict}, Case{500, kExitFailure}, Case{503, kExitFailure},
                 Case{418, kExitRejected}}) {
    EXPECT_EQ(ExitCodeFor(ErrorFromResponse(c.status, "", R"({"error":"m"})").code), c.exit) << c.status;
  }
}

TEST(ErrorFromResponse, UsesTheServerMessageOnOneLine) {
  EXPECT_EQ(ErrorFromResponse(404, "Not Found", R"({"error":"project not found: x"})").message,
            "project not found: x");
  EXPECT_EQ(ErrorFromResponse(400, "", R"({"error":"a\nb\tc"})").message, "a b c");
  EXPECT_EQ(ErrorFromResponse(502, "Bad Gateway", "<html>secret page</html>").message, "HTTP 502 Bad Gateway");
  EXPECT_EQ(ErrorFromResponse(500, "", R"({"error": 5})").message, "HTTP 500");
}

TEST(Redact, ReplacesEveryOccurrence) {
  EXPECT_EQ(Redact("v=s3cr3t and s3cr3t", {"s3cr3t"}), "v=[redacted] and [redacted]");
  EXPECT_EQ(Redact("nothing", {"", "x"}), "nothing");
  EXPECT_EQ(Redact("aaaa", {"a"}), "[redacted][redacted][redacted][redacted]");
}

TEST(ExitCodes, UsageForLocalPreconditions) {
  EXPECT_EQ(ExitCodeFor(ErrorCode::kFailedPrecondition), kExitUsage);
  EXPECT_EQ(ExitCodeFor(ErrorCode::kUnavailable), kExitFailure);
}

}  // namespace
}  // namespace osb::cli
