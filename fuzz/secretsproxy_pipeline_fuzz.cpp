// Fuzzes the request pipeline's head stages (request_pipeline.h) as the
// exchange runs them: byte 0 picks the listener mode (TLS with a fixed
// target, explicit plain, transparent plain) and an SNI mismatch; the rest
// is a request head. Invariants checked: no crash/UB; a head that passes
// every stage names a target on the allowlist, re-serializes into a head
// that parses completely, carries no token of a secret enabled for its
// target (TLS) and no sealed token at all (plain HTTP); its Accept-Encoding
// names only codings the proxy decodes. (The asynchronous stages need
// coroutines, which the clang fuzz build lacks; exchange_test runs them at
// every split point.)
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "secretsproxy/content_coding.h"
#include "secretsproxy/request_pipeline.h"

using namespace osb::secretsproxy;

namespace {
const std::string kTok1 = "osb_sealed_0123456789abcdef0123456789abcdef";
const std::string kTok2 = "osb_sealed_fedcba9876543210fedcba9876543210";

const SessionRegistry& Registry() {
  static SessionRegistry* reg = [] {
    auto* r = new SessionRegistry();
    Session s;
    s.sandbox_id = "sb";
    s.egress_allowlist = {"api.test", "*.other.test", "plain.test:8080"};
    s.secrets.push_back({"A", kTok1, "REAL-VALUE-1", {"api.test"}});
    s.secrets.push_back({"B", kTok2, "value two", {"*.other.test"}});
    if (!r->Register("10.0.0.2", std::move(s))) abort();
    return r;
  }();
  return *reg;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  ExchangeOptions opt;
  opt.source_ip = "10.0.0.2";
  switch (data[0] % 3) {
    case 0:
      opt.mode = ExchangeMode::kTls;
      opt.fixed_target = Target{(data[0] & 0x10) ? "x.other.test" : "api.test", 443};
      break;
    case 1:
      opt.mode = ExchangeMode::kExplicitPlain;
      break;
    default:
      opt.mode = ExchangeMode::kTransparentPlain;
      break;
  }
  opt.sni_mismatch = (data[0] & 0x80) != 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  RequestContext ctx(opt, Registry(), 80);
  const HeadLimits limits{1024, 4096, 32};
  if (ParseRequestHead(in, limits, &ctx.head).status != ParseStatus::kComplete) return 0;
  ctx.Begin();
  const StageResult st = RunHeadStages(ctx);
  if (!st.ok()) {
    if (st.status < 400 || st.status > 599 || st.reason.empty()) abort();
    return 0;
  }
  if (ctx.target.host.empty() || !ctx.session || !ctx.session->EgressAllowed(ctx.target.host, ctx.target.port)) abort();
  const std::string out = SerializeRequestHead(ctx.head);
  RequestHead again;
  if (ParseRequestHead(out, HeadLimits{1 << 20, 1 << 20, 1024}, &again).status != ParseStatus::kComplete) abort();
  if (ctx.plaintext) {
    if (HeadContainsSealedToken(ctx.head)) abort();
  } else {
    // SubstituteHead's contract: the request target and every header value
    // (but Host and the framing fields, which never carry a token past the
    // stages) hold no enabled token. Header names are not substituted: a
    // token there goes out sealed, which reveals nothing.
    auto holds_enabled_token = [&](std::string_view text) {
      for (size_t i = 0; i < ctx.enabled.size(); ++i) {
        if (ctx.enabled[i] && text.find(ctx.session->secrets()[i].token) != std::string_view::npos) return true;
      }
      return false;
    };
    if (holds_enabled_token(ctx.head.target)) abort();
    for (const auto& f : ctx.head.fields) {
      if (EqualsIgnoreCase(f.name, "host") || EqualsIgnoreCase(f.name, "content-length") ||
          EqualsIgnoreCase(f.name, "transfer-encoding")) {
        continue;
      }
      if (holds_enabled_token(f.value)) abort();
    }
  }
  for (const auto* f : FindFields(ctx.head.fields, "accept-encoding")) {
    if (f->value == "identity") continue;
    auto codings = ParseContentEncoding(f->value);
    if (!codings) abort();
  }
  return 0;
}
