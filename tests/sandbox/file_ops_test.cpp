// Path resolution of sandbox file operations (src/sandbox/file_ops.h), on a
// temp dir standing in for a sandbox's root. Each escape test places a
// marker file OUTSIDE the root (the "host") and proves it is never read,
// written or removed, whatever the path or the symlinks say — including a
// symlink swapped in a loop by another thread during the calls.
#include "sandbox/file_ops.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace osb::sandbox {
namespace {

namespace fs = std::filesystem;

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::string Slurp(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void Put(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

class FileOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/osb-fileops-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ / "root";
    host_ = base_ / "host";
    fs::create_directories(root_ / "home/sandbox");
    fs::create_directories(host_);
    marker_ = host_ / "shadow";
    Put(marker_, "HOST-SECRET");
    root_fd_ = open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(root_fd_, 0);
  }
  void TearDown() override {
    close(root_fd_);
    fs::remove_all(base_);
  }

  // Reads `path` in the root: its content, or the error code.
  Result<std::string> Read(const std::string& path) {
    auto f = OpenForRead(root_fd_, path);
    if (!f) return f.error();
    std::string s = ReadAll(f->first);
    close(f->first);
    return s;
  }

  Status Upload(const std::string& path, const std::string& content, uint32_t mode = 0644) {
    auto up = BeginUpload(root_fd_, path, mode);
    if (!up) return up.error();
    int p[2];
    EXPECT_EQ(pipe(p), 0);
    EXPECT_EQ(write(p[1], content.data(), content.size()), static_cast<ssize_t>(content.size()));
    close(p[1]);
    auto n = FillUpload(*up, p[0]);
    close(p[0]);
    if (!n) {
      AbortUpload(*up);
      return n.error();
    }
    auto s = CommitUpload(*up);
    AbortUpload(*up);
    return s;
  }

  fs::path base_, root_, host_, marker_;
  int root_fd_ = -1;
};

TEST_F(FileOpsTest, ReadsAndWritesInsideTheRoot) {
  ASSERT_TRUE(Upload("/home/sandbox/a.txt", "hello", 0600));
  EXPECT_EQ(Slurp(root_ / "home/sandbox/a.txt"), "hello");
  EXPECT_EQ(fs::status(root_ / "home/sandbox/a.txt").permissions(), fs::perms::owner_read | fs::perms::owner_write);
  auto r = Read("/home/sandbox/a.txt");
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "hello");
  // Overwrite replaces atomically; no temp files are left behind.
  ASSERT_TRUE(Upload("/home/sandbox/a.txt", "second"));
  EXPECT_EQ(Slurp(root_ / "home/sandbox/a.txt"), "second");
  int files = 0;
  for (auto& e : fs::directory_iterator(root_ / "home/sandbox")) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 1);
}

// The worker's data channel is a stream socket (sandbox_files.cpp): the
// helper splices socket -> pipe -> file; every byte arrives, in order.
TEST_F(FileOpsTest, UploadFromAStreamSocketArrivesWhole) {
  std::string content(5u << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 131 + i / 8191) & 0xff);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  std::thread writer([&] {
    size_t off = 0;
    while (off < content.size()) {
      ssize_t n = write(sv[0], content.data() + off, std::min<size_t>(content.size() - off, 300000));
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(sv[0]);
  });
  auto up = BeginUpload(root_fd_, "/home/sandbox/big.bin", 0644);
  ASSERT_TRUE(up);
  auto n = FillUpload(*up, sv[1]);
  writer.join();
  close(sv[1]);
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(*n, static_cast<int64_t>(content.size()));
  ASSERT_TRUE(CommitUpload(*up));
  AbortUpload(*up);
  EXPECT_TRUE(Slurp(root_ / "home/sandbox/big.bin") == content);
}

TEST_F(FileOpsTest, DotDotChainsStayInTheRoot) {
  for (const char* p : {"/../host/shadow", "/../../../../host/shadow", "/home/../../host/shadow",
                        "/home/sandbox/../../../host/shadow"}) {
    auto r = Read(p);
    ASSERT_FALSE(r) << p;
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound) << p;
  }
  // The same names inside the root are what they resolve to.
  fs::create_directories(root_ / "host");
  Put(root_ / "host/shadow", "inside");
  EXPECT_EQ(*Read("/../../host/shadow"), "inside");
  // Writing through `..` lands inside the root too.
  ASSERT_TRUE(Upload("/../../host/shadow", "written"));
  EXPECT_EQ(Slurp(marker_), "HOST-SECRET");
  EXPECT_EQ(Slurp(root_ / "host/shadow"), "written");
}

