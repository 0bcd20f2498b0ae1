#include "secretsproxy/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <ctime>
#include <utility>

#include "common/hex.h"
#include "common/percent_encoding.h"
#include "common/secure_memory.h"

namespace osb::secretsproxy::sigv4 {
namespace {

Error Bad(std::string msg) { return MakeError(ErrorCode::kInvalidArgument, std::move(msg)); }


bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// botocore: ' '.join(value.split())
void AppendTrimAll(std::string_view v, std::string* out) {
  bool pending_space = false;
  bool any = false;
  for (char c : v) {
    if (IsSpace(c)) {
      pending_space = any;
      continue;
    }
    if (pending_space) out->push_back(' ');
    pending_space = false;
    out->push_back(c);
    any = true;
  }
}

Key Hmac(std::string_view key, std::string_view data) {
  Key out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out.data(), &len);
  return out;
}

std::string_view AsView(const Key& k) { return {reinterpret_cast<const char*>(k.data()), k.size()}; }

Result<Credential> ParseCredential(std::string_view v, std::string_view field) {
  // AKID/DATE/REGION/SERVICE/aws4_request
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = v.find('/', start);
    parts.push_back(v.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() != 5 || parts[4] != "aws4_request") {
    return Bad(std::string(field) + " must be ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request");
  }
  if (parts[0].empty() || parts[0].size() > 128) return Bad(std::string(field) + ": bad access key id");
  if (parts[1].size() != 8 || !IsDigits(parts[1])) return Bad(std::string(field) + ": bad date (YYYYMMDD)");
  if (parts[2].empty() || parts[3].empty()) return Bad(std::string(field) + ": empty region or service");
  return Credential{std::string(parts[0]), std::string(parts[1]), std::string(parts[2]), std::string(parts[3])};
}

Status ParseSignedHeaders(std::string_view v, std::string_view field, Authorization* a) {
  if (v.empty()) return Bad(std::string(field) + " is empty");
  a->signed_headers = std::string(v);
  a->signed_list.clear();
  size_t start = 0;
  while (start <= v.size()) {
    const size_t semi = v.find(';', start);
    std::string_view name = v.substr(start, semi == std::string_view::npos ? std::string_view::npos : semi - start);
    if (name.empty()) return Bad(std::string(field) + " has an empty name");
    std::string lower;
    for (char c : name) {
      if (c <= ' ' || c == ':' || c == 0x7f) return Bad(std::string(field) + " has an invalid name");
      lower.push_back(static_cast<char>((c >= 'A' && c <= 'Z') ? c + 32 : c));
    }
    a->signed_list.push_back(std::move(lower));
    if (semi == std::string_view::npos) break;
    start = semi + 1;
  }
  return {};
}

}  // namespace

std::string Credential::Scope() const { return date + "/" + region + "/" + service + "/aws4_request"; }

Result<Authorization> ParseAuthorizationHeader(std::string_view value) {
  value = Trim(value);
  if (value.substr(0, kAlgorithm.size()) != kAlgorithm ||
      value.size() == kAlgorithm.size() || (value[kAlgorithm.size()] != ' ' && value[kAlgorithm.size()] != '\t')) {
    return Bad("Authorization is not AWS4-HMAC-SHA256");
  }
  std::string_view rest = value.substr(kAlgorithm.size());
  Authorization a;
  a.form = Authorization::Form::kHeader;
  bool have_cred = false, have_sh = false, have_sig = false;
  while (true) {
    rest = Trim(rest);
    if (rest.empty()) break;
    const size_t comma = rest.find(',');
    std::string_view part = Trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos) return Bad("Authorization: a part without '='");
    const std::string_view k = part.substr(0, eq);
    const std::string_view v = part.substr(eq + 1);
    if (k == "Credential") {
      if (have_cred) return Bad("Authorization: Credential given twice");
      auto c = ParseCredential(v, "Authorization Credential");
      if (!c) return c.error();
      a.credential = std::move(*c);
      have_cred = true;
    } else if (k == "SignedHeaders") {
      if (have_sh) return Bad("Authorization: SignedHeaders given twice");
      if (auto st = ParseSignedHeaders(v, "Authorization SignedHeaders", &a); !st) return st.error();
      have_sh = true;
    } else if (k == "Signature") {
      if (have_sig) return Bad("Authorization: Signature given twice");
      if (v.size() != 64 || !IsLowerHex(v)) return Bad("Authorization Signature must be 64 lower-case hex digits");
      a.signature = std::string(v);
      have_sig = true;
    } else {
      return Bad("Authorization: unknown part (expected Credential, SignedHeaders, Signature)");
    }
  }
  if (!have_cred) return Bad("Authorization: Credential is missing");
  if (!have_sh) return Bad("Authorization: SignedHeaders is missing");
  if (!have_sig) return Bad("Authorization: Signature is missing");
  return a;
}

