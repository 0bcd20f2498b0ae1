// Secret kinds (issue 16): what a secret IS, the one home of its material's
// shape, and of what a sandbox sees for it.
//
//   value           today's behaviour (the default): the value travels as it
//                   is; the proxy substitutes token -> value.
//   hmac            a key the proxy signs requests with (the sandbox puts
//                   its token where the signature goes).
//   aws-sigv4       AWS credentials; the proxy re-signs SigV4 requests the
//                   sandbox signed with the token as secret key.
//   oauth2-refresh  a refresh token; the proxy injects a fresh access token
//                   where the sandbox put its token (a bearer placeholder).
//
// A non-value secret carries a JSON object "material" instead of a value,
// validated here per kind (errors name "material.<field>", never a value).
// Everything that crosses the control plane <-> worker channel or is stored
// (encrypted) is SecretMaterial::ToJson(); the non-secret fields are
// readable (PublicJson) through the API.
//
// Material shapes (docs/secrets.md has the worked examples):
//   hmac:           key (secret, required), keyEncoding "utf8"|"hex"|"base64"
//                   (utf8), hash "sha256"|"sha512"|"sha1" (sha256), header
//                   (required: the request header carrying the signature),
//                   format "hex"|"base64" (hex), prefix (""), message
//                   ("{body}": what is signed, a template over {method}
//                   {path} {query} {host} {timestamp} {body}), timestampHeader
//                   (the request header {timestamp} is read from).
//   aws-sigv4:      accessKeyId (required), secretAccessKey (secret,
//                   required), sessionToken (secret), region, service.
//   oauth2-refresh: tokenEndpoint (https URL, required), clientId
//                   (required), clientSecret (secret), refreshToken (secret,
//                   required), scopes (array of strings, kept space-joined).
//
// Thread safety: pure functions; SecretMaterial is a value type.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace osb {

enum class SecretKind { kValue, kHmac, kAwsSigV4, kOAuth2Refresh };

// "value", "hmac", "aws-sigv4", "oauth2-refresh"; nullopt for anything else.
std::optional<SecretKind> ParseSecretKind(std::string_view text);
std::string_view SecretKindName(SecretKind kind);

// The parsed, validated material of a non-value secret: flat string fields
// (scopes kept space-joined). Every copy wipes its strings when destroyed.
class SecretMaterial {
 public:
  SecretMaterial() = default;
  // Parses and validates `json` (a JSON object) for `kind` (not kValue).
  // kInvalidArgument naming "material" or "material.<field>".
  static Result<SecretMaterial> Parse(SecretKind kind, std::string_view json);
  ~SecretMaterial();
  SecretMaterial(const SecretMaterial&) = default;
  SecretMaterial(SecretMaterial&&) noexcept = default;
  SecretMaterial& operator=(const SecretMaterial&);
  SecretMaterial& operator=(SecretMaterial&&) noexcept;

  SecretKind kind() const { return kind_; }
  // "" when absent.
  std::string_view Get(std::string_view field) const;
  bool Has(std::string_view field) const;
  // The whole material (secret fields included) as canonical JSON text:
  // what is encrypted at rest and sent to the worker. Wipe after use.
  std::string ToJson() const;
  // The non-secret fields only, as JSON object text (scopes as an array).
  std::string PublicJson() const;
  // The secret fields' values (for response scrubbing); views into *this.
  std::vector<std::string_view> SecretValues() const;

  // Whether `field` of `kind` is secret (never returned, scrubbed).
  static bool IsSecretField(SecretKind kind, std::string_view field);

 private:
  SecretKind kind_ = SecretKind::kValue;
  std::map<std::string, std::string, std::less<>> fields_;
};

// allowedRequests: a request a secret may be used in. host uses the host
// pattern grammar (common/host_pattern.h, "*" allowed); methods are upper
// case (empty = any method); path_prefix starts with "/" ("" = any path).
struct RequestRule {
  std::string host;
  std::vector<std::string> methods;
  std::string path_prefix;
  bool operator==(const RequestRule&) const = default;
  // "POST api.example.com/v1/messages" (the CLI's form; "*" for any method).
  std::string Text() const;
  // host: normalized, lower case; method as the request line has it;
  // path: the request target's path (query excluded), as the client sent it.
  // A rule with a pathPrefix never matches a path that an upstream could
  // resolve to somewhere else (see IsPlainRequestPath): "/v1/messages/../admin"
  // is outside "/v1/messages" however the server normalizes it.
  bool Matches(std::string_view host, uint16_t port, std::string_view method, std::string_view path) const;
};

// True when `path` names the same resource to every server that reads it:
// no "." or ".." segment (also spelled %2e, or with a ";params" tail as
// Tomcat reads "..;"), no encoded "/" or "\" (%2f, %5c), no "\", no NUL.
// A path failing this can mean one thing to a prefix check and another to
// the upstream, so request rules treat it as outside every pathPrefix.
bool IsPlainRequestPath(std::string_view path);

// Validates and normalizes rules (host pattern, methods as tokens, upper
// case; pathPrefix starting with "/"); errors name `field`[i].
Result<std::vector<RequestRule>> NormalizeRequestRules(std::vector<RequestRule> rules, std::string_view field);
// "POST,GET api.example.com/v1/messages", "* api.example.com", "api.example.com/v1".
Result<RequestRule> ParseRequestRuleText(std::string_view text, std::string_view field);
// JSON array of {host, methods, pathPrefix} (the API and store form).
std::string RequestRulesToJson(const std::vector<RequestRule>& rules);
Result<std::vector<RequestRule>> RequestRulesFromJson(std::string_view json, std::string_view field);

// What a request outside a secret's allowedRequests does: "seal" (the token
// passes sealed, audited) or "refuse" (403).
inline constexpr std::string_view kOnDisallowedSeal = "seal";
inline constexpr std::string_view kOnDisallowedRefuse = "refuse";

// The sandbox environment of one secret — THE per-kind mapping:
//   value           NAME = token
//   hmac            NAME = token (the sandbox puts it where the signature goes)
//   oauth2-refresh  NAME = token (stands for the access token: "Bearer <token>")
//   aws-sigv4       AWS_ACCESS_KEY_ID = the real access key id (not secret),
//                   AWS_SECRET_ACCESS_KEY = token,
//                   AWS_SESSION_TOKEN = aux token (only with a sessionToken),
//                   AWS_REGION and AWS_DEFAULT_REGION = region (when given).
//                   The secret's own NAME is not set.
struct SandboxEnvEntry {
  enum class Source { kToken, kAuxToken, kPlain };
  std::string name;
  Source source = Source::kToken;
  std::string plain;  // kPlain: the (non-secret) value
};
std::vector<SandboxEnvEntry> SandboxEnvFor(SecretKind kind, std::string_view name, const SecretMaterial* material);
// Whether the kind needs a second token (aws-sigv4 with a sessionToken).
bool NeedsAuxToken(SecretKind kind, const SecretMaterial* material);

}  // namespace osb