TEST_F(FileOpsTest, AbsoluteAndRelativeSymlinksStayInTheRoot) {
  fs::create_symlink(marker_, root_ / "home/sandbox/abs");                 // absolute host path
  fs::create_symlink("../../../../host/shadow", root_ / "home/sandbox/rel");  // climbs out
  fs::create_symlink(host_, root_ / "home/sandbox/dirlink");               // a host directory
  for (const char* p : {"/home/sandbox/abs", "/home/sandbox/rel", "/home/sandbox/dirlink/shadow"}) {
    auto r = Read(p);
    ASSERT_FALSE(r) << p;
    EXPECT_EQ(r.error().code, ErrorCode::kNotFound) << p;
  }
  // Upload into a directory symlinked to the host: resolved in the root, where it does not exist.
  auto s = Upload("/home/sandbox/dirlink/planted", "x");
  ASSERT_FALSE(s);
  EXPECT_FALSE(fs::exists(host_ / "planted"));
  // Upload onto a symlink replaces the link itself, never its target.
  ASSERT_TRUE(Upload("/home/sandbox/abs", "replaced"));
  EXPECT_EQ(Slurp(marker_), "HOST-SECRET");
  EXPECT_FALSE(fs::is_symlink(root_ / "home/sandbox/abs"));
  // mkdir and remove through such links stay inside as well.
  EXPECT_FALSE(MakeDirectory(root_fd_, "/home/sandbox/dirlink/newdir", false, 0755));
  EXPECT_FALSE(fs::exists(host_ / "newdir"));
  EXPECT_FALSE(RemovePath(root_fd_, "/home/sandbox/dirlink/shadow", false));
  EXPECT_TRUE(fs::exists(marker_));
}

TEST_F(FileOpsTest, RecursiveRemoveNeverFollowsSymlinks) {
  fs::create_directories(root_ / "home/sandbox/tree/sub");
  Put(root_ / "home/sandbox/tree/sub/f", "x");
  fs::create_symlink(host_, root_ / "home/sandbox/tree/sub/hostdir");
  fs::create_symlink(marker_, root_ / "home/sandbox/tree/hostfile");
  auto s = RemovePath(root_fd_, "/home/sandbox/tree", false);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kConflict);
  ASSERT_TRUE(RemovePath(root_fd_, "/home/sandbox/tree", true));
  EXPECT_FALSE(fs::exists(root_ / "home/sandbox/tree"));
  EXPECT_EQ(Slurp(marker_), "HOST-SECRET");
  EXPECT_TRUE(fs::exists(host_));
  EXPECT_FALSE(RemovePath(root_fd_, "/", true));
}

TEST_F(FileOpsTest, MagicLinksAreRefused) {
  // The real root, so /proc is the real procfs: its magic links must not
  // be followed (in a sandbox they would lead to another root or cwd).
  int real_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(real_root, 0);
  for (const char* p : {"/proc/self/root/etc/hostname", "/proc/self/cwd/x", "/proc/self/fd/0"}) {
    auto f = OpenForRead(real_root, p);
    ASSERT_FALSE(f) << p;
    EXPECT_EQ(f.error().code, ErrorCode::kInvalidArgument) << p << ": " << f.error().message;
  }
  // Another process's links: refused as a magic link, or (where this test
  // may not look at pid 1 at all) as permission denied; never followed.
  auto other = OpenForRead(real_root, "/proc/1/cwd");
  ASSERT_FALSE(other);
  EXPECT_TRUE(other.error().code == ErrorCode::kInvalidArgument ||
              other.error().code == ErrorCode::kFailedPrecondition)
      << other.error().message;
  bool truncated = false;
  auto l = ListPath(real_root, "/proc/self/root", &truncated);
  EXPECT_FALSE(l);
  close(real_root);
}

TEST_F(FileOpsTest, SpecialFilesAreRefusedWithoutBlocking) {
  ASSERT_EQ(mkfifo((root_ / "home/sandbox/fifo").c_str(), 0644), 0);
  const auto start = std::chrono::steady_clock::now();
  auto r = OpenForRead(root_fd_, "/home/sandbox/fifo");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("/home/sandbox/fifo"), std::string::npos);
  auto w = BeginUpload(root_fd_, "/home/sandbox/fifo", 0644);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, ErrorCode::kInvalidArgument);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  int real_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  for (const char* dev : {"/dev/zero", "/dev/null", "/dev/urandom"}) {
    auto d = OpenForRead(real_root, dev);
    ASSERT_FALSE(d) << dev;
    EXPECT_EQ(d.error().code, ErrorCode::kInvalidArgument) << dev;
  }
  close(real_root);
  auto dir = OpenForRead(root_fd_, "/home");
  ASSERT_FALSE(dir);
  EXPECT_EQ(dir.error().code, ErrorCode::kInvalidArgument);
}

