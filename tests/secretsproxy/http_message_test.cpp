// The request-smuggling rules of the strict parser, one case each, plus
// parsing at every split offset of a valid head.
#include "secretsproxy/http_message.h"

#include <gtest/gtest.h>

#include "secretsproxy/chunked.h"

namespace osb::secretsproxy {
namespace {

struct Parsed {
  ParseStatus status;
  std::string framing_error;
  BodyFraming framing;
  RequestHead head;
};

Parsed Parse(const std::string& text, HeadLimits limits = {}) {
  Parsed p;
  auto r = ParseRequestHead(text, limits, &p.head);
  p.status = r.status;
  if (r.status == ParseStatus::kComplete) {
    if (auto e = AnalyzeRequestFraming(p.head, &p.framing)) p.framing_error = *e;
  }
  return p;
}

TEST(HttpMessage, ValidRequestAtEverySplit) {
  const std::string req =
      "POST /v1/x?q=1 HTTP/1.1\r\nHost: api.test\r\nContent-Length: 5\r\nX-A:  padded \t\r\n\r\nhello";
  for (size_t cut = 0; cut < req.size(); ++cut) {
    RequestHead head;
    auto r = ParseRequestHead(std::string_view(req).substr(0, cut), {}, &head);
    const size_t head_len = req.find("\r\n\r\n") + 4;
    if (cut < head_len) {
      EXPECT_EQ(r.status, ParseStatus::kNeedMore) << cut;
    } else {
      ASSERT_EQ(r.status, ParseStatus::kComplete) << cut;
      EXPECT_EQ(r.consumed, head_len);
      EXPECT_EQ(head.method, "POST");
      EXPECT_EQ(head.target, "/v1/x?q=1");
      ASSERT_EQ(head.fields.size(), 3u);
      EXPECT_EQ(head.fields[2].value, "padded");
    }
  }
}

// A connection reuses one head object for request after request (and after
// partial parses): each complete parse must describe exactly its own head.
TEST(HttpMessage, ReusedHeadHoldsOnlyTheLatestMessage) {
  RequestHead head;
  const std::string big = "GET /a HTTP/1.1\r\nHost: a.test\r\nX-1: one\r\nX-2: two\r\nX-3: three\r\n\r\n";
  ASSERT_EQ(ParseRequestHead(big, {}, &head).status, ParseStatus::kComplete);
  ASSERT_EQ(head.fields.size(), 4u);
  const std::string small = "POST /b HTTP/1.0\r\nHost: b.test\r\n\r\n";
  ASSERT_EQ(ParseRequestHead(small.substr(0, 20), {}, &head).status, ParseStatus::kNeedMore);
  ASSERT_EQ(ParseRequestHead(small, {}, &head).status, ParseStatus::kComplete);
  EXPECT_EQ(head.method, "POST");
  EXPECT_EQ(head.target, "/b");
  EXPECT_EQ(head.version_minor, 0);
  ASSERT_EQ(head.fields.size(), 1u);
  EXPECT_EQ(head.fields[0].name, "Host");
  EXPECT_EQ(head.fields[0].value, "b.test");
  EXPECT_EQ(SerializeRequestHead(head), small);
  ASSERT_EQ(ParseRequestHead(big, {}, &head).status, ParseStatus::kComplete);
  EXPECT_EQ(SerializeRequestHead(head, 100), big);

  ResponseHead resp;
  const std::string r1 = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
  const std::string r2 = "HTTP/1.1 404 \r\nC: 3\r\n\r\n";
  ASSERT_EQ(ParseResponseHead(r1, {}, &resp).status, ParseStatus::kComplete);
  ASSERT_EQ(ParseResponseHead(r2, {}, &resp).status, ParseStatus::kComplete);
  EXPECT_EQ(resp.status, 404);
  EXPECT_EQ(resp.reason, "");
  ASSERT_EQ(resp.fields.size(), 1u);
  EXPECT_EQ(SerializeResponseHead(resp), r2);
}

TEST(HttpMessage, SmugglingAmbiguitiesAreRejected) {
  const std::string start = "POST / HTTP/1.1\r\nHost: a\r\n";
  // Framing errors (400 after parsing).
  for (const char* fields : {
           "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
           "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
           "Content-Length: 5\r\nContent-Length: 5\r\n",
           "Content-Length: 5\r\nContent-Length: 6\r\n",
           "Content-Length: 5, 5\r\n",
           "Content-Length: +5\r\n",
           "Content-Length: -1\r\n",
           "Content-Length: 0x10\r\n",
           "Content-Length: 99999999999999999999\r\n",
           "Content-Length: \r\n",
           "Transfer-Encoding: gzip\r\n",
           "Transfer-Encoding: gzip, chunked\r\n",
           "Transfer-Encoding: chunked, chunked\r\n",
           "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
           "Transfer-Encoding: xchunked\r\n",
       }) {
    Parsed p = Parse(start + fields + "\r\n");
    ASSERT_EQ(p.status, ParseStatus::kComplete) << fields;
    EXPECT_FALSE(p.framing_error.empty()) << fields;
  }
  // Syntax errors (400 while parsing).
  for (const std::string& bad : {
           start + "X-Folded: a\r\n  continued\r\n\r\n",   // obs-fold
           start + "X-Tab: a\r\n\tcontinued\r\n\r\n",
           std::string("POST / HTTP/1.1\nHost: a\r\n\r\n"),  // bare LF
           start + "X-A: b\n\r\n",
           start + "X-A: b\r\n\n",
           start + "X-A: b\rc\r\n\r\n",                      // bare CR
           start + "X-A : b\r\n\r\n",                         // space before colon
           start + ": novalue\r\n\r\n",
           start + "X(A): b\r\n\r\n",
           start + std::string("X-A: a\0b\r\n\r\n", 13),      // NUL
           std::string("POST /a b HTTP/1.1\r\nHost: a\r\n\r\n"),
           std::string("POST / HTTP/1.2\r\nHost: a\r\n\r\n"),
           std::string("POST / HTTP/2.0\r\nHost: a\r\n\r\n"),
           std::string("POST  / HTTP/1.1\r\nHost: a\r\n\r\n"),
       }) {
    EXPECT_EQ(Parse(bad).status, ParseStatus::kBad) << bad;
  }
  // HTTP/1.0 with Transfer-Encoding is ambiguous too.
  Parsed p10 = Parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_FALSE(p10.framing_error.empty());
}

TEST(HttpMessage, SizeLimitsGive431) {
  HeadLimits limits;
  limits.max_line = 100;
  limits.max_head = 300;
  EXPECT_EQ(Parse("GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n", limits).status, ParseStatus::kTooLarge);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 20; ++i) many += "X-H" + std::to_string(i) + ": 0123456789\r\n";
  EXPECT_EQ(Parse(many + "\r\n", limits).status, ParseStatus::kTooLarge);
  // Unterminated oversized line is refused before it ends.
  EXPECT_EQ(Parse("GET /" + std::string(200, 'a'), limits).status, ParseStatus::kTooLarge);
}

TEST(HttpMessage, ValidFraming) {
  Parsed cl = Parse("POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 42\r\n\r\n");
  EXPECT_TRUE(cl.framing_error.empty());
  EXPECT_EQ(cl.framing.kind, BodyFraming::kContentLength);
  EXPECT_EQ(cl.framing.length, 42u);
  Parsed ch = Parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
  EXPECT_EQ(ch.framing.kind, BodyFraming::kChunked);
  Parsed none = Parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(none.framing.kind, BodyFraming::kNone);
}

TEST(HttpMessage, ResponseFraming) {
  ResponseHead r;
  ASSERT_EQ(ParseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", {}, &r).status,
            ParseStatus::kComplete);
  BodyFraming f;
  EXPECT_FALSE(AnalyzeResponseFraming(r, "GET", &f));
  EXPECT_EQ(f.kind, BodyFraming::kContentLength);
  EXPECT_FALSE(AnalyzeResponseFraming(r, "HEAD", &f));
  EXPECT_EQ(f.kind, BodyFraming::kNone);
  ASSERT_EQ(ParseResponseHead("HTTP/1.1 200 OK\r\n\r\n", {}, &r).status, ParseStatus::kComplete);
  EXPECT_FALSE(AnalyzeResponseFraming(r, "GET", &f));
  EXPECT_EQ(f.kind, BodyFraming::kUntilClose);
  ASSERT_EQ(ParseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", {}, &r)
                .status,
            ParseStatus::kComplete);
  EXPECT_TRUE(AnalyzeResponseFraming(r, "GET", &f));
  EXPECT_EQ(ParseResponseHead("HTTP/1.1 2000 OK\r\n\r\n", {}, &r).status, ParseStatus::kBad);
  EXPECT_EQ(ParseResponseHead("HTTP/1.1 20 OK\r\n\r\n", {}, &r).status, ParseStatus::kBad);
}

ChunkedDecoder::Status DecodeAll(const std::string& wire, std::string* out) {
  ChunkedDecoder d;
  size_t consumed = 0;
  return d.Decode(wire, &consumed, out);
}

TEST(Chunked, InvalidChunkSizesAreRejected) {
  for (const std::string& bad : {
           std::string("x\r\nabc\r\n0\r\n\r\n"), std::string("-5\r\nabcde\r\n0\r\n\r\n"),
           std::string("0x5\r\nabcde\r\n0\r\n\r\n"), std::string(" 5\r\nabcde\r\n0\r\n\r\n"),
           std::string("5 \r\nabcde\r\n0\r\n\r\n"), std::string("\r\nabcde\r\n0\r\n\r\n"),
           std::string("10000000000000000\r\n"),               // 17 hex digits overflow
           std::string("5\nabcde\r\n0\r\n\r\n"),               // bare LF
           std::string("5\r\nabcdeX\r\n0\r\n\r\n"),            // data longer than size
           std::string("5\r\nabcde\r\n0\r\nTrailer\r\n\r\n"),  // malformed trailer
           std::string("5\r\nabcde\r\n0\r\n\n"),
       }) {
    std::string out;
    EXPECT_EQ(DecodeAll(bad, &out), ChunkedDecoder::Status::kBad) << bad;
  }
}

TEST(Chunked, ValidBodyAtEverySplit) {
  const std::string wire = "5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: dropped\r\n\r\nNEXT";
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    ChunkedDecoder d;
    std::string out;
    size_t consumed = 0;
    auto st = d.Decode(std::string_view(wire).substr(0, cut), &consumed, &out);
    ASSERT_NE(st, ChunkedDecoder::Status::kBad) << cut;
    size_t total = consumed;
    if (st != ChunkedDecoder::Status::kDone) {
      ASSERT_EQ(consumed, cut);
      st = d.Decode(std::string_view(wire).substr(cut), &consumed, &out);
      total += consumed;
    }
    ASSERT_EQ(st, ChunkedDecoder::Status::kDone) << cut;
    EXPECT_EQ(out, "hello0123456789");
    EXPECT_EQ(wire.substr(total), "NEXT") << cut;
  }
}

}  // namespace
}  // namespace osb::secretsproxy
