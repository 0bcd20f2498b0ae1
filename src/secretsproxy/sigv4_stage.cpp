#include "secretsproxy/sigv4_stage.h"

#include <openssl/crypto.h>

#include "common/secure_memory.h"

namespace osb::secretsproxy {
namespace {

using sigv4::Authorization;

struct Wiped {
  sigv4::Key key{};
  ~Wiped() { OPENSSL_cleanse(key.data(), key.size()); }
};

std::string_view QueryOf(std::string_view target) {
  const size_t q = target.find('?');
  return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

// The payload hash the client signed; nullopt = SHA-256 of the body needed.
struct Payload {
  std::optional<std::string> hash;
  bool streaming = false;
};

Result<Payload> PayloadHash(const RequestHead& head, const Authorization& a) {
  const auto fields = FindFields(head.fields, "x-amz-content-sha256");
  if (fields.size() > 1) return MakeError(ErrorCode::kInvalidArgument, "x-amz-content-sha256 is given more than once");
  if (fields.size() == 1) {
    const std::string& v = fields[0]->value;
    if (v == sigv4::kStreamingPayload) return Payload{v, true};
    if (v.rfind("STREAMING-", 0) == 0 && v != "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
      return MakeError(ErrorCode::kInvalidArgument,
                       "x-amz-content-sha256: only STREAMING-AWS4-HMAC-SHA256-PAYLOAD and "
                       "STREAMING-UNSIGNED-PAYLOAD-TRAILER streaming payloads are re-signed");
    }
    return Payload{v, false};
  }
  if (a.form == Authorization::Form::kQuery && a.credential.service == "s3") {
    return Payload{std::string(sigv4::kUnsignedPayload), false};
  }
  return Payload{};
}

struct Parsed {
  Authorization auth;
  std::string amz_date;
  int64_t when = 0;
};

// The SigV4 authorization of the request; nullopt when it has none.
std::optional<Result<Parsed>> ParseRequest(const RequestHead& head) {
  const auto authz = FindFields(head.fields, "authorization");
  bool header_sigv4 = false;
  for (const auto* f : authz) {
    if (f->value.find(sigv4::kAlgorithm) != std::string::npos) header_sigv4 = true;
  }
  const std::string_view query = QueryOf(head.target);
  const bool query_sigv4 = sigv4::LooksPresigned(query);
  if (!header_sigv4 && !query_sigv4) return std::nullopt;
  auto bad = [](std::string m) { return std::optional<Result<Parsed>>(MakeError(ErrorCode::kInvalidArgument, std::move(m))); };
  if (header_sigv4 && query_sigv4) return bad("SigV4 in both the Authorization header and the query string");
  Parsed p;
  if (header_sigv4) {
    if (authz.size() != 1) return bad("Authorization is given more than once");
    auto a = sigv4::ParseAuthorizationHeader(authz[0]->value);
    if (!a) return bad(a.error().message);
    p.auth = std::move(*a);
    const auto dates = FindFields(head.fields, "x-amz-date");
    if (dates.size() != 1) return bad("x-amz-date: a SigV4 request needs exactly one (the Date header is not supported)");
    p.amz_date = dates[0]->value;
  } else {
    auto a = sigv4::ParsePresignedQuery(query);
    if (!a) return bad(a.error().message);
    p.auth = std::move(*a);
    p.amz_date = p.auth.amz_date;
  }
  const auto when = sigv4::ParseAmzDate(p.amz_date);
  if (!when) return bad("x-amz-date must be YYYYMMDDTHHMMSSZ");
  if (p.amz_date.compare(0, 8, p.auth.credential.date) != 0) {
    return bad("SigV4 Credential date differs from x-amz-date");
  }
  p.when = *when;
  return std::optional<Result<Parsed>>(std::move(p));
}

Result<std::string> Signature(const RequestHead& head, const Parsed& p, std::string_view payload_hash,
                              const sigv4::Key& key) {
  sigv4::CanonicalInputs in{head.method, head.target, &head.fields, &p.auth, payload_hash};
  auto cr = sigv4::CanonicalRequest(in);
  if (!cr) return cr.error();
  return sigv4::SignHex(key, sigv4::StringToSign(p.amz_date, p.auth.credential.Scope(), *cr));
}

}  // namespace

StageResult ResignSigV4(RequestHead* head, std::span<const SigV4Secret> secrets, int64_t now_unix,
                        const std::string* body, SigV4Result* out) {
  out->signed_request = false;
  out->needs_body = false;
  out->chunks.reset();
  if (secrets.empty()) return {};
  auto parsed = ParseRequest(*head);
  if (!parsed) return {};
  if (!*parsed) return {400, parsed->error().message};
  const Parsed& p = parsed->value();

  auto payload = PayloadHash(*head, p.auth);
  if (!payload) return {400, payload.error().message};
  if (!payload->hash) {
    if (!body) {
      out->needs_body = true;
      return {};
    }
    payload->hash = sigv4::Sha256Hex(*body);
  }
  const std::string& payload_hash = *payload->hash;

  const SigV4Secret* secret = nullptr;
  for (const auto& s : secrets) {
    if (s.access_key_id == p.auth.credential.access_key_id) {
      secret = &s;
      break;
    }
  }
  if (!secret) {
    // Not one of ours. Still, a request signed with one of the session's
    // tokens must not leave (it would show the upstream a token signature).
    for (const auto& s : secrets) {
      Wiped k;
      k.key = sigv4::DeriveSigningKey(s.token, p.auth.credential);
      auto sig = Signature(*head, p, payload_hash, k.key);
      if (sig && sigv4::SignaturesEqual(*sig, p.auth.signature)) {
        return {403, "SigV4 request signed with a sealed token under another access key id"};
      }
    }
    return {};
  }
  out->secret_name = std::string(secret->name);
  if (!secret->enabled) return {403, "aws-sigv4 secret may not be used for this request (allowedHosts/allowedRequests)"};
  if (!secret->region.empty() && secret->region != p.auth.credential.region) {
    return {403, "SigV4 Credential region is not the aws-sigv4 secret's region"};
  }
  if (!secret->service.empty() && secret->service != p.auth.credential.service) {
    return {403, "SigV4 Credential service is not the aws-sigv4 secret's service"};
  }

  // Replay window.
  if (p.auth.form == Authorization::Form::kHeader) {
    if (p.when > now_unix + sigv4::kMaxSkewSeconds || p.when < now_unix - sigv4::kMaxSkewSeconds) {
      return {403, "SigV4 x-amz-date is more than 15 minutes from the proxy's clock"};
    }
  } else if (p.when > now_unix + sigv4::kMaxSkewSeconds || now_unix > p.when + p.auth.expires) {
    return {403, "SigV4 presigned URL is expired or dated more than 15 minutes ahead"};
  }

  // The sandbox's signature, over the request as it arrived.
  Wiped sandbox_key;
  sandbox_key.key = sigv4::DeriveSigningKey(secret->token, p.auth.credential);
  auto claimed = Signature(*head, p, payload_hash, sandbox_key.key);
  if (!claimed) return {400, claimed.error().message};
  if (!sigv4::SignaturesEqual(*claimed, p.auth.signature)) {
    return {403, "SigV4 signature does not verify with the sandbox's key (request altered or signed elsewhere)"};
  }

  // The session token: sealed -> real.
  RequestHead signed_head = *head;
  if (!secret->session_token_token.empty()) {
    if (p.auth.form == Authorization::Form::kHeader) {
      for (auto& f : signed_head.fields) {
        if (EqualsIgnoreCase(f.name, "x-amz-security-token") && f.value == secret->session_token_token) {
          f.value = std::string(secret->session_token);
        }
      }
    } else if (p.auth.security_token && *p.auth.security_token == secret->session_token_token) {
      sigv4::ReplaceQueryParam(&signed_head.target, "X-Amz-Security-Token",
                               sigv4::UriEncode(secret->session_token, true));
    }
  }

  Wiped real_key;
  real_key.key = sigv4::DeriveSigningKey(secret->secret_access_key, p.auth.credential);
  auto real = Signature(signed_head, p, payload_hash, real_key.key);
  if (!real) return {400, real.error().message};
  if (p.auth.form == Authorization::Form::kHeader) {
    for (auto& f : signed_head.fields) {
      if (!EqualsIgnoreCase(f.name, "authorization")) continue;
      f.value = std::string(sigv4::kAlgorithm) + " Credential=" + p.auth.credential.access_key_id + "/" +
                p.auth.credential.Scope() + ", SignedHeaders=" + p.auth.signed_headers + ", Signature=" + *real;
    }
  } else {
    sigv4::ReplaceQueryParam(&signed_head.target, "X-Amz-Signature", *real);
  }
  if (payload->streaming) {
    out->chunks = std::make_unique<sigv4::ChunkResigner>(sandbox_key.key, real_key.key, p.amz_date,
                                                         p.auth.credential.Scope(), p.auth.signature, *real);
  }
  // The old head held the sandbox's (token) signature and sealed session
  // token; the new one the real session token.
  SecureWipe(head->target);
  for (auto& f : head->fields) SecureWipe(f.value);
  *head = std::move(signed_head);
  out->signed_request = true;
  return {};
}

}  // namespace osb::secretsproxy
