// Sandboxes from an imported image: busybox runs, the image's Env,
// WorkingDir and User apply, image files are owned by root *inside*, writes
// go to the sandbox's own upper dir (never the store, never another
// sandbox), and diskMB is enforced with ENOSPC inside.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "harness.h"
#include "images/image_store.h"
#include "images/layer_applier.h"

namespace osb::sandbox::testing {
namespace {

std::string Slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class ImageSandboxTest : public SandboxTest {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/var/tmp/osb-image-sandbox-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::ofstream(dir_ + "/spec.json") << R"({"busybox": true,
      "layers": [[{"path": "data", "type": "dir", "uid": 1000, "gid": 1000},
                  {"path": "data/seed", "data": "seed", "uid": 1000, "gid": 1000}]],
      "config": {"Env": ["GREETING=from-image", "PATH=/bin"], "WorkingDir": "/home/app", "User": "app"}})";
    ASSERT_EQ(system(("python3 " OSB_SOURCE_DIR "/tests/support/make_image.py " + dir_ + "/spec.json " + dir_ +
                      "/img.tar >/dev/null")
                         .c_str()),
              0);
    images::ImageStore store(dir_ + "/store");
    auto img = store.Import(dir_ + "/img.tar");
    ASSERT_TRUE(img) << img.error().message;
    image_ = new images::StoredImage(*img);
  }
  static void TearDownTestSuite() {
    delete image_;
    int fd = open("/var/tmp", O_RDONLY | O_DIRECTORY);
    (void)images::RemoveTreeAt(fd, dir_.substr(9));
    close(fd);
  }

  RuntimeConfig BaseConfig() {
    auto cfg = SandboxTest::BaseConfig();
    cfg.diskDir = dir_ + "/disks";
    return cfg;
  }
  void SetUp() override {
    SandboxTest::SetUp();
    runtime_.reset();
    auto rt = SandboxRuntime::Create(BaseConfig());
    ASSERT_TRUE(rt) << rt.error().message;
    runtime_ = std::move(*rt);
  }

  // What the worker does with an image: its Env under the request's, its
  // WorkingDir and User.
  SandboxSpec ImageSpec(const std::string& tag, uint64_t diskMB = 64) {
    auto spec = MakeSpec(tag);
    auto rc = images::ResolveRunConfig(*image_);
    EXPECT_TRUE(rc) << rc.error().message;
    for (const auto& [k, v] : rc->env) spec.env.emplace(k, v);
    spec.imageRootfs = image_->rootfs;
    spec.diskMB = diskMB;
    spec.runAsUid = rc->uid;
    spec.runAsGid = rc->gid;
    spec.workingDir = rc->workingDir;
    return spec;
  }

  static std::string dir_;
  static images::StoredImage* image_;
};
std::string ImageSandboxTest::dir_;
images::StoredImage* ImageSandboxTest::image_ = nullptr;

TEST_F(ImageSandboxTest, RunsBusyboxWithTheImagesEnvWorkingDirAndUser) {
  auto info = CreateOrDie(ImageSpec("img"));
  auto echo = Run(info.id, {"busybox", "echo", "hi"});
  EXPECT_EQ(echo.exitCode, 0) << echo.stderrData;
  EXPECT_EQ(echo.stdoutData, "hi\n");
  EXPECT_EQ(Run(info.id, {"id", "-u"}).stdoutData, "1000\n");
  EXPECT_EQ(Run(info.id, {"id", "-g"}).stdoutData, "1000\n");
  EXPECT_EQ(Run(info.id, {"pwd"}).stdoutData, "/home/app\n");
  auto env = Run(info.id, {"env"}).stdoutData;
  EXPECT_NE(env.find("GREETING=hello\n"), std::string::npos) << "the request's env wins over the image's: " << env;
  EXPECT_NE(env.find("PATH=/bin\n"), std::string::npos) << env;
  // Image files are owned by root inside (idmapped), not by nobody.
  EXPECT_EQ(Run(info.id, {"stat", "-c", "%u:%g", "/bin/busybox"}).stdoutData, "0:0\n");
  EXPECT_EQ(Run(info.id, {"stat", "-c", "%u", "/home/app"}).stdoutData, "1000\n");
  // The image's /etc/passwd is kept; the generated resolv.conf is there.
  EXPECT_NE(Run(info.id, {"cat", "/etc/passwd"}).stdoutData.find("app:x:1000"), std::string::npos);
  EXPECT_NE(Run(info.id, {"cat", "/etc/resolv.conf"}).stdoutData.find("nameserver"), std::string::npos);
  // As app, root's files stay read-only.
  auto denied = Run(info.id, {"sh", "-c", "echo x > /etc/passwd"});
  EXPECT_NE(denied.exitCode, 0);
}

