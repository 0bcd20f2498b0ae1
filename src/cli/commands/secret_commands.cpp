// oc secret set|list|delete <project> ...
// oc secret-group create|list|get|delete, oc secret-group secret set|list|delete <group> ...
//
// Secret values are write-only: they are read from the command line or
// stdin, sent once in a PUT body and wiped; nothing oc prints can contain
// them (responses are scrubbed of any "value" field, error messages of the
// value itself).
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/commands/commands.h"
#include "cli/output.h"
#include "cli/secret_input.h"
#include "common/secret_kinds.h"
#include "common/secure_memory.h"

namespace osb::cli {

namespace {

// Where the secrets live: a project's own group or an org secret group.
struct Owner {
  const char* collection;  // "projects" or "secret-groups"
  const char* noun;        // "project" or "secret group"
};
constexpr Owner kProjectOwner{"projects", "project"};
constexpr Owner kGroupOwner{"secret-groups", "secret group"};

struct SetFlags {
  std::string owner;
  std::string name;
  std::string value;
  bool from_stdin = false;
  std::vector<std::string> allowed_hosts;
  CLI::Option* value_opt = nullptr;
  // Issue 16: secret kinds and request rules.
  std::string kind = "value";
  std::string from_file;
  std::vector<std::string> allow_requests;
  std::string on_disallowed;
};

// A secret with no allowedHosts goes only to the egress allowlist's hosts
// (nowhere when that list is empty); "*" = any host the sandbox may reach.
std::string Hosts(const nlohmann::json& secret) {
  std::string hosts = Cell(secret, "allowedHosts");
  if (hosts == "-") return "(egress allowlist only)";
  if (hosts == "*") return "* (any reachable host)";
  return hosts;
}

void WipeStrings(nlohmann::json& j, std::vector<std::string>* redact) {
  if (j.is_string()) {
    if (redact != nullptr && !j.get_ref<std::string&>().empty()) redact->push_back(j.get<std::string>());
    SecureWipe(j.get_ref<std::string&>());
  } else if (j.is_object() || j.is_array()) {
    for (auto& v : j) WipeStrings(v, redact);
  }
}

// The request rules and the kind of a PUT body (or a usage error).
std::optional<std::string> AddKindFields(const SetFlags& f, nlohmann::json* body) {
  if (!ParseSecretKind(f.kind)) return "--kind: must be value, hmac, aws-sigv4 or oauth2-refresh";
  if (!f.allow_requests.empty()) {
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& text : f.allow_requests) {
      auto r = ParseRequestRuleText(text, "--allow-request");
      if (!r) return r.error().message;
      rules.push_back({{"host", r->host}, {"methods", r->methods}, {"pathPrefix", r->path_prefix}});
    }
    (*body)["allowedRequests"] = rules;
  }
  if (!f.on_disallowed.empty()) (*body)["onDisallowedRequest"] = f.on_disallowed;
  if (f.kind != "value") (*body)["kind"] = f.kind;
  return std::nullopt;
}

void PrintSet(Context& ctx, const Owner& owner, const SetFlags& f, const nlohmann::json& shown) {
  if (auto w = shown.find("warnings"); w != shown.end() && w->is_array()) {
    for (const auto& text : *w) {
      if (text.is_string()) ctx.Warn(TerminalSafe(text.get<std::string>()));
    }
  }
  if (ctx.json) {
    PrintJson(ctx.out(), shown);
  } else {
    ctx.out() << "secret " << f.name << (f.kind == "value" ? "" : " (" + f.kind + ")") << " set on " << owner.noun
              << " " << TerminalSafe(f.owner) << " (allowed hosts: " << Hosts(shown) << ")\n";
  }
}

// A signing kind: the material JSON object from --from-file (or stdin).
int SetMaterial(Context& ctx, const Owner& owner, SetFlags& f) {
  if (f.value_opt->count() > 0) {
    return ctx.Usage("a " + f.kind + " secret takes its material from --from-file FILE (JSON), not VALUE");
  }
  if (f.from_file.empty() && !f.from_stdin) {
    return ctx.Usage("missing the material: give --from-file FILE (a JSON object) or --from-stdin");
  }
  std::string text;
  if (!f.from_file.empty()) {
    std::ifstream in(f.from_file, std::ios::binary);
    if (!in) return ctx.Usage("cannot read " + TerminalSafe(f.from_file));
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  } else {
    auto read = ReadSecretFromStream(ctx.in());
    if (!read) return ctx.Usage(read.error().message);
    text = std::move(*read);
  }
  nlohmann::json material = nlohmann::json::parse(text, nullptr, false);
  SecureWipe(text);
  if (material.is_discarded() || !material.is_object()) {
    WipeStrings(material, nullptr);
    return ctx.Usage("the material must be a JSON object (docs/secrets.md shows one per kind)");
  }
  nlohmann::json body = {{"material", material}, {"allowedHosts", NonEmpty(f.allowed_hosts)}};
  ApiClient::CallOptions options;
  WipeStrings(material, &options.redact);  // no material string may show in anything printed
  auto wipe_all = [&] {
    WipeStrings(body, nullptr);
    for (auto& r : options.redact) SecureWipe(r);
  };
  if (auto err = AddKindFields(f, &body)) {
    wipe_all();
    return ctx.Usage(*err);
  }
  int code = 0;
  ApiClient* api = ctx.Api(&code);
  if (api == nullptr) {
    wipe_all();
    return code;
  }
  auto res = api->Call("PUT", ApiPath({owner.collection, f.owner, "secrets", f.name}), &body, options);
  wipe_all();
  if (!res) return ctx.Fail(res.error());
  PrintSet(ctx, owner, f, res->is_null() ? nlohmann::json{{"name", f.name}} : *res);
  return 0;
}

int Set(Context& ctx, const Owner& owner, SetFlags& f) {
  const bool have_value = f.value_opt->count() > 0;
  if (!IsEnvName(f.name)) {
    return ctx.Usage("invalid secret name '" + TerminalSafe(f.name) +
                     "': must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
  }
  if (f.kind != "value") return SetMaterial(ctx, owner, f);
  if (!f.from_file.empty()) return ctx.Usage("--from-file is for --kind hmac|aws-sigv4|oauth2-refresh (the material)");
  if (have_value && f.from_stdin) return ctx.Usage("give the value either as VALUE or with --from-stdin, not both");
  if (!have_value && !f.from_stdin) return ctx.Usage("missing the value: give VALUE or --from-stdin");

  std::string value;
  if (f.from_stdin) {
    auto read = ReadSecretFromStream(ctx.in());
    if (!read) return ctx.Usage(read.error().message);
    value = std::move(*read);
  } else {
    value = std::move(f.value);
    SecureWipe(f.value);
    if (value.empty()) return ctx.Usage("the secret value must not be empty");
    if (value.size() > kMaxSecretBytes) {
      SecureWipe(value);
      return ctx.Usage("the secret value is larger than " + std::to_string(kMaxSecretBytes) + " bytes");
    }
    ctx.Warn("a value given on the command line may be saved in your shell history and is visible "
             "in the process list; prefer --from-stdin");
  }

  int code = 0;
  ApiClient* api = ctx.Api(&code);
  if (api == nullptr) {
    SecureWipe(value);
    return code;
  }
  nlohmann::json body = {{"value", value}, {"allowedHosts", NonEmpty(f.allowed_hosts)}};
  if (auto err = AddKindFields(f, &body)) {
    SecureWipe(body["value"].get_ref<std::string&>());
    SecureWipe(value);
    return ctx.Usage(*err);
  }
  ApiClient::CallOptions options;
  options.redact = {value};
  auto res = api->Call("PUT", ApiPath({owner.collection, f.owner, "secrets", f.name}), &body, options);
  SecureWipe(body["value"].get_ref<std::string&>());
  SecureWipe(value);
  SecureWipe(options.redact.front());
  if (!res) return ctx.Fail(res.error());

  PrintSet(ctx, owner, f, res->is_null() ? nlohmann::json{{"name", f.name}} : *res);
  return 0;
}

int List(Context& ctx, const Owner& owner, const std::string& ref) {
  return PrintList(ctx, ApiPath({owner.collection, ref, "secrets"}), {"NAME", "KIND", "ALLOWED_HOSTS", "UPDATED"},
                   [](const nlohmann::json& s) -> std::vector<std::string> {
                     return {Cell(s, "name"), s.contains("kind") ? Cell(s, "kind") : "value", Hosts(s),
                             Cell(s, "updatedAt")};
                   });
}

int Delete(Context& ctx, const Owner& owner, const std::string& ref, const std::string& name) {
  return DeleteOne(ctx, ApiPath({owner.collection, ref, "secrets", name}),
                   "secret " + name + " from " + owner.noun + " " + ref);
}

// set / list / delete under `parent`, the owner given as first positional.
void AddSecretVerbs(CLI::App* parent, Context& ctx, const Owner& owner) {
  const std::string owner_help = std::string(owner.noun) + " id or name";

  auto set_flags = std::make_shared<SetFlags>();
  auto* set = parent->add_subcommand(
      "set", "Create or replace a secret (value and allowed hosts). The value is never printed");
  set->add_option(owner.noun == std::string("project") ? "project" : "group", set_flags->owner, owner_help)
      ->required()
      ->check(NonEmptyArg());
  set->add_option("name", set_flags->name, "Secret name = env var name in the sandbox")->required();
  set_flags->value_opt = set->add_option(
      "value", set_flags->value,
      "The value (discouraged: lands in shell history; use --from-stdin)");
  set->add_flag("--from-stdin", set_flags->from_stdin,
                "Read the value from stdin as-is; one trailing newline is removed; empty is refused");
  set->add_option("--allowed-hosts", set_flags->allowed_hosts,
                  "Hosts the real value may be sent to (name, *.suffix or IP, optional :port), "
                  "comma-separated or repeated; '*' = any host the sandbox may reach. Default: only "
                  "the hosts on the egress allowlist, and none when that list is empty")
      ->delimiter(',')
      ->type_name("HOST,...");
  set->add_option("--kind", set_flags->kind,
                  "value (default) | hmac | aws-sigv4 | oauth2-refresh: a signing kind takes a JSON "
                  "material (--from-file) and signs or injects in the proxy (docs/secrets.md)")
      ->type_name("KIND");
  set->add_option("--from-file", set_flags->from_file, "The material of a signing kind: a JSON object")
      ->type_name("FILE");
  set->add_option("--allow-request", set_flags->allow_requests,
                  "Only requests like 'POST,GET api.example.com/v1/messages' may use the secret "
                  "(methods or *, host, optional path prefix); repeatable")
      ->type_name("RULE");
  set->add_option("--on-disallowed-request", set_flags->on_disallowed,
                  "seal (default: the token passes sealed) | refuse (403) for requests outside --allow-request")
      ->check(CLI::IsMember({"seal", "refuse"}))
      ->type_name("seal|refuse");
  OnRun(set, ctx, [&ctx, &owner, set_flags] { return Set(ctx, owner, *set_flags); });

  auto list_ref = std::make_shared<std::string>();
  auto* list = parent->add_subcommand("list", "List secret names and allowed hosts (never values)");
  list->add_option(owner.noun == std::string("project") ? "project" : "group", *list_ref, owner_help)
      ->required()
      ->check(NonEmptyArg());
  OnRun(list, ctx, [&ctx, &owner, list_ref] { return List(ctx, owner, *list_ref); });

  auto del_args = std::make_shared<std::pair<std::string, std::string>>();
  auto* del = parent->add_subcommand("delete", "Delete a secret");
  del->add_option(owner.noun == std::string("project") ? "project" : "group", del_args->first, owner_help)
      ->required()
      ->check(NonEmptyArg());
  del->add_option("name", del_args->second, "Secret name")->required()->check(NonEmptyArg());
  OnRun(del, ctx, [&ctx, &owner, del_args] { return Delete(ctx, owner, del_args->first, del_args->second); });
}

void PrintGroup(Context& ctx, const nlohmann::json& g) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"id", Cell(g, "id")}, {"name", Cell(g, "name")}};
  if (g.contains("secrets") && g["secrets"].is_array()) {
    std::string names;
    for (const auto& s : g["secrets"]) {
      if (!names.empty()) names += ",";
      names += s.is_object() ? Cell(s, "name") : (s.is_string() ? s.get<std::string>() : s.dump());
    }
    fields.emplace_back("secrets", names.empty() ? "-" : names);
  }
  fields.emplace_back("createdAt", Cell(g, "createdAt"));
  fields.emplace_back("updatedAt", Cell(g, "updatedAt"));
  PrintObject(ctx, g, fields);
}

