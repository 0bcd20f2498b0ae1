// Replacer throughput: token substitution (request side) on token-free and
// token-dense bodies, and value scrubbing (response side, Aho-Corasick over
// arbitrary values) on value-free bodies. Reports bytes/s.
#include <benchmark/benchmark.h>

#include <random>

#include "secretsproxy/stream_replacer.h"

using namespace osb::secretsproxy;

namespace {

std::string Token(int i) {
  char buf[64];
  snprintf(buf, sizeof(buf), "osb_sealed_%032x", i * 2654435761u);
  return buf;
}

std::shared_ptr<const PatternSet> TokenSet(int n) {
  std::vector<PatternSet::Pattern> p;
  for (int i = 0; i < n; ++i) p.push_back({Token(i), "sk-live-" + std::to_string(i) + "-abcdefghijklmnopqrstuvwxyz"});
  return std::make_shared<PatternSet>(std::move(p));
}

// JSON-ish text (letters, digits, punctuation, and the odd 'o', 's', '_').
std::string Text(size_t n) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789 {}\":,_-osb";
  std::mt19937 rng(7);
  std::string s(n, ' ');
  for (auto& c : s) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return s;
}

void Run(benchmark::State& state, const std::shared_ptr<const PatternSet>& set, const std::string& body) {
  std::string out;
  out.reserve(body.size() * 2);
  for (auto _ : state) {
    StreamReplacer r(set);
    out.clear();
    for (size_t i = 0; i < body.size(); i += 16384) r.Feed(std::string_view(body).substr(i, 16384), &out);
    r.Finish(&out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}

void BM_TokenFree(benchmark::State& state) {
  static const std::string body = Text(4 << 20);
  Run(state, TokenSet(static_cast<int>(state.range(0))), body);
}
BENCHMARK(BM_TokenFree)->Arg(1)->Arg(16);

void BM_TokenDense(benchmark::State& state) {
  // A token every ~256 bytes.
  static const std::string body = [] {
    std::string text = Text(4 << 20), s;
    for (size_t i = 0; i < text.size(); i += 213) s += text.substr(i, 213) + Token(static_cast<int>(i % 16));
    return s;
  }();
  Run(state, TokenSet(16), body);
}
BENCHMARK(BM_TokenDense);

void BM_ScrubValueFree(benchmark::State& state) {
  static const std::string body = Text(4 << 20);
  std::vector<PatternSet::Pattern> p;
  for (int i = 0; i < state.range(0); ++i) p.push_back({"sk-live-" + std::to_string(i) + "-Zq9", Token(i)});
  Run(state, std::make_shared<PatternSet>(std::move(p)), body);
}
BENCHMARK(BM_ScrubValueFree)->Arg(1)->Arg(16);

void BM_Memcpy(benchmark::State& state) {  // the floor: copying the body once
  static const std::string body = Text(4 << 20);
  std::string out;
  for (auto _ : state) {
    out.assign(body);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_Memcpy);

}  // namespace

BENCHMARK_MAIN();
