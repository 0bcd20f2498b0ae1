// Content-codings: header parsing, the upstream Accept-Encoding, and the
// streaming decoders/encoders against the real libraries (zlib, libbrotli,
// libzstd) used directly as references. Every decoder test feeds its input
// split at every byte offset (small inputs) or at random offsets (large
// ones), reading in pieces of several sizes; bombs must come out only in
// bounded pieces with bounded heap (this binary counts operator new).
#include <brotli/decode.h>
#include <brotli/encode.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>

#include "secretsproxy/content_coding.h"
#include "secretsproxy/content_decoder.h"
#include "secretsproxy/content_encoder.h"
#include "secretsproxy/stream_replacer.h"

// ---- heap accounting (live bytes through operator new) -----------------------

namespace {
std::atomic<int64_t> g_live{0};
std::atomic<int64_t> g_peak{0};
void* CountedAlloc(size_t n) {
  auto* p = static_cast<size_t*>(std::malloc(n + 16));
  if (!p) throw std::bad_alloc();
  *p = n;
  const int64_t live = g_live += static_cast<int64_t>(n);
  int64_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
  }
  return reinterpret_cast<char*>(p) + 16;
}
void CountedFree(void* q) {
  if (!q) return;
  auto* p = reinterpret_cast<size_t*>(static_cast<char*>(q) - 16);
  g_live -= static_cast<int64_t>(*p);
  std::free(p);
}
}  // namespace

void* operator new(size_t n) { return CountedAlloc(n); }
void* operator new[](size_t n) { return CountedAlloc(n); }
void operator delete(void* p) noexcept { CountedFree(p); }
void operator delete[](void* p) noexcept { CountedFree(p); }
void operator delete(void* p, size_t) noexcept { CountedFree(p); }
void operator delete[](void* p, size_t) noexcept { CountedFree(p); }

namespace osb::secretsproxy {
namespace {

using Codings = std::vector<Coding>;
const Codings kEach[] = {{Coding::kGzip}, {Coding::kDeflate}, {Coding::kBrotli}, {Coding::kZstd}};

// ---- reference encoders / decoders: the libraries' own one-shot APIs ----------

std::string RefZlib(std::string_view in, int window_bits, int level = 6) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}
std::string RefGzip(std::string_view in) { return RefZlib(in, 16 + 15); }

std::string RefBr(std::string_view in, int lgwin = 22, int quality = 5) {
  size_t n = BrotliEncoderMaxCompressedSize(in.size()) + 64;
  std::string out(n, '\0');
  EXPECT_TRUE(BrotliEncoderCompress(quality, lgwin, BROTLI_MODE_GENERIC, in.size(),
                                    reinterpret_cast<const uint8_t*>(in.data()), &n,
                                    reinterpret_cast<uint8_t*>(out.data())));
  out.resize(n);
  return out;
}

std::string RefZstd(std::string_view in, int level = 3) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), level);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

std::string RefEncode(Coding c, std::string_view in) {
  switch (c) {
    case Coding::kGzip: return RefGzip(in);
    case Coding::kDeflate: return RefZlib(in, 15);
    case Coding::kBrotli: return RefBr(in);
    case Coding::kZstd: return RefZstd(in);
  }
  return {};
}
std::string RefEncode(const Codings& cs, std::string s) {
  for (Coding c : cs) s = RefEncode(c, s);
  return s;
}

// Decodes `in` (original size known) with the libraries directly.
std::string RefDecode(Coding c, std::string_view in, size_t size) {
  std::string out(size + 1, '\0');
  switch (c) {
    case Coding::kGzip:
    case Coding::kDeflate: {
      z_stream zs{};
      EXPECT_EQ(inflateInit2(&zs, c == Coding::kGzip ? 31 : 15), Z_OK);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      zs.avail_in = static_cast<uInt>(in.size());
      zs.next_out = reinterpret_cast<Bytef*>(out.data());
      zs.avail_out = static_cast<uInt>(out.size());
      EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
      EXPECT_EQ(zs.avail_in, 0u);
      out.resize(zs.total_out);
      inflateEnd(&zs);
      break;
    }
    case Coding::kBrotli: {
      size_t n = out.size();
      EXPECT_EQ(BrotliDecoderDecompress(in.size(), reinterpret_cast<const uint8_t*>(in.data()), &n,
                                        reinterpret_cast<uint8_t*>(out.data())),
                BROTLI_DECODER_RESULT_SUCCESS);
      out.resize(n);
      break;
    }
    case Coding::kZstd: {
      const size_t n = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
      EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
      out.resize(ZSTD_isError(n) ? 0 : n);
      break;
    }
  }
  return out;
}

