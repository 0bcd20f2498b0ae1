// Sandboxes from an imported image: busybox runs, the image's Env,
// WorkingDir and User apply, image files are owned by root *inside*, writes
// go to the sandbox's own upper dir (never the store, never another
// sandbox), and diskMB is enforced with ENOSPC inside.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "harness.h"
#include "images/image_store.h"
#include "images/layer_applier.h"
#include "sandbox/state_archive.h"

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
                  {"path": "data/seed", "data": "seed", "uid": 1000, "gid": 1000},
                  {"path": "data/opq", "type": "dir", "uid": 1000, "gid": 1000},
                  {"path": "data/opq/old", "data": "old", "uid": 1000, "gid": 1000}]],
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

// ---- checkpoints of image sandboxes (issue 14) -----------------------------

int TempFd() {
  char tmpl[] = "/var/tmp/osb-imgckpt-XXXXXX";
  int fd = mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  unlink(tmpl);
  return fd;
}

std::string Sh(SandboxRuntime& rt, const std::string& id, const std::string& script) {
  ExecRequest req;
  req.cmd = "/bin/sh";
  req.args = {"-c", script};
  auto r = rt.Exec(id, req);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  if (!r) return "";
  EXPECT_EQ(r->exitCode, 0) << script << "\n" << r->stderrData;
  return r->stdoutData;
}

