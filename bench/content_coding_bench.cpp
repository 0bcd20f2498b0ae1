// Response decode + scrub throughput: a compressed JSON-like body decoded in
// bounded pieces (ContentDecoder, 64 KiB reads) and scrubbed (StreamReplacer,
// 16 values), against plain scrubbing of the same identity bytes, in the
// same run. Bytes/s count DECODED bytes for every benchmark, so the ratio
// BM_DecodeScrub/gzip : BM_ScrubIdentity is the cost of decoding.
// BM_DecodeScrubReencode adds gzip re-encoding at the encoder's default level
// (the other delivery choice). The "ratio" counter is decoded/encoded size.
#include <benchmark/benchmark.h>

#include <random>

#include "secretsproxy/content_decoder.h"
#include "secretsproxy/content_encoder.h"
#include "secretsproxy/stream_replacer.h"

using namespace osb::secretsproxy;

namespace {

constexpr size_t kWirePiece = 16 * 1024;  // what a TLS read typically hands over
constexpr size_t kReadPiece = 64 * 1024;

// An API response: records with repeated keys, ids, words and some noise.
const std::string& Body() {
  static const std::string body = [] {
    static const char* kWords[] = {"alpha", "beta", "gamma", "delta", "status", "active", "pending", "user",
                                   "order", "created", "updated", "north", "south", "value", "item", "total"};
    std::mt19937 rng(7);
    std::string s = "[";
    while (s.size() < (4u << 20)) {
      s += "{\"id\":" + std::to_string(rng() % 1000000) + ",\"name\":\"" + kWords[rng() % 16] + "_" +
           std::to_string(rng() % 10000) + "\",\"tags\":[\"" + kWords[rng() % 16] + "\",\"" + kWords[rng() % 16] +
           "\"],\"text\":\"";
      for (int w = 0; w < 12; ++w) s += std::string(kWords[rng() % 16]) + " ";
      char hex[17];
      snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(rng()) * 2654435761ull);
      s += std::string("\",\"ref\":\"") + hex + "\"},\n";
    }
    s += "{}]";
    return s;
  }();
  return body;
}

std::shared_ptr<const PatternSet> Values() {
  std::vector<PatternSet::Pattern> p;
  char tok[64];
  for (int i = 0; i < 16; ++i) {
    snprintf(tok, sizeof(tok), "osb_sealed_%032x", i * 2654435761u);
    p.push_back({"sk-live-" + std::to_string(i) + "-Zq9abcdefghijklmnop", tok});
  }
  return std::make_shared<PatternSet>(std::move(p));
}

void BM_ScrubIdentity(benchmark::State& state) {
  const std::string& body = Body();
  auto set = Values();
  std::string out;
  out.reserve(body.size());
  for (auto _ : state) {
    StreamReplacer r(set);
    out.clear();
    for (size_t i = 0; i < body.size(); i += kWirePiece) r.Feed(std::string_view(body).substr(i, kWirePiece), &out);
    r.Finish(&out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ScrubIdentity);

void DecodeScrub(benchmark::State& state, Coding coding, bool reencode) {
  const std::string& body = Body();
  const std::vector<Coding> cs = {coding};
  EncoderOptions server;  // what a typical server sends: gzip -6, br 4, zstd 3
  server.zlib_level = 6;
  const std::string wire = EncodeAll(cs, body, server).value();
  auto set = Values();
  std::string out, piece, encoded;
  out.reserve(body.size());
  for (auto _ : state) {
    auto dec = ContentDecoder::Create(cs).value();
    std::unique_ptr<ContentEncoder> enc;
    if (reencode) enc = ContentEncoder::Create({Coding::kGzip}).value();
    StreamReplacer r(set);
    out.clear();
    encoded.clear();
    for (size_t i = 0; i < wire.size(); i += kWirePiece) {
      dec->Feed(std::string_view(wire).substr(i, kWirePiece));
      while (true) {
        piece.clear();
        const auto s = dec->Read(kReadPiece, &piece);
        if (s == DecodeStatus::kError) {
          state.SkipWithError("decode error");
          return;
        }
        const size_t before = out.size();
        r.Feed(piece, &out);
        if (enc) (void)enc->Write(std::string_view(out).substr(before), &encoded);
        if (s == DecodeStatus::kNeedInput) break;
      }
    }
    if (!dec->Finish().ok()) state.SkipWithError("truncated");
    r.Finish(&out);
    if (enc) (void)enc->Finish(&encoded);
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(encoded.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["ratio"] = static_cast<double>(body.size()) / static_cast<double>(wire.size());
}

void BM_DecodeScrub_gzip(benchmark::State& s) { DecodeScrub(s, Coding::kGzip, false); }
void BM_DecodeScrub_br(benchmark::State& s) { DecodeScrub(s, Coding::kBrotli, false); }
void BM_DecodeScrub_zstd(benchmark::State& s) { DecodeScrub(s, Coding::kZstd, false); }
void BM_DecodeScrubReencode_gzip(benchmark::State& s) { DecodeScrub(s, Coding::kGzip, true); }
BENCHMARK(BM_DecodeScrub_gzip);
BENCHMARK(BM_DecodeScrub_br);
BENCHMARK(BM_DecodeScrub_zstd);
BENCHMARK(BM_DecodeScrubReencode_gzip);

}  // namespace

BENCHMARK_MAIN();
