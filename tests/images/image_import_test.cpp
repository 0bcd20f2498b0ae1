// Imports images built by tests/support/make_image.py, among them hostile
// ones: each attack checks both the refusal and that nothing outside the
// store was written or removed.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

#include "images/image_store.h"
#include "images/layer_applier.h"

namespace osb::images {
namespace {

std::string ReadFile(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool Exists(const std::string& p) {
  struct stat st {};
  return lstat(p.c_str(), &st) == 0;
}

class ImageImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/osb-images-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    outside_ = tmp_ + "/outside";
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
    std::ofstream(outside_ + "/victim") << "keep me";
    store_ = std::make_unique<ImageStore>(tmp_ + "/store");
  }
  void TearDown() override {
    int fd = open("/tmp", O_RDONLY | O_DIRECTORY);
    (void)RemoveTreeAt(fd, tmp_.substr(5));
    close(fd);
  }

  // Writes the spec, runs the helper, returns the image path.
  std::string Make(const std::string& spec, const std::string& name = "img.tar") {
    const std::string specPath = tmp_ + "/spec-" + name + ".json", out = tmp_ + "/" + name;
    std::ofstream(specPath) << spec;
    const std::string cmd = "python3 " OSB_SOURCE_DIR "/tests/support/make_image.py " + specPath + " " + out +
                            " > " + tmp_ + "/digest";
    EXPECT_EQ(system(cmd.c_str()), 0) << cmd;
    digest_ = ReadFile(tmp_ + "/digest");
    if (!digest_.empty() && digest_.back() == '\n') digest_.pop_back();
    return out;
  }

  // Import must fail with `code` and a message containing `needle`; the
  // outside dir is untouched and the store holds no image and no scratch.
  void ExpectRefused(const std::string& spec, ErrorCode code, const std::string& needle) {
    auto r = store_->Import(Make(spec));
    ASSERT_FALSE(r) << "imported a hostile image: " << spec;
    EXPECT_EQ(r.error().code, code) << r.error().message;
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
    EXPECT_EQ(ReadFile(outside_ + "/victim"), "keep me");
    EXPECT_FALSE(Exists(outside_ + "/pwned"));
    EXPECT_FALSE(Exists(tmp_ + "/pwned"));
    EXPECT_FALSE(Exists(tmp_ + "/store/sha256/" + digest_.substr(7)));
    EXPECT_EQ(system(("test -z \"$(ls -A " + tmp_ + "/store/tmp)\"").c_str()), 0) << "scratch left behind";
  }

  std::string tmp_, outside_, digest_;
  std::unique_ptr<ImageStore> store_;
};

const char* kBusyboxImage = R"({"busybox": true,
  "layers": [[{"path": "etc/motd", "data": "hello"}, {"path": "bin/suid", "data": "x", "mode": 3565}]],
  "config": {"Env": ["GREETING=hi"], "WorkingDir": "/home/app", "User": "app"}})";

