// oc project create|list|get|update|delete
#include <memory>

#include "cli/commands/commands.h"
#include "cli/output.h"

namespace osb::cli {

namespace {

// Flags shared by create and update. Presence is read from the Option
// pointers so that update sends only what was given.
struct ProjectFlags {
  std::string ref;  // update/get/delete: id or name
  std::string name;
  std::string template_id;
  int cpu = 0;
  int memory = 0;
  int disk = 0;
  int timeout = 0;
  std::vector<std::string> egress;
  std::vector<std::string> groups;
  bool clear_egress = false;
  bool clear_groups = false;
  CLI::Option* name_opt = nullptr;
  CLI::Option* template_opt = nullptr;
  CLI::Option* cpu_opt = nullptr;
  CLI::Option* memory_opt = nullptr;
  CLI::Option* disk_opt = nullptr;
  CLI::Option* timeout_opt = nullptr;
  CLI::Option* egress_opt = nullptr;
  CLI::Option* groups_opt = nullptr;
  CLI::Option* clear_egress_opt = nullptr;
  CLI::Option* clear_groups_opt = nullptr;
};

void AddProjectFlags(CLI::App* sub, ProjectFlags& f, bool update) {
  f.name_opt = sub->add_option("--name", f.name,
                               update ? "Rename the project" : "Project name, unique in the org");
  f.template_opt = sub->add_option("--template", f.template_id, "Default sandbox template");
  f.cpu_opt = sub->add_option("--cpu", f.cpu, "Default CPU count (1-64)");
  f.memory_opt = sub->add_option("--memory", f.memory, "Default memory in MB (128-262144)");
  f.disk_opt = sub->add_option("--disk-mb", f.disk,
                               "Default writable disk of image sandboxes in MB (64-65536)");
  f.timeout_opt = sub->add_option("--timeout", f.timeout, "Default sandbox lifetime in seconds (at most the server's --max-sandbox-lifetime)");
  f.egress_opt = sub->add_option("--egress-allow,--egress-allowlist", f.egress,
                                 "Host the sandbox may reach (name or *.suffix); repeatable or "
                                 "comma-separated. No entries = any host")
                     ->delimiter(',')
                     ->type_name("HOST");
  f.groups_opt = sub->add_option("--secret-group", f.groups,
                                 "Attach an org secret group (in order; later wins); repeatable or "
                                 "comma-separated")
                     ->delimiter(',')
                     ->type_name("GROUP");
  if (update) {
    f.clear_egress_opt = sub->add_flag("--clear-egress-allow", f.clear_egress,
                                       "Empty the egress allowlist (= any host)")
                             ->excludes(f.egress_opt);
    f.clear_groups_opt = sub->add_flag("--clear-secret-groups", f.clear_groups,
                                       "Detach every secret group")
                             ->excludes(f.groups_opt);
  }
}

nlohmann::json ProjectBody(const ProjectFlags& f) {
  nlohmann::json body = nlohmann::json::object();
  if (f.name_opt->count() > 0) body["name"] = f.name;
  if (f.template_opt->count() > 0) body["template"] = f.template_id;
  if (f.cpu_opt->count() > 0) body["cpuCount"] = f.cpu;
  if (f.memory_opt->count() > 0) body["memoryMB"] = f.memory;
  if (f.disk_opt->count() > 0) body["diskMB"] = f.disk;
  if (f.timeout_opt->count() > 0) body["timeoutSec"] = f.timeout;
  if (f.egress_opt->count() > 0) body["egressAllowlist"] = NonEmpty(f.egress);
  if (f.groups_opt->count() > 0) body["secretGroups"] = NonEmpty(f.groups);
  if (f.clear_egress) body["egressAllowlist"] = nlohmann::json::array();
  if (f.clear_groups) body["secretGroups"] = nlohmann::json::array();
  return body;
}

std::string Allowlist(const nlohmann::json& project) {
  std::string hosts = Cell(project, "egressAllowlist");
  return hosts == "-" ? "(any host)" : hosts;
}

void PrintProject(Context& ctx, const nlohmann::json& p) {
  PrintObject(ctx, p,
              {{"id", Cell(p, "id")},
               {"name", Cell(p, "name")},
               {"template", Cell(p, "template")},
               {"cpuCount", Cell(p, "cpuCount")},
               {"memoryMB", Cell(p, "memoryMB")},
               {"diskMB", Cell(p, "diskMB")},
               {"timeoutSec", Cell(p, "timeoutSec")},
               {"egressAllowlist", Allowlist(p)},
               {"secretGroups", Cell(p, "secretGroups")},
               {"createdAt", Cell(p, "createdAt")},
               {"updatedAt", Cell(p, "updatedAt")}});
}

int Create(Context& ctx, const ProjectFlags& f) {
  if (f.name.empty()) return ctx.Usage("--name must not be empty");
  return SendOne(ctx, "POST", ApiPath({"projects"}), ProjectBody(f), PrintProject);
}

int Update(Context& ctx, const ProjectFlags& f) {
  nlohmann::json body = ProjectBody(f);
  if (body.empty()) {
    return ctx.Usage("nothing to update: give at least one of --name --template --cpu --memory "
                     "--disk-mb --timeout --egress-allow --clear-egress-allow --secret-group "
                     "--clear-secret-groups");
  }
  if (f.name_opt->count() > 0 && f.name.empty()) return ctx.Usage("--name must not be empty");
  return SendOne(ctx, "PATCH", ApiPath({"projects", f.ref}), body, PrintProject);
}

int List(Context& ctx) {
  return PrintList(ctx, ApiPath({"projects"}),
                   {"NAME", "ID", "TEMPLATE", "CPU", "MEMORY_MB", "TIMEOUT_S", "EGRESS_ALLOW", "SECRET_GROUPS"},
                   [](const nlohmann::json& p) -> std::vector<std::string> {
                     return {Cell(p, "name"),     Cell(p, "id"),         Cell(p, "template"), Cell(p, "cpuCount"),
                             Cell(p, "memoryMB"), Cell(p, "timeoutSec"), Allowlist(p),        Cell(p, "secretGroups")};
                   });
}

int Get(Context& ctx, const std::string& ref) { return ShowOne(ctx, ApiPath({"projects", ref}), PrintProject); }

int Delete(Context& ctx, const std::string& ref) {
  return DeleteOne(ctx, ApiPath({"projects", ref}), "project " + ref);
}

}  // namespace

void AddProjectCommands(CLI::App& root, Context& ctx) {
  auto* group = root.add_subcommand("project", "Create, list, inspect, update and delete projects");
  group->require_subcommand(1);

  auto create_flags = std::make_shared<ProjectFlags>();
  auto* create = group->add_subcommand("create", "Create a project (prints it)");
  AddProjectFlags(create, *create_flags, /*update=*/false);
  create_flags->name_opt->required();
  OnRun(create, ctx, [&ctx, create_flags] { return Create(ctx, *create_flags); });

  auto* list = group->add_subcommand("list", "List the org's projects");
  OnRun(list, ctx, [&ctx] { return List(ctx); });

  auto get_ref = std::make_shared<std::string>();
  auto* get = group->add_subcommand("get", "Show one project");
  get->add_option("project", *get_ref, "Project id or name")->required()->check(NonEmptyArg());
  OnRun(get, ctx, [&ctx, get_ref] { return Get(ctx, *get_ref); });

  auto update_flags = std::make_shared<ProjectFlags>();
  auto* update = group->add_subcommand(
      "update", "Change a project: only the flags given change, everything else is kept");
  update->add_option("project", update_flags->ref, "Project id or name")->required()->check(NonEmptyArg());
  AddProjectFlags(update, *update_flags, /*update=*/true);
  OnRun(update, ctx, [&ctx, update_flags] { return Update(ctx, *update_flags); });

  auto delete_ref = std::make_shared<std::string>();
  auto* del = group->add_subcommand("delete", "Delete a project and its secrets");
  del->add_option("project", *delete_ref, "Project id or name")->required()->check(NonEmptyArg());
  OnRun(del, ctx, [&ctx, delete_ref] { return Delete(ctx, *delete_ref); });
}

}  // namespace osb::cli