// Text with some structure (compressible, but not trivially).
std::string Text(size_t n, uint32_t seed = 7) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789 {}\":,_-osb\n";
  std::mt19937 rng(seed);
  std::string s(n, ' ');
  for (auto& c : s) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return s;
}

// ---- the decoder driver ------------------------------------------------------

struct Outcome {
  bool ok = false;
  std::string out;
  std::string error;
};

// Feeds `pieces` in order; after each, reads in pieces of at most `max`
// until kNeedInput, checking the per-call contract; then Finish.
Outcome Drive(const Codings& codings, const std::vector<std::string_view>& pieces, size_t max) {
  Outcome o;
  auto dec = ContentDecoder::Create(codings);
  if (!dec.ok()) {
    o.error = dec.error().message;
    return o;
  }
  for (auto piece : pieces) {
    (*dec)->Feed(piece);
    while (true) {
      const size_t before = o.out.size();
      const auto s = (*dec)->Read(max, &o.out);
      const size_t got = o.out.size() - before;
      EXPECT_LE(got, max) << "a Read exceeded its limit";
      if (s == DecodeStatus::kError) {
        o.error = (*dec)->error().message;
        EXPECT_FALSE(o.error.empty());
        return o;
      }
      if (s == DecodeStatus::kMore) {
        EXPECT_GE(got, 1u) << "kMore without output";
      }
      if (s == DecodeStatus::kNeedInput) break;
    }
  }
  auto fin = (*dec)->Finish();
  if (!fin.ok()) {
    o.error = fin.error().message;
    return o;
  }
  EXPECT_EQ((*dec)->bytes_out(), o.out.size());
  o.ok = true;
  return o;
}

Outcome DriveWhole(const Codings& codings, std::string_view in, size_t max = 64 * 1024) {
  return Drive(codings, {in}, max);
}

void ExpectEverySplit(const Codings& codings, const std::string& encoded, const std::string& want) {
  for (size_t cut = 0; cut <= encoded.size(); ++cut) {
    const std::string_view e(encoded);
    for (size_t max : {size_t{1}, size_t{7}, size_t{65536}}) {
      auto o = Drive(codings, {e.substr(0, cut), e.substr(cut)}, max);
      ASSERT_TRUE(o.ok) << FormatContentEncoding(codings) << " cut " << cut << " max " << max << ": " << o.error;
      ASSERT_EQ(o.out, want) << FormatContentEncoding(codings) << " cut " << cut << " max " << max;
    }
  }
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < encoded.size(); ++i) bytes.push_back(std::string_view(encoded).substr(i, 1));
  auto o = Drive(codings, bytes, 3);
  ASSERT_TRUE(o.ok) << o.error;
  ASSERT_EQ(o.out, want) << "1-byte pieces";
}

std::vector<std::string_view> RandomPieces(std::string_view s, std::mt19937* rng, size_t max_piece) {
  std::vector<std::string_view> v;
  while (!s.empty()) {
    const size_t n = std::min<size_t>(s.size(), 1 + (*rng)() % max_piece);
    v.push_back(s.substr(0, n));
    s.remove_prefix(n);
  }
  return v;
}

// ---- Content-Encoding ------------------------------------------------------

Codings Parse(std::string_view v) {
  auto r = ParseContentEncoding(v);
  EXPECT_TRUE(r.ok()) << v << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : Codings{};
}

TEST(ContentEncoding, ParsesListsInAppliedOrder) {
  EXPECT_EQ(Parse(""), Codings{});
  EXPECT_EQ(Parse("   "), Codings{});
  EXPECT_EQ(Parse("identity"), Codings{});
  EXPECT_EQ(Parse("IDENTITY, identity"), Codings{});
  EXPECT_EQ(Parse("gzip"), Codings{Coding::kGzip});
  EXPECT_EQ(Parse("GZip"), Codings{Coding::kGzip});
  EXPECT_EQ(Parse("x-gzip"), Codings{Coding::kGzip});
  EXPECT_EQ(Parse("deflate"), Codings{Coding::kDeflate});
  EXPECT_EQ(Parse("Br"), Codings{Coding::kBrotli});
  EXPECT_EQ(Parse("zstd"), Codings{Coding::kZstd});
  EXPECT_EQ(Parse(" gzip ,\tbr "), (Codings{Coding::kGzip, Coding::kBrotli}));
  EXPECT_EQ(Parse("gzip,,br,"), (Codings{Coding::kGzip, Coding::kBrotli}));
  EXPECT_EQ(Parse(", identity, zstd"), Codings{Coding::kZstd});
  EXPECT_EQ(Parse("gzip, gzip"), (Codings{Coding::kGzip, Coding::kGzip}));
  EXPECT_EQ(FormatContentEncoding({Coding::kGzip, Coding::kBrotli}), "gzip, br");
  EXPECT_EQ(FormatContentEncoding({}), "");
}

