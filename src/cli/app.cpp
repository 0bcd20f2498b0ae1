#include "cli/app.h"

#include <CLI/CLI.hpp>
#include <exception>

#include "cli/commands/commands.h"
#include "cli/context.h"
#include "cli/exit_codes.h"

namespace osb::cli {

namespace {

// The first argument that is neither a flag nor a global flag's value: the verb.
std::string FirstWord(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--api-url" || arg == "--api-key" || arg == "--ca-file") {
      ++i;
      continue;
    }
    if (arg.starts_with("-")) continue;
    return std::string(arg);
  }
  return {};
}

bool IsSubcommand(CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (sub->get_name() == name) return true;
  }
  return false;
}

// "oc project create" for the deepest subcommand that was parsed.
std::string CommandPath(const CLI::App& app) {
  std::string path = app.get_name();
  const CLI::App* current = &app;
  while (true) {
    auto subs = current->get_subcommands();
    if (subs.empty()) break;
    current = subs.front();
    path += " " + current->get_name();
  }
  return path;
}

}  // namespace

int RunOc(int argc, const char* const* argv, const Io& io) {
  Context ctx(io);
  CLI::App app{"oc: the OpenSandbox CLI. Manage projects, secrets and sandboxes.\n"
               "Reference: docs/cli.md",
               "oc"};
  app.fallthrough();  // global flags may follow the verb: oc project list --json
  app.require_subcommand(1);
  app.set_version_flag("--version", "oc " OSB_VERSION);
  app.add_option("--api-url", ctx.api_url_flag,
                 "API base URL (else OPENSANDBOX_API_URL, the config file, http://127.0.0.1:8080)");
  app.add_option("--api-key", ctx.api_key_flag,
                 "API key (else OPENSANDBOX_API_KEY, then the config file)");
  app.add_option("--ca-file", ctx.ca_file_flag,
                 "PEM CA bundle to verify an https:// API (else OSB_CA_FILE, the config file's caFile, "
                 "the system trust store)");
  app.add_flag("--insecure", ctx.insecure,
               "Allow sending secret values over plain http:// to a non-loopback host (not recommended)");
  app.add_flag("--json", ctx.json, "Print the API's JSON instead of tables");
  app.add_flag("-v,--verbose", ctx.verbose,
               "Log each request (method, URL, status, time) to stderr; never bodies or keys");

  AddProjectCommands(app, ctx);
  AddSecretCommands(app, ctx);
  AddSandboxCommands(app, ctx);
  AddLoginCommands(app, ctx);
  AddApiKeyCommands(app, ctx);
  AddCheckpointCommands(app, ctx);
  AddExecCommands(app, ctx);
  AddFileCommands(app, ctx);
  AddTemplateCommands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, io.out, io.err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, io.out, io.err);
  } catch (const CLI::CallForVersion&) {
    io.out << "oc " OSB_VERSION "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    if (auto word = FirstWord(argc, argv); !word.empty() && !IsSubcommand(app, word)) {
      // "oc projct list": CLI11 would complain about the wrong thing.
      message = "unknown command '" + word + "'";
    }
    for (char& c : message) {
      if (c == '\n') c = ' ';
    }
    while (!message.empty() && message.back() == ' ') message.pop_back();
    if (message.empty()) message = "invalid command line";
    std::string path = CommandPath(app);
    if (path == "oc exec") message += "; put the command after --: oc exec <id> -- CMD [ARGS...]";
    if (path.ends_with(" secret set") && dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
      // CLI11 quotes the unexpected words, and one of them may be the
      // secret value (e.g. a value starting with '-'): never echo them.
      message = "unexpected extra arguments (not shown: one may be the value); a VALUE starting "
                "with '-' goes last, after --: " + path.substr(3) + " <owner> NAME -- VALUE";
    }
    return ctx.Usage(message + " (see `" + path + " --help`)");
  }
  if (!ctx.action) return ctx.Usage("no command given (see `oc --help`)");
  try {
    return ctx.action();
  } catch (const nlohmann::json::exception& e) {
    // Thrown when the server's JSON has an unexpected shape; json type
    // errors name the type, never the content.
    return ctx.Fail(MakeError(ErrorCode::kInternal,
                              std::string("unexpected response from the server: ") + e.what()));
  } catch (const std::exception& e) {
    return ctx.Fail(MakeError(ErrorCode::kInternal, e.what()));
  }
}

int RunOc(int argc, const char* const* argv) {
  Io io{std::cin, std::cout, std::cerr, ProcessEnv()};
  return RunOc(argc, argv, io);
}

}  // namespace osb::cli
