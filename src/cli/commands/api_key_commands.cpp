// oc api-key create|list|delete
//
// A new key is printed exactly once (the server keeps only its hash); lists
// show ids, names and dates.
#include <memory>

#include "cli/commands/commands.h"
#include "cli/output.h"
#include "common/secure_memory.h"

namespace osb::cli {

void AddApiKeyCommands(CLI::App& root, Context& ctx) {
  auto* keys = root.add_subcommand("api-key", "API keys of your org: create (shown once), list, delete");
  keys->require_subcommand(1);

  auto create_name = std::make_shared<std::string>();
  auto* create = keys->add_subcommand("create", "Create an API key; it is printed once, save it now");
  create->add_option("name", *create_name, "What the key is for (e.g. \"ci pipeline\")")
      ->required()
      ->check(NonEmptyArg());
  OnRun(create, ctx, [&ctx, create_name] {
    int code = 0;
    ApiClient* api = ctx.Api(&code);
    if (api == nullptr) return code;
    auto res = api->Post(ApiPath({"api-keys"}), nlohmann::json{{"name", *create_name}});
    if (!res) return ctx.Fail(res.error());
    nlohmann::json doc = *res;
    if (ctx.json) {
      PrintJson(ctx.out(), doc);
    } else {
      PrintFields(ctx.out(), {{"id", Cell(doc, "id")}, {"name", Cell(doc, "name")},
                              {"createdAt", Cell(doc, "createdAt")}, {"key", Cell(doc, "key")}});
      ctx.Warn("the key is shown only now: store it in a secret manager (oc login --api-key-stdin reads it)");
    }
    if (doc.contains("key") && doc["key"].is_string()) SecureWipe(doc["key"].get_ref<std::string&>());
    return 0;
  });

  auto* list = keys->add_subcommand("list", "List your org's API keys (never the keys themselves)");
  OnRun(list, ctx, [&ctx] {
    return PrintList(ctx, ApiPath({"api-keys"}), {"ID", "NAME", "CREATED"},
                     [](const nlohmann::json& k) -> std::vector<std::string> {
                       return {Cell(k, "id"), Cell(k, "name"), Cell(k, "createdAt")};
                     });
  });

  auto del_id = std::make_shared<std::string>();
  auto* del = keys->add_subcommand("delete", "Revoke an API key at once (the org's last key cannot be deleted)");
  del->add_option("id", *del_id, "Key id (key_..., from oc api-key list)")->required()->check(NonEmptyArg());
  OnRun(del, ctx, [&ctx, del_id] {
    int code = 0;
    ApiClient* api = ctx.Api(&code);
    if (api == nullptr) return code;
    auto res = api->Delete(ApiPath({"api-keys", *del_id}));
    if (!res) return ctx.Fail(res.error());
    return PrintDeleted(ctx, *res, "API key " + *del_id);
  });
}

}  // namespace osb::cli
