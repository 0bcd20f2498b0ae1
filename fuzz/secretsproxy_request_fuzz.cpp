// Fuzzes what the proxy does with bytes from the sandbox: the strict request
// head parser, framing analysis, the host-agreement and substitution stages,
// the chunked decoder and the streaming replacer (fed in fuzzer-chosen
// pieces). Invariants checked: no crash/UB; streaming substitution equals
// one-shot substitution; the replacer (kMinimal, as for requests) never
// holds back max_length bytes. See secretsproxy_scrub_fuzz for the scrubbing
// side (overlapping values, fixed hold-back, websocket client frames).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "secretsproxy/chunked.h"
#include "secretsproxy/http_message.h"
#include "secretsproxy/request_stages.h"
#include "secretsproxy/stream_replacer.h"
#include "secretsproxy/websocket_scrubber.h"

using namespace osb::secretsproxy;

namespace {
std::shared_ptr<const PatternSet> Tokens() {
  static auto set = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{
      {"osb_sealed_0123456789abcdef0123456789abcdef", "REAL-VALUE-1"},
      {"osb_sealed_fedcba9876543210fedcba9876543210", "v2\r\nX: y"},
      {"osb_sealed_00000000000000000000000000000000", ""}});
  return set;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // 1. Head parsing + stages.
  HeadLimits limits{512, 2048, 32};
  RequestHead head;
  ParseOutcome r = ParseRequestHead(in, limits, &head);
  if (r.status == ParseStatus::kComplete) {
    if (r.consumed > in.size()) abort();
    BodyFraming framing;
    (void)AnalyzeRequestFraming(head, &framing);
    (void)CheckMethod(head);
    RequestHead copy = head;
    (void)CheckHostAgreement(&copy, Target{"api.test", 443}, "https");
    Target t;
    RequestHead copy2 = head;
    (void)TargetFromAbsoluteForm(&copy2, &t);
    (void)TargetFromHost(head, 80, &t);
    StreamReplacer rep(Tokens());
    (void)SubstituteHead(&head, &rep);
    (void)SerializeRequestHead(head);
    // 2. The rest as a chunked body.
    ChunkedDecoder dec;
    std::string body;
    size_t consumed = 0;
    (void)dec.Decode(in.substr(r.consumed), &consumed, &body);
  }
  ResponseHead resp;
  (void)ParseResponseHead(in, limits, &resp);
  // 3. Streaming replacement in fuzzer-chosen pieces equals one-shot.
  if (size > 0) {
    const size_t step = 1 + data[0] % 64;
    StreamReplacer whole(Tokens());
    const std::string want = whole.ReplaceAll(in);
    StreamReplacer pieces(Tokens(), {true, false, true});
    StreamReplacer all(Tokens(), {}, StreamReplacer::HoldBack::kMinimal);  // as the request direction
    std::string got;
    for (size_t i = 0; i < size; i += step) {
      all.Feed(in.substr(i, step), &got);
      if (all.held_back() >= Tokens()->max_length()) abort();
    }
    all.Finish(&got);
    if (got != want) abort();
    (void)pieces.ReplaceAll(in);
    (void)ContainsSealedToken(in);
    // 4. The same bytes as upstream websocket frames (values -> tokens).
    static auto values = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{
        {"REAL-VALUE-1", "osb_sealed_0123456789abcdef0123456789abcdef"}, {"ab", "T"}});
    WebSocketScrubber ws(values);
    std::string frames;
    for (size_t i = 0; i < size; i += step) {
      if (!ws.Feed(in.substr(i, step), &frames)) break;
    }
  }
  return 0;
}
