#include "secretsproxy/hmac_stage.h"

#include "common/base64.h"
#include "common/hex.h"
#include "common/hmac.h"
#include "common/secure_memory.h"
#include "secretsproxy/request_pipeline.h"

namespace osb::secretsproxy {
namespace {

std::string_view Or(std::string_view v, std::string_view fallback) { return v.empty() ? fallback : v; }

bool NeedsBody(const SecretMaterial& m) {
  return Or(m.Get("message"), "{body}").find("{body}") != std::string_view::npos;
}

// The key's bytes per keyEncoding (validated when the secret was set).
std::string KeyBytes(const SecretMaterial& m) {
  const auto enc = Or(m.Get("keyEncoding"), "utf8");
  if (enc == "hex") {
    auto k = HexDecode(m.Get("key"));
    if (!k) return {};
    std::string out(k->begin(), k->end());
    SecureWipe(k->data(), k->size());
    return out;
  }
  if (enc == "base64") return Base64Decode(m.Get("key")).value_or(std::string());
  return std::string(m.Get("key"));
}

HeaderField* FindField(RequestHead& head, std::string_view name) {
  for (auto& f : head.fields) {
    if (EqualsIgnoreCase(f.name, name)) return &f;
  }
  return nullptr;
}

class HmacAction final : public SigningAction {
 public:
  HmacAction(std::shared_ptr<const SessionSnapshot> session, size_t index)
      : session_(std::move(session)), index_(index) {}
  Body body() const override { return Body::kWhole; }
  StageResult OnBody(RequestContext& c, std::string* body) override { return Sign(c, *body); }

  StageResult Sign(RequestContext& c, std::string_view body) {
    const auto& sec = session_->secrets()[index_];
    const SecretMaterial& m = *sec.material;
    HmacParts parts;
    parts.method = c.head.method;
    std::string_view target = c.head.target;
    const auto q = target.find('?');
    parts.path = q == std::string_view::npos ? target : target.substr(0, q);
    parts.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    parts.host = c.target.host;
    parts.body = body;
    if (m.Has("timestampHeader")) {
      const HeaderField* ts = FindField(c.head, m.Get("timestampHeader"));
      if (ts != nullptr) parts.timestamp = ts->value;
    }
    std::string missing;
    auto value = HmacHeaderValue(m, parts, &missing);
    if (!value) return {400, "secret " + sec.name + " (hmac): the request lacks " + missing};
    HeaderField* f = FindField(c.head, m.Get("header"));
    if (f == nullptr) return {400, "secret " + sec.name + " (hmac): the signature header is gone"};
    SecureWipe(f->value);
    f->value = std::move(*value);
    return {};
  }

 private:
  std::shared_ptr<const SessionSnapshot> session_;
  size_t index_;
};

}  // namespace

std::optional<std::string> HmacHeaderValue(const SecretMaterial& m, const HmacParts& parts, std::string* missing) {
  const std::string_view tmpl = Or(m.Get("message"), "{body}");
  std::string message;
  message.reserve(tmpl.size() + parts.body.size() + parts.path.size() + 64);
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '{') {
      message += tmpl[i];
      continue;
    }
    const size_t end = tmpl.find('}', i);
    if (end == std::string_view::npos) {
      message.append(tmpl.substr(i));
      break;
    }
    const auto name = tmpl.substr(i + 1, end - i - 1);
    if (name == "method") {
      message += parts.method;
    } else if (name == "path") {
      message += parts.path;
    } else if (name == "query") {
      message += parts.query;
    } else if (name == "host") {
      message += parts.host;
    } else if (name == "timestamp") {
      if (parts.timestamp.empty()) {
        *missing = "the timestamp header " + std::string(m.Get("timestampHeader"));
        return std::nullopt;
      }
      message += parts.timestamp;
    } else if (name == "body") {
      message += parts.body;
    } else {
      message.append(tmpl.substr(i, end - i + 1));
    }
    i = end;
  }
  const HashAlg alg = ParseHashAlg(Or(m.Get("hash"), "sha256")).value_or(HashAlg::kSha256);
  std::string key = KeyBytes(m);
  std::string mac = Hmac(alg, key, message);
  SecureWipe(key);
  SecureWipe(message);  // holds the body, which may hold substituted values
  std::string out(m.Get("prefix"));
  if (Or(m.Get("format"), "hex") == "base64") {
    out += Base64Encode(mac);
  } else {
    out += HexEncode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(mac.data()), mac.size()));
  }
  return out;
}

boost::asio::awaitable<StageResult> HmacStage::OnHead(SigningCall& call, std::unique_ptr<SigningAction>* action) const {
  auto& c = call.ctx;
  const auto& secrets = c.session->secrets();
  for (size_t i : call.usable) {
    const auto& sec = secrets[i];
    if (!sec.material) continue;
    HeaderField* f = FindField(c.head, sec.material->Get("header"));
    if (f == nullptr || f->value.find(sec.token) == std::string::npos) continue;
    if (call.used_names) call.used_names->push_back(sec.name);
    auto a = std::make_unique<HmacAction>(c.session, i);
    if (!NeedsBody(*sec.material)) {
      StageResult st = a->Sign(c, {});
      co_return st;
    }
    *action = std::move(a);
    co_return StageResult{};  // one signature per request
  }
  co_return StageResult{};
}

const SigningStage* HmacSigningStage() {
  static const HmacStage stage;
  return &stage;
}

}  // namespace osb::secretsproxy