// The whole writable state of an image sandbox: a new file, a deleted image
// file (whiteout), a replaced image dir (opaque), a sparse file, modes and
// owners, a symlink, /tmp; forked twice from one checkpoint, each fork sees
// all of it over the same image, and the image's own files.
TEST_F(ImageSandboxTest, CheckpointCarriesTheUpperDirIntoForks) {
  auto a = CreateOrDie(ImageSpec("cka", 48));
  Sh(*runtime_, a.id,
     "set -e; echo mine > /data/f; busybox chmod 0640 /data/f; rm /data/seed; rm -rf /data/opq; mkdir /data/opq;"
     "echo new > /data/opq/new; busybox ln -s ../f /data/opq/link; busybox truncate -s 1G /data/sparse;"
     "echo tail | dd of=/data/sparse bs=1 seek=900000000 conv=notrunc 2>/dev/null; echo scratch > /tmp/t");
  int fd = TempFd();
  auto stats = runtime_->CaptureState(a.id, fd);
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_LT(stats->dataBytes, 1u << 20) << "a sparse file costs its data only";
  for (const char* tag : {"ckf1", "ckf2"}) {
    ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
    auto spec = ImageSpec(tag, 48);
    spec.restoreFd = fd;
    auto f = CreateOrDie(spec);
    EXPECT_EQ(Sh(*runtime_, f.id, "cat /data/f"), "mine\n");
    EXPECT_EQ(Sh(*runtime_, f.id, "stat -c '%a %u %g' /data/f"), "640 1000 1000\n");
    EXPECT_EQ(Sh(*runtime_, f.id, "test ! -e /data/seed && echo gone"), "gone\n") << "the delete came back";
    EXPECT_EQ(Sh(*runtime_, f.id, "ls /data/opq"), "link\nnew\n") << "the opaque dir shows the image's old file";
    EXPECT_EQ(Sh(*runtime_, f.id, "cat /data/opq/link"), "mine\n");
    EXPECT_EQ(Sh(*runtime_, f.id, "stat -c %s /data/sparse"), "1073741824\n");
    EXPECT_EQ(Sh(*runtime_, f.id, "dd if=/data/sparse bs=1 skip=900000000 count=4 2>/dev/null"), "tail");
    EXPECT_EQ(Sh(*runtime_, f.id, "cat /tmp/t"), "scratch\n");
    // The image's own files, and its generated /etc for this sandbox.
    EXPECT_NE(Sh(*runtime_, f.id, "cat /etc/passwd").find("app:x:1000"), std::string::npos);
    EXPECT_NE(Sh(*runtime_, f.id, "cat /etc/hosts").find(f.id), std::string::npos);
    // Host side: the fork's upper dir holds a real whiteout and an opaque
    // marker, owned by the fork's own host ids.
    auto upper = runtime_->WritableDir(f.id);
    ASSERT_TRUE(upper);
    struct stat st {};
    ASSERT_EQ(lstat((*upper + "/data/seed").c_str(), &st), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == 0);
    ASSERT_EQ(lstat((*upper + "/data/f").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, f.hostIdBase + 1000);
    char v = 0;
    EXPECT_EQ(getxattr((*upper + "/data/opq").c_str(), "trusted.overlay.opaque", &v, 1), 1);
    EXPECT_EQ(v, 'y');
  }
  // The checkpoint's sandbox itself is unchanged by the forks.
  EXPECT_EQ(Sh(*runtime_, a.id, "cat /data/f"), "mine\n");
  // A fork writes to its own disk only.
  close(fd);
}

// Hibernate + wake at the runtime level: checkpoint, destroy, create again
// under the same id from the checkpoint.
TEST_F(ImageSandboxTest, HibernatedImageSandboxWakesWithItsFiles) {
  auto a = CreateOrDie(ImageSpec("hib", 32));
  Sh(*runtime_, a.id, "echo kept > /data/k; rm /data/seed");
  int fd = TempFd();
  ASSERT_TRUE(runtime_->CaptureState(a.id, fd));
  ASSERT_TRUE(runtime_->Destroy(a.id));
  ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
  auto spec = ImageSpec("hib", 32);
  spec.id = a.id;  // wake: the same id
  spec.restoreFd = fd;
  auto b = CreateOrDie(spec);
  close(fd);
  EXPECT_EQ(b.id, a.id);
  EXPECT_EQ(Sh(*runtime_, b.id, "cat /data/k; test -e /data/seed || echo gone"), "kept\ngone\n");
}

// The attack: the sandbox plants symlinks to a host file in its upper dir
// (absolute, relative, and a dir symlink), hoping the worker's host-side
// walk reads through them; a fifo, a device-looking file.
TEST_F(ImageSandboxTest, CheckpointOfAHostileUpperDirHoldsNoHostFile) {
  const std::string secret = dir_ + "/host-secret";
  { std::ofstream(secret) << "HOST-SECRET-CONTENT"; }
  ASSERT_EQ(chmod(dir_.c_str(), 0711), 0);
  auto a = CreateOrDie(ImageSpec("ckx", 32));
  Sh(*runtime_, a.id,
     "set -e; busybox ln -s " + secret + " /data/abs; busybox ln -s ../../../../../../../.." + secret +
         " /data/rel; busybox ln -s " + dir_ + " /data/dirlink; busybox mkfifo /data/fifo");
  int fd = TempFd();
  auto stats = runtime_->CaptureState(a.id, fd);
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_GE(stats->skipped, 1u);  // the fifo
  std::string archive(4 << 20, '\0');
  ssize_t n = pread(fd, archive.data(), archive.size(), 0);
  ASSERT_GT(n, 0);
  archive.resize(static_cast<size_t>(n));
  EXPECT_EQ(archive.find("HOST-SECRET-CONTENT"), std::string::npos) << "a host file got into the checkpoint";
  // Restored, the links are links again (dangling inside the sandbox).
  ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
  auto rspec = ImageSpec("cky", 32);
  rspec.restoreFd = fd;
  auto b = CreateOrDie(rspec);
  close(fd);
  EXPECT_EQ(Sh(*runtime_, b.id, "busybox readlink /data/abs"), secret + "\n");
  EXPECT_NE(Run(b.id, {"cat", "/data/abs"}).exitCode, 0);
  EXPECT_EQ(Slurp(secret), "HOST-SECRET-CONTENT");
}

// A crafted archive: an upper-dir symlink to a host dir, then a file
// "through" it; a whiteout outside the upper dir. The restore (done by the
// worker as host root) must not write outside the new upper dir.
std::string Rec(char type, uint8_t root, const std::string& path, uint32_t mode = 0644) {
  std::string r;
  r += type;
  r += static_cast<char>(root);
  r += static_cast<char>(path.size() & 0xff);
  r += static_cast<char>(path.size() >> 8);
  r += path;
  for (uint32_t v : {mode, 0u, 0u}) {
    for (int i = 0; i < 4; ++i) r += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  r += std::string(8, '\0');
  return r;
}
std::string Le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

TEST_F(ImageSandboxTest, CraftedCheckpointCannotWriteOutsideTheUpperDir) {
  const std::string victim = dir_ + "/victim";
  ASSERT_EQ(mkdir(victim.c_str(), 0777), 0);
  const std::string target = victim;
  std::string archive = "OSBSTAT1";
  archive += Rec('L', kUpperRoot, "esc", 0777) + Le(target.size(), 2) + target;
  archive += Rec('F', kUpperRoot, "esc/pwned") + Le(5, 8) + Le(1, 4) + Le(0, 8) + Le(5, 8) + "pwned";
  archive += "E";
  int fd = TempFd();
  ASSERT_EQ(write(fd, archive.data(), archive.size()), static_cast<ssize_t>(archive.size()));
  ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
  auto spec = ImageSpec("ckc", 16);
  spec.restoreFd = fd;
  auto created = runtime_->Create(spec);
  close(fd);
  EXPECT_FALSE(created) << "a file was written through a restored symlink";
  EXPECT_EQ(system(("test -z \"$(ls -A " + victim + ")\"").c_str()), 0) << "the restore wrote outside the upper dir";
  EXPECT_TRUE(runtime_->List().empty());

  // Whiteouts / opaque dirs belong to the upper dir only.
  std::string bad = std::string("OSBSTAT1") + Rec('W', 0, "x", 0) + "E";
  int fd2 = TempFd();
  ASSERT_EQ(write(fd2, bad.data(), bad.size()), static_cast<ssize_t>(bad.size()));
  ASSERT_EQ(lseek(fd2, 0, SEEK_SET), 0);
  auto spec2 = MakeSpec("ckd");
  spec2.restoreFd = fd2;
  auto c2 = runtime_->Create(spec2);
  close(fd2);
  ASSERT_FALSE(c2);
  EXPECT_EQ(c2.error().code, ErrorCode::kDataLoss) << c2.error().message;
}

// An image sandbox's checkpoint into a base sandbox: refused, not half
// restored; a checkpoint over diskMB into a smaller disk: kTooLarge.
TEST_F(ImageSandboxTest, ImageCheckpointNeedsItsImageAndRoomOnTheDisk) {
  auto a = CreateOrDie(ImageSpec("ckp", 64));
  Sh(*runtime_, a.id, "head -c 30000000 /dev/zero > /data/big");
  int fd = TempFd();
  ASSERT_TRUE(runtime_->CaptureState(a.id, fd));
  ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
  auto base = CreateOrDie(MakeSpec("ckq"));
  auto r = runtime_->RestoreState(base.id, fd);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition) << r.error().message;
  ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
  auto small = ImageSpec("ckr", 16);
  small.restoreFd = fd;
  auto c = runtime_->Create(small);
  close(fd);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kTooLarge) << c.error().message;
}

}  // namespace
}  // namespace osb::sandbox::testing
