// The real `osb` binary as an operator starts it, checked from outside like
// another local user would: gRPC is never plaintext by accident, roles are
// enforced, two processes never share a port, and the process keeps its
// keys to itself (file modes, environment, dumpable flag). SQLite only.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "api_harness.h"
#include "crypto/keyring.h"
#include "proto/tls_credentials.h"
#include "proto/worker.grpc.pb.h"
#include "test_db.h"

extern char** environ;

namespace osb::testing {
namespace {

namespace fs = std::filesystem;
using Env = std::map<std::string, std::string>;

constexpr const char* kGoodApiKey = "osb_process_test_key_0123456789abcdef0123456789abcdef";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Script() { return std::string(OSB_SOURCE_DIR) + "/scripts/gen-grpc-certs.sh"; }

// One spawned ./osb (or other program), stdout/stderr in files.
class Proc {
 public:
  // env: the parent's environment minus OPENSANDBOX_*, plus `env`.
  Proc(const std::vector<std::string>& args, const Env& env, std::optional<uid_t> uid = std::nullopt,
       const std::string& program = "./osb") {
    const std::string dir = MakeTempDir();
    ::chmod(dir.c_str(), 0755);
    out_ = dir + "/out";
    err_ = dir + "/err";
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e) {
      if (!std::string(*e).starts_with("OPENSANDBOX_")) env_strings.emplace_back(*e);
    }
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<std::string> full = {program};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv, envp;
    for (auto& s : full) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      const int o = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int e = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(o, 1);
      dup2(e, 2);
      umask(022);  // what an operator's shell typically has
      if (uid) {
        if (setgid(*uid) != 0 || setuid(*uid) != 0) _exit(126);
      }
      execve(program.c_str(), argv.data(), envp.data());
      _exit(127);
    }
  }
  ~Proc() { Kill(); }

  pid_t pid() const { return pid_; }
  std::string Out() const { return Slurp(out_); }
  std::string Err() const { return Slurp(err_); }
  std::string All() const { return Out() + Err(); }

  // Waits (bounded) until stdout+stderr match `re`; the first group, or
  // nullopt if the process exited or time ran out.
  std::optional<std::string> WaitFor(const std::string& re) {
    const std::regex pattern(re);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      std::smatch m;
      const std::string text = All();
      if (std::regex_search(text, m, pattern)) return m.size() > 1 ? m[1].str() : m[0].str();
      if (Exited()) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a file, bounded
    }
    return std::nullopt;
  }
  // Exit code once it has exited (bounded wait), else -1 after killing it.
  int Wait() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (Exited()) return code_;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Kill();
    return -1;
  }
  int Stop() {
    if (!Exited()) kill(pid_, SIGTERM);
    return Wait();
  }

 private:
  bool Exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
    return true;
  }
  void Kill() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }
  pid_t pid_ = -1;
  int code_ = -1;
  std::string out_, err_;
};

Env Keys() {
  return {{"OPENSANDBOX_SECRET_ENCRYPTION_KEY", crypto::GenerateKeyHex()}, {"OPENSANDBOX_API_KEY", kGoodApiKey}};
}

std::vector<std::string> ServerArgs(const std::string& dir, const std::string& grpc = "127.0.0.1:0") {
  return {"server", "--listen", "127.0.0.1:0", "--grpc-listen", grpc, "--data-dir", dir};
}

const char* kListening = "listening on port ([0-9]+)";

TEST(OsbProcess, ServerAndWorkerRefusePlaintextGrpcWithoutTheFlag) {
  const std::string dir = MakeTempDir() + "/data";
  Proc server(ServerArgs(dir), Keys());
  EXPECT_EQ(server.Wait(), 2);
  EXPECT_NE(server.Err().find("--insecure-grpc"), std::string::npos) << server.Err();
  EXPECT_NE(server.Err().find("OPENSANDBOX_GRPC_TLS_CA"), std::string::npos) << server.Err();

  Proc worker({"worker", "--listen", "127.0.0.1:0", "--state-dir", MakeTempDir()}, {});
  EXPECT_EQ(worker.Wait(), 2);
  EXPECT_NE(worker.Err().find("--insecure-grpc"), std::string::npos) << worker.Err();
}

