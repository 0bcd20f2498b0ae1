// Fuzzes the SigV4 parsers and the re-signing stage with bytes the sandbox
// controls: the Authorization header, a presigned query string, a whole
// request head through ResignSigV4, and an aws-chunked body through
// ChunkResigner fed in fuzzer-chosen pieces. Invariants: no crash/UB; a
// refusal leaves the head unchanged; the re-signer never emits more bytes
// than it was fed and never emits anything after a failure.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "secretsproxy/http_message.h"
#include "secretsproxy/sigv4.h"
#include "secretsproxy/sigv4_stage.h"

using namespace osb::secretsproxy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 4;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (mode) {
    case 0: {
      auto a = sigv4::ParseAuthorizationHeader(in);
      if (a.ok() && (a->signature.size() != 64 || a->signed_list.empty())) abort();
      break;
    }
    case 1: {
      auto a = sigv4::ParsePresignedQuery(in);
      if (a.ok() && (a->expires < 1 || a->expires > sigv4::kMaxPresignExpires)) abort();
      (void)sigv4::CanonicalQuery(in, true);
      (void)sigv4::CanonicalUri(in, false);
      (void)sigv4::UriDecode(in);
      break;
    }
    case 2: {
      HeadLimits limits{1024, 4096, 32};
      RequestHead head;
      ParseOutcome r = ParseRequestHead(in, limits, &head);
      if (r.status != ParseStatus::kComplete) break;
      const SigV4Secret secrets[] = {{"AWS", "AKIAIOSFODNN7EXAMPLE", "osb_sealed_0123456789abcdef0123456789abcdef",
                                      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                      "osb_sealed_fedcba9876543210fedcba9876543210", "SESSION", true}};
      const RequestHead before = head;
      SigV4Result out;
      const std::string body(in.substr(r.consumed));
      StageResult st = ResignSigV4(&head, secrets, 1'780'000'000, nullptr, &out);
      if (st.ok() && out.needs_body) st = ResignSigV4(&head, secrets, 1'780'000'000, &body, &out);
      if (!st.ok() && (head.target != before.target || head.fields.size() != before.fields.size())) abort();
      break;
    }
    default: {
      sigv4::Key k{};
      sigv4::ChunkResigner rs(k, k, "20260101T000000Z", "20260101/us-east-1/s3/aws4_request", std::string(64, '0'),
                              std::string(64, '1'), 4096);
      std::string out;
      size_t fed = 0;
      bool ok = true;
      while (!in.empty()) {
        const size_t n = std::min<size_t>(in.size(), 1 + static_cast<uint8_t>(in[0]) % 97);
        const size_t before = out.size();
        const bool r = rs.Feed(in.substr(0, n), &out);
        fed += n;
        if (!ok && out.size() != before) abort();  // nothing after a failure
        ok = ok && r;
        in.remove_prefix(n);
      }
      if (out.size() > fed) abort();
      break;
    }
  }
  return 0;
}