TEST_F(ImageSandboxTest, WritesGoToTheSandboxesOwnUpperDir) {
  auto a = CreateOrDie(ImageSpec("wa"));
  auto b = CreateOrDie(ImageSpec("wb"));
  auto w = Run(a.id, {"sh", "-c", "echo mine > /data/f && echo note > /home/app/n && rm /data/seed && cat /data/f"});
  EXPECT_EQ(w.exitCode, 0) << w.stderrData;
  EXPECT_EQ(w.stdoutData, "mine\n");
  EXPECT_NE(Run(b.id, {"cat", "/data/f"}).exitCode, 0) << "another sandbox sees the first's write";
  EXPECT_EQ(Run(b.id, {"cat", "/data/seed"}).stdoutData, "seed") << "another sandbox sees the first's delete";
  struct stat st {};
  EXPECT_NE(stat((image_->rootfs + "/data/f").c_str(), &st), 0) << "the store was written";
  EXPECT_EQ(Slurp(image_->rootfs + "/data/seed"), "seed") << "the store lost a file";
  auto upper = runtime_->WritableDir(a.id);
  ASSERT_TRUE(upper) << upper.error().message;
  EXPECT_EQ(Slurp(*upper + "/data/f"), "mine\n");
  ASSERT_EQ(stat((*upper + "/data/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, a.hostIdBase + 1000) << "upper files belong to the sandbox's host id range";
  ASSERT_EQ(lstat((*upper + "/data/seed").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "a delete is an overlay whiteout in the upper dir";
  const std::string runDir = "/run/" + prefix_ + "/" + a.id;
  ASSERT_TRUE(runtime_->Destroy(a.id));
  EXPECT_NE(access(runDir.c_str(), F_OK), 0);
  EXPECT_FALSE(runtime_->WritableDir(a.id));
}

TEST_F(ImageSandboxTest, DiskLimitIsEnforcedInside) {
  auto info = CreateOrDie(ImageSpec("disk", 16));
  auto dd = Run(info.id, {"dd", "if=/dev/zero", "of=/data/big", "bs=1M", "count=64"}, 60);
  EXPECT_NE(dd.exitCode, 0);
  EXPECT_NE(dd.stderrData.find("No space left on device"), std::string::npos) << dd.stderrData;
  auto size = Run(info.id, {"stat", "-c", "%s", "/data/big"});
  EXPECT_LT(std::stoull(size.stdoutData.empty() ? "0" : size.stdoutData), 16ull << 20);
  // The sandbox keeps working after its disk filled up; deleting frees it.
  EXPECT_EQ(Run(info.id, {"rm", "/data/big"}).exitCode, 0);
  EXPECT_EQ(Run(info.id, {"sh", "-c", "echo ok > /data/small && cat /data/small"}).stdoutData, "ok\n");
  // The disk file is unlinked once attached: nothing of it in diskDir
  // (only the per-size blank templates, dot files).
  EXPECT_EQ(system(("test -z \"$(ls " + dir_ + "/disks)\"").c_str()), 0);
  EXPECT_EQ(system(("test -z \"$(ls -A " + dir_ + "/disks | grep -v '^\\.blank-[0-9]*M\\.img$')\"").c_str()), 0);
}

TEST_F(ImageSandboxTest, RootInsideCanWriteImageFilesWithoutTouchingTheStore) {
  auto spec = ImageSpec("root");
  spec.runAsUid = 0;
  spec.runAsGid = 0;
  auto info = CreateOrDie(spec);
  auto w = Run(info.id, {"sh", "-c", "echo changed >> /etc/group && id -u"});
  EXPECT_EQ(w.exitCode, 0) << w.stderrData;
  EXPECT_EQ(w.stdoutData, "0\n");
  EXPECT_EQ(Slurp(image_->rootfs + "/etc/group").find("changed"), std::string::npos);
}

// An image whose /etc, /tmp and /proc are symlinks to host paths: the
// init's setup (which runs before the pivot, with host paths) must replace
// them, never write or mount through them.
TEST_F(ImageSandboxTest, SymlinkedSystemDirsInTheImageAreNotFollowed) {
  // Reachable and writable for the sandbox's host uid, so that following
  // the symlink would succeed (and show) rather than fail on permissions.
  const std::string target = dir_ + "/host-target";
  ASSERT_EQ(mkdir(target.c_str(), 0777), 0);
  ASSERT_EQ(chmod(target.c_str(), 0777), 0);
  ASSERT_EQ(chmod(dir_.c_str(), 0711), 0);
  std::ofstream(dir_ + "/evil.json") << R"({"busybox": false, "layers": [[
      {"path": "bin", "type": "dir"},
      {"path": "bin/busybox", "src": "/bin/busybox", "mode": 493},
      {"path": "bin/sh", "type": "symlink", "target": "busybox"},
      {"path": "bin/ls", "type": "symlink", "target": "busybox"},
      {"path": "etc", "type": "symlink", "target": ")" + target + R"("},
      {"path": "tmp", "type": "symlink", "target": ")" + target + R"("},
      {"path": "proc", "type": "symlink", "target": ")" + target + R"("}]]})";
  ASSERT_EQ(system(("python3 " OSB_SOURCE_DIR "/tests/support/make_image.py " + dir_ + "/evil.json " + dir_ +
                    "/evil.tar >/dev/null").c_str()),
            0);
  images::ImageStore store(dir_ + "/store");
  auto img = store.Import(dir_ + "/evil.tar");
  ASSERT_TRUE(img) << img.error().message;
  auto spec = MakeSpec("evil");
  spec.imageRootfs = img->rootfs;
  spec.diskMB = 16;
  spec.runAsUid = spec.runAsGid = 0;
  spec.env["PATH"] = "/bin";
  auto info = CreateOrDie(spec);
  auto r = Run(info.id, {"sh", "-c", "ls /etc/hosts && ls /proc/self/status"});
  EXPECT_EQ(r.exitCode, 0) << r.stderrData;
  EXPECT_EQ(system(("test -z \"$(ls -A " + target + ")\"").c_str()), 0) << "the setup wrote through an image symlink";
}

TEST_F(ImageSandboxTest, BaseSandboxHasNoWritableDir) {
  auto info = CreateOrDie(MakeSpec("base"));
  auto w = runtime_->WritableDir(info.id);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_EQ(runtime_->WritableDir("nope").error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace osb::sandbox::testing
