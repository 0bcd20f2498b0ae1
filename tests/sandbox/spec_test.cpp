#include "sandbox/spec.h"

#include <gtest/gtest.h>

namespace osb::sandbox {
namespace {

SandboxSpec Valid() {
  SandboxSpec s;
  s.id = "abc-123";
  s.network = {3128, 3129, 3130, 5353};
  return s;
}

TEST(SpecTest, AcceptsAValidSpec) { EXPECT_TRUE(ValidateSpec(Valid()).ok()); }

TEST(SpecTest, RejectsBadIdsNamingTheField) {
  for (const char* id : {"", "-a", "a-", "ABC", "a_b", "a.b", "a/b", "0123456789012345678901234567890123456789012345678"}) {
    auto s = Valid();
    s.id = id;
    auto st = ValidateSpec(s);
    ASSERT_FALSE(st.ok()) << id;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(st.error().message.rfind("id:", 0), 0u) << st.error().message;
  }
}

TEST(SpecTest, RejectsOutOfRangeLimits) {
  auto s = Valid();
  s.memoryMB = 1;
  EXPECT_NE(ValidateSpec(s).error().message.find("memoryMB"), std::string::npos);
  s = Valid();
  s.cpuCount = 0;
  EXPECT_NE(ValidateSpec(s).error().message.find("cpuCount"), std::string::npos);
  s = Valid();
  s.pidsMax = 1;
  EXPECT_NE(ValidateSpec(s).error().message.find("pidsMax"), std::string::npos);
  s = Valid();
  s.timeoutSec = 0;
  EXPECT_NE(ValidateSpec(s).error().message.find("timeoutSec"), std::string::npos);
  s = Valid();
  s.network.dnsPort = 0;
  EXPECT_NE(ValidateSpec(s).error().message.find("network.dnsPort"), std::string::npos);
}

TEST(SpecTest, EnvErrorsNameTheVariableButNeverTheValue) {
  auto s = Valid();
  s.env["API_KEY"] = std::string("osb_sealed_abc\0def", 18);
  auto st = ValidateSpec(s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("API_KEY"), std::string::npos);
  EXPECT_EQ(st.error().message.find("osb_sealed_abc"), std::string::npos);
  s = Valid();
  s.env["A=B"] = "x";
  EXPECT_FALSE(ValidateSpec(s).ok());
}

TEST(SpecTest, ExecValidation) {
  ExecRequest r;
  r.cmd = "id";
  EXPECT_TRUE(ValidateExec(r).ok());
  r.cwd = "relative";
  EXPECT_NE(ValidateExec(r).error().message.find("cwd"), std::string::npos);
  r.cwd = "";
  r.timeoutSec = 0;
  EXPECT_NE(ValidateExec(r).error().message.find("timeoutSec"), std::string::npos);
  r.timeoutSec = 5;
  r.stdinData.assign(kMaxRequestBytes + 1, 'x');
  EXPECT_EQ(ValidateExec(r).error().code, ErrorCode::kTooLarge);
  ExecRequest empty;
  EXPECT_NE(ValidateExec(empty).error().message.find("cmd"), std::string::npos);
}

}  // namespace
}  // namespace osb::sandbox
