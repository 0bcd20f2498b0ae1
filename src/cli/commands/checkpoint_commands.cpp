// oc checkpoint create|list|delete, oc timeout, oc hibernate, oc wake
// (and `oc create --from-checkpoint`, in sandbox_commands.cpp).
#include <memory>

#include "cli/commands/commands.h"
#include "cli/output.h"

namespace osb::cli {
namespace {

// Saving or restoring files may take a while.
constexpr auto kLongCall = std::chrono::minutes(10);

void PrintCheckpoint(Context& ctx, const nlohmann::json& c) {
  if (ctx.json) return PrintJson(ctx.out(), c);
  ctx.out() << TerminalSafe(Cell(c, "checkpointID")) << "\n";
}

void PrintSandboxState(Context& ctx, const nlohmann::json& s) {
  PrintObject(ctx, s,
              {{"sandboxID", Cell(s, "sandboxID")},
               {"status", Cell(s, "status")},
               {"startedAt", Cell(s, "startedAt")},
               {"endAt", Cell(s, "endAt")}});
}

int PostSandbox(Context& ctx, const std::string& id, const std::string& verb, const nlohmann::json& body,
                bool checkpoint_result) {
  ApiClient::CallOptions options;
  options.timeout = kLongCall;
  return CallOne(ctx, "POST", ApiPath({"sandboxes", id, verb}), &body, options,
                 checkpoint_result ? PrintCheckpoint : PrintSandboxState);
}

}  // namespace

void AddCheckpointCommands(CLI::App& root, Context& ctx) {
  auto* cp = root.add_subcommand("checkpoint", "Save, list and delete checkpoints (a sandbox's files + config)");
  cp->require_subcommand(1);

  auto create_id = std::make_shared<std::string>();
  auto* create = cp->add_subcommand("create", "Save a running sandbox's files and config; prints the checkpoint id");
  create->add_option("sandbox", *create_id, "Sandbox id")->required()->check(NonEmptyArg());
  OnRun(create, ctx, [&ctx, create_id] {
    return PostSandbox(ctx, *create_id, "checkpoints", nlohmann::json::object(), true);
  });

  auto list_id = std::make_shared<std::string>();
  auto* list = cp->add_subcommand("list", "List checkpoints (of one sandbox when given)");
  list->add_option("sandbox", *list_id, "Sandbox id");
  OnRun(list, ctx, [&ctx, list_id] {
    const std::string path =
        list_id->empty() ? ApiPath({"checkpoints"}) : ApiPath({"sandboxes", *list_id, "checkpoints"});
    return PrintList(ctx, path, {"ID", "SANDBOX", "PROJECT", "TEMPLATE", "SIZE_BYTES", "CREATED"},
                     [](const nlohmann::json& c) -> std::vector<std::string> {
                       return {Cell(c, "checkpointID"), Cell(c, "sandboxID"), Cell(c, "projectId"),
                               Cell(c, "templateID"),   Cell(c, "sizeBytes"), Cell(c, "createdAt")};
                     });
  });

  auto del_sb = std::make_shared<std::string>();
  auto del_id = std::make_shared<std::string>();
  auto* del = cp->add_subcommand("delete", "Delete a checkpoint");
  del->add_option("sandbox", *del_sb, "Sandbox id the checkpoint was taken of")->required()->check(NonEmptyArg());
  del->add_option("checkpoint", *del_id, "Checkpoint id")->required()->check(NonEmptyArg());
  OnRun(del, ctx, [&ctx, del_sb, del_id] {
    return DeleteOne(ctx, ApiPath({"sandboxes", *del_sb, "checkpoints", *del_id}), "checkpoint " + *del_id);
  });

  auto t_id = std::make_shared<std::string>();
  auto t_secs = std::make_shared<int>(0);
  auto* timeout = root.add_subcommand("timeout", "Set a running sandbox's deadline to SECS from now (extend it)");
  timeout->add_option("sandbox", *t_id, "Sandbox id")->required()->check(NonEmptyArg());
  timeout->add_option("secs", *t_secs, "Seconds from now (at most the server's --max-sandbox-lifetime from its start)")
      ->required()
      ->check(CLI::PositiveNumber);
  OnRun(timeout, ctx, [&ctx, t_id, t_secs] {
    return PostSandbox(ctx, *t_id, "timeout", {{"timeoutSec", *t_secs}}, false);
  });

  auto h_id = std::make_shared<std::string>();
  auto* hibernate = root.add_subcommand("hibernate", "Checkpoint a sandbox and free everything it holds");
  hibernate->add_option("sandbox", *h_id, "Sandbox id")->required()->check(NonEmptyArg());
  OnRun(hibernate, ctx, [&ctx, h_id] {
    return PostSandbox(ctx, *h_id, "hibernate", nlohmann::json::object(), false);
  });

  auto w_id = std::make_shared<std::string>();
  auto* wake = root.add_subcommand("wake", "Restore a hibernated sandbox under its id (fresh tokens)");
  wake->add_option("sandbox", *w_id, "Sandbox id")->required()->check(NonEmptyArg());
  OnRun(wake, ctx, [&ctx, w_id] { return PostSandbox(ctx, *w_id, "wake", nlohmann::json::object(), false); });
}

}  // namespace osb::cli