TEST(ContentEncoding, UnknownCodingIsNamed) {
  std::string bad;
  auto r = ParseContentEncoding("gzip, Compress", &bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "unsupported content-coding \"compress\"");
  EXPECT_EQ(bad, "compress");
  r = ParseContentEncoding("x-custom", &bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(bad, "x-custom");
  EXPECT_FALSE(ParseContentEncoding("pack200-gzip").ok());
}

TEST(ContentEncoding, MalformedValuesAreErrorsWithoutTheBytes) {
  for (std::string v : std::vector<std::string>{"gzip;q=1", "gz ip", "\"gzip\"", "gzip\r\nX: y", std::string("gz\0ip", 5), "gzip/1",
                        "gzip, br;level=5", std::string(33, 'a')}) {
    std::string bad = "x";
    auto r = ParseContentEncoding(v, &bad);
    ASSERT_FALSE(r.ok()) << v;
    EXPECT_EQ(r.error().message, "malformed content-coding") << v;
    EXPECT_EQ(bad, "") << v;
  }
  // A 32-byte name is still a name.
  auto r = ParseContentEncoding(std::string(32, 'a'));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unsupported"), std::string::npos);
}

TEST(ContentEncoding, TooManyStackedCodings) {
  EXPECT_TRUE(ParseContentEncoding("gzip, gzip, gzip, gzip").ok());
  auto r = ParseContentEncoding("gzip, gzip, gzip, gzip, gzip");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("stacked"), std::string::npos);
  EXPECT_TRUE(ParseContentEncoding("identity, gzip, identity, gzip, gzip, gzip, identity").ok());
}

// ---- Accept-Encoding ---------------------------------------------------------

TEST(AcceptEncoding, OffersOnlyDecodableCodingsTheClientAccepts) {
  EXPECT_EQ(UpstreamAcceptEncoding(std::nullopt), "identity");
  EXPECT_EQ(UpstreamAcceptEncoding(""), "identity");
  EXPECT_EQ(UpstreamAcceptEncoding("identity"), "identity");
  EXPECT_EQ(UpstreamAcceptEncoding("gzip, deflate"), "gzip, deflate");
  EXPECT_EQ(UpstreamAcceptEncoding("gzip, deflate, br"), "gzip, deflate, br");
  EXPECT_EQ(UpstreamAcceptEncoding("zstd, br, gzip"), "gzip, br, zstd");
  EXPECT_EQ(UpstreamAcceptEncoding("compress, gzip"), "gzip");
  EXPECT_EQ(UpstreamAcceptEncoding("compress, sdch, x-custom"), "identity");
  EXPECT_EQ(UpstreamAcceptEncoding("x-gzip"), "gzip");
  EXPECT_EQ(UpstreamAcceptEncoding("GZIP, BR"), "gzip, br");
  EXPECT_EQ(UpstreamAcceptEncoding(" ,gzip ,, "), "gzip");
}

TEST(AcceptEncoding, QValues) {
  EXPECT_EQ(UpstreamAcceptEncoding("gzip;q=0"), "identity");
  EXPECT_EQ(UpstreamAcceptEncoding("gzip;q=0.0"), "identity");
  EXPECT_EQ(UpstreamAcceptEncoding("gzip;q=0.000"), "identity");
  EXPECT_EQ(UpstreamAcceptEncoding("gzip; Q=0.001"), "gzip");
  EXPECT_EQ(UpstreamAcceptEncoding("gzip ; q=1"), "gzip");
  EXPECT_EQ(UpstreamAcceptEncoding("gzip;q=1.000"), "gzip");
  EXPECT_EQ(UpstreamAcceptEncoding("br;q=1.0, gzip;q=0.8"), "gzip, br");
  EXPECT_EQ(UpstreamAcceptEncoding("gzip, br;q=0"), "gzip");
  // Invalid weights void the element.
  for (auto v : {"gzip;q=2", "gzip;q=1.001", "gzip;q=abc", "gzip;q=", "gzip;q=0.0000", "gzip;q=-1", "gzip;q=.5"}) {
    EXPECT_EQ(UpstreamAcceptEncoding(v), "identity") << v;
  }
  // The latest explicit element wins.
  EXPECT_EQ(UpstreamAcceptEncoding("gzip, gzip;q=0"), "identity");
  EXPECT_EQ(UpstreamAcceptEncoding("gzip;q=0, x-gzip"), "gzip");
}