void AddSecretGroupCommands(CLI::App& root, Context& ctx) {
  auto* group = root.add_subcommand(
      "secret-group", "Org-level secret groups that projects attach with --secret-group");
  group->require_subcommand(1);

  auto create_name = std::make_shared<std::string>();
  auto* create = group->add_subcommand("create", "Create a secret group");
  create->add_option("name", *create_name, "Group name, unique in the org")->required()->check(NonEmptyArg());
  OnRun(create, ctx, [&ctx, create_name] {
    return SendOne(ctx, "POST", ApiPath({"secret-groups"}), nlohmann::json{{"name", *create_name}}, PrintGroup);
  });

  auto* list = group->add_subcommand("list", "List the org's secret groups");
  OnRun(list, ctx, [&ctx] {
    return PrintList(ctx, ApiPath({"secret-groups"}), {"NAME", "ID", "CREATED"},
                     [](const nlohmann::json& g) -> std::vector<std::string> {
                       return {Cell(g, "name"), Cell(g, "id"), Cell(g, "createdAt")};
                     });
  });

  auto get_ref = std::make_shared<std::string>();
  auto* get = group->add_subcommand("get", "Show one secret group");
  get->add_option("group", *get_ref, "Group id or name")->required()->check(NonEmptyArg());
  OnRun(get, ctx, [&ctx, get_ref] { return ShowOne(ctx, ApiPath({"secret-groups", *get_ref}), PrintGroup); });

  auto rename = std::make_shared<std::pair<std::string, std::string>>();
  auto* update = group->add_subcommand("update", "Rename a secret group (projects stay attached)");
  update->add_option("group", rename->first, "Group id or name")->required()->check(NonEmptyArg());
  update->add_option("--name", rename->second, "The new name")->required()->check(NonEmptyArg());
  OnRun(update, ctx, [&ctx, rename] {
    return SendOne(ctx, "PATCH", ApiPath({"secret-groups", rename->first}), nlohmann::json{{"name", rename->second}},
                   PrintGroup);
  });

  auto del_ref = std::make_shared<std::string>();
  auto* del = group->add_subcommand(
      "delete", "Delete a secret group and its secrets (refused while a project attaches it)");
  del->add_option("group", *del_ref, "Group id or name")->required()->check(NonEmptyArg());
  OnRun(del, ctx, [&ctx, del_ref] {
    return DeleteOne(ctx, ApiPath({"secret-groups", *del_ref}), "secret group " + *del_ref);
  });

  auto* secrets = group->add_subcommand("secret", "Secrets of a secret group: set, list, delete");
  secrets->require_subcommand(1);
  AddSecretVerbs(secrets, ctx, kGroupOwner);
}

}  // namespace

void AddSecretCommands(CLI::App& root, Context& ctx) {
  auto* secret = root.add_subcommand("secret", "A project's secrets: set, list, delete");
  secret->require_subcommand(1);
  AddSecretVerbs(secret, ctx, kProjectOwner);
  AddSecretGroupCommands(root, ctx);
}

}  // namespace osb::cli
