// Helpers shared by the verb files (declared in commands.h).
#include "cli/commands/commands.h"
#include "cli/output.h"

namespace osb::cli {

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

int PrintList(Context& ctx, const std::string& path, std::vector<std::string> columns,
              const std::function<std::vector<std::string>(const nlohmann::json& item)>& row) {
  int code = 0;
  ApiClient* api = ctx.Api(&code);
  if (api == nullptr) return code;
  auto res = api->Get(path);
  if (!res) return ctx.Fail(res.error());
  if (ctx.json) {
    PrintJson(ctx.out(), *res);
    return 0;
  }
  Table table(std::move(columns));
  for (const auto& item : ListItems(*res)) table.AddRow(row(item));
  table.Print(ctx.out());
  return 0;
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
