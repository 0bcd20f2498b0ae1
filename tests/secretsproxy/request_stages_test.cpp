#include "secretsproxy/request_stages.h"

#include <gtest/gtest.h>

#include "secretsproxy/host_rules.h"

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
  // One port parser (common/port.h) for requests and allowlist patterns: a
  // leading zero is refused by both, never read as 443 by one of them.
  EXPECT_FALSE(ParseAuthority("api.test:0443", 443));
  EXPECT_FALSE(ParseAuthority("[::1]:0443", 443));
  EXPECT_FALSE(HostList::Parse({"api.test:0443"}, "allowlist").ok());
  EXPECT_TRUE(HostList::Parse({"api.test:443"}, "allowlist").ok());
  RequestHead zero = Head("/", {{"Host", "api.test:0443"}});
  EXPECT_EQ(CheckHostAgreement(&zero, Target{"api.test", 443}, "https").status, 421);
  RequestHead plain = Head("/", {{"Host", "api.test:0080"}});
  Target t;
  EXPECT_EQ(TargetFromHost(plain, 80, &t).status, 400);
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

// Issue 11, item 4: the whole response head is scrubbed, names included.
TEST(ResponseHeadScrub, ReasonNamesAndValues) {
  const std::string value = "sk-live-REAL-1234";
  auto set = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{{value, kTok}, {"1234", "PIN"}});
  StreamReplacer scrub(set);
  ResponseHead h;
  h.status = 200;
  h.reason = "OK " + value;
  h.fields = {{"X-" + value, "1"}, {"X-Val", "a " + value + " b"}, {"X-Pin", "1234"}, {"Content-Type", "x"}};
  ASSERT_TRUE(ScrubResponseHead(&h, &scrub).ok());
  EXPECT_EQ(h.reason, "OK " + kTok);
  ASSERT_EQ(h.fields.size(), 4u);
  EXPECT_EQ(h.fields[0].name, "X-" + kTok);  // renamed, token chars are tchars
  EXPECT_EQ(h.fields[0].value, "1");
  EXPECT_EQ(h.fields[1].value, "a " + kTok + " b");
  EXPECT_EQ(h.fields[2].value, "PIN");
  EXPECT_EQ(SerializeResponseHead(h).find(value), std::string::npos);
  ResponseHead parsed;
  const std::string wire = SerializeResponseHead(h);
  EXPECT_EQ(ParseResponseHead(wire, HeadLimits{}, &parsed).status, ParseStatus::kComplete);
}

TEST(ResponseHeadScrub, ValueSpanningFieldsIsFound) {
  // A value containing CRLF is not inside any one name or value.
  auto set = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{{"tail\r\nX-Next: v", "T2"}});
  StreamReplacer scrub(set);
  ResponseHead h;
  h.status = 200;
  h.reason = "OK";
  h.fields = {{"X-A", "tail"}, {"X-Next", "v"}, {"X-Last", "z"}};
  ASSERT_TRUE(ScrubResponseHead(&h, &scrub).ok());
  EXPECT_EQ(h.status, 200);
  ASSERT_EQ(h.fields.size(), 2u);
  EXPECT_EQ(h.fields[0].name, "X-A");
  EXPECT_EQ(h.fields[0].value, "T2");
  EXPECT_EQ(h.fields[1].name, "X-Last");
}

TEST(ResponseHeadScrub, HeadThatNoLongerParsesIsRefused) {
  // A value spanning a name and its value (it contains ": "), or the end of
  // the head, leaves no valid head once replaced: 502, nothing passes.
  for (std::string v : {"Key: sk-1", "z\r\n"}) {
    auto set = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{{v, "T"}});
    StreamReplacer scrub(set);
    ResponseHead h;
    h.status = 200;
    h.reason = "OK";
    h.fields = {{"X-Key", "sk-1"}, {"X-A", "z"}};
    const StageResult r = ScrubResponseHead(&h, &scrub);
    EXPECT_EQ(r.status, 502) << v;
    EXPECT_EQ(r.reason.find("sk-1"), std::string::npos);
  }
}

}  // namespace
}  // namespace osb::secretsproxy