TEST(AcceptEncoding, StarAndIdentity) {
  EXPECT_EQ(UpstreamAcceptEncoding("*"), "gzip, deflate, br, zstd");
  EXPECT_EQ(UpstreamAcceptEncoding("*;q=0.1"), "gzip, deflate, br, zstd");
  EXPECT_EQ(UpstreamAcceptEncoding("gzip;q=0, *"), "deflate, br, zstd");
  EXPECT_EQ(UpstreamAcceptEncoding("*, br;q=0"), "gzip, deflate, zstd");
  EXPECT_EQ(UpstreamAcceptEncoding("*;q=0"), "identity");
  EXPECT_EQ(UpstreamAcceptEncoding("gzip, *;q=0"), "gzip");
  EXPECT_EQ(UpstreamAcceptEncoding("identity;q=0"), "identity");
  EXPECT_EQ(UpstreamAcceptEncoding("identity;q=0, gzip"), "gzip");
  EXPECT_EQ(UpstreamAcceptEncoding("identity;q=0, *;q=0"), "identity");
}

// ---- decoders: round trips ---------------------------------------------------

TEST(ContentDecoder, EachCodingAtEverySplit) {
  const std::string plain = "{\"key\": \"sk-live-0123456789\", \"pad\": \"" + Text(150) + "\"}";
  for (const auto& cs : kEach) {
    SCOPED_TRACE(FormatContentEncoding(cs));
    ExpectEverySplit(cs, RefEncode(cs, plain), plain);
    ExpectEverySplit(cs, RefEncode(cs, ""), "");  // an encoded empty body
  }
  // Raw deflate (no zlib wrapper) under the name "deflate".
  ExpectEverySplit({Coding::kDeflate}, RefZlib(plain, -15), plain);
  ExpectEverySplit({Coding::kDeflate}, RefZlib(plain, -15, 0), plain);  // stored blocks
  ExpectEverySplit({Coding::kDeflate}, RefZlib(plain, 15, 0), plain);
}

TEST(ContentDecoder, EachCodingRandomSplitsOfLargeBodies) {
  std::mt19937 rng(42);
  const std::string plain = Text(1 << 20) + std::string(300000, 'z') + Text(100000, 9);
  for (const auto& cs : kEach) {
    SCOPED_TRACE(FormatContentEncoding(cs));
    const std::string enc = RefEncode(cs, plain);
    for (int round = 0; round < 4; ++round) {
      const size_t max = round == 0 ? 1024 : 1 + rng() % 100000;
      auto o = Drive(cs, RandomPieces(enc, &rng, round == 1 ? 7 : 40000), max);
      ASSERT_TRUE(o.ok) << o.error;
      ASSERT_EQ(o.out, plain);
    }
  }
}

TEST(ContentDecoder, HugeReadLimitsAreCapped) {
  const std::string zeros(3 << 20, '\0');
  auto o = Drive({Coding::kGzip}, {RefGzip(zeros)}, SIZE_MAX);
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.out, zeros);
  auto dec = ContentDecoder::Create({Coding::kZstd}).value();
  dec->Feed(RefZstd(zeros));
  std::string out;
  EXPECT_EQ(dec->Read(SIZE_MAX, &out), DecodeStatus::kMore);
  EXPECT_EQ(out.size(), 1u << 20);
}

TEST(ContentDecoder, EmptyBodyIsEmpty) {
  for (const auto& cs : kEach) {
    auto o = Drive(cs, {}, 10);
    EXPECT_TRUE(o.ok) << o.error;
    o = Drive(cs, {"", ""}, 10);
    EXPECT_TRUE(o.ok) << o.error;
    EXPECT_EQ(o.out, "");
  }
}