std::optional<std::string_view> QueryParam(std::string_view query, std::string_view name) {
  size_t start = 0;
  while (start <= query.size()) {
    const size_t amp = query.find('&', start);
    std::string_view pair = query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return std::nullopt;
}

bool LooksPresigned(std::string_view query) {
  return QueryParam(query, "X-Amz-Algorithm").has_value() || QueryParam(query, "X-Amz-Signature").has_value() ||
         QueryParam(query, "X-Amz-Credential").has_value();
}

Result<Authorization> ParsePresignedQuery(std::string_view query) {
  Authorization a;
  a.form = Authorization::Form::kQuery;
  // Each X-Amz-* parameter exactly once.
  for (std::string_view name : {"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                                "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}) {
    int count = 0;
    size_t start = 0;
    while (start <= query.size()) {
      const size_t amp = query.find('&', start);
      std::string_view pair =
          query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
      if (UriDecode(pair.substr(0, pair.find('='))) == name) ++count;
      if (amp == std::string_view::npos) break;
      start = amp + 1;
    }
    if (count > 1) return Bad(std::string(name) + " is given more than once");
    if (count == 1 && !QueryParam(query, name)) return Bad(std::string(name) + " must not be percent-encoded in its name");
  }
  const auto alg = QueryParam(query, "X-Amz-Algorithm");
  if (!alg || UriDecode(*alg) != kAlgorithm) return Bad("X-Amz-Algorithm must be AWS4-HMAC-SHA256");
  const auto cred = QueryParam(query, "X-Amz-Credential");
  if (!cred) return Bad("X-Amz-Credential is missing");
  auto c = ParseCredential(UriDecode(*cred), "X-Amz-Credential");
  if (!c) return c.error();
  a.credential = std::move(*c);
  const auto date = QueryParam(query, "X-Amz-Date");
  if (!date) return Bad("X-Amz-Date is missing");
  a.amz_date = UriDecode(*date);
  if (!ParseAmzDate(a.amz_date)) return Bad("X-Amz-Date must be YYYYMMDDTHHMMSSZ");
  const auto exp = QueryParam(query, "X-Amz-Expires");
  if (!exp) return Bad("X-Amz-Expires is missing");
  if (!IsDigits(*exp) || exp->size() > 7) return Bad("X-Amz-Expires must be a number of seconds");
  a.expires = std::stoll(std::string(*exp));
  if (a.expires < 1 || a.expires > kMaxPresignExpires) return Bad("X-Amz-Expires must be 1..604800");
  const auto sh = QueryParam(query, "X-Amz-SignedHeaders");
  if (!sh) return Bad("X-Amz-SignedHeaders is missing");
  if (auto st = ParseSignedHeaders(UriDecode(*sh), "X-Amz-SignedHeaders", &a); !st) return st.error();
  const auto sig = QueryParam(query, "X-Amz-Signature");
  if (!sig) return Bad("X-Amz-Signature is missing");
  if (sig->size() != 64 || !IsLowerHex(*sig)) return Bad("X-Amz-Signature must be 64 lower-case hex digits");
  a.signature = std::string(*sig);
  if (const auto tok = QueryParam(query, "X-Amz-Security-Token")) a.security_token = UriDecode(*tok);
  return a;
}

std::optional<int64_t> ParseAmzDate(std::string_view d) {
  if (d.size() != 16 || d[8] != 'T' || d[15] != 'Z') return std::nullopt;
  if (!IsDigits(d.substr(0, 8)) || !IsDigits(d.substr(9, 6))) return std::nullopt;
  auto num = [&](size_t pos, size_t len) {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) v = v * 10 + (d[i] - '0');
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(4, 2) - 1;
  tm.tm_mday = num(6, 2);
  tm.tm_hour = num(9, 2);
  tm.tm_min = num(11, 2);
  tm.tm_sec = num(13, 2);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return std::nullopt;
  }
  return static_cast<int64_t>(timegm(&tm));
}

std::string UriEncode(std::string_view s, bool encode_slash) { return PercentEncode(s, !encode_slash); }

std::string UriDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexDigitValue(s[i + 1]) >= 0 && HexDigitValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexDigitValue(s[i + 1]) * 16 + HexDigitValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string CanonicalUri(std::string_view path, bool s3) {
  if (path.empty()) return "/";
  if (s3) return std::string(path);
  // botocore's remove_dot_segments (RFC 3986 5.2.4, and empty segments
  // dropped), then quote(safe='/~').
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    std::string_view seg = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!seg.empty() && seg != ".") {
      if (seg == "..") {
        if (!out.empty()) out.pop_back();
      } else {
        out.push_back(seg);
      }
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  std::string norm = path.front() == '/' ? "/" : "";
  for (size_t i = 0; i < out.size(); ++i) {
    if (i) norm += '/';
    norm += out[i];
  }
  if (path.back() == '/' && !out.empty()) norm += '/';
  return UriEncode(norm, false);
}

