// Streaming routes of the HTTP server (Router::AddStreaming, ByteChannel):
// bodies far above the 1 MiB body limit go through in bounded pieces both
// ways; a producer that fails midway cuts the response (never a
// complete-looking short body); a consumer that refuses early gets its
// error to the client. Plus the metadata rules of POST /api/sandboxes.
#include <gtest/gtest.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <limits>
#include <thread>

#include "api/body_reads.h"
#include "api/byte_channel.h"
#include "api/http_server.h"
#include "api/json_body.h"
#include "api/routes.h"
#include "api_harness.h"
#include "controlplane/sandbox_metadata.h"

namespace osb::api {
namespace {

constexpr size_t kBig = 20u << 20;  // far above the default 1 MiB body limit

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return s;
}

class StreamingServer : public ::testing::Test {
 protected:
  void SetUp() override {
    router_ = std::make_shared<Router>();
    router_->SetAuthenticator([](const Request&) -> Result<Caller> { return Caller{"org", KeyScope::kAdmin}; });
    router_->AddStreaming("PUT", "/up", [this](Request& req) {
      auto in = req.body_stream;
      Response r;
      r.deferred = [this, in](Deliver deliver) {
        threads_.emplace_back([this, in, deliver] {
          size_t total = 0, biggest = 0;
          std::string all;
          while (auto chunk = in->Pop()) {
            total += chunk->size();
            biggest = std::max(biggest, chunk->size());
            all += *chunk;
          }
          max_chunk_ = biggest;
          received_ok_ = all == Pattern(kBig);
          deliver(JsonResponse(200, {{"size", total}, {"aborted", in->aborted()}}));
        });
      };
      return r;
    });
    router_->AddStreaming("PUT", "/refuse", [this](Request& req) {
      auto in = req.body_stream;
      Response r;
      r.deferred = [this, in](Deliver deliver) {
        threads_.emplace_back([in, deliver] {
          (void)in->Pop();  // one piece, then give up (disk full)
          in->Abort();
          deliver(ErrorResponse(413, "no space left"));
        });
      };
      return r;
    });
    for (const bool fail : {false, true}) {
      router_->AddStreaming("GET", fail ? "/down-fail" : "/down", [this, fail](Request&) {
        Response r;
        r.deferred = [this, fail](Deliver deliver) {
          threads_.emplace_back([fail, deliver] {
            auto out = std::make_shared<ByteChannel>(4);
            Response ok;
            ok.content_type = "application/octet-stream";
            ok.body_stream = out;
            ok.stream_length = static_cast<int64_t>(kBig);
            deliver(std::move(ok));
            const std::string all = Pattern(kBig);
            for (size_t off = 0; off < all.size(); off += 256 * 1024) {
              if (fail && off >= 1u << 20) {
                out->Abort();
                return;
              }
              if (!out->Push(all.substr(off, 256 * 1024))) return;
            }
            out->Finish();
          });
        };
        return r;
      });
    }
    router_->Add("GET", "/plain", [](Request&) { return JsonResponse(200, {{"ok", true}}); });
    HttpServerOptions options;
    options.port = 0;
    server_ = std::make_unique<HttpServer>(options, router_);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    server_->Stop();
    server_->Wait();
    for (auto& t : threads_) t.join();
  }

  std::shared_ptr<Router> router_;
  std::unique_ptr<HttpServer> server_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> max_chunk_{0};
  std::atomic<bool> received_ok_{false};
};

TEST_F(StreamingServer, UploadFarAboveTheBodyLimitArrivesInBoundedPieces) {
  testing::HttpClient c(server_->port());
  auto r = c.Do("PUT", "/up", Pattern(kBig));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["size"], kBig);
  EXPECT_FALSE(r.Json()["aborted"].get<bool>());
  EXPECT_TRUE(received_ok_);
  EXPECT_LE(max_chunk_, kStreamPieceBytes);
  EXPECT_GT(max_chunk_, 0u);
  // A plain route still enforces the 1 MiB limit.
  EXPECT_EQ(testing::HttpClient(server_->port()).Do("POST", "/plain", std::string(2u << 20, 'x')).status, 413);
}

