// oc create | list | get | kill (exec: exec_commands.cpp), and `oc sandbox delete` (alias of kill).
#include <memory>

#include "cli/commands/commands.h"
#include "cli/output.h"

namespace osb::cli {

namespace {

struct CreateFlags {
  std::string project;
  std::string template_id;
  int cpu = 0;
  int memory = 0;
  int disk = 0;
  int timeout = 0;
  std::vector<std::string> envs;
  std::vector<std::string> egress;
  std::string from_checkpoint;
  std::vector<std::string> metadata;
  CLI::Option* project_opt = nullptr;
  CLI::Option* template_opt = nullptr;
  CLI::Option* cpu_opt = nullptr;
  CLI::Option* memory_opt = nullptr;
  CLI::Option* disk_opt = nullptr;
  CLI::Option* timeout_opt = nullptr;
  CLI::Option* egress_opt = nullptr;
};

void PrintSandbox(Context& ctx, const nlohmann::json& s) {
  PrintObject(ctx, s,
              {{"sandboxID", Cell(s, "sandboxID")},
               {"status", Cell(s, "status")},
               {"projectId", Cell(s, "projectId")},
               {"templateID", Cell(s, "templateID")},
               {"cpuCount", Cell(s, "cpuCount")},
               {"memoryMB", Cell(s, "memoryMB")},
               {"diskMB", Cell(s, "diskMB")},
               {"startedAt", Cell(s, "startedAt")},
               {"endAt", Cell(s, "endAt")},
               {"metadata", s.contains("metadata") && s["metadata"].is_object() && !s["metadata"].empty()
                                ? s["metadata"].dump()
                                : "-"}});
}

int Create(Context& ctx, const CreateFlags& f) {
  auto envs = ParseEnvPairs(f.envs);
  if (!envs) return ctx.Usage(envs.error().message);
  nlohmann::json body = nlohmann::json::object();
  if (f.project_opt->count() > 0) body["project"] = f.project;
  if (f.template_opt->count() > 0) body["templateID"] = f.template_id;
  if (f.cpu_opt->count() > 0) body["cpuCount"] = f.cpu;
  if (f.memory_opt->count() > 0) body["memoryMB"] = f.memory;
  if (f.disk_opt->count() > 0) body["diskMB"] = f.disk;
  if (f.timeout_opt->count() > 0) body["timeout"] = f.timeout;
  if (!envs->empty()) body["envs"] = *envs;
  if (f.egress_opt->count() > 0) body["egressAllowlist"] = NonEmpty(f.egress);
  if (!f.from_checkpoint.empty()) body["fromCheckpoint"] = f.from_checkpoint;
  if (!f.metadata.empty()) {
    nlohmann::json m = nlohmann::json::object();
    for (const auto& item : f.metadata) {
      const auto eq = item.find('=');
      if (eq == std::string::npos || eq == 0) return ctx.Usage("--metadata: expected K=V, got '" + item + "'");
      m[item.substr(0, eq)] = item.substr(eq + 1);
    }
    body["metadata"] = m;
  }

  ApiClient::CallOptions options;
  options.timeout = std::chrono::minutes(2);  // creating may wait for a worker
  return CallOne(ctx, "POST", ApiPath({"sandboxes"}), &body, options, [](Context& ctx, const nlohmann::json& s) {
    if (ctx.json) return PrintJson(ctx.out(), s);
    ctx.out() << TerminalSafe(s.at("sandboxID").get<std::string>()) << "\n";
  });
}

int List(Context& ctx) {
  return PrintList(ctx, ApiPath({"sandboxes"}),
                   {"ID", "STATUS", "PROJECT", "TEMPLATE", "CPU", "MEMORY_MB", "STARTED", "ENDS"},
                   [](const nlohmann::json& s) -> std::vector<std::string> {
                     return {Cell(s, "sandboxID"), Cell(s, "status"),   Cell(s, "projectId"), Cell(s, "templateID"),
                             Cell(s, "cpuCount"),  Cell(s, "memoryMB"), Cell(s, "startedAt"), Cell(s, "endAt")};
                   });
}

int Get(Context& ctx, const std::string& id) { return ShowOne(ctx, ApiPath({"sandboxes", id}), PrintSandbox); }

int Kill(Context& ctx, const std::string& id) { return DeleteOne(ctx, ApiPath({"sandboxes", id}), "sandbox " + id); }

}  // namespace

void AddSandboxCommands(CLI::App& root, Context& ctx) {
  auto cf = std::make_shared<CreateFlags>();
  auto* create = root.add_subcommand("create", "Create a sandbox and print its id");
  cf->project_opt = create->add_option("--project", cf->project,
                                       "Project id or name: its defaults, allowlist and secrets apply");
  cf->template_opt = create->add_option("--template", cf->template_id, "Template (overrides the project's)");
  cf->cpu_opt = create->add_option("--cpu", cf->cpu, "CPU count (overrides the project's)");
  cf->memory_opt = create->add_option("--memory", cf->memory, "Memory in MB (overrides the project's)");
  cf->disk_opt = create->add_option("--disk-mb", cf->disk,
                                    "Writable disk of an image sandbox in MB, 64-65536 (overrides the project's)");
  cf->timeout_opt = create->add_option("--timeout", cf->timeout, "Lifetime in seconds (overrides the project's)");
  create->add_option("--env", cf->envs, "Plain environment variable K=V; repeatable; wins over a secret of the same name")
      ->type_name("K=V");
  cf->egress_opt = create->add_option("--egress-allow,--egress-allowlist", cf->egress,
                                      "Egress allowlist for this sandbox (overrides the project's); "
                                      "repeatable or comma-separated")
                       ->delimiter(',')
                       ->type_name("HOST");
  create->add_option("--from-checkpoint", cf->from_checkpoint,
                     "Restore this checkpoint's files and config (fresh tokens for the current secrets)")
      ->check(NonEmptyArg());
  create->add_option("--metadata", cf->metadata,
                     "Metadata K=V kept with the sandbox and shown by get/list --json; repeatable")
      ->type_name("K=V");
  OnRun(create, ctx, [&ctx, cf] { return Create(ctx, *cf); });

  auto* list = root.add_subcommand("list", "List sandboxes");
  list->alias("ls");
  OnRun(list, ctx, [&ctx] { return List(ctx); });

  auto get_id = std::make_shared<std::string>();
  auto* get = root.add_subcommand("get", "Show one sandbox");
  get->add_option("id", *get_id, "Sandbox id")->required()->check(NonEmptyArg());
  OnRun(get, ctx, [&ctx, get_id] { return Get(ctx, *get_id); });

  // `exec` lives in exec_commands.cpp (streamed by default).

  auto kill_id = std::make_shared<std::string>();
  auto* kill = root.add_subcommand("kill", "Destroy a sandbox");
  kill->add_option("id", *kill_id, "Sandbox id")->required()->check(NonEmptyArg());
  OnRun(kill, ctx, [&ctx, kill_id] { return Kill(ctx, *kill_id); });

  auto* sandbox = root.add_subcommand("sandbox", "Sandbox verbs by their long name");
  sandbox->require_subcommand(1);
  auto delete_id = std::make_shared<std::string>();
  auto* del = sandbox->add_subcommand("delete", "Destroy a sandbox (same as `oc kill`)");
  del->add_option("id", *delete_id, "Sandbox id")->required()->check(NonEmptyArg());
  OnRun(del, ctx, [&ctx, delete_id] { return Kill(ctx, *delete_id); });
}

}  // namespace osb::cli
