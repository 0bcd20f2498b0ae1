// REST routes for files inside a sandbox (docs/files.md):
//   GET    /api/sandboxes/{id}/files?path=P            download (streamed, Content-Length)
//   PUT    /api/sandboxes/{id}/files?path=P[&mode=644]  upload (streamed body, any size)
//   DELETE /api/sandboxes/{id}/files?path=P[&recursive=true]
//   GET    /api/sandboxes/{id}/files/list?path=P
//   POST   /api/sandboxes/{id}/files/mkdir {path, parents?, mode?}
// Handlers translate HTTP <-> controlplane::SandboxFiles; transfers run on
// the long-call executor and move through ByteChannels of 4 x 1 MiB.
#include "api/file_routes.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <memory>

#include "api/byte_channel.h"
#include "api/json_body.h"

namespace osb::api {
namespace {

using nlohmann::json;

}  // namespace

std::optional<std::map<std::string, std::string>> ParseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t amp = query.find('&', start);
    if (amp == std::string::npos) amp = query.size();
    std::string pair = query.substr(start, amp - start);
    start = amp + 1;
    if (pair.empty()) {
      if (amp >= query.size()) break;
      continue;
    }
    const auto eq = pair.find('=');
    std::string k = pair.substr(0, eq), v = eq == std::string::npos ? "" : pair.substr(eq + 1);
    for (auto* s : {&k, &v})
      for (auto& ch : *s)
        if (ch == '+') ch = ' ';
    auto dk = PercentDecode(k), dv = PercentDecode(v);
    if (!dk || !dv) return std::nullopt;
    out[*dk] = *dv;
    if (amp >= query.size()) break;
  }
  return out;
}

namespace {

struct FileQuery {
  std::string path;
  std::map<std::string, std::string> all;
};

Result<FileQuery> PathQuery(const Request& req, std::initializer_list<const char*> known) {
  auto q = ParseQuery(req.query);
  if (!q) return MakeError(ErrorCode::kInvalidArgument, "query: malformed percent-encoding");
  for (const auto& [k, v] : *q) {
    bool ok = k == "path";
    for (const char* n : known) ok = ok || k == n;
    if (!ok) return MakeError(ErrorCode::kInvalidArgument, k + ": unknown query parameter");
  }
  auto it = q->find("path");
  if (it == q->end() || it->second.empty()) return MakeError(ErrorCode::kInvalidArgument, "path: required");
  if (it->second.size() > 4096) return MakeError(ErrorCode::kInvalidArgument, "path: longer than 4096 bytes");
  if (it->second.find('\0') != std::string::npos)
    return MakeError(ErrorCode::kInvalidArgument, "path: contains a NUL byte");
  return FileQuery{it->second, std::move(*q)};
}

Result<uint32_t> ParseMode(const std::string& field, const std::string& text, uint32_t fallback) {
  if (text.empty()) return fallback;
  if (text.size() > 4 || text.find_first_not_of("01234567") != std::string::npos)
    return MakeError(ErrorCode::kInvalidArgument, field + ": must be octal permission bits, e.g. 644 or 0755");
  return static_cast<uint32_t>(std::stoul(text, nullptr, 8));
}

Result<bool> ParseFlag(const std::string& field, const std::map<std::string, std::string>& q) {
  auto it = q.find(field);
  if (it == q.end() || it->second == "false" || it->second == "0") return false;
  if (it->second == "true" || it->second == "1" || it->second.empty()) return true;
  return MakeError(ErrorCode::kInvalidArgument, field + ": must be true or false");
}

std::string Rfc3339Ms(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(unix_ms % 1000));
  return out;
}

std::string ModeString(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

// ErrorResponse, except that a refusal by the sandbox's own permissions
// (kFailedPrecondition from the file helper) is a 403.
Response FileError(const Error& e) {
  if (e.code == ErrorCode::kFailedPrecondition) return ErrorResponse(403, e.message);
  return ErrorResponse(e);
}

}  // namespace

json FileEntryJson(const controlplane::FileEntryView& e) {
  return {{"name", e.name},
          {"type", e.type},
          {"size", e.size},
          {"mode", ModeString(e.mode)},
          {"mtime", Rfc3339Ms(e.mtime_unix_ms)}};
}

