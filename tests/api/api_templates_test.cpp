// Image templates over REST (issue 14 item 1): POST /api/templates streams
// the tarball into the control plane's data dir, verifies it without
// unpacking and names it for the org; GET lists/gets, DELETE removes (409
// while a sandbox uses it). A sandbox created with templateID=<name> sends
// the org's digest to its worker; another org's name means nothing. Real
// REST server and database, images built by tests/support/make_image.py,
// fake workers behind the WorkerClient seam.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "api_harness.h"
#include "controlplane/auth.h"
#include "fake_worker.h"

namespace osb::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr uint64_t kLimit = 4ull << 20;  // the server's --max-template-bytes in these tests

class TemplatesTest : public ApiTest {
 protected:
  api::SandboxPlaneOptions PlaneOptions() override {
    api::SandboxPlaneOptions o{"127.0.0.1:0", std::nullopt};
    o.connector = &workers_;
    o.templates.dir = dir_ + "/templates";
    o.templates.max_bytes = kLimit;
    return o;
  }
  void SetUp() override {
    dir_ = MakeTempDir();
    ApiTest::SetUp();
    ASSERT_TRUE(sandboxes_->workers().Register("w1", "w1:8082", 100).ok());
  }

  // Builds an image with make_image.py; returns (tarball bytes, config digest).
  std::pair<std::string, std::string> Image(const json& spec) {
    const std::string specPath = dir_ + "/spec-" + std::to_string(n_) + ".json";
    const std::string out = dir_ + "/image-" + std::to_string(n_++) + ".tar";
    std::ofstream(specPath) << spec.dump();
    const std::string cmd = "python3 " OSB_SOURCE_DIR "/tests/support/make_image.py " + specPath + " " + out;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[128] = {};
    std::string digest = p && fgets(buf, sizeof buf, p) ? buf : "";
    if (p) pclose(p);
    while (!digest.empty() && digest.back() == '\n') digest.pop_back();
    std::ifstream in(out, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return {ss.str(), digest};
  }
  static json Busybox() { return {{"busybox", true}, {"config", {{"Env", {"A=1"}}}}}; }

  HttpResult Import(const std::string& name, const std::string& bytes, const std::string& key = kTestAdminKey) {
    return Call("POST", "/api/templates?name=" + name, bytes, key);
  }
  std::string Stored(const std::string& digest) { return dir_ + "/templates/sha256/" + digest.substr(7) + ".tar"; }
  // Nothing is left behind by a refused upload.
  void ExpectNoLeftovers() {
    if (fs::exists(dir_ + "/templates/tmp")) {
      EXPECT_TRUE(fs::is_empty(dir_ + "/templates/tmp"));
    }
    if (fs::exists(dir_ + "/templates/sha256")) {
      EXPECT_TRUE(fs::is_empty(dir_ + "/templates/sha256"));
    }
    EXPECT_EQ(Call("GET", "/api/templates").Json(), json::array());
  }
  std::string OrgOf(const std::string& key) {
    return *cp_->store().OrgIdForKeyHash(controlplane::HashApiKey(key));
  }

  FakeWorkers workers_;
  std::string dir_;
  int n_ = 0;
};

TEST_F(TemplatesTest, ImportListGetDelete) {
  auto [bytes, digest] = Image(Busybox());
  ASSERT_EQ(digest.size(), 71u);
  auto r = Import("busybox", bytes);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.Json()["name"], "busybox");
  EXPECT_EQ(r.Json()["digest"], digest);
  EXPECT_EQ(r.Json()["size"], bytes.size());
  EXPECT_TRUE(r.Json()["createdAt"].is_string());

