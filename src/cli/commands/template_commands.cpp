// oc template import|list|get|delete (docs/templates.md, docs/cli.md).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>

#include "cli/api_url.h"
#include "cli/commands/commands.h"
#include "cli/output.h"

namespace osb::cli {
namespace {

// Uploading and verifying a large image may take a while.
constexpr auto kImportTimeout = std::chrono::hours(2);

void PrintTemplate(Context& ctx, const nlohmann::json& t) {
  PrintObject(ctx, t,
              {{"name", Cell(t, "name")}, {"digest", Cell(t, "digest")}, {"size", Cell(t, "size")},
               {"createdAt", Cell(t, "createdAt")}});
}

int Import(Context& ctx, const std::string& file, const std::string& name) {
  struct stat st {};
  if (stat(file.c_str(), &st) != 0) return ctx.Usage("cannot read " + file + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return ctx.Usage(file + " is not a regular file (an OCI archive or docker save tarball)");
  ApiClient::CallOptions options;
  options.timeout = kImportTimeout;
  options.upload_file = file;
  TransferProgress progress(ctx, "importing " + name, "verifying...");
  options.upload_progress = progress.Callback();
  return CallOne(ctx, "POST", ApiPath({"templates"}) + "?name=" + EncodeQueryValue(name), nullptr, options,
                 [](Context& ctx, const nlohmann::json& t) {
                   if (ctx.json) return PrintJson(ctx.out(), t);
                   ctx.out() << TerminalSafe(Cell(t, "name")) << " " << TerminalSafe(Cell(t, "digest")) << "\n";
                 });
}

}  // namespace

void AddTemplateCommands(CLI::App& root, Context& ctx) {
  auto* tpl = root.add_subcommand("template", "Image templates: import an OCI/docker image tarball, list, delete");
  tpl->require_subcommand(1);

  struct ImportArgs {
    std::string file, name;
  };
  auto imp = std::make_shared<ImportArgs>();
  auto* import = tpl->add_subcommand(
      "import", "Upload an image tarball (docker save, podman save, skopeo oci-archive); prints name and digest");
  import->add_option("file", imp->file, "The tarball")->required()->check(NonEmptyArg());
  import->add_option("--name", imp->name, "Template name ([A-Za-z0-9][A-Za-z0-9._-]{0,127}, not 'base')")
      ->required()
      ->check(NonEmptyArg());
  OnRun(import, ctx, [&ctx, imp] { return Import(ctx, imp->file, imp->name); });

  auto* list = tpl->add_subcommand("list", "List the org's templates");
  OnRun(list, ctx, [&ctx] {
    return PrintList(ctx, ApiPath({"templates"}), {"NAME", "DIGEST", "SIZE_BYTES", "CREATED"},
                     [](const nlohmann::json& t) -> std::vector<std::string> {
                       return {Cell(t, "name"), Cell(t, "digest"), Cell(t, "size"), Cell(t, "createdAt")};
                     });
  });

  auto get_name = std::make_shared<std::string>();
  auto* get = tpl->add_subcommand("get", "Show one template");
  get->add_option("name", *get_name, "Template name")->required()->check(NonEmptyArg());
  OnRun(get, ctx, [&ctx, get_name] { return ShowOne(ctx, ApiPath({"templates", *get_name}), PrintTemplate); });

  auto del_name = std::make_shared<std::string>();
  auto* del = tpl->add_subcommand("delete", "Delete a template (refused while a sandbox uses it)");
  del->add_option("name", *del_name, "Template name")->required()->check(NonEmptyArg());
  OnRun(del, ctx, [&ctx, del_name] {
    return DeleteOne(ctx, ApiPath({"templates", *del_name}), "template " + *del_name);
  });
}

}  // namespace osb::cli
