// Fuzzes the content decoders (gzip, deflate zlib/raw, br, zstd, stacks of
// them) with arbitrary bytes fed at arbitrary splits and read in arbitrary
// piece sizes; the header parsers on the same bytes; and the encoders by a
// round trip. Input layout:
//   byte 0: bits 0-1 = number of layers (0-3), bits 2-3 / 4-5 / 6-7 = the
//           codings in applied order (0 gzip, 1 deflate, 2 br, 3 zstd)
//   byte 1: the Read limit (1 + value * 37)
//   byte 2: seed for the split points
//   rest:   the encoded body
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

#include "secretsproxy/content_coding.h"
#include "secretsproxy/content_decoder.h"
#include "secretsproxy/content_encoder.h"

using namespace osb::secretsproxy;

namespace {

constexpr uint64_t kMaxOutput = 4 << 20;  // stop reading bombs early: speed, not safety

void Check(bool ok) {
  if (!ok) abort();
}

// Decodes `body` split by `rng`; returns false on a decode error.
bool Decode(const std::vector<Coding>& codings, std::string_view body, size_t max, std::mt19937* rng,
            std::string* out) {
  auto dec = ContentDecoder::Create(codings);
  Check(dec.ok());
  while (true) {
    const size_t n = body.empty() ? 0 : std::min<size_t>(body.size(), 1 + (*rng)() % (body.size() + 1));
    (*dec)->Feed(body.substr(0, n));
    body.remove_prefix(n);
    while (true) {
      const size_t before = out->size();
      const auto s = (*dec)->Read(max, out);
      const size_t got = out->size() - before;
      Check(got <= max);
      if (s == DecodeStatus::kError) {
        Check(!(*dec)->error().message.empty());
        Check((*dec)->Read(max, out) == DecodeStatus::kError);  // sticky
        return false;
      }
      if (s == DecodeStatus::kMore) Check(got >= 1);
      if (out->size() > kMaxOutput) return false;
      if (s == DecodeStatus::kNeedInput) break;
    }
    if (body.empty()) break;
  }
  const bool ok = (*dec)->Finish().ok();
  if (ok) Check((*dec)->bytes_out() == out->size());
  return ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<Coding> codings;
  for (int i = 0; i < (data[0] & 3); ++i) codings.push_back(static_cast<Coding>((data[0] >> (2 + 2 * i)) & 3));
  const size_t max = 1 + size_t{data[1]} * 37;
  std::mt19937 rng(data[2]);
  const std::string_view body = in.substr(3);

  // Header parsers never crash; what they accept round-trips.
  std::string bad;
  auto parsed = ParseContentEncoding(body, &bad);
  if (parsed.ok()) {
    auto again = ParseContentEncoding(FormatContentEncoding(*parsed));
    Check(again.ok() && *again == *parsed);
  } else {
    Check(bad.size() <= 32);
  }
  const std::string ae = UpstreamAcceptEncoding(body);
  Check(ae == "identity" || ParseContentEncoding(ae).ok());

  // Arbitrary bytes through the decoders: an error or some output, no crash.
  std::string out;
  const bool decoded = Decode(codings, body, max, &rng, &out);
  if (decoded) {
    // What decoded cleanly decodes the same in one piece.
    auto r = DecodeAll(codings, body, kMaxOutput + 1);
    Check(r.ok() && *r == out);
  }

  // The encoders: the body round-trips through encode + decode.
  auto enc = EncodeAll(codings, body);
  Check(enc.ok());
  std::string back;
  Check(Decode(codings, *enc, max, &rng, &back));
  Check(back == body);
  return 0;
}
