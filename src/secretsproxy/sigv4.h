// AWS Signature Version 4 (AWS4-HMAC-SHA256): the pure primitives the
// secrets proxy needs to verify a request the sandbox signed with its sealed
// token as the secret key and to sign it again with the real key
// (sigv4_stage.h). No I/O, no clock; every function is deterministic, so
// each is checked against botocore's signer and the AWS documentation
// examples (tests/secretsproxy/sigv4_test.cpp) and fuzzed
// (fuzz/secretsproxy_sigv4_fuzz.cpp).
//
// What is implemented, exactly as AWS specifies it
// (docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html):
//   - the Authorization header form
//       AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request,
//       SignedHeaders=h1;h2, Signature=<64 hex>
//     and the presigned query form (X-Amz-Algorithm, X-Amz-Credential,
//     X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature,
//     X-Amz-Security-Token);
//   - the canonical URI: for service "s3" the path exactly as sent (S3 does
//     not normalise nor double-encode); for every other service the path
//     with dot segments and empty segments removed, then URI-encoded again
//     (so "%20" becomes "%2520"), as botocore and the AWS SDKs do;
//   - the canonical query string: every name and value percent-decoded and
//     re-encoded (unreserved A-Z a-z 0-9 - _ . ~ kept, everything else %XX
//     upper case), sorted by name then value; X-Amz-Signature left out;
//   - canonical headers: the signed names in the order listed, each value
//     trimmed with inner runs of white space collapsed to one space,
//     repeated fields joined with ",";
//   - the string to sign, the signing key chain
//       kDate = HMAC("AWS4" + secret, date), kRegion, kService, kSigning
//     and the signature (HMAC-SHA256, lower-case hex);
//   - aws-chunked streaming (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): each
//     chunk's signature chains from the previous one, starting at the seed
//     (the request's) signature; ChunkResigner verifies the sandbox's chain
//     and emits the real one, one chunk in memory at a time.
// Errors are fixed texts naming the field; they never contain a key, a
// signature or a token.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "secretsproxy/http_message.h"

namespace osb::secretsproxy::sigv4 {

inline constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
inline constexpr std::string_view kStreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// AWS rejects a request whose date is further than this from its clock.
inline constexpr int kMaxSkewSeconds = 15 * 60;
// The longest a presigned URL may be valid (7 days).
inline constexpr int64_t kMaxPresignExpires = 7 * 24 * 3600;

struct Credential {
  std::string access_key_id;
  std::string date;  // YYYYMMDD
  std::string region;
  std::string service;
  // date/region/service/aws4_request
  std::string Scope() const;
};

// A parsed SigV4 authorization, from the header or from the query string.
struct Authorization {
  enum class Form { kHeader, kQuery };
  Form form = Form::kHeader;
  Credential credential;
  std::string signed_headers;               // "host;x-amz-date" as given
  std::vector<std::string> signed_list;     // split, lower case
  std::string signature;                    // 64 lower-case hex
  // Query form only (header form: the x-amz-date / x-amz-security-token fields).
  std::string amz_date;                     // YYYYMMDD'T'HHMMSS'Z'
  int64_t expires = 0;
  std::optional<std::string> security_token;  // percent-decoded
};

// "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." (the
// three parts in any order, each once). kInvalidArgument names the part.
Result<Authorization> ParseAuthorizationHeader(std::string_view value);

// True when the query string (without '?') carries X-Amz-Algorithm or
// X-Amz-Signature: a presigned request, whether or not it parses.
bool LooksPresigned(std::string_view query);
// The presigned form; kInvalidArgument names the X-Amz-* parameter.
Result<Authorization> ParsePresignedQuery(std::string_view query);

// YYYYMMDD'T'HHMMSS'Z' -> seconds since the epoch (UTC); nullopt if malformed.
std::optional<int64_t> ParseAmzDate(std::string_view amz_date);

// Percent-encodes everything but A-Z a-z 0-9 - _ . ~ (and '/' unless
// encode_slash), upper-case hex: common/percent_encoding.h PercentEncode.
std::string UriEncode(std::string_view s, bool encode_slash);
// Decodes %XX (either case); a '%' not followed by two hex digits stays as
// it is. '+' is not a space (SigV4 does not use form decoding).
std::string UriDecode(std::string_view s);

std::string CanonicalUri(std::string_view raw_path, bool s3);
// raw_query without the leading '?'. With drop_signature, X-Amz-Signature
// is left out (the presigned form).
std::string CanonicalQuery(std::string_view raw_query, bool drop_signature);
// The canonical headers block (each "name:value\n") for the signed names;
// kInvalidArgument naming the first signed header the request lacks.
Result<std::string> CanonicalHeaders(const std::vector<HeaderField>& fields,
                                     const std::vector<std::string>& signed_list);

struct CanonicalInputs {
  std::string_view method;
  std::string_view target;  // origin-form "/path?query" as sent
  const std::vector<HeaderField>* fields = nullptr;
  const Authorization* auth = nullptr;
  std::string_view payload_hash;
};
// The canonical request; kInvalidArgument when a signed header is missing.
Result<std::string> CanonicalRequest(const CanonicalInputs& in);

std::string StringToSign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request);