std::string CanonicalQuery(std::string_view query, bool drop_signature) {
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    const size_t amp = query.find('&', start);
    std::string_view pair = query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      std::string k = UriEncode(UriDecode(pair.substr(0, eq)), true);
      std::string v = eq == std::string_view::npos ? std::string() : UriEncode(UriDecode(pair.substr(eq + 1)), true);
      if (!(drop_signature && k == "X-Amz-Signature")) pairs.emplace_back(std::move(k), std::move(v));
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [k, v] : pairs) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

Result<std::string> CanonicalHeaders(const std::vector<HeaderField>& fields,
                                     const std::vector<std::string>& signed_list) {
  std::string out;
  for (const auto& name : signed_list) {
    out += name;
    out += ':';
    bool found = false;
    for (const auto& f : fields) {
      if (!EqualsIgnoreCase(f.name, name)) continue;
      if (found) out += ',';
      AppendTrimAll(f.value, &out);
      found = true;
    }
    if (!found) return Bad("SigV4 signed header '" + name + "' is not in the request");
    out += '\n';
  }
  return out;
}

Result<std::string> CanonicalRequest(const CanonicalInputs& in) {
  const std::string_view target = in.target;
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  const Authorization& a = *in.auth;
  auto headers = CanonicalHeaders(*in.fields, a.signed_list);
  if (!headers) return headers.error();
  std::string cr;
  cr.reserve(256 + target.size() + headers->size());
  cr += in.method;
  cr += '\n';
  cr += CanonicalUri(path, a.credential.service == "s3");
  cr += '\n';
  cr += CanonicalQuery(query, a.form == Authorization::Form::kQuery);
  cr += '\n';
  cr += *headers;
  cr += '\n';
  cr += a.signed_headers;
  cr += '\n';
  cr += in.payload_hash;
  return cr;
}

std::string Sha256Hex(std::string_view data) {
  std::array<uint8_t, SHA256_DIGEST_LENGTH> d{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d.data());
  return HexEncode(d);
}

std::string StringToSign(std::string_view amz_date, std::string_view scope, std::string_view canonical_request) {
  std::string s;
  s.reserve(kAlgorithm.size() + amz_date.size() + scope.size() + 68);
  s += kAlgorithm;
  s += '\n';
  s += amz_date;
  s += '\n';
  s += scope;
  s += '\n';
  s += Sha256Hex(canonical_request);
  return s;
}

Key DeriveSigningKey(std::string_view secret, const Credential& c) {
  std::string k0 = "AWS4";
  k0 += secret;
  Key k_date = Hmac(k0, c.date);
  SecureWipe(k0);
  Key k_region = Hmac(AsView(k_date), c.region);
  Key k_service = Hmac(AsView(k_region), c.service);
  Key k_signing = Hmac(AsView(k_service), "aws4_request");
  OPENSSL_cleanse(k_date.data(), k_date.size());
  OPENSSL_cleanse(k_region.data(), k_region.size());
  OPENSSL_cleanse(k_service.data(), k_service.size());
  return k_signing;
}

std::string SignHex(const Key& key, std::string_view data) {
  Key mac = Hmac(AsView(key), data);
  return HexEncode(mac);
}

std::string ChunkStringToSign(std::string_view amz_date, std::string_view scope, std::string_view previous_signature,
                              std::string_view chunk_sha256_hex) {
  std::string s;
  s.reserve(300);
  s += "AWS4-HMAC-SHA256-PAYLOAD\n";
  s += amz_date;
  s += '\n';
  s += scope;
  s += '\n';
  s += previous_signature;
  s += '\n';
  s += kEmptySha256;
  s += '\n';
  s += chunk_sha256_hex;
  return s;
}

bool SignaturesEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool ReplaceQueryParam(std::string* target, std::string_view name, std::string_view encoded_value) {
  const size_t q = target->find('?');
  if (q == std::string::npos) return false;
  size_t start = q + 1;
  while (start <= target->size()) {
    size_t amp = target->find('&', start);
    const size_t end = amp == std::string::npos ? target->size() : amp;
    std::string_view pair(target->data() + start, end - start);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      const size_t vstart = eq == std::string_view::npos ? end : start + eq + 1;
      std::string repl = eq == std::string_view::npos ? "=" + std::string(encoded_value) : std::string(encoded_value);
      target->replace(vstart, end - vstart, repl);
      return true;
    }
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return false;
}

// ---------------------------------------------------------------- chunks