TEST(OsbProcess, InsecureGrpcStartsWithALoudWarning) {
  Proc server([] {
    auto a = ServerArgs(MakeTempDir() + "/data");
    a.push_back("--insecure-grpc");
    return a;
  }(), Keys());
  ASSERT_TRUE(server.WaitFor(kListening)) << server.All();
  EXPECT_NE(server.All().find("WARNING: --insecure-grpc"), std::string::npos) << server.All();
  EXPECT_NE(server.All().find("PLAINTEXT"), std::string::npos);
  EXPECT_EQ(server.Stop(), 0);
}

TEST(OsbProcess, ServerUsesMutualTlsAndChecksItsOwnRole) {
  const std::string pki = MakeTempDir() + "/pki";
  ASSERT_EQ(std::system(("bash " + Script() + " " + pki + " control-plane cp >/dev/null").c_str()), 0);
  ASSERT_EQ(std::system(("bash " + Script() + " " + pki + " worker w1 >/dev/null").c_str()), 0);
  auto with_cert = [&](const std::string& name) {
    Env env = Keys();
    env["OPENSANDBOX_GRPC_TLS_CA"] = pki + "/ca.crt";
    env["OPENSANDBOX_GRPC_TLS_CERT"] = pki + "/" + name + ".crt";
    env["OPENSANDBOX_GRPC_TLS_KEY"] = pki + "/" + name + ".key";
    return env;
  };
  {
    Proc server(ServerArgs(MakeTempDir() + "/data"), with_cert("cp"));
    ASSERT_TRUE(server.WaitFor(kListening)) << server.All();
    EXPECT_NE(server.Out().find("(mutual TLS)"), std::string::npos) << server.Out();
    EXPECT_EQ(server.All().find("PLAINTEXT"), std::string::npos) << server.All();
    EXPECT_EQ(server.Stop(), 0);
  }
  // A worker's certificate cannot serve as the control plane's.
  Proc wrong(ServerArgs(MakeTempDir() + "/data"), with_cert("w1"));
  EXPECT_NE(wrong.Wait(), 0);
  EXPECT_NE(wrong.Err().find("osb-control-plane"), std::string::npos) << wrong.Err();
}

TEST(OsbProcess, ASecondProcessOnTheSameGrpcPortFailsToStart) {
  auto args = [](const std::string& grpc) {
    auto a = ServerArgs(MakeTempDir() + "/data", grpc);
    a.push_back("--insecure-grpc");
    return a;
  };
  Proc first(args("127.0.0.1:0"), Keys());
  const auto port = first.WaitFor("gRPC port ([0-9]+)");
  ASSERT_TRUE(port) << first.All();
  Proc second(args("127.0.0.1:" + *port), Keys());
  EXPECT_NE(second.Wait(), 0) << "a second osb server shares gRPC port " << *port << ": " << second.All();
  EXPECT_NE(second.Err().find("cannot listen on 127.0.0.1:" + *port), std::string::npos) << second.Err();
  EXPECT_EQ(first.Stop(), 0);
}

TEST(OsbProcess, DataDirIs0700AndDatabaseFiles0600) {
  const std::string dir = MakeTempDir() + "/fresh/data";
  Proc server([&] {
    auto a = ServerArgs(dir);
    a.push_back("--insecure-grpc");
    return a;
  }(), Keys());
  ASSERT_TRUE(server.WaitFor(kListening)) << server.All();
  // A write, so SQLite has made its -wal/-shm files.
  HttpClient client(static_cast<uint16_t>(std::stoi(*server.WaitFor(kListening))));
  EXPECT_EQ(client.Do("POST", "/api/projects", R"({"name":"p"})",
                      {{"X-API-Key", kGoodApiKey}, {"Content-Type", "application/json"}}).status, 201);
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << entry.path();
    ++files;
  }
  EXPECT_GE(files, 1);
  EXPECT_EQ(server.Stop(), 0);
}

