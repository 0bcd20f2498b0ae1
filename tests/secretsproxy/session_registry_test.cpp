#include "secretsproxy/session_registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "secretsproxy/sessions_file.h"
#include "secretsproxy/stream_replacer.h"

namespace osb::secretsproxy {
namespace {

const std::string kTok = "osb_sealed_0123456789abcdef0123456789abcdef";
const std::string kTok2 = "osb_sealed_fedcba9876543210fedcba9876543210";

Session MakeSession(std::string id, std::string value = "real-value-1") {
  Session s;
  s.sandbox_id = std::move(id);
  s.egress_allowlist = {"api.test", "*.other.test"};
  s.secrets.push_back({"API_KEY", kTok, std::move(value), {"api.test"}});
  s.secrets.push_back({"OPEN", kTok2, "open-value", {}});
  return s;
}

std::string Substitute(const SessionSnapshot& s, const std::string& host, const std::string& in,
                       uint16_t port = 443) {
  StreamReplacer r(s.substitutions(), s.EnabledFor(host, port));
  return r.ReplaceAll(in);
}

TEST(SessionRegistry, LookupBySourceAndPerSecretHosts) {
  SessionRegistry reg;
  ASSERT_TRUE(reg.Register("127.0.0.2", MakeSession("sb1")).ok());
  EXPECT_EQ(reg.Lookup("127.0.0.3"), nullptr);
  auto s = reg.Lookup("::ffff:127.0.0.2");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->sandbox_id(), "sb1");
  EXPECT_TRUE(s->EgressAllowed("x.other.test", 443));
  EXPECT_FALSE(s->EgressAllowed("other.test", 443));
  EXPECT_EQ(Substitute(*s, "api.test", kTok + " " + kTok2), "real-value-1 open-value");
  EXPECT_EQ(Substitute(*s, "x.other.test", kTok + " " + kTok2), kTok + " open-value");
}

TEST(SessionRegistry, UpdateKeepsTokenChangesValue) {
  SessionRegistry reg;
  ASSERT_TRUE(reg.Register("127.0.0.2", MakeSession("sb1")).ok());
  auto before = reg.Lookup("127.0.0.2");
  ASSERT_TRUE(reg.UpdateSecretValue("sb1", "API_KEY", "real-value-2").ok());
  auto after = reg.Lookup("127.0.0.2");
  EXPECT_EQ(Substitute(*before, "api.test", kTok), "real-value-1");  // in-flight snapshot unchanged
  EXPECT_EQ(Substitute(*after, "api.test", kTok), "real-value-2");
  EXPECT_EQ(after->secrets()[0].token, kTok);
  EXPECT_EQ(reg.UpdateSecretValue("sb1", "NOPE", "x").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(reg.UpdateSecretValue("nosb", "API_KEY", "x").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(reg.UpdateSecretValue("sb1", "API_KEY", "").error().code, ErrorCode::kInvalidArgument);
}

TEST(SessionRegistry, RemoveAndUnregister) {
  SessionRegistry reg;
  ASSERT_TRUE(reg.Register("127.0.0.2", MakeSession("sb1")).ok());
  ASSERT_TRUE(reg.RemoveSecret("sb1", "API_KEY").ok());
  EXPECT_EQ(Substitute(*reg.Lookup("127.0.0.2"), "api.test", kTok), kTok);  // stays sealed
  ASSERT_TRUE(reg.Unregister("sb1").ok());
  EXPECT_EQ(reg.Lookup("127.0.0.2"), nullptr);
  EXPECT_FALSE(reg.Unregister("sb1").ok());
  // The source is free again.
  EXPECT_TRUE(reg.Register("127.0.0.2", MakeSession("sb2")).ok());
}

TEST(SessionRegistry, SetSecretReaddsAfterRemovalAndChangesHostsLive) {
  SessionRegistry reg;
  ASSERT_TRUE(reg.Register("127.0.0.2", MakeSession("sb1")).ok());
  ASSERT_TRUE(reg.RemoveSecret("sb1", "API_KEY").ok());
  // Set again after a removal: same token, new value, and now for any host
  // of the allowlist.
  ASSERT_TRUE(reg.SetSecret("sb1", {"API_KEY", kTok, "real-value-3", {}}).ok());
  auto s = reg.Lookup("127.0.0.2");
  EXPECT_EQ(Substitute(*s, "api.test", kTok), "real-value-3");
  EXPECT_EQ(Substitute(*s, "x.other.test", kTok), "real-value-3");
  // Narrow its hosts again: elsewhere it stays sealed.
  ASSERT_TRUE(reg.SetSecret("sb1", {"API_KEY", kTok, "real-value-4", {"api.test"}}).ok());
  s = reg.Lookup("127.0.0.2");
  EXPECT_EQ(Substitute(*s, "api.test", kTok), "real-value-4");
  EXPECT_EQ(Substitute(*s, "x.other.test", kTok), kTok);
  // A secret keeps its token; bad values are refused; unknown sandbox.
  EXPECT_EQ(reg.SetSecret("sb1", {"API_KEY", kTok2, "v", {}}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(reg.SetSecret("sb1", {"API_KEY", kTok, "", {}}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(reg.SetSecret("nosb", {"API_KEY", kTok, "v", {}}).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Substitute(*reg.Lookup("127.0.0.2"), "api.test", kTok), "real-value-4");
}

// Item 6 of issue 11: a secret without allowedHosts follows the allowlist,
// and with an empty allowlist it goes nowhere; "*" is the explicit opt-in.
TEST(SessionRegistry, HostlessSecretsFollowTheAllowlistAndGoNowhereWithoutOne) {
  SessionRegistry reg;
  Session open = MakeSession("sb1");
  open.egress_allowlist = {};  // every host reachable...
  ASSERT_TRUE(reg.Register("127.0.0.2", open).ok());
  auto s = reg.Lookup("127.0.0.2");
  EXPECT_TRUE(s->EgressAllowed("attacker.example", 443));
  // ...but the host-less secret is sent nowhere, not even to api.test.
  EXPECT_EQ(Substitute(*s, "attacker.example", kTok2), kTok2);
  EXPECT_EQ(Substitute(*s, "api.test", kTok + kTok2), "real-value-1" + kTok2);
  EXPECT_EQ(s->WithheldReason(1, "attacker.example", 443), "no_allowed_hosts");
  EXPECT_EQ(s->WithheldReason(0, "attacker.example", 443), "host_not_in_allowed_hosts");
  EXPECT_EQ(s->WithheldReason(0, "api.test", 443), "");

  // With an allowlist: only its hosts (and ports).
  Session listed = MakeSession("sb2");
  listed.egress_allowlist = {"api.test:443", "*.other.test"};
  ASSERT_TRUE(reg.Register("127.0.0.3", listed).ok());
  s = reg.Lookup("127.0.0.3");
  EXPECT_EQ(Substitute(*s, "api.test", kTok2), "open-value");
  EXPECT_EQ(Substitute(*s, "x.other.test", kTok2, 8443), "open-value");
  EXPECT_EQ(Substitute(*s, "api.test", kTok2, 8443), kTok2);  // port not on the allowlist
  EXPECT_FALSE(s->EgressAllowed("api.test", 8443));
  EXPECT_EQ(Substitute(*s, "elsewhere.test", kTok2), kTok2);

  // "*": any host the sandbox may reach.
  ASSERT_TRUE(reg.SetSecret("sb1", {"OPEN", kTok2, "open-value", {"*"}}).ok());
  s = reg.Lookup("127.0.0.2");
  EXPECT_EQ(Substitute(*s, "attacker.example", kTok2, 8443), "open-value");
  // "*" must stand alone; the error names the field and no value.
  auto mixed = reg.SetSecret("sb1", {"OPEN", kTok2, "open-value", {"*", "api.test"}});
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.error().message.find("allowedHosts"), std::string::npos);
  EXPECT_EQ(mixed.error().message.find("open-value"), std::string::npos);
}

TEST(SessionRegistry, WithheldTokensNameTheSecretsForwardedSealed) {
  SessionRegistry reg;
  Session open = MakeSession("sb1");
  open.egress_allowlist = {};
  ASSERT_TRUE(reg.Register("127.0.0.2", open).ok());
  auto s = reg.Lookup("127.0.0.2");
  // Toward api.test API_KEY is enabled, OPEN (host-less, empty allowlist) is not.
  WithheldTokens w(s, s->EnabledFor("api.test", 443));
  ASSERT_TRUE(w.active());
  std::string header = "Bearer " + kTok;
  w.ScanWhole(&header);  // enabled: not withheld
  EXPECT_EQ(header, "Bearer " + kTok);
  const std::string body = "x" + kTok2 + "y";
  for (size_t cut = 0; cut <= body.size(); ++cut) {  // found at every split
    WithheldTokens split(s, s->EnabledFor("api.test", 443));
    split.Scan(body.substr(0, cut));
    split.Scan(body.substr(cut));
    auto found = split.Found("api.test", 443);
    ASSERT_EQ(found.size(), 1u) << cut;
    EXPECT_EQ(found[0].first, "OPEN");
    EXPECT_EQ(found[0].second, "no_allowed_hosts");
  }
  EXPECT_TRUE(w.Found("api.test", 443).empty());
  std::string whole = body;
  w.ScanWhole(&whole);
  EXPECT_EQ(whole, body);  // scanned, unchanged
  auto found = w.Found("api.test", 443);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].first, "OPEN");
  // Everything enabled: nothing to look for.
  ASSERT_TRUE(reg.SetSecret("sb1", {"OPEN", kTok2, "open-value", {"*"}}).ok());
  s = reg.Lookup("127.0.0.2");
  WithheldTokens none(s, s->EnabledFor("api.test", 443));
  EXPECT_FALSE(none.active());
}

TEST(SessionRegistry, RejectsBadInputNamingTheField) {
  SessionRegistry reg;
  Session s = MakeSession("sb1");
  s.secrets[1].token = "osb_sealed_NOTHEX";
  auto st = reg.Register("127.0.0.2", s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("secrets[1].token"), std::string::npos);
  EXPECT_EQ(st.error().message.find("open-value"), std::string::npos);
  EXPECT_FALSE(reg.Register("not-an-ip", MakeSession("sb1")).ok());
  Session dup = MakeSession("sb1");
  dup.secrets[1].token = kTok;
  EXPECT_FALSE(reg.Register("127.0.0.2", dup).ok());
  ASSERT_TRUE(reg.Register("127.0.0.2", MakeSession("sb1")).ok());
  EXPECT_EQ(reg.Register("127.0.0.2", MakeSession("sb9")).error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(reg.Register("127.0.0.9", MakeSession("sb1")).error().code, ErrorCode::kAlreadyExists);
}

TEST(SessionRegistry, ExpiredSessionIsNotFound) {
  SessionRegistry reg;
  Session s = MakeSession("sb1");
  s.expiry = std::chrono::system_clock::now() - std::chrono::seconds(1);
  ASSERT_TRUE(reg.Register("127.0.0.2", s).ok());
  EXPECT_EQ(reg.Lookup("127.0.0.2"), nullptr);
}

TEST(SessionRegistry, ConcurrentLookupsDuringUpdates) {
  SessionRegistry reg;
  ASSERT_TRUE(reg.Register("127.0.0.2", MakeSession("sb1")).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop) {
        auto s = reg.Lookup("127.0.0.2");
        if (!s) continue;
        const std::string v = Substitute(*s, "api.test", kTok);
        if (v.rfind("value-", 0) != 0 && v != "real-value-1") bad++;
      }
    });
  }
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(reg.UpdateSecretValue("sb1", "API_KEY", "value-" + std::to_string(i)).ok());
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(SessionsFile, ParsesAndNamesErrors) {
  auto ok = ParseSessionsJson(R"([{"source":"127.0.0.1","sandboxId":"a","allowlist":["x.test"],
      "secrets":[{"name":"K","token":")" + kTok + R"(","value":"v","allowedHosts":["x.test"]}]}])");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ((*ok)[0].session.secrets[0].name, "K");
  auto bad = ParseSessionsJson(R"([{"source":"127.0.0.1","sandboxId":"a","secrets":[{"name":"K","value":"v"}]}])");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("sessions[0].secrets[0].token"), std::string::npos);
  EXPECT_FALSE(ParseSessionsJson("{").ok());
}

}  // namespace
}  // namespace osb::secretsproxy