TEST(ContentDecoder, IdentityChainStillBoundsPieces) {
  const std::string plain = Text(5000);
  auto o = Drive({}, {plain}, 100);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.out, plain);
}

TEST(ContentDecoder, ConcatenatedGzipMembersAndZstdFrames) {
  const std::string a = "first member " + Text(300), b = "second " + Text(200, 3), c = "third";
  ExpectEverySplit({Coding::kGzip}, RefGzip(a) + RefGzip(b) + RefGzip(c), a + b + c);
  ExpectEverySplit({Coding::kGzip}, RefGzip(a) + RefGzip(""), a);
  // zstd: frames, and a skippable frame (magic 0x184D2A50, 4-byte size).
  const std::string skippable = std::string("\x50\x2a\x4d\x18\x03\x00\x00\x00xyz", 11);
  ExpectEverySplit({Coding::kZstd}, RefZstd(a) + skippable + RefZstd(b) + RefZstd(c), a + b + c);
}

TEST(ContentDecoder, StackedCodings) {
  const std::string plain = "stacked " + Text(400);
  for (const Codings& cs : {Codings{Coding::kGzip, Coding::kBrotli}, Codings{Coding::kBrotli, Coding::kGzip},
                            Codings{Coding::kDeflate, Coding::kZstd}, Codings{Coding::kGzip, Coding::kGzip}}) {
    SCOPED_TRACE(FormatContentEncoding(cs));
    ExpectEverySplit(cs, RefEncode(cs, plain), plain);
  }
  // Four layers, large body, random splits.
  std::mt19937 rng(5);
  const Codings four = {Coding::kZstd, Coding::kGzip, Coding::kBrotli, Coding::kDeflate};
  const std::string big = Text(600000);
  const std::string enc = RefEncode(four, big);
  auto o = Drive(four, RandomPieces(enc, &rng, 5000), 3000);
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.out, big);
  // The wrong order fails rather than passing bytes through.
  EXPECT_FALSE(DriveWhole({Coding::kBrotli, Coding::kGzip}, RefEncode({Coding::kGzip, Coding::kBrotli}, big)).ok);
}

TEST(ContentDecoder, MetadataBesideTheDataIsDropped) {
  // gzip header fields (name, comment, extra) may carry anything.
  z_stream zs{};
  ASSERT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
  gz_header h{};
  char name[] = "sk-live-VALUE-in-name";
  char comment[] = "sk-live-VALUE-in-comment";
  unsigned char extra[] = "sk-live-VALUE-in-extra";
  h.name = reinterpret_cast<Bytef*>(name);
  h.comment = reinterpret_cast<Bytef*>(comment);
  h.extra = extra;
  h.extra_len = sizeof(extra);
  ASSERT_EQ(deflateSetHeader(&zs, &h), Z_OK);
  std::string enc(512, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>("data"));
  zs.avail_in = 4;
  zs.next_out = reinterpret_cast<Bytef*>(enc.data());
  zs.avail_out = static_cast<uInt>(enc.size());
  ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  enc.resize(zs.total_out);
  deflateEnd(&zs);
  ASSERT_NE(enc.find("VALUE-in-name"), std::string::npos);
  ExpectEverySplit({Coding::kGzip}, enc, "data");
  // zstd skippable frames.
  const std::string skippable = std::string("\x50\x2a\x4d\x18\x0d\x00\x00\x00sk-live-VALUE", 21);
  ExpectEverySplit({Coding::kZstd}, skippable + RefZstd("data"), "data");
}

// ---- decoders: bad input -----------------------------------------------------

TEST(ContentDecoder, GarbageIsAnErrorNamingTheCoding) {
  const std::string junk = "this is not compressed at all SECRETVALUE";
  for (const auto& cs : kEach) {
    auto o = DriveWhole(cs, junk);
    ASSERT_FALSE(o.ok) << FormatContentEncoding(cs);
    EXPECT_EQ(o.error.rfind(std::string(CodingName(cs[0])) + ":", 0), 0u) << o.error;
    EXPECT_EQ(o.error.find("SECRET"), std::string::npos) << o.error;
  }
}