ChunkResigner::ChunkResigner(const Key& sandbox_key, const Key& real_key, std::string amz_date, std::string scope,
                             std::string sandbox_seed, std::string real_seed, size_t max_chunk)
    : sandbox_key_(sandbox_key),
      real_key_(real_key),
      amz_date_(std::move(amz_date)),
      scope_(std::move(scope)),
      sandbox_prev_(std::move(sandbox_seed)),
      real_prev_(std::move(real_seed)),
      max_chunk_(max_chunk) {}

ChunkResigner::~ChunkResigner() {
  OPENSSL_cleanse(real_key_.data(), real_key_.size());
  OPENSSL_cleanse(sandbox_key_.data(), sandbox_key_.size());
}

bool ChunkResigner::Fail(std::string reason) {
  state_ = State::kFailed;
  reason_ = std::move(reason);
  SecureWipe(data_);
  return false;
}

bool ChunkResigner::CompleteChunk(std::string* out) {
  const std::string hash = Sha256Hex(data_);
  const std::string expect = SignHex(sandbox_key_, ChunkStringToSign(amz_date_, scope_, sandbox_prev_, hash));
  if (!SignaturesEqual(expect, claimed_)) {
    return Fail("aws-chunked chunk signature does not verify with the sandbox's key");
  }
  const std::string real = SignHex(real_key_, ChunkStringToSign(amz_date_, scope_, real_prev_, hash));
  sandbox_prev_ = claimed_;
  real_prev_ = real;
  out->append(size_text_);
  out->append(";chunk-signature=");
  out->append(real);
  out->append("\r\n");
  out->append(data_);
  out->append("\r\n");
  ++chunks_;
  data_.clear();
  return true;
}

bool ChunkResigner::Feed(std::string_view in, std::string* out) {
  while (!in.empty()) {
    switch (state_) {
      case State::kFailed:
        return false;
      case State::kDone:
        return Fail("bytes after the final aws-chunked chunk");
      case State::kHeader: {
        const size_t nl = in.find('\n');
        const size_t take = nl == std::string_view::npos ? in.size() : nl + 1;
        line_.append(in.substr(0, take));
        in.remove_prefix(take);
        if (line_.size() > 128) return Fail("aws-chunked chunk header too long");
        if (line_.back() != '\n') break;
        // <hex>;chunk-signature=<64 hex>\r\n
        std::string_view l(line_);
        if (l.size() < 2 || l[l.size() - 2] != '\r') return Fail("aws-chunked chunk header must end in CRLF");
        l.remove_suffix(2);
        const size_t semi = l.find(';');
        if (semi == std::string_view::npos) return Fail("aws-chunked chunk header lacks chunk-signature");
        const std::string_view size = l.substr(0, semi);
        const std::string_view ext = l.substr(semi + 1);
        constexpr std::string_view kExt = "chunk-signature=";
        if (size.empty() || size.size() > 15 ||
            !std::all_of(size.begin(), size.end(), [](char c) { return HexDigitValue(c) >= 0; })) {
          return Fail("aws-chunked chunk size is not hexadecimal");
        }
        if (ext.substr(0, kExt.size()) != kExt || ext.size() != kExt.size() + 64 ||
            !IsLowerHex(ext.substr(kExt.size()))) {
          return Fail("aws-chunked chunk-signature must be 64 lower-case hex digits");
        }
        want_ = 0;
        for (char c : size) want_ = want_ * 16 + static_cast<uint64_t>(HexDigitValue(c));
        if (want_ > max_chunk_) return Fail("aws-chunked chunk larger than the proxy re-signs (8 MiB)");
        size_text_ = std::string(size);
        claimed_ = std::string(ext.substr(kExt.size()));
        line_.clear();
        data_.clear();
        data_.reserve(static_cast<size_t>(want_));
        state_ = State::kData;
        break;
      }
      case State::kData: {
        const size_t take = std::min<size_t>(in.size(), static_cast<size_t>(want_ - data_.size()));
        data_.append(in.substr(0, take));
        in.remove_prefix(take);
        if (data_.size() == want_) state_ = State::kDataCrlf;
        break;
      }
      case State::kDataCrlf: {
        const size_t take = std::min<size_t>(in.size(), 2 - crlf_.size());
        crlf_.append(in.substr(0, take));
        in.remove_prefix(take);
        if (crlf_.size() < 2) break;
        if (crlf_ != "\r\n") return Fail("aws-chunked chunk data must end in CRLF");
        crlf_.clear();
        const bool final_chunk = want_ == 0;
        if (!CompleteChunk(out)) return false;
        state_ = final_chunk ? State::kDone : State::kHeader;
        break;
      }
    }
  }
  return state_ != State::kFailed;
}

}  // namespace osb::secretsproxy::sigv4