void ExpectBusyboxRootfs(const StoredImage& img) {
  EXPECT_EQ(ReadFile(img.rootfs + "/etc/motd"), "hello");
  struct stat st {};
  ASSERT_EQ(stat((img.rootfs + "/bin/busybox").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  ASSERT_EQ(lstat((img.rootfs + "/bin/sh").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(stat((img.rootfs + "/home/app").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  ASSERT_EQ(stat((img.rootfs + "/bin/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u) << "setuid/setgid bits must be dropped";
  EXPECT_EQ(img.config.env, std::vector<std::string>{"GREETING=hi"});
  EXPECT_EQ(img.config.workingDir, "/home/app");
  EXPECT_EQ(img.config.user, "app");
}

TEST_F(ImageImportTest, OciArchiveGzip) {
  auto r = store_->Import(Make(kBusyboxImage));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->configDigest, digest_);
  EXPECT_EQ(r->rootfs, tmp_ + "/store/sha256/" + digest_.substr(7) + "/rootfs");
  ExpectBusyboxRootfs(*r);
  auto again = store_->Import(Make(kBusyboxImage, "again.tar"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->dir, r->dir);
  auto found = store_->Find(digest_);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->config.user, "app");
  struct stat st {};
  ASSERT_EQ(stat((tmp_ + "/store").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "the store is root-only";
  EXPECT_TRUE(store_->Remove(digest_));
  EXPECT_FALSE(store_->Find(digest_));
}

TEST_F(ImageImportTest, DockerSave) {
  std::string spec = kBusyboxImage;
  spec.insert(1, R"("format": "docker", )");
  auto r = store_->Import(Make(spec));
  ASSERT_TRUE(r) << r.error().message;
  ExpectBusyboxRootfs(*r);
}

TEST_F(ImageImportTest, OciLayoutDirectoryZstdAndPlain) {
  for (const char* c : {"zstd", "none"}) {
    std::string spec = kBusyboxImage;
    spec.insert(1, std::string(R"("format": "oci-dir", "compress": ")") + c + "\", ");
    auto r = store_->Import(Make(spec, std::string("dir-") + c));
    ASSERT_TRUE(r) << c << ": " << r.error().message;
    ExpectBusyboxRootfs(*r);
    ASSERT_TRUE(store_->Remove(r->configDigest));
  }
}

TEST_F(ImageImportTest, WhiteoutsAndOpaqueDirs) {
  auto r = store_->Import(Make(R"({"layers": [
    [{"path": "a/x", "data": "1"}, {"path": "a/y", "data": "2"}, {"path": "d/z", "data": "3"},
     {"path": "d/sub/w", "data": "4"}, {"path": "f", "data": "file"}],
    [{"path": "a/.wh.x", "data": ""}, {"path": "d/kept", "data": "5"}, {"path": "d/.wh..wh..opq", "data": ""},
     {"path": "f/inner", "type": "dir"}]]})"));
  // "f/inner" needs f to be a directory: the layer replaced a file by a
  // dir implicitly, which tar writers never do, so it is refused.
  ASSERT_FALSE(r);
  auto ok = store_->Import(Make(R"({"layers": [
    [{"path": "a/x", "data": "1"}, {"path": "a/y", "data": "2"}, {"path": "d/z", "data": "3"},
     {"path": "d/sub/w", "data": "4"}, {"path": "f", "data": "file"}],
    [{"path": "a/.wh.x", "data": ""}, {"path": "d/kept", "data": "5"}, {"path": "d/.wh..wh..opq", "data": ""},
     {"path": "f", "type": "dir"}, {"path": "f/inner", "data": "6"}]]})", "ok.tar"));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_FALSE(Exists(ok->rootfs + "/a/x"));
  EXPECT_TRUE(Exists(ok->rootfs + "/a/y"));
  EXPECT_FALSE(Exists(ok->rootfs + "/d/z"));
  EXPECT_FALSE(Exists(ok->rootfs + "/d/sub"));
  EXPECT_EQ(ReadFile(ok->rootfs + "/d/kept"), "5") << "an opaque marker keeps its own layer's entries";
  EXPECT_EQ(ReadFile(ok->rootfs + "/f/inner"), "6");
  EXPECT_FALSE(Exists(ok->rootfs + "/a/.wh.x"));
}

TEST_F(ImageImportTest, RefusesTraversal) {
  ExpectRefused(R"({"layers": [[{"path": "../../pwned", "data": "x"}]]})", ErrorCode::kInvalidArgument, "'..'");
  ExpectRefused(R"({"layers": [[{"path": "a/../../pwned", "data": "x"}]]})", ErrorCode::kInvalidArgument, "'..'");
}

TEST_F(ImageImportTest, RefusesAbsolutePaths) {
  ExpectRefused(R"({"layers": [[{"path": "/tmp/pwned", "data": "x"}]]})", ErrorCode::kInvalidArgument,
                "absolute");
}

TEST_F(ImageImportTest, RefusesWhiteoutTricks) {
  // ".wh..." names ".." and ".wh.." names ".".
  ExpectRefused(R"({"layers": [[{"path": "a/.wh...", "data": ""}]]})", ErrorCode::kInvalidArgument, "whiteout");
  ExpectRefused(R"({"layers": [[{"path": "a/b", "data": ""}, {"path": "a/.wh..", "data": ""}]]})",
                ErrorCode::kInvalidArgument, "whiteout");
  // A whiteout through a symlink to the host must not delete the host file.
  ExpectRefused(std::string(R"({"layers": [[{"path": "l", "type": "symlink", "target": ")") + outside_ +
                    R"("}], [{"path": "l/.wh.victim", "data": ""}]]})",
                ErrorCode::kInvalidArgument, "symlink");
}

TEST_F(ImageImportTest, RefusesSymlinkEscapes) {
  // A symlink to the host, then a file through it (same layer, then a later one).
  ExpectRefused(std::string(R"({"layers": [[{"path": "esc", "type": "symlink", "target": ")") + outside_ +
                    R"("}, {"path": "esc/pwned", "data": "x"}]]})",
                ErrorCode::kInvalidArgument, "symlink");
  ExpectRefused(std::string(R"({"layers": [[{"path": "esc", "type": "symlink", "target": "../../.."}],
                  [{"path": "esc/pwned", "data": "x"}]]})"),
                ErrorCode::kInvalidArgument, "symlink");
  // A symlink named like the file the next entry writes: replaced, never written through.
  auto r = store_->Import(Make(std::string(R"({"layers": [[{"path": "f", "type": "symlink", "target": ")") +
                                   outside_ + R"(/victim"}, {"path": "f", "data": "mine"}]]})",
                               "replace.tar"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(ReadFile(outside_ + "/victim"), "keep me");
  EXPECT_EQ(ReadFile(r->rootfs + "/f"), "mine");
}