  // Kept content-addressed, private.
  struct stat st {};
  ASSERT_EQ(stat(Stored(digest).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(static_cast<size_t>(st.st_size), bytes.size());
  ASSERT_EQ(stat((dir_ + "/templates/sha256").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(fs::is_empty(dir_ + "/templates/tmp"));

  auto list = Call("GET", "/api/templates");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.Json().size(), 1u);
  EXPECT_EQ(list.Json()[0]["digest"], digest);
  EXPECT_EQ(Call("GET", "/api/templates/busybox").Json()["digest"], digest);

  // A second name for the same image shares the file.
  ASSERT_EQ(Import("bb2", bytes).status, 201);
  EXPECT_EQ(Import("busybox", bytes).status, 409);  // the name is taken
  EXPECT_EQ(Call("DELETE", "/api/templates/busybox").status, 204);
  EXPECT_TRUE(fs::exists(Stored(digest)));  // bb2 still names it
  EXPECT_EQ(Call("GET", "/api/templates/busybox").status, 404);
  EXPECT_EQ(Call("DELETE", "/api/templates/busybox").status, 404);
  EXPECT_EQ(Call("DELETE", "/api/templates/bb2").status, 204);
  EXPECT_FALSE(fs::exists(Stored(digest)));  // the last name went: so did the tarball
}

TEST_F(TemplatesTest, BadNamesAreA400NamingName) {
  auto [bytes, digest] = Image(Busybox());
  for (const std::string& target : std::vector<std::string>{"/api/templates", "/api/templates?name=", "/api/templates?name=base",
                                   "/api/templates?name=..%2Fx", "/api/templates?name=a%20b",
                                   "/api/templates?name=-x", "/api/templates?name=" + std::string(129, 'a')}) {
    auto r = Call("POST", target, bytes);
    EXPECT_EQ(r.status, 400) << target << ": " << r.body;
    EXPECT_NE(r.Json().value("error", "").find("name"), std::string::npos) << target << ": " << r.body;
  }
  auto r = Call("POST", "/api/templates?name=x&nme=y", bytes);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("nme"), std::string::npos) << r.body;
  ExpectNoLeftovers();
}

TEST_F(TemplatesTest, HostileImagesAreA400NamingWhatIsWrong) {
  struct Case {
    json spec;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {{{"layers", {{{{"path", "../escape"}, {"type", "file"}, {"data", "x"}}}}}}, "'..'"},
      {{{"layers", {{{{"path", "/etc/evil"}, {"type", "file"}, {"data", "x"}}}}}}, "absolute path"},
      {{{"layers", {{{{"path", "dev/null"}, {"type", "char"}}}}}}, "device nodes"},
      {{{"layers", {{{{"path", "p"}, {"type", "fifo"}}}}}}, "fifos"},
      {{{"layers", {{{{"path", "link"}, {"type", "symlink"}, {"target", "/etc"}}},
                    {{{"path", "link/passwd"}, {"type", "file"}, {"data", "x"}}}}}},
       "symlink"},
      {{{"layers", {{{{"path", ".wh.."}, {"type", "file"}}}}}}, "invalid whiteout"},
      {{{"busybox", true}, {"truncate_layer", 0}}, "layer 0"},
  };
  for (const auto& c : cases) {
    auto [bytes, digest] = Image(c.spec);
    auto r = Import("bad", bytes);
    EXPECT_EQ(r.status, 400) << c.spec.dump() << ": " << r.body;
    EXPECT_NE(r.Json().value("error", "").find(c.expect), std::string::npos) << c.spec.dump() << ": " << r.body;
  }
  for (const std::string& junk : {std::string("not a tarball at all"), std::string(4096, '\0')}) {
    auto r = Import("bad", junk);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.Json().value("error", "").find("image"), std::string::npos) << r.body;
  }
  ExpectNoLeftovers();
}

TEST_F(TemplatesTest, DigestMismatchIsA400NamingTheBlob) {
  for (const std::string format : {"oci", "docker"}) {
    json spec = Busybox();
    spec["format"] = format;
    spec["corrupt"] = "layer";
    auto [bytes, digest] = Image(spec);
    auto r = Import("bad", bytes);
    ASSERT_EQ(r.status, 400) << format << ": " << r.body;
    const std::string error = r.Json().value("error", "");
    EXPECT_NE(error.find("digest mismatch"), std::string::npos) << error;
    EXPECT_NE(error.find("layer 0"), std::string::npos) << error;  // which blob
    EXPECT_NE(error.find("sha256:"), std::string::npos) << error;
  }
  json spec = Busybox();
  spec["corrupt"] = "config";
  auto [bytes, digest] = Image(spec);
  auto r = Import("bad", bytes);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("config sha256:"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("digest mismatch"), std::string::npos) << r.body;
  ExpectNoLeftovers();
}

TEST_F(TemplatesTest, OverTheLimitIsA413AndNothingIsKept) {
  // Declared too large (Content-Length): refused before a byte is read.
  std::string big(kLimit + 1, 'x');
  auto r = Import("big", big);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(r.body.find("--max-template-bytes"), std::string::npos) << r.body;
  // Not declared (chunked): refused when the stream passes the limit.
  std::string chunked = "POST /api/templates?name=big HTTP/1.1\r\nHost: x\r\nX-API-Key: " +
                        std::string(kTestAdminKey) + "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  for (int i = 0; i < 5; ++i) {
    const std::string piece(1 << 20, 'y');
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    chunked += size + piece + "\r\n";
  }
  chunked += "0\r\n\r\n";
  const std::string raw = client_->Raw(chunked);
  EXPECT_NE(raw.find(" 413 "), std::string::npos) << raw.substr(0, 200);
  ExpectNoLeftovers();
}

