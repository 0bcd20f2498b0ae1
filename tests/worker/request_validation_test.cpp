// The worker validates every field the control plane sends, itself: a
// template id is a name (never a path), ids, names and sizes are bounded,
// and messages name the field without echoing a secret value.
#include <gtest/gtest.h>

#include "worker/request_validation.h"

namespace osb::worker {
namespace {

v1::CreateSandboxRequest GoodCreate() {
  v1::CreateSandboxRequest r;
  r.set_sandbox_id("sb-0123456789ab");
  auto* c = r.mutable_config();
  c->set_project_id("prj_0123456789abcdef01234567");
  c->set_template_id("python-3.12");
  c->set_cpu_count(2);
  c->set_memory_mb(512);
  c->set_timeout_sec(300);
  c->add_egress_allowlist("api.example.com");
  c->add_egress_allowlist("*.example.org:443");
  (*c->mutable_envs())["MODE"] = "dev";
  auto* s = r.add_secrets();
  s->set_name("API_TOKEN");
  s->set_value("secret-value-never-echoed");
  s->add_allowed_hosts("*");
  return r;
}

void ExpectInvalid(const Status& st, const std::string& field) {
  ASSERT_FALSE(st.ok()) << "accepted; expected an error naming " << field;
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find(field), std::string::npos) << st.error().message;
  EXPECT_EQ(st.error().message.find("secret-value-never-echoed"), std::string::npos);
}

TEST(WorkerValidation, AGoodCreateRequestPasses) {
  EXPECT_TRUE(ValidateCreateRequest(GoodCreate()).ok());
  v1::CreateSandboxRequest defaults;
  defaults.set_sandbox_id("sb-0123456789ab");
  EXPECT_TRUE(ValidateCreateRequest(defaults).ok()) << "zeros mean defaults";
}

TEST(WorkerValidation, ATemplateIdIsANameNeverAPath) {
  for (const char* bad : {"../../etc", "..", ".", "/", "/etc", "a/b", "base/../..", ".hidden", "a\\b", "a b",
                          "x\n", "-rf"}) {
    auto r = GoodCreate();
    r.mutable_config()->set_template_id(bad);
    ExpectInvalid(ValidateCreateRequest(r), "template_id");
  }
  auto r = GoodCreate();
  r.mutable_config()->set_template_id(std::string(129, 'a'));
  ExpectInvalid(ValidateCreateRequest(r), "template_id");
  for (const char* good : {"base", "ubuntu-22.04", "t_1"}) {
    r.mutable_config()->set_template_id(good);
    EXPECT_TRUE(ValidateCreateRequest(r).ok()) << good;
  }
}

TEST(WorkerValidation, IdsNamesAndSizesAreBounded) {
  for (const char* id : {"", "../x", "a/b", "sb id"}) {
    auto r = GoodCreate();
    r.set_sandbox_id(id);
    ExpectInvalid(ValidateCreateRequest(r), "sandbox_id");
  }
  auto r = GoodCreate();
  r.mutable_config()->set_project_id("../p");
  ExpectInvalid(ValidateCreateRequest(r), "project_id");
  r = GoodCreate();
  r.mutable_config()->set_cpu_count(1000);
  ExpectInvalid(ValidateCreateRequest(r), "cpu_count");
  r = GoodCreate();
  r.mutable_config()->set_memory_mb(-1);
  ExpectInvalid(ValidateCreateRequest(r), "memory_mb");
  r = GoodCreate();
  r.mutable_config()->set_timeout_sec(2592001);  // beyond the runtime's 30-day ceiling
  ExpectInvalid(ValidateCreateRequest(r), "timeout_sec");
  r = GoodCreate();
  r.mutable_config()->add_egress_allowlist("evil.com/path");
  ExpectInvalid(ValidateCreateRequest(r), "egress_allowlist");
  r = GoodCreate();
  r.mutable_config()->add_egress_allowlist("*");
  ExpectInvalid(ValidateCreateRequest(r), "egress_allowlist");
  r = GoodCreate();
  (*r.mutable_config()->mutable_envs())["BAD-NAME"] = "x";
  ExpectInvalid(ValidateCreateRequest(r), "envs");
  r = GoodCreate();
  (*r.mutable_config()->mutable_envs())["NUL"] = std::string("a\0b", 3);
  ExpectInvalid(ValidateCreateRequest(r), "envs");
  r = GoodCreate();
  r.mutable_secrets(0)->set_name("1BAD");
  ExpectInvalid(ValidateCreateRequest(r), "secrets");
  r = GoodCreate();
  *r.add_secrets() = r.secrets(0);
  ExpectInvalid(ValidateCreateRequest(r), "duplicate");
  r = GoodCreate();
  r.mutable_secrets(0)->set_value(std::string(64 * 1024 + 1, 'v'));
  ExpectInvalid(ValidateCreateRequest(r), "secrets.API_TOKEN");
  r = GoodCreate();
  r.mutable_secrets(0)->add_allowed_hosts("a b");
  ExpectInvalid(ValidateCreateRequest(r), "allowed_hosts");
}

TEST(WorkerValidation, ExecAndUpdateSecret) {
  v1::ExecRequest e;
  e.set_sandbox_id("sb-0123456789ab");
  e.set_cmd("echo");
  e.add_args("hi");
  EXPECT_TRUE(ValidateExecRequest(e).ok());
  auto bad = e;
  bad.set_sandbox_id("../../x");
  ExpectInvalid(ValidateExecRequest(bad), "sandbox_id");
  bad = e;
  bad.set_cmd("");
  ExpectInvalid(ValidateExecRequest(bad), "cmd");
  bad = e;
  bad.set_cwd("relative/dir");
  ExpectInvalid(ValidateExecRequest(bad), "cwd");
  bad = e;
  bad.set_timeout_sec(-5);
  ExpectInvalid(ValidateExecRequest(bad), "timeout_sec");
  bad = e;
  bad.add_args(std::string("a\0b", 3));
  ExpectInvalid(ValidateExecRequest(bad), "args");

  v1::UpdateSecretRequest u;
  u.set_sandbox_id("sb-0123456789ab");
  u.set_name("API_TOKEN");
  u.set_value("secret-value-never-echoed");
  EXPECT_TRUE(ValidateUpdateSecretRequest(u).ok());
  auto bu = u;
  bu.set_name("../x");
  ExpectInvalid(ValidateUpdateSecretRequest(bu), "name");
  bu = u;
  bu.set_value(std::string(64 * 1024 + 1, 'v'));
  ExpectInvalid(ValidateUpdateSecretRequest(bu), "value");
  bu = u;
  bu.set_value("");
  bu.set_deleted(true);
  EXPECT_TRUE(ValidateUpdateSecretRequest(bu).ok()) << "a deletion carries no value";
  bu = u;
  bu.set_sandbox_id("");
  ExpectInvalid(ValidateUpdateSecretRequest(bu), "sandbox_id");
}

}  // namespace
}  // namespace osb::worker