using Key = std::array<uint8_t, 32>;
// The signing key chain from a secret access key (wipes its intermediates).
Key DeriveSigningKey(std::string_view secret_access_key, const Credential& c);
// HMAC-SHA256(key, data) as lower-case hex.
std::string SignHex(const Key& key, std::string_view data);
std::string Sha256Hex(std::string_view data);

// The string to sign of one aws-chunked chunk.
std::string ChunkStringToSign(std::string_view amz_date, std::string_view scope, std::string_view previous_signature,
                              std::string_view chunk_sha256_hex);

// Constant-time comparison of two signatures (equal length hex).
bool SignaturesEqual(std::string_view a, std::string_view b);

// Rewrites the value of the first query parameter named `name` (exact,
// case-sensitive) in an origin-form target; returns false if absent.
bool ReplaceQueryParam(std::string* target, std::string_view name, std::string_view encoded_value);
// The raw (still encoded) value of query parameter `name`, if present.
std::optional<std::string_view> QueryParam(std::string_view query, std::string_view name);

// aws-chunked re-signing, streaming: feed the request body as it arrives;
// each complete chunk "<hex size>;chunk-signature=<sig>\r\n<data>\r\n" is
// verified against the sandbox's chain (key derived from the token) and
// written out with the real chain's signature in the same place, so the
// body's length is unchanged (Content-Length and x-amz-decoded-content-length
// stay valid). Memory: one chunk (<= max_chunk bytes) plus a header line.
// A chunk that fails to verify, a malformed chunk or bytes after the final
// chunk make Feed return false with a fixed reason; nothing of that chunk
// is emitted. Trailers (…-PAYLOAD-TRAILER) are not supported.
class ChunkResigner {
 public:
  ChunkResigner(const Key& sandbox_key, const Key& real_key, std::string amz_date, std::string scope,
                std::string sandbox_seed, std::string real_seed, size_t max_chunk = kDefaultMaxChunk);
  ~ChunkResigner();
  static constexpr size_t kDefaultMaxChunk = 8u << 20;
  // Appends the re-signed bytes ready so far to *out.
  bool Feed(std::string_view bytes, std::string* out);
  // True once the final (zero-size) chunk and its CRLF were seen.
  bool done() const { return state_ == State::kDone; }
  const std::string& reason() const { return reason_; }
  uint64_t chunks() const { return chunks_; }

 private:
  enum class State { kHeader, kData, kDataCrlf, kDone, kFailed };
  bool Fail(std::string reason);
  bool CompleteChunk(std::string* out);
  Key sandbox_key_;
  Key real_key_;
  std::string amz_date_;
  std::string scope_;
  std::string sandbox_prev_;
  std::string real_prev_;
  size_t max_chunk_;
  State state_ = State::kHeader;
  std::string line_;       // header line being read
  std::string size_text_;  // the chunk's size as sent
  std::string claimed_;    // the chunk's signature as sent
  uint64_t want_ = 0;
  std::string data_;
  std::string crlf_;
  std::string reason_;
  uint64_t chunks_ = 0;
};

}  // namespace osb::secretsproxy::sigv4