TEST(ContentDecoder, EveryTruncationIsAnError) {
  const std::string plain = "truncate me " + Text(200);
  for (const auto& cs : kEach) {
    const std::string enc = RefEncode(cs, plain);
    for (size_t n = 1; n < enc.size(); ++n) {
      auto o = DriveWhole(cs, std::string_view(enc).substr(0, n), 5);
      ASSERT_FALSE(o.ok) << FormatContentEncoding(cs) << " prefix " << n;
    }
  }
  // A truncated second gzip member, and a lone byte of deflate.
  auto o = DriveWhole({Coding::kGzip}, RefGzip("a") + "\x1f\x8b");
  ASSERT_FALSE(o.ok);
  EXPECT_NE(o.error.find("truncated"), std::string::npos) << o.error;
  o = DriveWhole({Coding::kDeflate}, "\x78");
  ASSERT_FALSE(o.ok);
  EXPECT_EQ(o.error, "deflate: truncated stream");
  // Truncation of an inner layer.
  const std::string inner = RefGzip(plain);
  o = DriveWhole({Coding::kGzip, Coding::kBrotli}, RefBr(inner.substr(0, inner.size() - 3)));
  ASSERT_FALSE(o.ok);
  EXPECT_EQ(o.error, "gzip: truncated stream");
}

TEST(ContentDecoder, TrailingGarbageIsAnError) {
  const std::string plain = "payload";
  for (const auto& cs : kEach) {
    for (std::string tail : std::vector<std::string>{"x", "SECRETVALUE", std::string(1, '\0')}) {
      const std::string enc = RefEncode(cs, plain) + tail;
      auto o = DriveWhole(cs, enc);
      ASSERT_FALSE(o.ok) << FormatContentEncoding(cs) << " tail " << tail;
      EXPECT_EQ(o.error.find("SECRET"), std::string::npos);
      // Also when the garbage arrives in a later piece.
      auto o2 = Drive(cs, {std::string_view(enc).substr(0, enc.size() - tail.size()),
                           std::string_view(enc).substr(enc.size() - tail.size())}, 100);
      ASSERT_FALSE(o2.ok) << FormatContentEncoding(cs);
    }
  }
  auto o = DriveWhole({Coding::kGzip}, RefGzip(plain) + "garbage!!");
  EXPECT_EQ(o.error, "gzip: trailing data after the stream");
  o = DriveWhole({Coding::kBrotli}, RefBr(plain) + "x");
  EXPECT_EQ(o.error, "br: trailing data after the stream");
}

TEST(ContentDecoder, CorruptionIsDetectedByChecksums) {
  const std::string plain = Text(5000);
  for (Coding c : {Coding::kGzip, Coding::kDeflate}) {
    std::string enc = RefEncode(c, plain);
    enc[enc.size() - 2] ^= 0x40;  // the checksum trailer
    EXPECT_FALSE(DriveWhole({c}, enc).ok) << CodingName(c);
  }
  // Flip every byte of a small stream in turn: never a crash, never a
  // different output reported as success for gzip (CRC-32 + length).
  const std::string enc = RefGzip("hello hello hello");
  for (size_t i = 0; i < enc.size(); ++i) {
    std::string e = enc;
    e[i] ^= 0x01;
    auto o = DriveWhole({Coding::kGzip}, e);
    if (o.ok) {
      EXPECT_EQ(o.out, "hello hello hello") << "byte " << i;  // only mtime/xfl/os may be harmless
    }
  }
}

TEST(ContentDecoder, DeflatePresetDictionaryIsRefused) {
  z_stream zs{};
  ASSERT_EQ(deflateInit(&zs, 6), Z_OK);
  ASSERT_EQ(deflateSetDictionary(&zs, reinterpret_cast<const Bytef*>("dictionary"), 10), Z_OK);
  std::string out(256, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>("dictionary text"));
  zs.avail_in = 15;
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = 256;
  ASSERT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  auto o = DriveWhole({Coding::kDeflate}, out);
  ASSERT_FALSE(o.ok);
  EXPECT_EQ(o.error, "deflate: a preset dictionary is not supported");
}