TEST_F(TemplatesTest, SandboxesGetTheirOrgsDigestAndOrgsAreIsolated) {
  auto [bytes, digest] = Image(Busybox());
  ASSERT_EQ(Import("busybox", bytes).status, 201);
  const std::string keyB = AddOrg("org-b");

  // Org A: templateID resolves to its image, sent to the worker by digest.
  auto r = Call("POST", "/api/sandboxes", json{{"templateID", "busybox"}});
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string a_sandbox = r.Json()["sandboxID"];
  EXPECT_EQ(workers_.Get("w1")->TemplateDigest(a_sandbox), digest);
  EXPECT_EQ(r.Json()["templateID"], "busybox");
  // base stays the zero-setup default: no digest.
  r = Call("POST", "/api/sandboxes", json::object());
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(workers_.Get("w1")->TemplateDigest(r.Json()["sandboxID"]), "");

  // Org B sees nothing of it and cannot use or delete it.
  EXPECT_EQ(Call("GET", "/api/templates", "", keyB).Json(), json::array());
  EXPECT_EQ(Call("GET", "/api/templates/busybox", "", keyB).status, 404);
  EXPECT_EQ(Call("DELETE", "/api/templates/busybox", "", keyB).status, 404);
  r = Call("POST", "/api/sandboxes", json{{"templateID", "busybox"}}, keyB);
  if (r.status == 201) {
    EXPECT_EQ(workers_.Get("w1")->TemplateDigest(r.Json()["sandboxID"]), "");
  }
  // The worker may not fetch A's image for B's sandbox: only for A's creating one.
  auto* templates = sandboxes_->templates();
  ASSERT_NE(templates, nullptr);
  auto denied = templates->TarballForWorker("w1", digest);
  ASSERT_FALSE(denied.ok());  // nothing of A's is being created now
  EXPECT_EQ(denied.error().code, ErrorCode::kFailedPrecondition);

  // In use: 409 until the sandbox is gone.
  r = Call("DELETE", "/api/templates/busybox");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find(a_sandbox), std::string::npos) << r.body;
  ASSERT_EQ(Call("DELETE", "/api/sandboxes/" + a_sandbox).status, 204);
  EXPECT_EQ(Call("DELETE", "/api/templates/busybox").status, 204);
}

TEST_F(TemplatesTest, AWorkerMayFetchOnlyADigestItIsCreatingASandboxFrom) {
  auto [bytes, digest] = Image(Busybox());
  ASSERT_EQ(Import("busybox", bytes).status, 201);
  const std::string keyB = AddOrg("org-b");
  auto& store = cp_->store();
  const std::string orgA = OrgOf(kTestAdminKey), orgB = OrgOf(keyB);
  auto* templates = sandboxes_->templates();
  ASSERT_NE(templates, nullptr);
  auto row = [&](const std::string& id, const std::string& org, const std::string& worker) {
    return store::SandboxRow{id, org, std::nullopt, worker, "creating", json{{"templateID", "busybox"}}.dump(),
                             store::NowRfc3339(), std::nullopt, 1, 512, "{}"};
  };
  ASSERT_TRUE(sandboxes_->workers().Register("w2", "w2:8082", 100).ok());
  // Org B names "busybox" too, but has no such template: no fetch for it.
  ASSERT_TRUE(store.InsertSandbox(row("sb-b", orgB, "w1")).ok());
  EXPECT_EQ(templates->TarballForWorker("w1", digest).error().code, ErrorCode::kFailedPrecondition);
  // Org A creating on w2: w1 still may not.
  ASSERT_TRUE(store.InsertSandbox(row("sb-a", orgA, "w2")).ok());
  EXPECT_EQ(templates->TarballForWorker("w1", digest).error().code, ErrorCode::kFailedPrecondition);
  auto ok = templates->TarballForWorker("w2", digest);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(*ok, Stored(digest));
  // Unknown or malformed digests.
  EXPECT_EQ(templates->TarballForWorker("w2", "sha256:" + std::string(64, 'f')).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(templates->TarballForWorker("w2", "../../etc/passwd").error().code, ErrorCode::kInvalidArgument);
}

TEST_F(TemplatesTest, SandboxKeysMayListButNotImportOrDelete) {
  auto [bytes, digest] = Image(Busybox());
  ASSERT_EQ(Import("busybox", bytes).status, 201);
  const std::string key = controlplane::GenerateApiKey();
  ASSERT_TRUE(cp_->store()
                  .AddApiKey(OrgOf(kTestAdminKey), controlplane::HashApiKey(key), "sb", store::kScopeSandbox)
                  .ok());
  EXPECT_EQ(Call("GET", "/api/templates", "", key).status, 200);
  EXPECT_EQ(Call("GET", "/api/templates/busybox", "", key).status, 200);
  EXPECT_EQ(Import("other", bytes, key).status, 403);
  EXPECT_EQ(Call("DELETE", "/api/templates/busybox", "", key).status, 403);
  EXPECT_EQ(Call("POST", "/api/templates?name=x", bytes, "").status, 401);
}

}  // namespace
}  // namespace osb::testing
