// oc files ls|cat|put|get|rm|mkdir and oc cp (docs/files.md, docs/cli.md).
// Transfers stream from/to local files (never held in memory). `oc cp`
// copies a directory by packing it with tar on one side, moving the archive
// as one file, and unpacking it on the other.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>

#include "cli/api_url.h"
#include "cli/commands/commands.h"
#include "cli/output.h"

namespace osb::cli {
namespace {

constexpr auto kTransferTimeout = std::chrono::hours(6);

std::string FilesPath(const std::string& id, const std::string& suffix, const std::string& path,
                      const std::string& extra = "") {
  return ApiPath({"sandboxes", id, "files"}) + suffix + "?path=" + EncodeQueryValue(path, /*keep_slash=*/true) + extra;
}

// put and mkdir print nothing for people: the server's answer with --json only.
void PrintJsonOnly(Context& ctx, const nlohmann::json& response) {
  if (ctx.json) PrintJson(ctx.out(), response);
}

int Upload(Context& ctx, const std::string& id, const std::string& local, const std::string& remote,
           const std::string& mode) {
  struct stat st {};
  if (stat(local.c_str(), &st) != 0) return ctx.Usage("cannot read " + local + ": " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return ctx.Usage(local + " is not a regular file (for directories use `oc cp`)");
  ApiClient::CallOptions options;
  options.timeout = kTransferTimeout;
  options.upload_file = local;
  TransferProgress progress(ctx, "uploading " + local);
  options.upload_progress = progress.Callback();
  return CallOne(ctx, "PUT", FilesPath(id, "", remote, mode.empty() ? "" : "&mode=" + mode), nullptr, options,
                 PrintJsonOnly);
}

int Download(Context& ctx, const std::string& id, const std::string& remote, const std::string& local) {
  int code = 0;
  ApiClient* api = ctx.Api(&code);
  if (api == nullptr) return code;
  const bool to_stdout = local.empty() || local == "-";
  // Into a temp file beside the target, renamed at the end: an interrupted
  // download never leaves a truncated file under the real name.
  std::string temp;
  int fd = 1;
  if (!to_stdout) {
    temp = local + ".oc-partial-" + std::to_string(getpid());
    fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ctx.Usage("cannot write " + local + ": " + std::strerror(errno));
  } else {
    ctx.out().flush();
  }
  ApiClient::CallOptions options;
  options.timeout = kTransferTimeout;
  options.download_fd = fd;
  // Never drawn over the downloaded bytes themselves (to_stdout on a terminal).
  TransferProgress progress(ctx, "downloading " + remote);
  if (!to_stdout) options.download_progress = progress.Callback();
  auto res = api->Call("GET", FilesPath(id, "", remote), nullptr, options);
  if (!to_stdout) {
    const bool closed = close(fd) == 0;
    if (!res || !closed || rename(temp.c_str(), local.c_str()) != 0) {
      unlink(temp.c_str());
      if (res) return ctx.Fail(MakeError(ErrorCode::kInternal, "cannot write " + local));
    }
  }
  if (!res) return ctx.Fail(res.error());
  return 0;
}

void PrintListing(Context& ctx, const nlohmann::json& listing) {
  if (ctx.json) return PrintJson(ctx.out(), listing);
  Table table({"TYPE", "MODE", "SIZE", "MTIME", "NAME"});
  for (const auto& e : listing.value("entries", nlohmann::json::array())) {
    table.AddRow({Cell(e, "type"), Cell(e, "mode"), Cell(e, "size"), Cell(e, "mtime"), TerminalSafe(Cell(e, "name"))});
  }
  table.Print(ctx.out());
  if (listing.value("truncated", false)) ctx.Warn("the listing was truncated by the server");
}

int List(Context& ctx, const std::string& id, const std::string& path) {
  return ShowOne(ctx, FilesPath(id, "/list", path), PrintListing);
}

int Remove(Context& ctx, const std::string& id, const std::string& path, bool recursive) {
  return DeleteOne(ctx, FilesPath(id, "", path, recursive ? "&recursive=true" : ""), path);
}

int Mkdir(Context& ctx, const std::string& id, const std::string& path, bool parents) {
  nlohmann::json body = {{"path", path}, {"parents", parents}};
  return SendOne(ctx, "POST", ApiPath({"sandboxes", id, "files", "mkdir"}), body, PrintJsonOnly);
}

// --- oc cp --------------------------------------------------------------

struct Location {
  std::string sandbox;  // empty: local
  std::string path;
};

// "SANDBOX:PATH" is in a sandbox; anything with a '/' before the first ':'
// (or no ':') is local, so "./a:b" stays a local path.
Location ParseLocation(const std::string& arg) {
  const auto colon = arg.find(':');
  const auto slash = arg.find('/');
  if (colon == std::string::npos || colon == 0 || (slash != std::string::npos && slash < colon)) return {"", arg};
  return {arg.substr(0, colon), arg.substr(colon + 1)};
}

// Runs a local program (no shell); returns its exit status.
int RunLocal(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  if (pid < 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs argv in the sandbox (exec/run); returns its exit code.
Result<int> RunRemote(Context& ctx, ApiClient& api, const std::string& id, const std::vector<std::string>& argv) {
  nlohmann::json body = {{"cmd", argv.front()},
                         {"args", std::vector<std::string>(argv.begin() + 1, argv.end())},
                         {"timeout", 3600}};
  ApiClient::CallOptions options;
  options.timeout = std::chrono::minutes(65);
  auto res = api.Call("POST", ApiPath({"sandboxes", id, "exec", "run"}), &body, options);
  if (!res) return res.error();
  if (res->contains("stderr") && (*res)["stderr"].is_string()) ctx.err() << (*res)["stderr"].get<std::string>();
  return res->value("exitCode", 1);
}

std::string RandomSuffix() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

// The local archive of a directory copy: an empty /tmp/oc-cp-XXXXXX, removed
// when it goes out of scope; path is empty when it could not be created.
struct LocalTemp {
  std::string path;
  LocalTemp() {
    char tmpl[] = "/tmp/oc-cp-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd < 0) return;
    close(fd);
    path = tmpl;
  }
  ~LocalTemp() {
    if (!path.empty()) unlink(path.c_str());
  }
  LocalTemp(const LocalTemp&) = delete;
  LocalTemp& operator=(const LocalTemp&) = delete;
};

int Copy(Context& ctx, const std::string& src_arg, const std::string& dst_arg) {
  const Location src = ParseLocation(src_arg), dst = ParseLocation(dst_arg);
  if (src.sandbox.empty() == dst.sandbox.empty())
    return ctx.Usage("exactly one of SRC and DST must be SANDBOX:PATH (e.g. oc cp ./data sb-123:/home/sandbox/data)");
  int code = 0;
  ApiClient* api = ctx.Api(&code);
  if (api == nullptr) return code;
  if (!dst.sandbox.empty()) {  // local -> sandbox
    struct stat st {};
    if (stat(src.path.c_str(), &st) != 0) return ctx.Usage("cannot read " + src.path + ": " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode)) return Upload(ctx, dst.sandbox, src.path, dst.path, "");
    const LocalTemp temp;
    if (temp.path.empty()) return ctx.Fail(MakeError(ErrorCode::kInternal, "cannot create a temp file"));
    const std::string& archive = temp.path;
    if (RunLocal({"tar", "-cf", archive, "-C", src.path, "."}) != 0)
      return ctx.Fail(MakeError(ErrorCode::kInternal, "tar could not pack " + src.path));
    const std::string remote_archive = "/tmp/.oc-cp-" + RandomSuffix() + ".tar";
    if (int rc = Upload(ctx, dst.sandbox, archive, remote_archive, "600"); rc != 0) return rc;
    auto rc = RunRemote(ctx, *api, dst.sandbox,
                        {"/bin/sh", "-c", "mkdir -p \"$1\" && tar -xf \"$2\" -C \"$1\"; s=$?; rm -f \"$2\"; exit $s",
                         "sh", dst.path, remote_archive});
    if (!rc) return ctx.Fail(rc.error());
    if (*rc != 0) return ctx.Fail(MakeError(ErrorCode::kInternal, "tar in the sandbox could not unpack into " + dst.path));
    return 0;
  }
  // sandbox -> local
  auto is_dir = RunRemote(ctx, *api, src.sandbox, {"/bin/sh", "-c", "test -d \"$1\"", "sh", src.path});
  if (!is_dir) return ctx.Fail(is_dir.error());
  if (*is_dir != 0) return Download(ctx, src.sandbox, src.path, dst.path);
  const std::string remote_archive = "/tmp/.oc-cp-" + RandomSuffix() + ".tar";
  auto packed = RunRemote(ctx, *api, src.sandbox, {"tar", "-cf", remote_archive, "-C", src.path, "."});
  if (!packed) return ctx.Fail(packed.error());
  const LocalTemp temp;
  if (temp.path.empty()) return ctx.Fail(MakeError(ErrorCode::kInternal, "cannot create a temp file"));
  const std::string& archive = temp.path;
  int rc = *packed == 0 ? Download(ctx, src.sandbox, remote_archive, archive) : 1;
  (void)api->Delete(FilesPath(src.sandbox, "", remote_archive));
  if (*packed != 0) return ctx.Fail(MakeError(ErrorCode::kInternal, "tar in the sandbox could not pack " + src.path));
  if (rc != 0) return rc;
  if (RunLocal({"mkdir", "-p", dst.path}) != 0 || RunLocal({"tar", "-xf", archive, "-C", dst.path}) != 0)
    return ctx.Fail(MakeError(ErrorCode::kInternal, "tar could not unpack into " + dst.path));
  return 0;
}

struct Args {
  std::string id, a, b, mode;
  bool flag = false;
};

}  // namespace

void AddFileCommands(CLI::App& root, Context& ctx) {
  auto* files = root.add_subcommand("files", "Files inside a sandbox: ls, cat, put, get, rm, mkdir");
  files->require_subcommand(1);

  auto ls = std::make_shared<Args>();
  auto* ls_cmd = files->add_subcommand("ls", "List a directory (name, type, size, mode, mtime)");
  ls_cmd->add_option("id", ls->id, "Sandbox id")->required()->check(NonEmptyArg());
  ls_cmd->add_option("path", ls->a, "Path in the sandbox (default /home/sandbox)");
  OnRun(ls_cmd, ctx, [&ctx, ls] { return List(ctx, ls->id, ls->a.empty() ? "/home/sandbox" : ls->a); });

  auto cat = std::make_shared<Args>();
  auto* cat_cmd = files->add_subcommand("cat", "Print a file to stdout (streamed)");
  cat_cmd->add_option("id", cat->id, "Sandbox id")->required()->check(NonEmptyArg());
  cat_cmd->add_option("path", cat->a, "Path in the sandbox")->required()->check(NonEmptyArg());
  OnRun(cat_cmd, ctx, [&ctx, cat] { return Download(ctx, cat->id, cat->a, "-"); });

  auto put = std::make_shared<Args>();
  auto* put_cmd = files->add_subcommand("put", "Upload a local file (streamed; replaced atomically)");
  put_cmd->add_option("id", put->id, "Sandbox id")->required()->check(NonEmptyArg());
  put_cmd->add_option("local", put->a, "Local file")->required()->check(NonEmptyArg());
  put_cmd->add_option("path", put->b, "Path in the sandbox")->required()->check(NonEmptyArg());
  put_cmd->add_option("--mode", put->mode, "Permission bits in octal (default 644)");
  OnRun(put_cmd, ctx, [&ctx, put] { return Upload(ctx, put->id, put->a, put->b, put->mode); });

  auto get = std::make_shared<Args>();
  auto* get_cmd = files->add_subcommand("get", "Download a file (streamed; `-` for stdout)");
  get_cmd->add_option("id", get->id, "Sandbox id")->required()->check(NonEmptyArg());
  get_cmd->add_option("path", get->a, "Path in the sandbox")->required()->check(NonEmptyArg());
  get_cmd->add_option("local", get->b, "Local file (default: the file's name here)");
  OnRun(get_cmd, ctx, [&ctx, get] {
    std::string local = get->b;
    if (local.empty()) local = get->a.substr(get->a.rfind('/') + 1);
    if (local.empty()) return ctx.Usage("give a local file name");
    return Download(ctx, get->id, get->a, local);
  });

  auto rm = std::make_shared<Args>();
  auto* rm_cmd = files->add_subcommand("rm", "Remove a file, a symlink or an empty directory");
  rm_cmd->add_option("id", rm->id, "Sandbox id")->required()->check(NonEmptyArg());
  rm_cmd->add_option("path", rm->a, "Path in the sandbox")->required()->check(NonEmptyArg());
  rm_cmd->add_flag("-r,--recursive", rm->flag, "Remove a directory and everything in it");
  OnRun(rm_cmd, ctx, [&ctx, rm] { return Remove(ctx, rm->id, rm->a, rm->flag); });

  auto mk = std::make_shared<Args>();
  auto* mk_cmd = files->add_subcommand("mkdir", "Create a directory");
  mk_cmd->add_option("id", mk->id, "Sandbox id")->required()->check(NonEmptyArg());
  mk_cmd->add_option("path", mk->a, "Path in the sandbox")->required()->check(NonEmptyArg());
  mk_cmd->add_flag("-p,--parents", mk->flag, "Create missing parents; no error if it exists");
  OnRun(mk_cmd, ctx, [&ctx, mk] { return Mkdir(ctx, mk->id, mk->a, mk->flag); });

  auto cp = std::make_shared<Args>();
  auto* cp_cmd = root.add_subcommand("cp", "Copy files or directories between here and a sandbox (SANDBOX:PATH)");
  cp_cmd->add_option("src", cp->a, "Source: a local path or SANDBOX:PATH")->required()->check(NonEmptyArg());
  cp_cmd->add_option("dst", cp->b, "Destination: a local path or SANDBOX:PATH")->required()->check(NonEmptyArg());
  OnRun(cp_cmd, ctx, [&ctx, cp] { return Copy(ctx, cp->a, cp->b); });
}

}  // namespace osb::cli