TEST(ContentDecoder, WindowsAboveTheLimitAreRefused) {
  // zstd with a 16 MiB window (streamed, so the frame declares the window).
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 24);
  const std::string plain = Text(200000);
  std::string enc(ZSTD_compressBound(plain.size()) + 1024, '\0');
  ZSTD_outBuffer ob{enc.data(), enc.size(), 0};
  ZSTD_inBuffer ib{plain.data(), plain.size(), 0};
  ZSTD_compressStream2(cctx, &ob, &ib, ZSTD_e_continue);
  while (ZSTD_compressStream2(cctx, &ob, &ib, ZSTD_e_end) != 0) {
  }
  enc.resize(ob.pos);
  ZSTD_freeCCtx(cctx);
  auto o = DriveWhole({Coding::kZstd}, enc);
  ASSERT_FALSE(o.ok);
  EXPECT_EQ(o.error, "zstd: the frame's window is larger than allowed");
  DecoderOptions wide;
  wide.max_window_log = 24;
  auto dec = DecodeAll({Coding::kZstd}, enc, 1 << 20, wide);
  ASSERT_TRUE(dec.ok()) << dec.error().message;
  EXPECT_EQ(*dec, plain);

  // br: a 16 MiB window over a body large enough to need it.
  const std::string big = Text(13 << 20, 11);
  const std::string br24 = RefBr(big, 24, 1);
  o = DriveWhole({Coding::kBrotli}, br24, 1 << 20);
  ASSERT_FALSE(o.ok);
  EXPECT_NE(o.error.find("window too large"), std::string::npos) << o.error;
  // The same body with an 8 MiB window decodes.
  const std::string br23 = RefBr(big, 23, 1);
  o = DriveWhole({Coding::kBrotli}, br23, 1 << 20);
  ASSERT_TRUE(o.ok) << o.error;
  EXPECT_EQ(o.out.size(), big.size());
}

// ---- decompression bombs ---------------------------------------------------

TEST(ContentDecoder, BombsComeOutInBoundedPiecesWithBoundedHeap) {
  const std::string zeros(10 << 20, '\0');
  for (const auto& cs : {Codings{Coding::kGzip}, Codings{Coding::kDeflate}, Codings{Coding::kBrotli},
                         Codings{Coding::kZstd}, Codings{Coding::kGzip, Coding::kGzip}}) {
    SCOPED_TRACE(FormatContentEncoding(cs));
    const std::string bomb = RefEncode(cs, zeros);
    EXPECT_LT(bomb.size(), 20u * 1024) << "a bomb: ~10 KB in, 10 MB out";
    auto dec = ContentDecoder::Create(cs);
    ASSERT_TRUE(dec.ok());
    std::string piece;
    piece.reserve(64 * 1024);
    (*dec)->Feed(bomb);
    const int64_t base = g_live.load();
    g_peak = base;
    uint64_t total = 0;
    size_t reads = 0;
    while (true) {
      piece.clear();
      const auto s = (*dec)->Read(64 * 1024, &piece);
      ASSERT_NE(s, DecodeStatus::kError) << (*dec)->error().message;
      ASSERT_LE(piece.size(), 64u * 1024);
      ASSERT_EQ(piece.find_first_not_of('\0'), std::string::npos);
      total += piece.size();
      ++reads;
      if (s == DecodeStatus::kNeedInput) break;
    }
    ASSERT_TRUE((*dec)->Finish().ok());
    EXPECT_EQ(total, zeros.size());
    EXPECT_GE(reads, zeros.size() / (64 * 1024));
    // Our own buffers: at most a couple of inner pieces beyond the fed input.
    EXPECT_LT(g_peak.load() - base, 256 * 1024) << "heap grew while draining";
  }
  // One-shot decoding stops at its limit.
  auto r = DecodeAll({Coding::kGzip}, RefGzip(zeros), 1 << 20);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
  r = DecodeAll({Coding::kGzip}, RefGzip(zeros), zeros.size());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), zeros.size());
}

// ---- encoders ------------------------------------------------------------------

TEST(ContentEncoder, OutputDecodesWithTheLibrariesAndTheDecoder) {
  const std::string plain = Text(300000) + std::string(50000, 'a');
  for (const auto& cs : kEach) {
    SCOPED_TRACE(FormatContentEncoding(cs));
    auto enc = EncodeAll(cs, plain);
    ASSERT_TRUE(enc.ok());
    EXPECT_LT(enc->size(), plain.size());
    EXPECT_EQ(RefDecode(cs[0], *enc, plain.size()), plain);
    auto dec = DecodeAll(cs, *enc, plain.size());
    ASSERT_TRUE(dec.ok()) << dec.error().message;
    EXPECT_EQ(*dec, plain);
    auto empty = EncodeAll(cs, "");
    ASSERT_TRUE(empty.ok());
    EXPECT_FALSE(empty->empty());
    EXPECT_EQ(RefDecode(cs[0], *empty, 0), "");
  }
}

