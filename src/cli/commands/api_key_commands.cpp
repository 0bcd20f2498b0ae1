// oc api-key create|list|delete
//
// A new key is printed exactly once (the server keeps only its hash); lists
// show ids, names, scopes and dates. `--scope sandbox` (the server's default)
// is what a CI job or an agent harness should hold; `--expires-in 30d` or
// `--expires-at RFC3339` bound its life.
#include <memory>

#include "cli/commands/commands.h"
#include "cli/output.h"
#include "common/secure_memory.h"

namespace osb::cli {
namespace {

std::string ExpiryCell(const nlohmann::json& k) {
  return k.contains("expiresAt") && k["expiresAt"].is_string() ? k["expiresAt"].get<std::string>() : "never";
}

// Prints a new key once, then wipes it from the response (the only copy).
void PrintNewKey(Context& ctx, nlohmann::json& doc) {
  if (ctx.json) {
    PrintJson(ctx.out(), doc);
  } else {
    PrintFields(ctx.out(), {{"id", Cell(doc, "id")}, {"name", Cell(doc, "name")}, {"scope", Cell(doc, "scope")},
                            {"createdAt", Cell(doc, "createdAt")}, {"expiresAt", ExpiryCell(doc)},
                            {"key", Cell(doc, "key")}});
    ctx.Warn("the key is shown only now: store it in a secret manager (oc login --api-key-stdin reads it)");
  }
  if (doc.contains("key") && doc["key"].is_string()) SecureWipe(doc["key"].get_ref<std::string&>());
}

}  // namespace

void AddApiKeyCommands(CLI::App& root, Context& ctx) {
  auto* keys = root.add_subcommand("api-key", "API keys of your org: create (shown once), list, delete");
  keys->require_subcommand(1);

  struct CreateArgs {
    std::string name, scope, expires_in, expires_at;
  };
  auto create_args = std::make_shared<CreateArgs>();
  auto* create = keys->add_subcommand("create", "Create an API key; it is printed once, save it now");
  create->add_option("name", create_args->name, "What the key is for (e.g. \"ci pipeline\")")
      ->required()
      ->check(NonEmptyArg());
  create->add_option("--scope", create_args->scope,
                     "sandbox: create, use and delete sandboxes, read projects (the default); admin: "
                     "everything, including secrets and API keys")
      ->check(CLI::IsMember({"sandbox", "admin"}));
  auto* expires_in = create->add_option("--expires-in", create_args->expires_in,
                                        "Expire the key after this long: a number and a unit s, m, h or d (e.g. 30d)");
  create->add_option("--expires-at", create_args->expires_at, "Expire the key at this RFC 3339 time")
      ->excludes(expires_in);
  OnRun(create, ctx, [&ctx, create_args] {
    nlohmann::json body{{"name", create_args->name}};
    if (!create_args->scope.empty()) body["scope"] = create_args->scope;
    if (!create_args->expires_in.empty()) body["expiresIn"] = create_args->expires_in;
    if (!create_args->expires_at.empty()) body["expiresAt"] = create_args->expires_at;
    return SendOne(ctx, "POST", ApiPath({"api-keys"}), body, PrintNewKey);
  });

  auto* list = keys->add_subcommand("list", "List your org's API keys (never the keys themselves)");
  OnRun(list, ctx, [&ctx] {
    return PrintList(ctx, ApiPath({"api-keys"}), {"ID", "NAME", "SCOPE", "CREATED", "EXPIRES"},
                     [](const nlohmann::json& k) -> std::vector<std::string> {
                       return {Cell(k, "id"), Cell(k, "name"), Cell(k, "scope"), Cell(k, "createdAt"), ExpiryCell(k)};
                     });
  });

  auto del_id = std::make_shared<std::string>();
  auto* del = keys->add_subcommand("delete", "Revoke an API key at once (the org's last unexpired admin key cannot be deleted)");
  del->add_option("id", *del_id, "Key id (key_..., from oc api-key list)")->required()->check(NonEmptyArg());
  OnRun(del, ctx, [&ctx, del_id] { return DeleteOne(ctx, ApiPath({"api-keys", *del_id}), "API key " + *del_id); });
}

}  // namespace osb::cli
