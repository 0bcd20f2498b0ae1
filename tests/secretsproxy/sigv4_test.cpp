// SigV4: the primitives (sigv4.h) against botocore's signer and the AWS
// documentation examples, the proxy stage (sigv4_stage.h) that turns a
// token-signed request into the real-key-signed one, and the attacks the
// stage must stop (replay for another method/path/query/header, stale
// dates, foreign signatures, tampered aws-chunked chunks).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/hex.h"
#include "secretsproxy/sigv4.h"
#include "secretsproxy/sigv4_stage.h"

namespace osb::secretsproxy {
namespace {

using nlohmann::json;

const json& Vectors() {
  static const json j = [] {
    std::ifstream f(OSB_SIGV4_VECTORS);
    std::stringstream ss;
    ss << f.rdbuf();
    return json::parse(ss.str());
  }();
  return j;
}

std::string BodyOf(const json& w) {
  const auto bytes = HexDecode(w["body_hex"].get<std::string>());
  return std::string(bytes->begin(), bytes->end());
}

RequestHead HeadOf(const json& w) {
  RequestHead h;
  h.method = w["method"];
  h.target = w["target"];
  for (const auto& kv : w["headers"]) h.fields.push_back({kv[0], kv[1]});
  return h;
}

struct Keys {
  std::string akid = Vectors()["akid"];
  std::string real = Vectors()["real"];
  std::string token = Vectors()["token"];
  std::string session_real = Vectors()["session_real"];
  std::string session_token = Vectors()["session_token"];
  SigV4Secret Secret(bool enabled = true) const {
    return SigV4Secret{"AWS", akid, token, real, session_token, session_real, enabled};
  }
};

const Keys& K() {
  static const Keys k;
  return k;
}

int64_t Now() { return Vectors()["now"]; }

StageResult Resign(RequestHead* h, const std::string& body, SigV4Result* out, int64_t now = Now(),
                std::vector<SigV4Secret> secrets = {K().Secret()}) {
  StageResult st = ResignSigV4(h, secrets, now, nullptr, out);
  if (st.ok() && out->needs_body) st = ResignSigV4(h, secrets, now, &body, out);
  return st;
}

std::string Field(const RequestHead& h, std::string_view name) {
  for (const auto& f : h.fields) {
    if (EqualsIgnoreCase(f.name, name)) return f.value;
  }
  return "";
}

// ------------------------------------------------------- botocore vectors

TEST(SigV4Botocore, StageTurnsTheSandboxRequestIntoTheRealOne) {
  for (const auto& v : Vectors()["vectors"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    RequestHead h = HeadOf(v["sandbox"]);
    const RequestHead want = HeadOf(v["real"]);
    SigV4Result r;
    const StageResult st = Resign(&h, BodyOf(v["sandbox"]), &r);
    ASSERT_TRUE(st.ok()) << st.reason;
    EXPECT_TRUE(r.signed_request);
    EXPECT_EQ(r.secret_name, "AWS");
    EXPECT_EQ(h.method, want.method);
    EXPECT_EQ(h.target, want.target);
    ASSERT_EQ(h.fields.size(), want.fields.size());
    for (size_t i = 0; i < h.fields.size(); ++i) {
      EXPECT_EQ(h.fields[i].name, want.fields[i].name);
      EXPECT_EQ(h.fields[i].value, want.fields[i].value) << want.fields[i].name;
    }
    // Nothing of the real secret key is in what goes upstream.
    EXPECT_EQ(h.target.find(K().real), std::string::npos);
    for (const auto& f : h.fields) EXPECT_EQ(f.value.find(K().real), std::string::npos);
    const std::string sandbox_body = BodyOf(v["sandbox"]);
    const std::string real_body = BodyOf(v["real"]);
    if (r.chunks) {
      // Streaming: the body re-signed chunk by chunk, split at every offset.
      for (size_t cut = 0; cut <= sandbox_body.size(); cut += 7) {
        RequestHead again = HeadOf(v["sandbox"]);
        SigV4Result r2;
        ASSERT_TRUE(Resign(&again, "", &r2).ok());
        std::string out;
        ASSERT_TRUE(r2.chunks->Feed(std::string_view(sandbox_body).substr(0, cut), &out)) << r2.chunks->reason();
        ASSERT_TRUE(r2.chunks->Feed(std::string_view(sandbox_body).substr(cut), &out)) << r2.chunks->reason();
        EXPECT_TRUE(r2.chunks->done());
        EXPECT_EQ(out, real_body) << "cut at " << cut;
        if (out != real_body) break;
        EXPECT_EQ(r2.chunks->chunks(), 4u);
      }
    } else {
      EXPECT_EQ(sandbox_body, real_body);
    }
  }
}

TEST(SigV4Botocore, PrimitivesReproduceBotocoreSignatures) {
  for (const auto& v : Vectors()["vectors"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    for (const char* who : {"sandbox", "real"}) {
      const RequestHead h = HeadOf(v[who]);
      const std::string secret = std::string(who) == "real" ? K().real : K().token;
      const size_t q = h.target.find('?');
      sigv4::Authorization a;
      std::string date;
      if (q != std::string::npos && sigv4::LooksPresigned(std::string_view(h.target).substr(q + 1))) {
        auto p = sigv4::ParsePresignedQuery(std::string_view(h.target).substr(q + 1));
        ASSERT_TRUE(p.ok()) << p.error().message;
        a = *p;
        date = a.amz_date;
      } else {
        auto p = sigv4::ParseAuthorizationHeader(Field(h, "authorization"));
        ASSERT_TRUE(p.ok()) << p.error().message;
        a = *p;
        date = Field(h, "x-amz-date");
      }
      std::string payload = Field(h, "x-amz-content-sha256");
      if (payload.empty()) {
        payload = a.form == sigv4::Authorization::Form::kQuery && a.credential.service == "s3"
                      ? std::string(sigv4::kUnsignedPayload)
                      : sigv4::Sha256Hex(BodyOf(v[who]));
      }
      auto cr = sigv4::CanonicalRequest({h.method, h.target, &h.fields, &a, payload});
      ASSERT_TRUE(cr.ok()) << cr.error().message;
      const auto key = sigv4::DeriveSigningKey(secret, a.credential);
      EXPECT_EQ(sigv4::SignHex(key, sigv4::StringToSign(date, a.credential.Scope(), *cr)), a.signature);
    }
  }
}

// ------------------------------------------------- AWS documentation vectors

const std::string kDocSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

// docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "GET Object".
TEST(SigV4AwsDocs, GetObjectHeaderAuth) {
  RequestHead h;
  h.method = "GET";
  h.target = "/test.txt";
  h.fields = {{"Host", "examplebucket.s3.amazonaws.com"},
              {"Range", "bytes=0-9"},
              {"x-amz-content-sha256", std::string(sigv4::kEmptySha256)},
              {"x-amz-date", "20130524T000000Z"}};
  auto a = sigv4::ParseAuthorizationHeader(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto cr = sigv4::CanonicalRequest({h.method, h.target, &h.fields, &*a, sigv4::kEmptySha256});
  ASSERT_TRUE(cr.ok());
  EXPECT_EQ(*cr,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const auto key = sigv4::DeriveSigningKey(kDocSecret, a->credential);
  EXPECT_EQ(sigv4::SignHex(key, sigv4::StringToSign("20130524T000000Z", a->credential.Scope(), *cr)), a->signature);
}

// docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
TEST(SigV4AwsDocs, PresignedGetObject) {
  const std::string query =
      "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F"
      "aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
      "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
  auto a = sigv4::ParsePresignedQuery(query);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->expires, 86400);
  std::vector<HeaderField> fields = {{"Host", "examplebucket.s3.amazonaws.com"}};
  auto cr = sigv4::CanonicalRequest({"GET", "/test.txt?" + query, &fields, &*a, sigv4::kUnsignedPayload});
  ASSERT_TRUE(cr.ok());
  const auto key = sigv4::DeriveSigningKey(kDocSecret, a->credential);
  EXPECT_EQ(sigv4::SignHex(key, sigv4::StringToSign(a->amz_date, a->credential.Scope(), *cr)), a->signature);
}

// docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html: 64 KiB + 1 KiB of 'a'.
TEST(SigV4AwsDocs, StreamingChunkSignatures) {
  RequestHead h;
  h.method = "PUT";
  h.target = "/examplebucket/chunkObject.txt";
  h.fields = {{"Host", "s3.amazonaws.com"},
              {"x-amz-date", "20130524T000000Z"},
              {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
              {"x-amz-content-sha256", std::string(sigv4::kStreamingPayload)},
              {"Content-Encoding", "aws-chunked"},
              {"x-amz-decoded-content-length", "66560"},
              {"Content-Length", "66824"}};
  auto a = sigv4::ParseAuthorizationHeader(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
      "SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
      "x-amz-decoded-content-length;x-amz-storage-class,"
      "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto cr = sigv4::CanonicalRequest({h.method, h.target, &h.fields, &*a, sigv4::kStreamingPayload});
  ASSERT_TRUE(cr.ok());
  const auto key = sigv4::DeriveSigningKey(kDocSecret, a->credential);
  ASSERT_EQ(sigv4::SignHex(key, sigv4::StringToSign("20130524T000000Z", a->credential.Scope(), *cr)), a->signature);
  // The chain, with the docs' key on both sides: the output must be the
  // input (the re-signer verifies and re-emits the very same signatures).
  const std::string c1(65536, 'a'), c2(1024, 'a');
  const std::string body = "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n" +
                           c1 + "\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n" +
                           c2 + "\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n";
  EXPECT_EQ(body.size(), 66824u);
  sigv4::ChunkResigner rs(key, key, "20130524T000000Z", a->credential.Scope(), a->signature, a->signature);
  std::string out;
  ASSERT_TRUE(rs.Feed(body, &out)) << rs.reason();
  EXPECT_TRUE(rs.done());
  EXPECT_EQ(out, body);
}

// ------------------------------------------------------------- the attacks

const json& Vector(std::string_view name) {
  for (const auto& v : Vectors()["vectors"]) {
    if (v["name"] == name) return v;
  }
  throw std::runtime_error("no vector");
}

TEST(SigV4Attack, ReplayForAnotherMethodIsRefused) {
  RequestHead h = HeadOf(Vector("s3_get_unsigned")["sandbox"]);
  h.method = "PUT";
  SigV4Result r;
  const auto st = Resign(&h, "", &r);
  EXPECT_EQ(st.status, 403);
  EXPECT_NE(st.reason.find("does not verify"), std::string::npos);
  EXPECT_FALSE(r.signed_request);
}

TEST(SigV4Attack, ReplayForAnotherPathIsRefused) {
  for (const char* name : {"s3_get_unsigned", "s3_presign_get", "sqs_path_normalised"}) {
    SCOPED_TRACE(name);
    RequestHead h = HeadOf(Vector(name)["sandbox"]);
    const size_t q = h.target.find('?');
    h.target.insert(q == std::string::npos ? h.target.size() : q, "b");
    SigV4Result r;
    EXPECT_EQ(Resign(&h, "", &r).status, 403);
    // The head is unchanged on a refusal: still the token signature, never a real one.
    EXPECT_EQ(h.target.find(K().real), std::string::npos);
  }
}

TEST(SigV4Attack, AlteredQueryHeaderOrBodyIsRefused) {
  {
    RequestHead h = HeadOf(Vector("s3_list_query")["sandbox"]);
    h.target += "&x=1";
    SigV4Result r;
    EXPECT_EQ(Resign(&h, "", &r).status, 403);
  }
  {
    RequestHead h = HeadOf(Vector("s3_put_hashed")["sandbox"]);
    for (auto& f : h.fields) {
      if (f.name == "X-Amz-Meta-Note") f.value = "other";
    }
    SigV4Result r;
    EXPECT_EQ(Resign(&h, "", &r).status, 403);
  }
  {
    // STS signs SHA-256(body): another body does not verify.
    RequestHead h = HeadOf(Vector("sts_post_form")["sandbox"]);
    SigV4Result r;
    EXPECT_EQ(Resign(&h, "Action=CreateUser&Version=2011-06-15", &r).status, 403);
  }
}

TEST(SigV4Attack, SignedWithAnotherKeyIsRefused) {
  // The real-signed request (as if captured from the upstream side) is not
  // accepted from the sandbox: only the sandbox's own token verifies.
  RequestHead h = HeadOf(Vector("s3_get_unsigned")["real"]);
  SigV4Result r;
  EXPECT_EQ(Resign(&h, "", &r).status, 403);
}

TEST(SigV4Attack, StaleOrFutureDateIsRefused) {
  for (int64_t skew : {-16 * 60, 16 * 60, 3 * 86400}) {
    RequestHead h = HeadOf(Vector("s3_get_unsigned")["sandbox"]);
    SigV4Result r;
    const auto st = Resign(&h, "", &r, Now() + skew);
    EXPECT_EQ(st.status, 403) << skew;
    EXPECT_NE(st.reason.find("15 minutes"), std::string::npos);
  }
  RequestHead h = HeadOf(Vector("s3_get_unsigned")["sandbox"]);
  SigV4Result r;
  EXPECT_TRUE(Resign(&h, "", &r, Now() + 14 * 60).ok());
  // A presigned URL: valid until date + X-Amz-Expires (3600 s here).
  RequestHead p = HeadOf(Vector("s3_presign_get")["sandbox"]);
  EXPECT_TRUE(Resign(&p, "", &r, Now() + 3000).ok());
  p = HeadOf(Vector("s3_presign_get")["sandbox"]);
  EXPECT_EQ(Resign(&p, "", &r, Now() + 3601).status, 403);
}

TEST(SigV4Attack, TokenSignatureUnderAnotherAccessKeyIdNeverLeaves) {
  auto secret = K().Secret();
  secret.access_key_id = "AKIAOTHERKEY00000000";
  RequestHead h = HeadOf(Vector("s3_get_unsigned")["sandbox"]);
  SigV4Result r;
  EXPECT_EQ(Resign(&h, "", &r, Now(), {secret}).status, 403);
  // Signed with something else entirely: not ours, forwarded unchanged.
  RequestHead other = HeadOf(Vector("s3_get_unsigned")["real"]);
  const RequestHead before = other;
  EXPECT_TRUE(Resign(&other, "", &r, Now(), {secret}).ok());
  EXPECT_FALSE(r.signed_request);
  EXPECT_EQ(Field(other, "authorization"), Field(before, "authorization"));
}

TEST(SigV4Attack, SecretNotAllowedTowardTheHostIsRefused) {
  RequestHead h = HeadOf(Vector("s3_get_unsigned")["sandbox"]);
  SigV4Result r;
  EXPECT_EQ(Resign(&h, "", &r, Now(), {K().Secret(false)}).status, 403);
}

TEST(SigV4Attack, RegionOrServiceOtherThanTheSecretsIsRefused) {
  auto secret = K().Secret();
  secret.region = "eu-west-1";
  RequestHead h = HeadOf(Vector("s3_get_unsigned")["sandbox"]);
  SigV4Result r;
  auto st = Resign(&h, "", &r, Now(), {secret});
  EXPECT_EQ(st.status, 403);
  EXPECT_NE(st.reason.find("region"), std::string::npos);
  secret.region = "us-east-1";
  secret.service = "sts";
  EXPECT_EQ(Resign(&h, "", &r, Now(), {secret}).status, 403);
  secret.service = "s3";
  EXPECT_TRUE(Resign(&h, "", &r, Now(), {secret}).ok());
  EXPECT_TRUE(r.signed_request);
}

TEST(SigV4Attack, TamperedChunkIsNotForwarded) {
  const auto& v = Vector("s3_streaming_chunked");
  std::string body = BodyOf(v["sandbox"]);
  body[body.find("\r\n") + 10] ^= 1;  // a data byte of chunk 1
  RequestHead h = HeadOf(v["sandbox"]);
  SigV4Result r;
  ASSERT_TRUE(Resign(&h, "", &r).ok());
  std::string out;
  EXPECT_FALSE(r.chunks->Feed(body, &out));
  EXPECT_TRUE(out.empty());
  EXPECT_NE(r.chunks->reason().find("does not verify"), std::string::npos);
}

TEST(SigV4Attack, ChunkFramingErrors) {
  const auto& v = Vector("s3_streaming_chunked");
  const std::string body = BodyOf(v["sandbox"]);
  const std::vector<std::string> bad = {
      body + "x",                                              // after the final chunk
      "zz;chunk-signature=" + std::string(64, 'a') + "\r\n",  // size not hex
      "10;chunk-signature=abc\r\n",                            // short signature
      "10\r\n",                                                // no signature
      std::string(200, '1'),                                   // header line too long
  };
  for (const auto& b : bad) {
    RequestHead h = HeadOf(v["sandbox"]);
    SigV4Result r;
    ASSERT_TRUE(Resign(&h, "", &r).ok());
    std::string out;
    EXPECT_FALSE(r.chunks->Feed(b, &out));
    EXPECT_FALSE(r.chunks->reason().empty());
  }
  // A chunk larger than the cap.
  sigv4::Key k{};
  sigv4::ChunkResigner small(k, k, "20261130T120000Z", "s", "a", "b", 16);
  std::string out;
  EXPECT_FALSE(small.Feed("11;chunk-signature=" + std::string(64, 'a') + "\r\n", &out));
}

// ------------------------------------------------------------ bad input

TEST(SigV4Parse, AuthorizationErrorsNameThePart) {
  struct Case {
    const char* value;
    const char* needle;
  } cases[] = {
      {"AWS4-HMAC-SHA256", "not AWS4"},
      {"AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" "0000000000000000000000000000000000000000000000000000000000000000", "Credential"},
      {"AWS4-HMAC-SHA256 Credential=A/20260101/r/s/aws4_request, Signature=00", "Signature"},
      {"AWS4-HMAC-SHA256 Credential=A/2026/r/s/aws4_request, SignedHeaders=host, Signature=00", "date"},
      {"AWS4-HMAC-SHA256 Credential=A/20260101/r/s/aws4_request, SignedHeaders=host;;x, Signature=00", "SignedHeaders"},
      {"AWS4-HMAC-SHA256 Credential=A/20260101/r/s, SignedHeaders=host, Signature=00", "Credential"},
      {"AWS4-HMAC-SHA256 Foo=bar", "unknown"},
  };
  for (const auto& c : cases) {
    auto a = sigv4::ParseAuthorizationHeader(c.value);
    ASSERT_FALSE(a.ok()) << c.value;
    EXPECT_NE(a.error().message.find(c.needle), std::string::npos) << a.error().message;
  }
}

TEST(SigV4Parse, StageAnswers400NamingTheField) {
  RequestHead h = HeadOf(Vector("s3_get_unsigned")["sandbox"]);
  RemoveFields(&h.fields, "x-amz-date");
  SigV4Result r;
  auto st = Resign(&h, "", &r);
  EXPECT_EQ(st.status, 400);
  EXPECT_NE(st.reason.find("x-amz-date"), std::string::npos);
  h = HeadOf(Vector("s3_presign_get")["sandbox"]);
  h.target += "&X-Amz-Signature=" + std::string(64, '0');
  st = Resign(&h, "", &r);
  EXPECT_EQ(st.status, 400);
  EXPECT_NE(st.reason.find("X-Amz-Signature"), std::string::npos);
  h = HeadOf(Vector("s3_get_unsigned")["sandbox"]);
  for (auto& f : h.fields) {
    if (f.name == "X-Amz-Content-SHA256") f.value = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
  }
  st = Resign(&h, "", &r);
  EXPECT_EQ(st.status, 400);
  EXPECT_NE(st.reason.find("x-amz-content-sha256"), std::string::npos);
}

TEST(SigV4Parse, CanonicalPieces) {
  EXPECT_EQ(sigv4::CanonicalUri("/a/./b/../c//d%20e/", false), "/a/c/d%2520e/");
  EXPECT_EQ(sigv4::CanonicalUri("/a/./b/../c//d%20e/", true), "/a/./b/../c//d%20e/");
  EXPECT_EQ(sigv4::CanonicalUri("", false), "/");
  EXPECT_EQ(sigv4::CanonicalQuery("b=2&a=x y&a=1&c&d=%2f", false), "a=1&a=x%20y&b=2&c=&d=%2F");
  EXPECT_EQ(sigv4::CanonicalQuery("X-Amz-Signature=ab&A=1", true), "A=1");
  EXPECT_EQ(sigv4::UriDecode("%4a%zz%"), "J%zz%");
  EXPECT_FALSE(sigv4::ParseAmzDate("20261330T000000Z"));
  EXPECT_EQ(*sigv4::ParseAmzDate("19700101T000100Z"), 60);
}

}  // namespace
}  // namespace osb::secretsproxy