void RegisterFileRoutes(Router& router, controlplane::SandboxFiles& files) {
  router.AddStreaming("GET", "/api/sandboxes/{id}/files", [&files](Request& req) {
    auto q = PathQuery(req, {});
    if (!q) return ErrorResponse(q.error());
    Response r;
    r.deferred = [&files, org = req.org_id, id = req.Param("id"), path = q->path](Deliver deliver) {
      auto out = std::make_shared<ByteChannel>(4);
      auto delivered = std::make_shared<std::atomic<bool>>(false);
      controlplane::DownloadSink sink;
      sink.on_size = [deliver, out, delivered](int64_t size) {
        Response ok;
        ok.status = 200;
        ok.content_type = "application/octet-stream";
        ok.body_stream = out;
        ok.stream_length = size;
        delivered->store(true);
        deliver(std::move(ok));
        return true;
      };
      sink.on_chunk = [out](std::string chunk) { return out->Push(std::move(chunk)); };
      Status admitted = files.DownloadAsync(org, id, path, std::move(sink), [deliver, out, delivered](Status st) {
        if (!delivered->load()) {
          deliver(FileError(st ? MakeError(ErrorCode::kInternal, "download ended without data") : st.error()));
          return;
        }
        if (st) out->Finish();
        else out->Abort();
      });
      if (!admitted) deliver(FileError(admitted.error()));
    };
    return r;
  }, KeyScope::kSandbox);

  router.AddStreaming("PUT", "/api/sandboxes/{id}/files", [&files](Request& req) {
    auto q = PathQuery(req, {"mode"});
    if (!q) return ErrorResponse(q.error());
    auto mode = ParseMode("mode", q->all.count("mode") ? q->all.at("mode") : "", 0644);
    if (!mode) return ErrorResponse(mode.error());
    std::shared_ptr<ByteChannel> in = req.body_stream;
    if (!in) {  // an empty body: an empty file
      in = std::make_shared<ByteChannel>(1);
      in->Finish();
    }
    Response r;
    r.deferred = [&files, org = req.org_id, id = req.Param("id"), path = q->path, mode = *mode,
                  in](Deliver deliver) {
      controlplane::ChunkSource next = [in]() -> Result<std::optional<std::string>> {
        auto chunk = in->Pop();
        if (chunk) return std::optional<std::string>(std::move(*chunk));
        if (in->aborted()) return MakeError(ErrorCode::kUnavailable, "upload: the client went away");
        return std::optional<std::string>();
      };
      Status admitted = files.UploadAsync(org, id, path, mode, std::move(next),
                                          [deliver, in, path](Result<int64_t> size) {
                                            // Stop the connection feeding a dead upload.
                                            if (!size) in->Abort();
                                            if (!size) return deliver(FileError(size.error()));
                                            deliver(JsonResponse(200, {{"path", path}, {"size", *size}}));
                                          });
      if (!admitted) {
        in->Abort();
        deliver(FileError(admitted.error()));
      }
    };
    return r;
  }, KeyScope::kSandbox);

  router.Add("DELETE", "/api/sandboxes/{id}/files", [&files](Request& req) {
    auto q = PathQuery(req, {"recursive"});
    if (!q) return ErrorResponse(q.error());
    auto recursive = ParseFlag("recursive", q->all);
    if (!recursive) return ErrorResponse(recursive.error());
    if (Status st = files.Remove(req.org_id, req.Param("id"), q->path, *recursive); !st) return FileError(st.error());
    return NoContent();
  }, KeyScope::kSandbox);

  router.Add("GET", "/api/sandboxes/{id}/files/list", [&files](Request& req) {
    auto q = PathQuery(req, {});
    if (!q) return ErrorResponse(q.error());
    auto list = files.List(req.org_id, req.Param("id"), q->path);
    if (!list) return FileError(list.error());
    json entries = json::array();
    for (const auto& e : list->entries) entries.push_back(FileEntryJson(e));
    return JsonResponse(200, {{"path", q->path}, {"entries", entries}, {"truncated", list->truncated}});
  }, KeyScope::kSandbox);

  router.Add("POST", "/api/sandboxes/{id}/files/mkdir", [&files](Request& req) {
    auto j = JsonBody::Parse(req.body, {"path", "parents", "mode"});
    if (!j) return ErrorResponse(j.error());
    auto path = j->String("path");
    if (!path) return ErrorResponse(path.error());
    if (!*path || (*path)->empty()) return ErrorResponse(400, "path: required");
    if ((*path)->size() > 4096) return ErrorResponse(400, "path: longer than 4096 bytes");
    auto parents = j->Bool("parents");
    if (!parents) return ErrorResponse(parents.error());
    auto mode_text = j->String("mode");
    if (!mode_text) return ErrorResponse(mode_text.error());
    auto mode = ParseMode("mode", mode_text->value_or(""), 0755);
    if (!mode) return ErrorResponse(mode.error());
    if (Status st = files.MakeDirectory(req.org_id, req.Param("id"), **path, parents->value_or(false), *mode); !st)
      return FileError(st.error());
    return JsonResponse(201, {{"path", **path}});
  }, KeyScope::kSandbox);
}

}  // namespace osb::api