TEST(OsbProcess, KeysLeaveTheEnvironmentAndTheProcessIsNotDumpable) {
  const std::string dir = MakeTempDir();
  const uid_t nobody = 65534;
  if (geteuid() == 0) {
    ASSERT_EQ(::chown(dir.c_str(), nobody, nobody), 0);
  }
  Env env = Keys();
  env["OSB_TEST_MARKER"] = "still-here";
  const std::string key_hex = env["OPENSANDBOX_SECRET_ENCRYPTION_KEY"];
  auto args = ServerArgs(dir + "/data");
  args.push_back("--insecure-grpc");
  // As root, run it as another user: a non-dumpable process's /proc files
  // belong to root, a dumpable one's to its own user.
  const std::optional<uid_t> as = geteuid() == 0 ? std::optional<uid_t>(nobody) : std::nullopt;
  Proc server(args, env, as);
  ASSERT_TRUE(server.WaitFor(kListening)) << server.All();
  const std::string proc = "/proc/" + std::to_string(server.pid());
  struct stat st {};
  ASSERT_EQ(::stat((proc + "/status").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "osb server is dumpable: its /proc files belong to its user";
  {  // The same check on a dumpable process proves the method.
    Proc sleeper({"30"}, {}, as, "/bin/sleep");
    ASSERT_TRUE(sleeper.pid() > 0);
    struct stat sst {};
    const std::string status = "/proc/" + std::to_string(sleeper.pid()) + "/status";
    // exec happens after fork: wait (bounded) until the child has switched user.
    for (int i = 0; i < 500 && as; ++i) {
      if (::stat(status.c_str(), &sst) == 0 && sst.st_uid == *as) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (as) {
      EXPECT_EQ(sst.st_uid, *as);
    }
  }
  const std::string environ_text = Slurp(proc + "/environ");
  ASSERT_NE(environ_text.find("OSB_TEST_MARKER=still-here"), std::string::npos) << "cannot read the environment";
  EXPECT_EQ(environ_text.find(key_hex), std::string::npos) << "the encryption key is still in /proc/PID/environ";
  EXPECT_EQ(environ_text.find(kGoodApiKey), std::string::npos) << "the API key is still in /proc/PID/environ";
  EXPECT_EQ(environ_text.find("OPENSANDBOX_SECRET_ENCRYPTION_KEY="), std::string::npos);
  EXPECT_EQ(server.Stop(), 0);
  EXPECT_EQ(server.All().find(key_hex), std::string::npos);
}

TEST(OsbProcess, BootstrapApiKeyMustBeAtLeast32Characters) {
  Env env = Keys();
  env["OPENSANDBOX_API_KEY"] = "short-key-0123456789abcdefghij";  // 30 characters
  auto args = ServerArgs(MakeTempDir() + "/data");
  args.push_back("--insecure-grpc");
  Proc server(args, env);
  EXPECT_EQ(server.Wait(), 1);
  EXPECT_NE(server.Err().find("at least 32"), std::string::npos) << server.Err();
  EXPECT_EQ(server.All().find("short-key-0123456789abcdefghij"), std::string::npos) << "the key was echoed";
}

TEST(OsbProcess, ReadyzIs503WithoutAWorkerAndHealthzIs200) {
  auto args = ServerArgs(MakeTempDir() + "/data");
  args.push_back("--insecure-grpc");
  Proc server(args, Keys());
  const auto port = server.WaitFor(kListening);
  ASSERT_TRUE(port) << server.All();
  HttpClient client(static_cast<uint16_t>(std::stoi(*port)));
  EXPECT_EQ(client.Do("GET", "/healthz").status, 200);
  const auto ready = client.Do("GET", "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_EQ(ready.Json().value("status", ""), "not ready") << ready.body;
  EXPECT_NE(ready.Json().value("error", "").find("worker"), std::string::npos) << ready.body;
  EXPECT_EQ(server.Stop(), 0);
}

// ---- osb dev: its own CA, mutual TLS, roles ---------------------------------

grpc::Status Fetch(const std::shared_ptr<grpc::Channel>& channel, const std::string& worker_id) {
  auto stub = v1::ControlPlane::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::FetchSandboxSecretsRequest req;
  req.set_worker_id(worker_id);
  v1::FetchSandboxSecretsResponse resp;
  return stub->FetchSandboxSecrets(&ctx, req, &resp);
}

std::shared_ptr<grpc::Channel> Client(const std::string& target, const std::string& ca_pem,
                                      const std::string& cert_pem = "", const std::string& key_pem = "") {
  grpc::SslCredentialsOptions opts{ca_pem, key_pem, cert_pem};
  return grpc::CreateChannel(target, grpc::SslCredentials(opts));
}

TEST(OsbProcess, DevMakesItsOwnCaAndRefusesCallersWithoutAWorkerCertificate) {
  const std::string dir = MakeTempDir() + "/dev";
  const std::vector<std::string> args = {"dev", "--data-dir", dir, "--listen", "127.0.0.1:0",
                                         "--grpc-listen", "127.0.0.1:0", "--no-worker"};
  const Env env = {{"XDG_CONFIG_HOME", MakeTempDir()}};
  std::string ca_before;
  {
    Proc dev(args, env);
    ASSERT_TRUE(dev.WaitFor("API at http://")) << dev.All();
    const auto port = dev.WaitFor("gRPC \\(for workers\\) on port ([0-9]+)");
    ASSERT_TRUE(port) << dev.All();
    const std::string tls = dir + "/grpc-tls";
    struct stat st {};
    ASSERT_EQ(::stat(tls.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    for (const char* key : {"ca.key", "control-plane.key", "worker.key"}) {
      ASSERT_EQ(::stat((tls + "/" + key).c_str(), &st), 0) << key;
      EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
    }
    ca_before = Slurp(tls + "/ca.crt");
    const std::string target = "localhost:" + *port;

    // No certificate, plaintext, a certificate of another CA: refused in
    // the handshake.
    EXPECT_EQ(Fetch(Client(target, ca_before), "dev-worker").error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(Fetch(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()), "dev-worker").error_code(),
              grpc::StatusCode::UNAVAILABLE);
    const std::string rogue = MakeTempDir() + "/rogue";
    ASSERT_EQ(std::system(("bash " + Script() + " " + rogue + " worker dev-worker >/dev/null").c_str()), 0);
    EXPECT_EQ(Fetch(Client(target, ca_before, Slurp(rogue + "/dev-worker.crt"), Slurp(rogue + "/dev-worker.key")),
                    "dev-worker").error_code(),
              grpc::StatusCode::UNAVAILABLE);
    // osb dev's own control-plane certificate is the wrong role.
    EXPECT_EQ(Fetch(Client(target, ca_before, Slurp(tls + "/control-plane.crt"), Slurp(tls + "/control-plane.key")),
                    "control-plane").error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    // Its worker certificate is served.
    EXPECT_TRUE(Fetch(Client(target, ca_before, Slurp(tls + "/worker.crt"), Slurp(tls + "/worker.key")),
                      "dev-worker").ok());
    EXPECT_NE(dev.All().find("generated gRPC certificates"), std::string::npos);
    EXPECT_EQ(dev.Stop(), 0);
  }
  // A restart reuses them.
  Proc again(args, env);
  ASSERT_TRUE(again.WaitFor("API at http://")) << again.All();
  EXPECT_EQ(Slurp(dir + "/grpc-tls/ca.crt"), ca_before);
  EXPECT_EQ(again.All().find("generated gRPC certificates"), std::string::npos);
  EXPECT_EQ(again.Stop(), 0);
}

}  // namespace
}  // namespace osb::testing
