// oc create | list | get | exec | kill, and `oc sandbox delete` (alias of kill).
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
  CLI::Option* project_opt = nullptr;
  CLI::Option* template_opt = nullptr;
  CLI::Option* cpu_opt = nullptr;
  CLI::Option* memory_opt = nullptr;
  CLI::Option* disk_opt = nullptr;
  CLI::Option* timeout_opt = nullptr;
  CLI::Option* egress_opt = nullptr;
};

struct ExecFlags {
  std::string id;
  std::vector<std::string> command;
  std::vector<std::string> envs;
  std::string cwd;
  int timeout = 0;
  CLI::Option* cwd_opt = nullptr;
  CLI::Option* timeout_opt = nullptr;
};

void PrintSandbox(Context& ctx, const nlohmann::json& s) {
  if (ctx.json) return PrintJson(ctx.out(), s);
  PrintFields(ctx.out(), {{"sandboxID", Cell(s, "sandboxID")},
                          {"status", Cell(s, "status")},
                          {"projectId", Cell(s, "projectId")},
                          {"templateID", Cell(s, "templateID")},
                          {"cpuCount", Cell(s, "cpuCount")},
                          {"memoryMB", Cell(s, "memoryMB")},
                          {"diskMB", Cell(s, "diskMB")},
                          {"startedAt", Cell(s, "startedAt")},
                          {"endAt", Cell(s, "endAt")}});
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

  int code = 0;
  ApiClient* api = ctx.Api(&code);
  if (api == nullptr) return code;
  ApiClient::CallOptions options;
  options.timeout = std::chrono::minutes(2);  // creating may wait for a worker
  auto res = api->Call("POST", ApiPath({"sandboxes"}), &body, options);
  if (!res) return ctx.Fail(res.error());
  if (ctx.json) {
    PrintJson(ctx.out(), *res);
  } else {
    ctx.out() << TerminalSafe(res->at("sandboxID").get<std::string>()) << "\n";
  }
  return 0;
}

int List(Context& ctx) {
  return PrintList(ctx, ApiPath({"sandboxes"}),
                   {"ID", "STATUS", "PROJECT", "TEMPLATE", "CPU", "MEMORY_MB", "STARTED", "ENDS"},
                   [](const nlohmann::json& s) -> std::vector<std::string> {
                     return {Cell(s, "sandboxID"), Cell(s, "status"),   Cell(s, "projectId"), Cell(s, "templateID"),
                             Cell(s, "cpuCount"),  Cell(s, "memoryMB"), Cell(s, "startedAt"), Cell(s, "endAt")};
                   });
}

int Get(Context& ctx, const std::string& id) {
  int code = 0;
  ApiClient* api = ctx.Api(&code);
  if (api == nullptr) return code;
  auto res = api->Get(ApiPath({"sandboxes", id}));
  if (!res) return ctx.Fail(res.error());
  PrintSandbox(ctx, *res);
  return 0;
}

int Kill(Context& ctx, const std::string& id) {
  int code = 0;
  ApiClient* api = ctx.Api(&code);
  if (api == nullptr) return code;
  auto res = api->Delete(ApiPath({"sandboxes", id}));
  if (!res) return ctx.Fail(res.error());
  return PrintDeleted(ctx, *res, "sandbox " + id);
}

// Exit status as a shell would report it: 0-255 as-is; a negative value
// (killed by signal n) as 128+n; anything else 1 when non-zero.
int ProcessExitCode(long long code) {
  if (code >= 0 && code <= 255) return static_cast<int>(code);
  if (code < 0 && code >= -127) return static_cast<int>(128 - code);
  return 1;
}

int Exec(Context& ctx, const ExecFlags& f) {
  if (f.command.empty()) return ctx.Usage("missing the command: oc exec <id> -- CMD [ARGS...]");
  auto envs = ParseEnvPairs(f.envs);
  if (!envs) return ctx.Usage(envs.error().message);
  nlohmann::json body = {{"cmd", f.command.front()}};
  if (f.command.size() > 1) body["args"] = std::vector<std::string>(f.command.begin() + 1, f.command.end());
  if (!envs->empty()) body["envs"] = *envs;
  if (f.cwd_opt->count() > 0) body["cwd"] = f.cwd;
  if (f.timeout_opt->count() > 0) body["timeout"] = f.timeout;

  int code = 0;
  ApiClient* api = ctx.Api(&code);
  if (api == nullptr) return code;
  ApiClient::CallOptions options;
  // The command may legitimately run long; leave the server time to answer.
  options.timeout = f.timeout_opt->count() > 0 ? std::chrono::seconds(f.timeout + 60)
                                                : std::chrono::seconds(15 * 60);
  auto res = api->Call("POST", ApiPath({"sandboxes", f.id, "exec", "run"}), &body, options);
  if (!res) return ctx.Fail(res.error());
  const nlohmann::json& r = *res;
  if (ctx.json) {
    PrintJson(ctx.out(), r);
  } else {
    // Raw bytes, untouched: this is the command's own output.
    if (r.contains("stdout") && r["stdout"].is_string()) ctx.out() << r["stdout"].get<std::string>();
    ctx.out().flush();
    if (r.contains("stderr") && r["stderr"].is_string()) ctx.err() << r["stderr"].get<std::string>();
    for (const char* stream : {"stdout", "stderr"}) {
      std::string flag = std::string(stream) + "Truncated";
      if (r.contains(flag) && r[flag].is_boolean() && r[flag].get<bool>()) {
        ctx.Warn(std::string("the command's ") + stream + " was truncated by the server");
      }
    }
  }
  if (!r.contains("exitCode") || !r["exitCode"].is_number_integer()) {
    return ctx.Fail(MakeError(ErrorCode::kInternal, "the server's exec response has no exitCode"));
  }
  return ProcessExitCode(r["exitCode"].get<long long>());
}

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
  cf->egress_opt = create->add_option("--egress-allow", cf->egress,
                                      "Egress allowlist for this sandbox (overrides the project's); "
                                      "repeatable or comma-separated")
                       ->delimiter(',')
                       ->type_name("HOST");
  OnRun(create, ctx, [&ctx, cf] { return Create(ctx, *cf); });

  auto* list = root.add_subcommand("list", "List sandboxes");
  OnRun(list, ctx, [&ctx] { return List(ctx); });

  auto get_id = std::make_shared<std::string>();
  auto* get = root.add_subcommand("get", "Show one sandbox");
  get->add_option("id", *get_id, "Sandbox id")->required()->check(NonEmptyArg());
  OnRun(get, ctx, [&ctx, get_id] { return Get(ctx, *get_id); });

  auto ef = std::make_shared<ExecFlags>();
  auto* exec = root.add_subcommand(
      "exec", "Run a command in a sandbox: prints its stdout/stderr, exits with its exit code");
  exec->add_option("id", ef->id, "Sandbox id")->required()->check(NonEmptyArg());
  exec->add_option("command", ef->command, "Command and arguments; put them after -- when they contain options")->required();
  exec->add_option("--env", ef->envs, "Environment variable K=V for this command; repeatable")
      ->type_name("K=V");
  ef->cwd_opt = exec->add_option("--cwd", ef->cwd, "Working directory inside the sandbox");
  ef->timeout_opt = exec->add_option("--timeout", ef->timeout, "Kill the command after this many seconds");
  OnRun(exec, ctx, [&ctx, ef] { return Exec(ctx, *ef); });

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