// Another thread (the "sandbox process") swaps a name between a file inside
// and a symlink to the host marker as fast as it can while reads and
// uploads go through it: none ever reaches the host.
TEST_F(FileOpsTest, SymlinkSwappedDuringCallsNeverEscapes) {
  const fs::path dir = root_ / "home/sandbox";
  Put(dir / "real", "inside");
  fs::create_directories(dir / "realdir");
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    const std::string link = (dir / "link").string(), tmp = (dir / "link.tmp").string();
    const std::string dlink = (dir / "dlink").string(), dtmp = (dir / "dlink.tmp").string();
    bool to_host = false;
    while (!stop) {
      unlink(tmp.c_str());
      unlink(dtmp.c_str());
      if (to_host) {
        (void)symlink(marker_.c_str(), tmp.c_str());
        (void)symlink(host_.c_str(), dtmp.c_str());
      } else {
        (void)symlink("real", tmp.c_str());
        (void)symlink("realdir", dtmp.c_str());
      }
      rename(tmp.c_str(), link.c_str());
      rename(dtmp.c_str(), dlink.c_str());
      to_host = !to_host;
    }
  });
  int inside_reads = 0;
  // At least 2000 calls, and on until one read went through the link while
  // it pointed inside: on a loaded machine the swapper thread may not have
  // run at all during the first 2000 (the link did not even exist yet).
  for (int i = 0; i < 2000 || (inside_reads == 0 && i < 1000000); ++i) {
    auto r = Read("/home/sandbox/link");
    if (r) {
      ASSERT_EQ(*r, "inside");
      ++inside_reads;
    }
    (void)Upload("/home/sandbox/dlink/up" + std::to_string(i % 7), "payload");
  }
  stop = true;
  swapper.join();
  EXPECT_GT(inside_reads, 0);
  EXPECT_EQ(Slurp(marker_), "HOST-SECRET");
  for (auto& e : fs::directory_iterator(host_)) EXPECT_EQ(e.path().filename(), "shadow");
}

TEST_F(FileOpsTest, AbortedUploadLeavesNothing) {
  Put(root_ / "home/sandbox/keep", "old");
  auto up = BeginUpload(root_fd_, "/home/sandbox/keep", 0644);
  ASSERT_TRUE(up);
  ASSERT_EQ(write(up->file_fd, "partial", 7), 7);
  AbortUpload(*up);
  EXPECT_EQ(Slurp(root_ / "home/sandbox/keep"), "old");
  int entries = 0;
  for (auto& e : fs::directory_iterator(root_ / "home/sandbox")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(FileOpsTest, ListAndMkdir) {
  ASSERT_TRUE(MakeDirectory(root_fd_, "/home/sandbox/a/b/c", true, 0750));
  ASSERT_TRUE(MakeDirectory(root_fd_, "/home/sandbox/a/b/c", true, 0750));  // idempotent with parents
  auto again = MakeDirectory(root_fd_, "/home/sandbox/a", false, 0755);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  auto missing = MakeDirectory(root_fd_, "/home/sandbox/x/y", false, 0755);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  Put(root_ / "home/sandbox/a/f", "12345");
  fs::create_symlink(marker_, root_ / "home/sandbox/a/l");
  bool truncated = true;
  auto list = ListPath(root_fd_, "/home/sandbox/a", &truncated);
  ASSERT_TRUE(list);
  EXPECT_FALSE(truncated);
  std::map<std::string, FileEntry> by_name;
  for (const auto& e : *list) by_name[e.name] = e;
  ASSERT_EQ(by_name.size(), 3u);
  EXPECT_EQ(by_name["b"].type, "dir");
  EXPECT_EQ(by_name["f"].type, "file");
  EXPECT_EQ(by_name["f"].size, 5);
  EXPECT_EQ(by_name["l"].type, "symlink");  // listed, not followed
  EXPECT_GT(by_name["f"].mtime_unix_ms, 0);
  auto one = ListPath(root_fd_, "/home/sandbox/a/f", &truncated);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].name, "f");
}

TEST(FileOpsPathTest, Normalize) {
  EXPECT_EQ(*NormalizeSandboxPath("path", "notes.txt"), "/home/sandbox/notes.txt");
  EXPECT_EQ(*NormalizeSandboxPath("path", "/tmp/"), "/tmp");
  EXPECT_EQ(*NormalizeSandboxPath("path", "/"), "/");
  EXPECT_FALSE(NormalizeSandboxPath("path", ""));
  EXPECT_FALSE(NormalizeSandboxPath("path", std::string("/a\0b", 4)));
  EXPECT_FALSE(NormalizeSandboxPath("path", "/" + std::string(5000, 'a')));
  EXPECT_FALSE(SplitParent("/"));
  EXPECT_FALSE(SplitParent("/a/.."));
  EXPECT_EQ(SplitParent("/a/b")->first, "/a");
  EXPECT_EQ(SplitParent("/a")->first, "/");
}

TEST(FileOpsWireTest, RoundTripAndRejects) {
  FileOpRequest r{"mkdir", "/a/b", 0750, true};
  auto d = DecodeFileOp(EncodeFileOp(r));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->op, "mkdir");
  EXPECT_EQ(d->path, "/a/b");
  EXPECT_EQ(d->mode, 0750u);
  EXPECT_TRUE(d->flag);
  EXPECT_FALSE(DecodeFileOp(EncodeFileOp({"exec", "/a", 0, false})));
  EXPECT_FALSE(DecodeFileOp(EncodeFileOp({"read", "", 0, false})));
  EXPECT_FALSE(DecodeFileOp(EncodeFileOp({"read", "/a", 077777, false})));
  EXPECT_FALSE(DecodeFileOp("O"));
}

}  // namespace
}  // namespace osb::sandbox