TEST(ContentEncoder, FlushMakesEverythingWrittenDecodable) {
  std::mt19937 rng(3);
  const std::string plain = Text(200000);
  for (const Codings& cs : {kEach[0], kEach[1], kEach[2], kEach[3], Codings{Coding::kGzip, Coding::kBrotli},
                            Codings{}}) {
    SCOPED_TRACE(FormatContentEncoding(cs));
    auto enc = ContentEncoder::Create(cs);
    auto dec = ContentDecoder::Create(cs);
    ASSERT_TRUE(enc.ok() && dec.ok());
    std::string decoded;
    size_t written = 0;
    for (auto piece : RandomPieces(plain, &rng, 30000)) {
      std::string wire;
      ASSERT_TRUE((*enc)->Write(piece, &wire).ok());
      ASSERT_TRUE((*enc)->Flush(&wire).ok());
      written += piece.size();
      (*dec)->Feed(wire);
      while (true) {
        const auto s = (*dec)->Read(8192, &decoded);
        ASSERT_NE(s, DecodeStatus::kError) << (*dec)->error().message;
        if (s == DecodeStatus::kNeedInput) break;
      }
      ASSERT_EQ(decoded.size(), written) << "a flushed piece did not come out whole";
    }
    std::string tail;
    ASSERT_TRUE((*enc)->Finish(&tail).ok());
    EXPECT_FALSE((*enc)->Write("late", &tail).ok());
    (*dec)->Feed(tail);
    while ((*dec)->Read(8192, &decoded) == DecodeStatus::kMore) {
    }
    ASSERT_TRUE((*dec)->Finish().ok()) << (*dec)->error().message;
    EXPECT_EQ(decoded, plain);
  }
}

TEST(ContentEncoder, StackedRoundTrip) {
  const std::string plain = Text(100000);
  const Codings cs = {Coding::kGzip, Coding::kBrotli, Coding::kZstd};
  auto enc = EncodeAll(cs, plain);
  ASSERT_TRUE(enc.ok());
  // Undo with the libraries, outermost first.
  const std::string z = RefDecode(Coding::kZstd, *enc, 1 << 20);
  const std::string b = RefDecode(Coding::kBrotli, z, 1 << 20);
  EXPECT_EQ(RefDecode(Coding::kGzip, b, plain.size()), plain);
  ExpectEverySplit(cs, EncodeAll(cs, "tiny body").value(), "tiny body");
  EXPECT_FALSE(ContentEncoder::Create(Codings(5, Coding::kGzip)).ok());
  EXPECT_FALSE(ContentDecoder::Create(Codings(5, Coding::kGzip)).ok());
}

// ---- the point of it all -------------------------------------------------------

TEST(ContentDecoder, DecodingLetsTheScrubberSeeACompressedValue) {
  const std::string value = "sk-live-REALVALUE-0123456789abcdef";
  const std::string token = "osb_sealed_0123456789abcdef0123456789abcdef";
  auto set = std::make_shared<PatternSet>(std::vector<PatternSet::Pattern>{{value, token}});
  const std::string body = "{\"echo\": \"" + value + "\", \"again\": \"" + value + "\"}" + Text(70000);
  for (const auto& cs : kEach) {
    const std::string wire = RefEncode(cs, body);
    // Scrubbing the compressed bytes finds nothing: the leak this closes.
    StreamReplacer raw(set);
    EXPECT_EQ(raw.ReplaceAll(wire), wire);
    // Decode in small pieces, scrub as a stream: every value becomes its token.
    auto dec = ContentDecoder::Create(cs);
    ASSERT_TRUE(dec.ok());
    StreamReplacer scrub(set);
    std::string delivered, piece;
    std::mt19937 rng(1);
    for (auto in : RandomPieces(wire, &rng, 17)) {
      (*dec)->Feed(in);
      while (true) {
        piece.clear();
        const auto s = (*dec)->Read(13, &piece);
        ASSERT_NE(s, DecodeStatus::kError);
        scrub.Feed(piece, &delivered);
        if (s == DecodeStatus::kNeedInput) break;
      }
    }
    ASSERT_TRUE((*dec)->Finish().ok());
    scrub.Finish(&delivered);
    EXPECT_EQ(delivered.find(value), std::string::npos) << CodingName(cs[0]);
    EXPECT_NE(delivered.find(token), std::string::npos);
  }
}

}  // namespace
}  // namespace osb::secretsproxy
