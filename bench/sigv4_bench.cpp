// SigV4 re-signing cost (issue 16), against plain token substitution in the
// same run. Per request: the head work the proxy does for
//   plain   a bearer token substituted in the head (SubstituteHead), and
//   sigv4   an S3 PutObject head signed with the sandbox's token: verify the
//           token signature, re-sign with the real key (ResignSigV4);
//   sigv4_body_hash  an STS-style POST whose payload hash is SHA-256 of a
//           1 KiB body the proxy must hash.
// Per 100 MiB streamed body:
//   plain   the body through the request-side StreamReplacer (16 KiB reads);
//   sigv4   the aws-chunked body (64 KiB chunks) through ChunkResigner:
//           every chunk hashed, its token signature verified, re-signed.
// bench/run.sh prints the ratios (summarize.py); the chunk re-signer holds
// one chunk, reported as the max_buffer counter.
#include <benchmark/benchmark.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <ctime>

#include "secretsproxy/request_stages.h"
#include "secretsproxy/sigv4.h"
#include "secretsproxy/sigv4_stage.h"
#include "secretsproxy/stream_replacer.h"

using namespace osb::secretsproxy;

namespace {

constexpr char kToken[] = "osb_sealed_0123456789abcdef0123456789abcdef";
constexpr char kReal[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr char kAkid[] = "AKIAIOSFODNN7EXAMPLE";
constexpr size_t kBig = 100u << 20;
constexpr size_t kChunk = 64u << 10;

// One clock reading for the whole run: the 100 MiB body is signed once.
int64_t Now() {
  static const int64_t now = time(nullptr);
  return now;
}

std::string AmzDate(int64_t t) {
  const time_t tt = static_cast<time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

// A head signed with the token, as a sandbox's SDK would send it.
RequestHead SignedHead(int64_t now, const std::string& method, const std::string& target, std::string payload,
                       std::vector<HeaderField> extra, const std::string& service = "s3") {
  RequestHead h;
  h.method = method;
  h.target = target;
  h.fields = {{"Host", service + ".us-east-1.amazonaws.com"}, {"X-Amz-Date", AmzDate(now)}};
  if (service == "s3") h.fields.push_back({"X-Amz-Content-SHA256", payload});
  for (auto& f : extra) h.fields.push_back(f);
  h.fields.push_back({"User-Agent", "aws-cli/2.9.19 Python/3.11.2"});
  sigv4::Authorization a;
  a.credential = {kAkid, AmzDate(now).substr(0, 8), "us-east-1", service};
  for (const auto& f : h.fields) {
    if (f.name == "User-Agent") continue;
    std::string n;
    for (char c : f.name) n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    a.signed_list.push_back(n);
  }
  std::sort(a.signed_list.begin(), a.signed_list.end());
  for (const auto& n : a.signed_list) a.signed_headers += (a.signed_headers.empty() ? "" : ";") + n;
  auto cr = sigv4::CanonicalRequest({h.method, h.target, &h.fields, &a, payload});
  const auto key = sigv4::DeriveSigningKey(kToken, a.credential);
  a.signature = sigv4::SignHex(key, sigv4::StringToSign(AmzDate(now), a.credential.Scope(), *cr));
  h.fields.push_back({"Authorization", "AWS4-HMAC-SHA256 Credential=" + std::string(kAkid) + "/" +
                                           a.credential.Scope() + ", SignedHeaders=" + a.signed_headers +
                                           ", Signature=" + a.signature});
  return h;
}

const SigV4Secret kSecret{"AWS", kAkid, kToken, kReal, "", "", true};

void BM_PlainSubstitutionHead(benchmark::State& state) {
  auto set = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{{kToken, "sk-live-REAL-value-0123456789"}});
  const std::vector<bool> enabled{true};
  RequestHead h;
  h.method = "PUT";
  h.target = "/bucket/dir/object.txt";
  h.fields = {{"Host", "api.example.com"},
              {"Authorization", std::string("Bearer ") + kToken},
              {"Content-Type", "text/plain"},
              {"Content-Length", "1024"},
              {"User-Agent", "aws-cli/2.9.19 Python/3.11.2"}};
  for (auto _ : state) {
    RequestHead copy = h;
    StreamReplacer r(set, enabled, StreamReplacer::HoldBack::kMinimal);
    auto st = SubstituteHead(&copy, &r);
    benchmark::DoNotOptimize(st);
  }
}
BENCHMARK(BM_PlainSubstitutionHead);

void BM_SigV4ResignHead(benchmark::State& state) {
  const int64_t now = Now();
  const RequestHead h = SignedHead(now, "PUT", "/bucket/dir/object.txt",
                                   sigv4::Sha256Hex(std::string(1024, 'x')),
                                   {{"Content-Type", "text/plain"}, {"Content-Length", "1024"}});
  for (auto _ : state) {
    RequestHead copy = h;
    SigV4Result r;
    auto st = ResignSigV4(&copy, {&kSecret, 1}, now, nullptr, &r);
    if (!st.ok() || !r.signed_request) state.SkipWithError("not re-signed");
  }
}
BENCHMARK(BM_SigV4ResignHead);

void BM_SigV4ResignBodyHash(benchmark::State& state) {
  const int64_t now = Now();
  const std::string body = "Action=GetCallerIdentity&Version=2011-06-15&" + std::string(980, 'p');
  RequestHead h = SignedHead(now, "POST", "/", "", {{"Content-Type", "application/x-www-form-urlencoded"}}, "sts");
  // SignedHead signed the empty payload; sign again over the body.
  {
    SigV4Secret self{"AWS", kAkid, kToken, kToken, "", "", true};
    RequestHead tmp = h;
    tmp.fields.pop_back();
    sigv4::Authorization a;
    a.credential = {kAkid, AmzDate(now).substr(0, 8), "us-east-1", "sts"};
    a.signed_headers = "content-type;host;x-amz-date";
    a.signed_list = {"content-type", "host", "x-amz-date"};
    auto cr = sigv4::CanonicalRequest({tmp.method, tmp.target, &tmp.fields, &a, sigv4::Sha256Hex(body)});
    const auto key = sigv4::DeriveSigningKey(kToken, a.credential);
    tmp.fields.push_back({"Authorization", "AWS4-HMAC-SHA256 Credential=" + std::string(kAkid) + "/" +
                                               a.credential.Scope() + ", SignedHeaders=" + a.signed_headers +
                                               ", Signature=" +
                                               sigv4::SignHex(key, sigv4::StringToSign(AmzDate(now),
                                                                                       a.credential.Scope(), *cr))});
    h = tmp;
    (void)self;
  }
  for (auto _ : state) {
    RequestHead copy = h;
    SigV4Result r;
    auto st = ResignSigV4(&copy, {&kSecret, 1}, now, nullptr, &r);
    if (st.ok() && r.needs_body) st = ResignSigV4(&copy, {&kSecret, 1}, now, &body, &r);
    if (!st.ok() || !r.signed_request) state.SkipWithError("not re-signed");
  }
}
BENCHMARK(BM_SigV4ResignBodyHash);

void BM_PlainSubstitutionStream100MiB(benchmark::State& state) {
  auto set = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{{kToken, "sk-live-REAL-value-0123456789"}});
  const std::vector<bool> enabled{true};
  const std::string piece(16 << 10, 'a');
  std::string out;
  for (auto _ : state) {
    StreamReplacer r(set, enabled, StreamReplacer::HoldBack::kMinimal);
    for (size_t done = 0; done < kBig; done += piece.size()) {
      out.clear();
      r.Feed(piece, &out);
      benchmark::DoNotOptimize(out.data());
    }
    out.clear();
    r.Finish(&out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBig));
}
BENCHMARK(BM_PlainSubstitutionStream100MiB)->Unit(benchmark::kMillisecond);

// The aws-chunked body of 100 MiB signed with the token (built once).
const std::string& ChunkedBody(int64_t now, const std::string& seed) {
  static std::string body;
  if (!body.empty()) return body;
  const sigv4::Credential c{kAkid, AmzDate(now).substr(0, 8), "us-east-1", "s3"};
  const auto key = sigv4::DeriveSigningKey(kToken, c);
  std::string prev = seed;
  const std::string data(kChunk, 'a');
  const std::string hash = sigv4::Sha256Hex(data);
  body.reserve(kBig + kBig / kChunk * 100 + 100);
  for (size_t done = 0; done <= kBig; done += kChunk) {
    const bool last = done == kBig;
    prev = sigv4::SignHex(key, sigv4::ChunkStringToSign(AmzDate(now), c.Scope(), prev,
                                                        last ? std::string(sigv4::kEmptySha256) : hash));
    char size[16];
    snprintf(size, sizeof(size), "%zx", last ? size_t{0} : kChunk);
    body += std::string(size) + ";chunk-signature=" + prev + "\r\n" + (last ? "" : data) + "\r\n";
  }
  return body;
}

void BM_SigV4ChunkedStream100MiB(benchmark::State& state) {
  const int64_t now = Now();
  const RequestHead h = SignedHead(now, "PUT", "/bucket/big.bin", std::string(sigv4::kStreamingPayload),
                                   {{"Content-Encoding", "aws-chunked"},
                                    {"X-Amz-Decoded-Content-Length", std::to_string(kBig)}});
  const std::string seed = h.fields.back().value.substr(h.fields.back().value.find("Signature=") + 10);
  const std::string& body = ChunkedBody(now, seed);
  std::string out;
  size_t max_out = 0;
  for (auto _ : state) {
    RequestHead copy = h;
    SigV4Result r;
    auto st = ResignSigV4(&copy, {&kSecret, 1}, now, nullptr, &r);
    if (!st.ok() || !r.chunks) {
      state.SkipWithError("no chunk re-signer");
      break;
    }
    for (size_t i = 0; i < body.size(); i += 16 << 10) {
      out.clear();
      if (!r.chunks->Feed(std::string_view(body).substr(i, 16 << 10), &out)) {
        state.SkipWithError(r.chunks->reason().c_str());
        break;
      }
      max_out = std::max(max_out, out.size());
      benchmark::DoNotOptimize(out.data());
    }
    if (!r.chunks->done()) state.SkipWithError("not done");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBig));
  state.counters["max_buffer"] = static_cast<double>(max_out);
}
BENCHMARK(BM_SigV4ChunkedStream100MiB)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