TEST_F(ImageImportTest, RefusesHardlinksOutside) {
  ExpectRefused(R"({"layers": [[{"path": "h", "type": "hardlink", "target": "../../outside/victim"}]]})",
                ErrorCode::kInvalidArgument, "hardlink");
  ExpectRefused(std::string(R"({"layers": [[{"path": "h", "type": "hardlink", "target": ")") + outside_ +
                    R"(/victim"}]]})",
                ErrorCode::kInvalidArgument, "hardlink");
  ExpectRefused(std::string(R"({"layers": [[{"path": "l", "type": "symlink", "target": ")") + outside_ +
                    R"("}, {"path": "h", "type": "hardlink", "target": "l/victim"}]]})",
                ErrorCode::kInvalidArgument, "hardlink");
  struct stat st {};
  ASSERT_EQ(stat((outside_ + "/victim").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u) << "a link to the host file was made";
}

TEST_F(ImageImportTest, RefusesDeviceNodesAndFifos) {
  ExpectRefused(R"({"layers": [[{"path": "dev/mem", "type": "char"}]]})", ErrorCode::kInvalidArgument, "device");
  ExpectRefused(R"({"layers": [[{"path": "p", "type": "fifo"}]]})", ErrorCode::kInvalidArgument, "fifo");
}

TEST_F(ImageImportTest, RefusesDigestMismatch) {
  for (const char* what : {"layer", "config", "manifest"}) {
    SCOPED_TRACE(what);
    ExpectRefused(std::string(R"({"busybox": true, "corrupt": ")") + what + "\"}", ErrorCode::kInvalidArgument,
                  "digest mismatch");
  }
  for (const char* what : {"layer", "config"}) {
    SCOPED_TRACE(std::string("docker ") + what);
    ExpectRefused(std::string(R"({"format": "docker", "busybox": true, "corrupt": ")") + what + "\"}",
                  ErrorCode::kInvalidArgument, "digest mismatch");
  }
}

TEST_F(ImageImportTest, RefusesHugeAndTruncatedLayers) {
  ImportLimits small;
  small.maxUnpackedBytes = 1 << 20;
  auto r = store_->Import(Make(R"({"layers": [[{"path": "big", "size": 2097152}]]})"), small);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTooLarge) << r.error().message;
  EXPECT_FALSE(Exists(tmp_ + "/store/sha256/" + digest_.substr(7)));
  ExpectRefused(R"({"compress": "none", "truncate_layer": 0,
                  "layers": [[{"path": "a", "size": 65536}, {"path": "b", "size": 65536}]]})",
                ErrorCode::kInvalidArgument, "truncated");
  ImportLimits fewEntries;
  fewEntries.maxEntries = 2;
  auto many = store_->Import(Make(R"({"layers": [[{"path": "a"}, {"path": "b"}, {"path": "c"}]]})", "many.tar"),
                             fewEntries);
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().code, ErrorCode::kTooLarge);
}

TEST_F(ImageImportTest, NamesMapToDigests) {
  const std::string d = "sha256:" + std::string(64, 'e');
  EXPECT_FALSE(store_->Resolve("busybox"));
  ASSERT_TRUE(store_->Tag("busybox", d));
  ASSERT_TRUE(store_->Tag("alpine.3-x_y", d));
  auto r = store_->Resolve("busybox");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, d);
  EXPECT_EQ(store_->ListNames().size(), 2u);
  for (const char* bad : {"base", "../x", "", "-x", "a/b", "x y"}) {
    auto s = store_->Tag(bad, d);
    ASSERT_FALSE(s) << bad;
    EXPECT_NE(s.error().message.find("name"), std::string::npos);
  }
  EXPECT_FALSE(store_->Tag("ok", "sha256:nothex"));
  ASSERT_TRUE(store_->Untag("busybox"));
  EXPECT_FALSE(store_->Resolve("busybox"));
  EXPECT_TRUE(store_->Untag("busybox"));
}

TEST_F(ImageImportTest, RefusesNonImages) {
  std::ofstream(tmp_ + "/junk.tar") << "not a tar at all";
  auto r = store_->Import(tmp_ + "/junk.tar");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace osb::images