// A Content-Length body is read straight into the pieces; a chunked one
// goes through the parser. Both arrive whole, and the connection serves
// the next request after a body read to its end.
TEST_F(StreamingServer, ChunkedAndContentLengthBodiesArriveWholeOnOneConnection) {
  std::string chunked = "PUT /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const char* piece : {"hello ", "chunked ", "world"}) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", std::strlen(piece));
    chunked += std::string(size) + piece + "\r\n";
  }
  chunked += "0\r\n\r\n";
  const std::string sized = "PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello sized";
  const std::string last = "GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string raw = testing::HttpClient(server_->port()).Raw(chunked + sized + last);
  EXPECT_NE(raw.find("\"size\":19"), std::string::npos) << raw;  // "hello chunked world"
  EXPECT_NE(raw.find("\"size\":11"), std::string::npos) << raw;
  EXPECT_NE(raw.find("\"ok\":true"), std::string::npos) << raw;
}

TEST_F(StreamingServer, DownloadIsStreamedWithContentLength) {
  testing::HttpClient c(server_->port());
  auto r = c.Do("GET", "/down");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-length"], std::to_string(kBig));
  EXPECT_TRUE(r.body == Pattern(kBig));
}

TEST_F(StreamingServer, ProducerFailureCutsTheResponseShort) {
  testing::HttpClient c(server_->port());
  const std::string raw = c.Raw("GET /down-fail HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto head_end = raw.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  EXPECT_NE(raw.find("Content-Length: " + std::to_string(kBig)), std::string::npos);
  // The connection was closed before the promised length arrived.
  EXPECT_LT(raw.size() - head_end - 4, kBig);
}

TEST_F(StreamingServer, EarlyRefusalReachesTheClient) {
  testing::HttpClient c(server_->port());
  auto r = c.Do("PUT", "/refuse", Pattern(4u << 20));
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(r.body.find("no space"), std::string::npos);
  // The server still serves.
  EXPECT_EQ(testing::HttpClient(server_->port()).Do("GET", "/plain").status, 200);
}

TEST(ByteChannelTest, BoundedAndEndsCleanlyOrAborted) {
  ByteChannel ch(2);
  std::string a = "a", b = "b", c = "c";
  EXPECT_EQ(ch.TryPush(a), ByteChannel::Poll::kReady);
  EXPECT_EQ(ch.TryPush(b), ByteChannel::Poll::kReady);
  EXPECT_EQ(ch.TryPush(c), ByteChannel::Poll::kWait);  // full: never more than 2 queued
  std::atomic<int> notified{0};
  ch.SetNotifier([&] { ++notified; });
  EXPECT_EQ(*ch.Pop(), "a");
  EXPECT_GT(notified.load(), 0);
  ch.Finish();
  std::string out;
  EXPECT_EQ(ch.TryPop(&out), ByteChannel::Poll::kReady);
  EXPECT_EQ(out, "b");
  EXPECT_EQ(ch.TryPop(&out), ByteChannel::Poll::kClosed);
  EXPECT_FALSE(ch.aborted());

  ByteChannel dead(1);
  EXPECT_TRUE(dead.Push("x"));
  std::thread blocked([&] { EXPECT_FALSE(dead.Push("y")); });  // waits for room
  dead.Abort();
  blocked.join();
  EXPECT_FALSE(dead.Pop().has_value());
  EXPECT_TRUE(dead.aborted());
}

// The upload stall of issue 15: Beast sizes each body read by the room
// left in the connection's buffer (beast::read_size, as http::async_read
// uses it), and a buffer that just held a header has ~512 bytes of room, so
// a 1 GiB body arrived in two million 512-byte reads. ReserveBodyReads,
// called by the server before every body read, gives full-size reads.
TEST(BodyReadsTest, ABufferThatHeldAHeaderGetsRoomForFullSizeReads) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  const std::string head = "PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 20971520\r\n\r\n";
  beast::flat_buffer buffer;
  // What http::async_read_header does: prepare(read_size), receive, parse.
  auto room = buffer.prepare(beast::read_size(buffer, 65536));
  ASSERT_GE(room.size(), head.size());
  std::memcpy(room.data(), head.data(), head.size());
  buffer.commit(head.size());
  http::request_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  beast::error_code ec;
  buffer.consume(parser.put(buffer.data(), ec));
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(parser.is_header_done());
  ASSERT_FALSE(parser.is_done());
  EXPECT_EQ(beast::read_size(buffer, 65536), 512u);  // the stall: 512 bytes per read

  ReserveBodyReads(buffer, parser.content_length());
  EXPECT_EQ(beast::read_size(buffer, 65536), kBodyReadBytes);
  // A short body gets room for itself, not 64 KiB.
  beast::flat_buffer small;
  ReserveBodyReads(small, std::uint64_t{100});
  EXPECT_LT(small.capacity(), kBodyReadBytes);
}

