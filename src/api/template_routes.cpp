#include "api/template_routes.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <memory>

#include "api/byte_channel.h"
#include "api/file_routes.h"
#include "api/json_body.h"

namespace osb::api {
namespace {

using nlohmann::json;

json TemplateJson(const controlplane::TemplateView& t) {
  return {{"name", t.name}, {"digest", t.digest}, {"size", t.size_bytes}, {"createdAt", t.created_at}};
}

Result<std::string> NameQuery(const Request& req) {
  auto q = ParseQuery(req.query);
  if (!q) return MakeError(ErrorCode::kInvalidArgument, "query: malformed percent-encoding");
  for (const auto& [k, v] : *q)
    if (k != "name") return MakeError(ErrorCode::kInvalidArgument, k + ": unknown query parameter");
  auto it = q->find("name");
  if (it == q->end() || it->second.empty()) return MakeError(ErrorCode::kInvalidArgument, "name: required (?name=N)");
  if (auto st = controlplane::TemplateService::ValidateName(it->second); !st) return st.error();
  return it->second;
}

std::optional<uint64_t> ContentLength(const Request& req) {
  const std::string text = req.Header("Content-Length");
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

void RegisterTemplateRoutes(Router& router, controlplane::TemplateService& templates, controlplane::LongCalls& calls) {
  router.AddStreaming("POST", "/api/templates", [&templates, &calls](Request& req) {
    auto name = NameQuery(req);
    if (!name) return ErrorResponse(name.error());
    // Refuse what can be refused before reading a byte (name taken, a
    // declared size over the limit).
    if (auto st = templates.Admit(req.org_id, *name, ContentLength(req)); !st) return ErrorResponse(st.error());
    std::shared_ptr<ByteChannel> in = req.body_stream;
    if (!in) return ErrorResponse(400, "body: empty (send the image tarball)");
    Response r;
    r.deferred = [&templates, &calls, org = req.org_id, name = *name, in](Deliver deliver) {
      Status admitted = calls.Submit(org, [&templates, org, name, in, deliver] {
        controlplane::TemplateChunks next = [in]() -> Result<std::optional<std::string>> {
          auto chunk = in->Pop();
          if (chunk) return std::optional<std::string>(std::move(*chunk));
          if (in->aborted()) return MakeError(ErrorCode::kUnavailable, "upload: the client went away");
          return std::optional<std::string>();
        };
        auto imported = templates.Import(org, name, next);
        if (!imported) {
          in->Abort();  // stop the connection feeding a refused upload
          return deliver(ErrorResponse(imported.error()));
        }
        deliver(JsonResponse(201, TemplateJson(*imported)));
      });
      if (!admitted) {
        in->Abort();
        deliver(ErrorResponse(admitted.error()));
      }
    };
    return r;
  });

  router.Add("GET", "/api/templates", [&templates](Request& req) {
    auto list = templates.List(req.org_id);
    if (!list) return ErrorResponse(list.error());
    json out = json::array();
    for (const auto& t : *list) out.push_back(TemplateJson(t));
    return JsonResponse(200, out);
  }, KeyScope::kSandbox);

  router.Add("GET", "/api/templates/{name}", [&templates](Request& req) {
    auto t = templates.Get(req.org_id, req.Param("name"));
    if (!t) return ErrorResponse(t.error());
    return JsonResponse(200, TemplateJson(*t));
  }, KeyScope::kSandbox);

  router.Add("DELETE", "/api/templates/{name}", [&templates](Request& req) {
    if (auto st = templates.Delete(req.org_id, req.Param("name")); !st) return ErrorResponse(st.error());
    return NoContent();
  });
}

}  // namespace osb::api
