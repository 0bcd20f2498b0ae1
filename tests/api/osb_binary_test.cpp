// End to end through the real `osb` binary (server, migrate, rewrap) with
// keys in the environment, on the backend chosen by OSB_TEST_DB. Covers key
// rotation followed by `osb rewrap`, after which the old key can be removed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "api_harness.h"
#include "controlplane/secrets.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "test_db.h"

extern char** environ;

namespace osb::testing {
namespace {

using nlohmann::json;
using Env = std::map<std::string, std::string>;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Proc {
  pid_t pid = -1;
  std::string out, err;  // file paths
};

// Starts ./osb with the parent's environment minus every OPENSANDBOX_*
// variable, plus `env`.
Proc Spawn(const std::vector<std::string>& args, const Env& env) {
  static int counter = 0;
  const std::string dir = MakeTempDir();
  Proc p{-1, dir + "/out" + std::to_string(counter), dir + "/err" + std::to_string(counter)};
  ++counter;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    if (!std::string(*e).starts_with("OPENSANDBOX_")) env_strings.emplace_back(*e);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> full = {"./osb"};
  full.insert(full.end(), args.begin(), args.end());
  for (auto& s : full) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, p.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, p.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const int rc = posix_spawn(&p.pid, "./osb", &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  EXPECT_EQ(rc, 0) << "cannot start ./osb (run from the build directory)";
  return p;
}

int WaitExit(const Proc& p) {
  int status = 0;
  waitpid(p.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int RunOsb(const std::vector<std::string>& args, const Env& env, std::string* out, std::string* err = nullptr) {
  Proc p = Spawn(args, env);
  const int code = WaitExit(p);
  *out = Slurp(p.out);
  if (err) *err = Slurp(p.err);
  return code;
}

// A running `osb server`; stops it with SIGTERM and checks a clean exit.
class Server {
 public:
  Server(const std::string& db_url, const Env& env) {
    proc_ = Spawn({"server", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--insecure-grpc", "--db", db_url},
                  env);
    const std::regex re("listening on port ([0-9]+)");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::smatch m;
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string out = Slurp(proc_.out);
      if (std::regex_search(out, m, re)) {
        port_ = static_cast<uint16_t>(std::stoi(m[1]));
        return;
      }
      int status = 0;
      if (waitpid(proc_.pid, &status, WNOHANG) == proc_.pid) {
        ADD_FAILURE() << "osb server exited early: " << Slurp(proc_.err);
        proc_.pid = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a file, bounded
    }
    ADD_FAILURE() << "osb server did not start: " << Slurp(proc_.err);
  }

  HttpResult Call(const std::string& method, const std::string& target, const json& body = nullptr) {
    HttpClient c(port_);
    return c.Do(method, target, body.is_null() ? "" : body.dump(), {{"X-API-Key", kTestAdminKey}});
  }

  // SIGTERM → graceful shutdown → exit 0. Returns the server's log.
  std::string Stop() {
    if (proc_.pid <= 0) return "";
    kill(proc_.pid, SIGTERM);
    EXPECT_EQ(WaitExit(proc_), 0);
    proc_.pid = -1;
    return Slurp(proc_.err) + Slurp(proc_.out);
  }
  ~Server() {
    if (proc_.pid > 0) {
      kill(proc_.pid, SIGKILL);
      WaitExit(proc_);
    }
  }

 private:
  Proc proc_;
  uint16_t port_ = 0;
};

std::string KeyIdOfHex(const std::string& hex) { return crypto::Keyring::FromHex(hex)->primary_key_id(); }

// Decrypts every secret in the database with only `key_hex` configured.
std::map<std::string, std::string> DecryptAll(const std::string& db_url, const std::string& key_hex,
                                              std::string* error) {
  std::map<std::string, std::string> out;
  auto store = store::OpenStore(db_url);
  EXPECT_TRUE(store.ok());
  auto ring = std::make_shared<const crypto::Keyring>(*crypto::Keyring::FromHex(key_hex));
  controlplane::SecretService secrets(**store, ring);
  auto rows = (*store)->ListAllSecrets();
  std::map<std::string, std::string> groups;  // group → org
  for (const auto& r : *rows) groups[r.group_id] = r.org_id;
  for (const auto& [group, org] : groups) {
    auto plain = secrets.DecryptGroup(org, group);
    if (!plain) {
      *error = plain.error().message;
      return {};
    }
    for (const auto& s : *plain) out[s.name] = s.value;
  }
  return out;
}

TEST(OsbBinary, ServerRefusesToStartWithoutAKey) {
  std::string out, err;
  const int code = RunOsb({"server", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--db", FreshDatabaseUrl()}, {}, &out, &err);
  EXPECT_EQ(code, 2);
  EXPECT_NE(err.find("OPENSANDBOX_SECRET_ENCRYPTION_KEY"), std::string::npos) << err;
  EXPECT_NE(err.find("osb keygen"), std::string::npos) << err;
}

TEST(OsbBinary, MigrateIsIdempotent) {
  const std::string url = FreshDatabaseUrl();
  std::string out;
  // The newest migration (8 on this branch: secret kinds) both times.
  EXPECT_EQ(RunOsb({"migrate", "--db", url}, {}, &out), 0);
  const auto at = out.find("version ");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string version = out.substr(at, out.find_first_not_of("0123456789", at + 8) - at);
  EXPECT_GE(std::stoi(version.substr(8)), 8) << out;
  EXPECT_EQ(RunOsb({"migrate", "--db", url}, {}, &out), 0);
  EXPECT_NE(out.find(version), std::string::npos) << out;
  std::string err;
  EXPECT_NE(RunOsb({"migrate", "--db", "mysql://x"}, {}, &out, &err), 0);
  EXPECT_NE(err.find("--db"), std::string::npos);
}

TEST(OsbBinary, RotationThenRewrapRetiresTheOldKey) {
  const std::string url = FreshDatabaseUrl();
  const std::string k1 = crypto::GenerateKeyHex(), k2 = crypto::GenerateKeyHex();
  const std::string id1 = KeyIdOfHex(k1), id2 = KeyIdOfHex(k2);
  const std::map<std::string, std::string> values = {
      {"ALPHA", "alpha-value-e2e-1"}, {"BETA", "beta-value-e2e-2"}, {"GAMMA", "gamma-value-e2e-3"},
      {"SHARED", "shared-value-e2e-4"}, {"LATE", "late-value-e2e-5"}};
  std::string logs;
  {
    Server s(url, {{"OPENSANDBOX_SECRET_ENCRYPTION_KEY", k1}, {"OPENSANDBOX_API_KEY", kTestAdminKey}});
    ASSERT_EQ(s.Call("POST", "/api/projects", json{{"name", "p"}}).status, 201);
    ASSERT_EQ(s.Call("POST", "/api/secret-groups", json{{"name", "g"}}).status, 201);
    for (const char* name : {"ALPHA", "BETA", "GAMMA"}) {
      ASSERT_EQ(s.Call("PUT", std::string("/api/projects/p/secrets/") + name, json{{"value", values.at(name)}}).status,
                200);
    }
    ASSERT_EQ(s.Call("PUT", "/api/secret-groups/g/secrets/SHARED", json{{"value", values.at("SHARED")}}).status, 200);
    logs += s.Stop();
  }
  // Rotate: k2 is the primary, k1 moves to a _V slot. Old rows still work.
  const Env rotated = {{"OPENSANDBOX_SECRET_ENCRYPTION_KEY", k2},
                       {"OPENSANDBOX_SECRET_ENCRYPTION_KEY_V1", k1},
                       {"OPENSANDBOX_API_KEY", kTestAdminKey}};
  {
    Server s(url, rotated);
    ASSERT_EQ(s.Call("PUT", "/api/projects/p/secrets/LATE", json{{"value", values.at("LATE")}}).status, 200);
    EXPECT_EQ(s.Call("GET", "/api/projects/p/secrets").Json().size(), 4u);
    logs += s.Stop();
  }
  std::string error;
  EXPECT_TRUE(DecryptAll(url, k2, &error).empty());
  EXPECT_NE(error.find(id1), std::string::npos) << "names the missing key: " << error;

  std::string out, err;
  ASSERT_EQ(RunOsb({"rewrap", "--db", url}, rotated, &out, &err), 0) << err;
  EXPECT_NE(out.find("key " + id1 + ": 4 secret(s) re-encrypted"), std::string::npos) << out;
  EXPECT_NE(out.find("key " + id2 + " (primary): 1 secret(s) already current"), std::string::npos) << out;
  // OAuth state is covered too (none stored here: no oauth2-refresh secret).
  EXPECT_NE(out.find("key " + id2 + " (primary): 0 oauth token(s) already current"), std::string::npos) << out;
  EXPECT_NE(out.find("0 oauth token(s) moved, 0 failed"), std::string::npos) << out;
  // Idempotent.
  ASSERT_EQ(RunOsb({"rewrap", "--db", url}, rotated, &out, &err), 0) << err;
  EXPECT_NE(out.find("rewrap: 0 moved"), std::string::npos) << out;
  EXPECT_NE(out.find("(primary): 5 secret(s)"), std::string::npos) << out;

  // The old key can now be removed: everything decrypts with k2 alone.
  error.clear();
  EXPECT_EQ(DecryptAll(url, k2, &error), values) << error;
  for (const auto& row : RawQuery(url, "SELECT key_id FROM org_secrets")) EXPECT_EQ(row[0], id2);
  // And the server runs with k2 alone.
  {
    Server s(url, {{"OPENSANDBOX_SECRET_ENCRYPTION_KEY", k2}, {"OPENSANDBOX_API_KEY", kTestAdminKey}});
    EXPECT_EQ(s.Call("GET", "/api/projects/p/secrets").status, 200);
    logs += s.Stop();
  }
  // No value and no key ever appeared in any output.
  for (const auto& [name, value] : values) {
    EXPECT_EQ(logs.find(value), std::string::npos);
    EXPECT_EQ(out.find(value), std::string::npos);
  }
  EXPECT_EQ(logs.find(k1), std::string::npos);
  EXPECT_EQ(logs.find(k2), std::string::npos);
  EXPECT_EQ(logs.find(kTestAdminKey), std::string::npos);

  // rewrap without a key is a clear error.
  EXPECT_EQ(RunOsb({"rewrap", "--db", url}, {}, &out, &err), 2);
  EXPECT_NE(err.find("OPENSANDBOX_SECRET_ENCRYPTION_KEY"), std::string::npos);
}

}  // namespace
}  // namespace osb::testing
