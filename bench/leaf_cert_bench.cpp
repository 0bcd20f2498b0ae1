// Leaf certificate cost: cold (new host: sign a certificate + build a TLS
// context) vs warm (LRU hit).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>

#include "secretsproxy/certificate_authority.h"

using osb::secretsproxy::CertificateAuthority;

namespace {
CertificateAuthority& Ca() {
  static auto ca = [] {
    char tmpl[] = "/tmp/osb_leaf_bench_XXXXXX";
    std::filesystem::path dir(mkdtemp(tmpl));
    auto r = CertificateAuthority::LoadOrCreate(dir, 1 << 20);
    if (!r.ok()) abort();
    return std::move(*r);
  }();
  return *ca;
}

void BM_LeafCold(benchmark::State& state) {
  uint64_t i = 0;
  for (auto _ : state) {
    auto ctx = Ca().ServerContextFor("host" + std::to_string(i++) + ".bench.test");
    benchmark::DoNotOptimize(ctx.ok());
  }
}
BENCHMARK(BM_LeafCold)->Unit(benchmark::kMicrosecond);

void BM_LeafWarm(benchmark::State& state) {
  (void)Ca().ServerContextFor("warm.bench.test");
  for (auto _ : state) {
    auto ctx = Ca().ServerContextFor("warm.bench.test");
    benchmark::DoNotOptimize(ctx.ok());
  }
}
BENCHMARK(BM_LeafWarm)->Unit(benchmark::kMicrosecond);
}  // namespace

BENCHMARK_MAIN();
