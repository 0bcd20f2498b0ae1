#include "secretsproxy/request_stages.h"

#include <gtest/gtest.h>

namespace osb::secretsproxy {
namespace {

const std::string kTok = "osb_sealed_0123456789abcdef0123456789abcdef";

RequestHead Head(std::string target, std::vector<HeaderField> fields, std::string method = "GET") {
  RequestHead h;
  h.method = std::move(method);
  h.target = std::move(target);
  h.fields = std::move(fields);
  return h;
}

TEST(RequestStages, Authority) {
  EXPECT_EQ(ParseAuthority("API.test:8443", 443), (Target{"api.test", 8443}));
  EXPECT_EQ(ParseAuthority("api.test", 443), (Target{"api.test", 443}));
  EXPECT_EQ(ParseAuthority("[::1]:443", 0), (Target{"::1", 443}));
  EXPECT_FALSE(ParseAuthority("api.test:0", 443));
  EXPECT_FALSE(ParseAuthority("api.test:99999", 443));
  EXPECT_FALSE(ParseAuthority("::1", 443));
  EXPECT_FALSE(ParseAuthority("a b:1", 443));
  EXPECT_FALSE(ParseAuthority("user@host:1", 443));
}

TEST(RequestStages, HostAgreement) {
  const Target t{"api.test", 443};
  auto ok = Head("/x", {{"Host", "API.test."}});
  EXPECT_TRUE(CheckHostAgreement(&ok, t, "https").ok());
  auto port = Head("/x", {{"Host", "api.test:443"}});
  EXPECT_TRUE(CheckHostAgreement(&port, t, "https").ok());
  auto other = Head("/x", {{"Host", "other.test"}});
  EXPECT_EQ(CheckHostAgreement(&other, t, "https").status, 421);
  auto wrong_port = Head("/x", {{"Host", "api.test:444"}});
  EXPECT_EQ(CheckHostAgreement(&wrong_port, t, "https").status, 421);
  auto two = Head("/x", {{"Host", "api.test"}, {"Host", "other.test"}});
  EXPECT_EQ(CheckHostAgreement(&two, t, "https").status, 400);
  auto none = Head("/x", {});
  EXPECT_EQ(CheckHostAgreement(&none, t, "https").status, 400);
  auto abs = Head("https://api.test/p?q=1", {{"Host", "api.test"}});
  EXPECT_TRUE(CheckHostAgreement(&abs, t, "https").ok());
  EXPECT_EQ(abs.target, "/p?q=1");
  auto abs_other = Head("https://other.test/p", {{"Host", "api.test"}});
  EXPECT_EQ(CheckHostAgreement(&abs_other, t, "https").status, 421);
}

TEST(RequestStages, MethodsRefused) {
  EXPECT_EQ(CheckMethod(Head("/", {}, "TRACE")).status, 405);
  EXPECT_EQ(CheckMethod(Head("/", {}, "track")).status, 405);
  EXPECT_EQ(CheckMethod(Head("a:1", {}, "CONNECT")).status, 405);
  EXPECT_TRUE(CheckMethod(Head("/", {}, "PATCH")).ok());
}

TEST(RequestStages, PlainTargets) {
  auto h = Head("http://Plain.test:8080/a?b", {{"Host", "plain.test:8080"}});
  Target t;
  ASSERT_TRUE(TargetFromAbsoluteForm(&h, &t).ok());
  EXPECT_EQ(t, (Target{"plain.test", 8080}));
  EXPECT_EQ(h.target, "/a?b");
  auto origin = Head("/a", {{"Host", "plain.test"}});
  EXPECT_EQ(TargetFromAbsoluteForm(&origin, &t).status, 400);
  auto mismatch = Head("http://a.test/", {{"Host", "b.test"}});
  EXPECT_EQ(TargetFromAbsoluteForm(&mismatch, &t).status, 421);
  ASSERT_TRUE(TargetFromHost(Head("/", {{"Host", "h.test"}}), 80, &t).ok());
  EXPECT_EQ(t, (Target{"h.test", 80}));
}

TEST(RequestStages, SubstitutionRefusesHeaderInjection) {
  auto set = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{{kTok, "ok\r\nX-Injected: 1"}});
  StreamReplacer r(set);
  auto h = Head("/", {{"Authorization", "Bearer " + kTok}});
  EXPECT_EQ(SubstituteHead(&h, &r).status, 400);
  auto set2 = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{{kTok, "has space"}});
  StreamReplacer r2(set2);
  auto in_target = Head("/?k=" + kTok, {});
  EXPECT_EQ(SubstituteHead(&in_target, &r2).status, 400);
  auto in_header = Head("/", {{"X-K", kTok}, {"Host", kTok}});
  EXPECT_TRUE(SubstituteHead(&in_header, &r2).ok());
  EXPECT_EQ(in_header.fields[0].value, "has space");
  EXPECT_EQ(in_header.fields[1].value, kTok);  // Host is never rewritten
}

TEST(RequestStages, PlaintextTokenDetection) {
  EXPECT_TRUE(ContainsSealedToken("x=" + kTok));
  EXPECT_FALSE(ContainsSealedToken("osb_sealed_0123"));
  EXPECT_FALSE(ContainsSealedToken("osb_sealed_0123456789ABCDEF0123456789abcdef"));
  EXPECT_TRUE(HeadContainsSealedToken(Head("/", {{"X", kTok}})));
  EXPECT_TRUE(HeadContainsSealedToken(Head("/?" + kTok, {})));
}

}  // namespace
}  // namespace osb::secretsproxy
