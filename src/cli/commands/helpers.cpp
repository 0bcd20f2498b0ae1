// Helpers shared by the verb files (declared in commands.h).
#include "cli/commands/commands.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli/output.h"

namespace osb::cli {

namespace {
std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}
}  // namespace

TransferProgress::TransferProgress(Context& ctx, std::string label, std::string when_complete)
    : enabled_(!ctx.json && &ctx.err() == &std::cerr && isatty(STDERR_FILENO)),
      label_(std::move(label)),
      when_complete_(std::move(when_complete)) {}

TransferProgress::~TransferProgress() {
  if (drawn_ && !completed_) std::fprintf(stderr, "\n");
}

std::function<void(uint64_t, uint64_t)> TransferProgress::Callback() {
  if (!enabled_) return {};
  return [this](uint64_t done, uint64_t total) { Update(done, total); };
}

void TransferProgress::Update(uint64_t done, uint64_t total) {
  const bool complete = total > 0 && done >= total;
  const auto now = std::chrono::steady_clock::now();
  if (completed_ || (!complete && now - last_ < std::chrono::milliseconds(100))) return;
  last_ = now;
  drawn_ = true;
  if (total > 0) {
    const int width = 30;
    const int filled = static_cast<int>(std::min(done, total) * width / total);
    std::fprintf(stderr, "\r%s [%s%s] %3d%% %s / %s", label_.c_str(), std::string(filled, '#').c_str(),
                 std::string(width - filled, ' ').c_str(), static_cast<int>(std::min(done, total) * 100 / total),
                 Mib(done).c_str(), Mib(total).c_str());
  } else {
    std::fprintf(stderr, "\r%s %s", label_.c_str(), Mib(done).c_str());
  }
  if (complete) {
    completed_ = true;
    std::fprintf(stderr, "\n");
    if (!when_complete_.empty()) std::fprintf(stderr, "%s: %s\n", label_.c_str(), when_complete_.c_str());
  }
  std::fflush(stderr);
}

std::string ApiPath(std::initializer_list<std::string_view> segments) {
  std::string path = "/api";
  for (auto segment : segments) path += "/" + EncodePathSegment(segment);
  return path;
}

bool IsEnvName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

Result<std::map<std::string, std::string>> ParseEnvPairs(const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    size_t eq = item.find('=');
    std::string key = item.substr(0, eq);
    if (eq == std::string::npos || !IsEnvName(key)) {
      // Only the key is quoted: the value may be sensitive.
      return MakeError(ErrorCode::kFailedPrecondition,
                       "invalid --env '" + TerminalSafe(key) + (eq == std::string::npos ? "" : "=...") +
                           "': expected NAME=VALUE with NAME an environment variable name");
    }
    out[key] = item.substr(eq + 1);
  }
  return out;
}

std::vector<std::string> NonEmpty(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int CallOne(Context& ctx, std::string_view method, const std::string& path, const nlohmann::json* body,
            const ApiClient::CallOptions& options, const Printer& print) {
  int code = 0;
  ApiClient* api = ctx.Api(&code);
  if (api == nullptr) return code;
  auto res = api->Call(method, path, body, options);
  if (!res) return ctx.Fail(res.error());
  print(ctx, *res);
  return 0;
}

int ShowOne(Context& ctx, const std::string& path, const Printer& print) {
  return CallOne(ctx, "GET", path, nullptr, {}, print);
}

int SendOne(Context& ctx, std::string_view method, const std::string& path, const nlohmann::json& body,
            const Printer& print) {
  return CallOne(ctx, method, path, &body, {}, print);
}

int DeleteOne(Context& ctx, const std::string& path, const std::string& what) {
  return CallOne(ctx, "DELETE", path, nullptr, {},
                 [&what](Context& ctx, const nlohmann::json& response) { PrintDeleted(ctx, response, what); });
}

int PrintList(Context& ctx, const std::string& path, std::vector<std::string> columns,
              const std::function<std::vector<std::string>(const nlohmann::json& item)>& row) {
  return ShowOne(ctx, path, [&](Context& ctx, const nlohmann::json& response) {
    if (ctx.json) return PrintJson(ctx.out(), response);
    Table table(std::move(columns));
    for (const auto& item : ListItems(response)) table.AddRow(row(item));
    table.Print(ctx.out());
  });
}

void PrintObject(Context& ctx, const nlohmann::json& response,
                 const std::vector<std::pair<std::string, std::string>>& fields) {
  if (ctx.json) return PrintJson(ctx.out(), response);
  PrintFields(ctx.out(), fields);
}

int PrintDeleted(Context& ctx, const nlohmann::json& response, const std::string& what) {
  if (ctx.json) {
    PrintJson(ctx.out(), response.is_null() ? nlohmann::json::object() : response);
  } else {
    ctx.out() << "deleted " << TerminalSafe(what) << "\n";
  }
  return 0;
}

}  // namespace osb::cli