TEST(RouterStreamingTest, OnlyStreamingRoutesAreStreamed) {
  Router r;
  r.AddStreaming("PUT", "/api/sandboxes/{id}/files", [](Request&) { return Response{}; });
  r.Add("GET", "/api/sandboxes/{id}/files/list", [](Request&) { return Response{}; });
  EXPECT_TRUE(r.IsStreaming("PUT", "/api/sandboxes/sb-1/files"));
  EXPECT_FALSE(r.IsStreaming("GET", "/api/sandboxes/sb-1/files"));
  EXPECT_FALSE(r.IsStreaming("GET", "/api/sandboxes/sb-1/files/list"));
  EXPECT_FALSE(r.IsStreaming("PUT", "http://x/api/sandboxes/sb-1/files"));
}

TEST(SandboxMetadataTest, LimitsNameTheField) {
  using controlplane::ValidateSandboxMetadata;
  EXPECT_TRUE(ValidateSandboxMetadata({{"team", "ml"}, {"a.b_c-9", std::string(512, 'v')}}));
  auto bad_key = ValidateSandboxMetadata({{"bad key", "v"}});
  ASSERT_FALSE(bad_key);
  EXPECT_NE(bad_key.error().message.find("metadata"), std::string::npos);
  EXPECT_FALSE(ValidateSandboxMetadata({{"", "v"}}));
  EXPECT_FALSE(ValidateSandboxMetadata({{std::string(65, 'k'), "v"}}));
  auto long_value = ValidateSandboxMetadata({{"k", std::string(513, 'v')}});
  ASSERT_FALSE(long_value);
  EXPECT_NE(long_value.error().message.find("metadata.k"), std::string::npos);
  EXPECT_FALSE(ValidateSandboxMetadata({{"k", "\xff\xfe"}}));
  std::map<std::string, std::string> many;
  for (int i = 0; i < 65; ++i) many["k" + std::to_string(i)] = "v";
  EXPECT_FALSE(ValidateSandboxMetadata(many));
  std::map<std::string, std::string> big;
  for (int i = 0; i < 40; ++i) big["k" + std::to_string(i)] = std::string(500, 'v');
  EXPECT_FALSE(ValidateSandboxMetadata(big));  // 40 * ~500 B > 16 KiB

  auto parsed = ParseSandboxRequest(R"({"metadata": {"team": "ml"}})");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->metadata.at("team"), "ml");
  auto wrong_type = ParseSandboxRequest(R"({"metadata": {"team": 1}})");
  ASSERT_FALSE(wrong_type);
  EXPECT_NE(wrong_type.error().message.find("metadata"), std::string::npos);
  EXPECT_FALSE(ParseSandboxRequest(R"({"metadata": {"a b": "x"}})"));
}

}  // namespace
}  // namespace osb::api
