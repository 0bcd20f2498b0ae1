// oc login, oc version.
#include <memory>

#include "cli/commands/commands.h"
#include "cli/output.h"
#include "cli/secret_input.h"
#include "common/secure_memory.h"

namespace osb::cli {

namespace {

struct LoginFlags {
  bool key_from_stdin = false;
  bool no_verify = false;
};

int Login(Context& ctx, const LoginFlags& f) {
  if (f.key_from_stdin && !ctx.api_key_flag.empty()) {
    return ctx.Usage("give the key either with --api-key or with --api-key-stdin, not both");
  }
  std::string key;
  if (f.key_from_stdin) {
    auto read = ReadSecretFromStream(ctx.in(), 4096);
    if (!read) return ctx.Usage(read.error().message);
    key = std::move(*read);
  } else if (!ctx.api_key_flag.empty()) {
    key = ctx.api_key_flag;
  } else if (auto env_key = ctx.env()("OPENSANDBOX_API_KEY"); env_key && !env_key->empty()) {
    key = *env_key;
  } else {
    return ctx.Usage("oc login needs a key: --api-key K, --api-key-stdin or OPENSANDBOX_API_KEY");
  }
  // The key is used for this process exactly as given.
  ctx.api_key_flag = key;

  auto path = ConfigFilePath(ctx.env());
  if (!path) return ctx.Fail(path.error());
  auto resolved = ctx.Resolve();
  if (!resolved) return ctx.Fail(resolved.error());
  auto url = ParseApiUrl(resolved->api_url);
  if (!url) return ctx.Usage(url.error().message);

  if (!f.no_verify) {
    int code = 0;
    ApiClient* api = ctx.Api(&code);
    if (api == nullptr) return code;
    ApiClient::CallOptions options;
    options.redact = {key};
    auto res = api->Call("GET", ApiPath({"projects"}), nullptr, options);
    if (!res) {
      if (res.error().code == ErrorCode::kUnauthenticated) {
        return ctx.Fail(MakeError(ErrorCode::kUnauthenticated,
                                  "the server at " + resolved->api_url + " rejected the API key"));
      }
      Error e = res.error();
      e.message += " (nothing saved; --no-verify saves without checking)";
      return ctx.Fail(e);
    }
  }

  FileConfig config{resolved->api_url, key};
  if (!resolved->ca_file.empty()) config.ca_file = resolved->ca_file;
  auto written = WriteConfigFile(*path, config);
  SecureWipe(key);
  SecureWipe(*config.api_key);
  if (!written) return ctx.Fail(written.error());
  if (ctx.json) {
    PrintJson(ctx.out(), {{"apiUrl", resolved->api_url}, {"configFile", path->string()},
                          {"verified", !f.no_verify}});
  } else {
    ctx.out() << "logged in to " << resolved->api_url << "; saved to " << path->string() << "\n";
  }
  return 0;
}

}  // namespace

void AddLoginCommands(CLI::App& root, Context& ctx) {
  auto flags = std::make_shared<LoginFlags>();
  auto* login = root.add_subcommand(
      "login",
      "Check an API key against the server and save it with the API URL in the config file "
      "(mode 0600). Use the global --api-url / --api-key");
  login->add_flag("--api-key-stdin", flags->key_from_stdin,
                  "Read the API key from stdin (one trailing newline removed)");
  login->add_flag("--no-verify", flags->no_verify, "Save without asking the server first");
  OnRun(login, ctx, [&ctx, flags] { return Login(ctx, *flags); });

  auto* version = root.add_subcommand("version", "Print the oc version");
  OnRun(version, ctx, [&ctx] {
    if (ctx.json) {
      PrintJson(ctx.out(), {{"version", OSB_VERSION}});
    } else {
      ctx.out() << "oc " << OSB_VERSION << "\n";
    }
    return 0;
  });
}

}  // namespace osb::cli
