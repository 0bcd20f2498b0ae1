// Verb groups of `oc`, one file each. Each Add* function registers its
// subcommands on `root`; a chosen verb stores its work in ctx.action.
// Internal to osb_cli.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cli/context.h"
#include "common/result.h"

namespace osb::cli {

void AddProjectCommands(CLI::App& root, Context& ctx);
void AddSecretCommands(CLI::App& root, Context& ctx);       // secret, secret-group
void AddSandboxCommands(CLI::App& root, Context& ctx);      // create list get exec kill, sandbox delete
void AddLoginCommands(CLI::App& root, Context& ctx);        // login, version
void AddApiKeyCommands(CLI::App& root, Context& ctx);       // api-key create|list|delete
void AddCheckpointCommands(CLI::App& root, Context& ctx);   // checkpoint create|list|delete, timeout, hibernate, wake
void AddExecCommands(CLI::App& root, Context& ctx);         // exec (streamed), ps, attach, kill-cmd, shell
void AddFileCommands(CLI::App& root, Context& ctx);         // files ls|cat|put|get|rm|mkdir, cp
void AddTemplateCommands(CLI::App& root, Context& ctx);     // template import|list|get|delete

// --- helpers shared by the verb files ----------------------------------

// Makes `fn` the action to run when `sub` is the chosen verb.
inline void OnRun(CLI::App* sub, Context& ctx, std::function<int()> fn) {
  sub->callback([&ctx, fn = std::move(fn)] { ctx.action = fn; });
}

// Validator: the argument must not be the empty string (an empty id would
// otherwise address the collection route).
inline CLI::Validator NonEmptyArg() {
  return CLI::Validator([](std::string& v) { return v.empty() ? std::string("must not be empty") : std::string(); },
                        "", "NonEmpty");
}

// "/api" + "/" + each segment percent-encoded.
std::string ApiPath(std::initializer_list<std::string_view> segments);

// A long transfer's progress (oc files put|get, oc template import): a
// one-line bar on stderr, redrawn at most every 100 ms from (bytes done,
// total or 0 when unknown), only when stderr is a terminal and the output
// is not --json: a pipe, a log or JSON output never gets a progress line.
// Keep the object alive for the transfer; its destructor ends the line.
class TransferProgress {
 public:
  // `when_complete`: printed on its own line once done reaches the total
  // (e.g. "verifying..." while the server checks an upload).
  TransferProgress(Context& ctx, std::string label, std::string when_complete = "");
  ~TransferProgress();
  TransferProgress(const TransferProgress&) = delete;
  TransferProgress& operator=(const TransferProgress&) = delete;
  // For CallOptions::upload_progress / download_progress; empty when not drawing.
  std::function<void(uint64_t, uint64_t)> Callback();

 private:
  void Update(uint64_t done, uint64_t total);
  bool enabled_;
  std::string label_, when_complete_;
  bool drawn_ = false, completed_ = false;
  std::chrono::steady_clock::time_point last_{};
};

// Parses K=V items (--env). Error (usage) names the bad item; K must be a
// non-empty env var name.
Result<std::map<std::string, std::string>> ParseEnvPairs(const std::vector<std::string>& items);

// Env var / secret name rule: [A-Za-z_][A-Za-z0-9_]*
bool IsEnvName(std::string_view name);

// Drops empty items (e.g. from "a,,b" or a trailing comma).
std::vector<std::string> NonEmpty(const std::vector<std::string>& items);

// --- the verbs that are one API call -----------------------------------
// Each gets the client (or returns the exit code Context::Api gave), makes
// one call, reports a failure once through ctx.Fail, and otherwise hands the
// server's answer to a Printer and returns 0. The route stays at the call
// site: `ShowOne(ctx, ApiPath({"projects", ref}), PrintProject)`.

// Prints a response (each printer handles --json itself). It gets the only
// copy of the answer, so it may wipe what it printed (api-key create).
using Printer = std::function<void(Context& ctx, nlohmann::json& response)>;

// `method` `path` with `body` (nullptr: none) and `options`, printed by `print`.
int CallOne(Context& ctx, std::string_view method, const std::string& path, const nlohmann::json* body,
            const ApiClient::CallOptions& options, const Printer& print);

// GET `path`, printed by `print`.
int ShowOne(Context& ctx, const std::string& path, const Printer& print);

// `method` (POST, PATCH) `body` to `path`, the answer printed by `print`.
int SendOne(Context& ctx, std::string_view method, const std::string& path, const nlohmann::json& body,
            const Printer& print);

// DELETE `path`, then PrintDeleted(what).
int DeleteOne(Context& ctx, const std::string& path, const std::string& what);

// The list verbs: GET `path`; with --json the response as it is, otherwise a
// table with `columns` and one row per item, made by `row`.
int PrintList(Context& ctx, const std::string& path, std::vector<std::string> columns,
              const std::function<std::vector<std::string>(const nlohmann::json& item)>& row);

// The one-object verbs (get, create, update): with --json the response as it
// is, otherwise `fields` as aligned "name: value" lines.
void PrintObject(Context& ctx, const nlohmann::json& response,
                 const std::vector<std::pair<std::string, std::string>>& fields);

// Prints the result of a delete: "deleted <what>" for people, the server's
// JSON (or {}) with --json.
int PrintDeleted(Context& ctx, const nlohmann::json& response, const std::string& what);

}  // namespace osb::cli
