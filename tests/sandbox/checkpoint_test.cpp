// Checkpoint state capture/restore (state_archive.h) against real sandboxes,
// including a hostile one: symlinks out of the sandbox, fifos, a huge sparse
// file, a symlink swapped in where a restored directory goes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "harness.h"
#include "sandbox/state_archive.h"

namespace osb::sandbox::testing {
namespace {

class CheckpointTest : public SandboxTest {
 protected:
  // An unlinked temp file for the archive.
  int TempFd() {
    char tmpl[] = "/tmp/osb-ckpt-test-XXXXXX";
    int fd = mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    unlink(tmpl);
    return fd;
  }
  Result<StateStats> Capture(const std::string& id, int fd) {
    auto r = runtime_->CaptureState(id, fd);
    lseek(fd, 0, SEEK_SET);
    return r;
  }
  std::string Sh(const std::string& id, const std::string& script) {
    auto r = Run(id, {"/bin/sh", "-c", script});
    EXPECT_EQ(r.exitCode, 0) << script << "\n" << r.stderrData;
    return r.stdoutData;
  }
  static std::string HostFile(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
};

TEST_F(CheckpointTest, FilesDirsLinksModesAndOwnersComeBackInAnotherSandbox) {
  auto a = CreateOrDie(MakeSpec("cka"));
  Sh(a.id,
     "set -e; mkdir -p /home/sandbox/proj/sub; printf 'hello' > /home/sandbox/proj/sub/f.txt;"
     "chmod 0751 /home/sandbox/proj/sub/f.txt; ln -s sub/f.txt /home/sandbox/proj/link;"
     "head -c 300000 /dev/urandom > /tmp/blob; md5sum /tmp/blob > /tmp/blob.md5; echo shm > /dev/shm/s");
  int fd = TempFd();
  auto stats = Capture(a.id, fd);
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_GE(stats->dataBytes, 300000u);

  auto b = CreateOrDie(MakeSpec("ckb"));
  auto restored = runtime_->RestoreState(b.id, fd);
  close(fd);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(Sh(b.id, "cat /home/sandbox/proj/link"), "hello");
  EXPECT_EQ(Sh(b.id, "stat -c '%a %U %G' /home/sandbox/proj/sub/f.txt"), "751 sandbox sandbox\n");
  EXPECT_EQ(Sh(b.id, "readlink /home/sandbox/proj/link"), "sub/f.txt\n");
  Sh(b.id, "md5sum -c /tmp/blob.md5 >/dev/null");
  EXPECT_EQ(Sh(b.id, "cat /dev/shm/s"), "shm\n");
  // The restored files belong to b's own host uid range, not a's.
  struct stat st {};
  const std::string hostPath = "/proc/" + std::to_string(b.initPid) + "/root/home/sandbox/proj/sub/f.txt";
  ASSERT_EQ(stat(hostPath.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, b.hostIdBase + 1000);
}

// The attack: a sandbox leaves symlinks to host files and dirs (absolute and
// relative), a fifo and a huge sparse file, hoping the worker reads or
// writes through them while capturing or restoring.
TEST_F(CheckpointTest, HostileStateCannotMakeTheWorkerReadOrWriteHostFiles) {
  // A host file the sandbox must never get the content of, outside its tree.
  const std::string secretPath = "/var/tmp/osb-ckpt-host-secret-" + std::to_string(getpid());
  { std::ofstream(secretPath) << "HOST-SECRET-CONTENT"; }
  auto a = CreateOrDie(MakeSpec("ckh"));
  Sh(a.id,
     "set -e; cd /home/sandbox; ln -s " + secretPath + " abs; ln -s ../../../../../.." + secretPath +
         " rel; ln -s /proc/1/root proc; mkfifo fifo;"
         "truncate -s 1T /tmp/sparse; printf data | dd of=/tmp/sparse bs=1 seek=500000000000 conv=notrunc 2>/dev/null;"
         "mkdir d; ln -s /var/tmp dirlink");
  int fd = TempFd();
  auto stats = Capture(a.id, fd);  // must neither block on the fifo nor read 1 TiB
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_LT(stats->dataBytes, 1u << 20);
  EXPECT_GE(stats->skipped, 1u);  // the fifo
  // The archive holds the links as links: no byte of the host file.
  std::string archive(1 << 20, '\0');
  ssize_t n = pread(fd, archive.data(), archive.size(), 0);
  ASSERT_GT(n, 0);
  archive.resize(static_cast<size_t>(n));
  EXPECT_EQ(archive.find("HOST-SECRET-CONTENT"), std::string::npos);

  // Restoring into a sandbox whose victim dir is a symlink to a host dir:
  // the restore must not create files through it.
  auto b = CreateOrDie(MakeSpec("cki"));
  Sh(b.id, "ln -s /var/tmp /home/sandbox/d");  // "d" is a dir in the archive
  auto restored = runtime_->RestoreState(b.id, fd);
  close(fd);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(Sh(b.id, "stat -c %F /home/sandbox/d"), "directory\n");  // the planted link was replaced
  EXPECT_EQ(Sh(b.id, "readlink /home/sandbox/abs"), secretPath + "\n");
  EXPECT_EQ(Run(b.id, {"/bin/cat", "/home/sandbox/abs"}).exitCode, 1);  // dangling inside the sandbox
  EXPECT_EQ(Sh(b.id, "stat -c %s /tmp/sparse"), "1099511627776\n");
  EXPECT_EQ(Sh(b.id, "dd if=/tmp/sparse bs=1 skip=500000000000 count=4 2>/dev/null"), "data");
  EXPECT_EQ(HostFile(secretPath), "HOST-SECRET-CONTENT");
  unlink(secretPath.c_str());
}

TEST_F(CheckpointTest, CaptureIsBoundedByTheScratchBudget) {
  auto spec = MakeSpec("ckl");
  spec.memoryMB = 64;  // 32 MiB of scratch
  auto a = CreateOrDie(spec);
  // Hard links cost the tmpfs one copy but the archive one per link.
  Sh(a.id, "head -c 20000000 /dev/zero > /tmp/big; ln /tmp/big /tmp/big2");
  int fd = TempFd();
  auto stats = Capture(a.id, fd);
  close(fd);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.error().code, ErrorCode::kTooLarge);
}

TEST_F(CheckpointTest, ArchiveBiggerThanTheTargetIsRefusedCleanly) {
  auto a = CreateOrDie(MakeSpec("ckm"));  // 256 MiB of scratch
  Sh(a.id, "head -c 40000000 /dev/urandom > /tmp/big");
  int fd = TempFd();
  ASSERT_TRUE(Capture(a.id, fd).ok());
  auto spec = MakeSpec("ckn");
  spec.memoryMB = 64;
  auto b = CreateOrDie(spec);
  auto restored = runtime_->RestoreState(b.id, fd);
  close(fd);
  ASSERT_FALSE(restored.ok());
  EXPECT_EQ(restored.error().code, ErrorCode::kTooLarge) << restored.error().message;
}

TEST_F(CheckpointTest, DeadlineCanBeMovedBothWays) {
  auto a = CreateOrDie(MakeSpec("ckd"));
  auto later = runtime_->SetDeadline(a.id, a.endsAtUnix + 3600);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->endsAtUnix, a.endsAtUnix + 3600);
  EXPECT_FALSE(runtime_->SetDeadline(a.id, 1).ok());
  EXPECT_EQ(runtime_->SetDeadline("nope", a.endsAtUnix).error().code, ErrorCode::kNotFound);
}

// Decoder: malformed archives are kDataLoss, never a crash or a write.
class NullSink final : public ArchiveSink {
 public:
  Status Begin(const ArchiveEntry&) override { return {}; }
  Status Data(uint64_t, std::string_view) override { return {}; }
  Status End() override { return {}; }
};

Result<StateStats> Decode(const std::string& bytes) {
  size_t pos = 0;
  NullSink sink;
  return DecodeStateArchive(
      [&](void* out, size_t n) -> ssize_t {
        const size_t take = std::min(n, bytes.size() - pos);
        std::memcpy(out, bytes.data() + pos, take);
        pos += take;
        return static_cast<ssize_t>(take);
      },
      sink, {1 << 20, 100});
}

std::string Rec(char type, const std::string& path, uint32_t mode = 0644) {
  std::string r;
  r += type;
  r += '\0';
  r += static_cast<char>(path.size() & 0xff);
  r += static_cast<char>(path.size() >> 8);
  r += path;
  for (uint32_t v : {mode, 1000u, 1000u}) {
    for (int i = 0; i < 4; ++i) r += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  r += std::string(8, '\0');
  return r;
}

TEST(StateArchiveDecode, RejectsTraversalBadModesAndTruncation) {
  const std::string magic = "OSBSTAT1";
  EXPECT_TRUE(Decode(magic + Rec('D', "a") + "E").ok());
  for (const char* bad : {"..", "a/../b", "/abs", "a//b", ".", "a/"}) {
    auto r = Decode(magic + Rec('D', bad) + "E");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kDataLoss) << bad;
  }
  EXPECT_FALSE(Decode(magic + Rec('D', "a", 04755) + "E").ok());  // setuid
  EXPECT_FALSE(Decode(magic + Rec('X', "a") + "E").ok());
  EXPECT_FALSE(Decode(magic + Rec('D', "a")).ok());  // no end record
  EXPECT_FALSE(Decode("NOTMAGIC").ok());
}

}  // namespace
}  // namespace osb::sandbox::testing
