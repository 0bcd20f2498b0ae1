// What code inside a sandbox can and cannot see or do.
#include <sys/stat.h>
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "harness.h"

namespace osb::sandbox::testing {
namespace {

class IsolationTest : public SandboxTest {};

std::string Field(const std::string& status, const std::string& key) {
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) {
      auto v = line.substr(key.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "<missing>";
}

TEST_F(IsolationTest, NoCapabilitiesNoNewPrivsAndSeccomp) {
  auto info = CreateOrDie(MakeSpec("caps"));
  auto r = Run(info.id, {"cat", "/proc/self/status"});
  ASSERT_EQ(r.exitCode, 0) << r.stderrData;
  for (const char* k : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"})
    EXPECT_EQ(Field(r.stdoutData, k), "0000000000000000") << k;
  EXPECT_EQ(Field(r.stdoutData, "NoNewPrivs"), "1");
  EXPECT_EQ(Field(r.stdoutData, "Seccomp"), "2");
  EXPECT_EQ(Field(r.stdoutData, "Uid"), "1000\t1000\t1000\t1000");
}

TEST_F(IsolationTest, MountUnshareAndPtraceFailWithEperm) {
  auto info = CreateOrDie(MakeSpec("eperm"));
  const std::string script =
      "import ctypes\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "def errno_of(rc):\n"
      "    return ctypes.get_errno() if rc != 0 else 0\n"
      "print('mount', errno_of(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)))\n"
      "print('umount', errno_of(libc.umount2(b'/proc', 2)))\n"
      "print('unshare', errno_of(libc.unshare(0x10000000)))\n"          // CLONE_NEWUSER
      "print('unshare_net', errno_of(libc.unshare(0x40000000)))\n"      // CLONE_NEWNET
      "print('ptrace', errno_of(libc.ptrace(16, 1, None, None)))\n"     // PTRACE_ATTACH
      "print('bpf', errno_of(libc.syscall(321, 0, None, 0)))\n"
      "print('keyctl', errno_of(libc.syscall(250, 0, 0, 0, 0, 0)))\n"
      "print('chroot', errno_of(libc.chroot(b'/tmp')))\n";
  auto r = Run(info.id, {"/usr/bin/python3", "-c", script});
  ASSERT_EQ(r.exitCode, 0) << r.stderrData;
  EXPECT_EQ(r.stdoutData,
            "mount 1\numount 1\nunshare 1\nunshare_net 1\nptrace 1\nbpf 1\nkeyctl 1\nchroot 1\n");
  auto m = Run(info.id, {"mount", "-t", "tmpfs", "none", "/tmp"});
  EXPECT_NE(m.exitCode, 0);
}

TEST_F(IsolationTest, RootContainsOnlyTheListedDirectories) {
  auto info = CreateOrDie(MakeSpec("ls"));
  auto r = Run(info.id, {"ls", "-1", "/"});
  ASSERT_EQ(r.exitCode, 0) << r.stderrData;
  std::set<std::string> got;
  std::istringstream in(r.stdoutData);
  for (std::string l; std::getline(in, l);) got.insert(l);
  std::set<std::string> allowed = {"bin", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr"};
  for (const auto& e : got) EXPECT_TRUE(allowed.count(e)) << "unexpected /" << e;
  for (const char* must : {"usr", "etc", "proc", "tmp", "home", "dev"}) EXPECT_TRUE(got.count(must)) << must;
  // Hidden: the host's shadow and ssh files, and the sandbox's own init.
  EXPECT_NE(Run(info.id, {"ls", "/etc/shadow"}).exitCode, 0);
  EXPECT_NE(Run(info.id, {"ls", "/etc/ssh"}).exitCode, 0);
  EXPECT_NE(Run(info.id, {"ls", "/proc/1"}).exitCode, 0);
}

TEST_F(IsolationTest, WorkerStateAndKeyFilesAreUnreachable) {
  // A stand-in worker state dir with a key file, as a real worker has.
  const std::string state = "/var/lib/osbt-state-" + std::to_string(getpid());
  mkdir(state.c_str(), 0700);
  // Marker unique to this process: tests running in parallel plant their own.
  const std::string marker = "TOPSECRET-" + std::to_string(getpid());
  std::ofstream(state + "/ca.key") << marker;
  auto info = CreateOrDie(MakeSpec("state"));
  for (const std::string& path : {state + "/ca.key", std::string("/work/HELPERS.md"), std::string("/var/lib"),
                                  std::string("/run/osbt"), std::string("/root")}) {
    auto r = Run(info.id, {"cat", path});
    EXPECT_NE(r.exitCode, 0) << path;
    EXPECT_EQ(r.stdoutData.find(marker), std::string::npos);
  }
  // Not in any readable file of the writable or generated dirs either.
  auto grep = Run(info.id, {"sh", "-c", "grep -rsl " + marker + " /etc /tmp /home /dev; echo end"});
  EXPECT_EQ(grep.stdoutData, "end\n");
  unlink((state + "/ca.key").c_str());
  rmdir(state.c_str());
}

TEST_F(IsolationTest, SystemDirsAreReadOnlyAndScratchDirsWritable) {
  auto info = CreateOrDie(MakeSpec("ro"));
  for (const char* p : {"/usr/x", "/etc/x", "/x", "/dev/x", "/etc/ssl/certs/x"})
    EXPECT_NE(Run(info.id, {"touch", p}).exitCode, 0) << p;
  EXPECT_EQ(Run(info.id, {"sh", "-c", "echo hi > /tmp/a && cat /tmp/a"}).stdoutData, "hi\n");
  EXPECT_EQ(Run(info.id, {"sh", "-c", "echo hi > ~/b && cat ~/b"}).stdoutData, "hi\n");
  EXPECT_EQ(Run(info.id, {"sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c"}).stdoutData, "4\n");
  // Files written by one command are seen by the next (same sandbox).
  EXPECT_EQ(Run(info.id, {"cat", "/tmp/a"}).stdoutData, "hi\n");
}

}  // namespace
}  // namespace osb::sandbox::testing

namespace osb::sandbox::testing {
namespace {

TEST_F(IsolationTest, TemplateRootfsReplacesTheHostSystemDirs) {
  // A template: its own /etc (with a marker) and a /usr that is the host's
  // (bound here so the template has a working userland).
  const std::string tpl = "/tmp/osbt-template-" + std::to_string(getpid());
  ASSERT_EQ(HostOutput({"mkdir", "-p", tpl + "/usr", tpl + "/etc/ssl/certs", tpl + "/opt/tool"}), "");
  ASSERT_EQ(HostOutput({"mount", "--bind", "/usr", tpl + "/usr"}), "");
  for (const char* l : {"bin", "lib", "lib64", "sbin"}) symlink((std::string("usr/") + l).c_str(), (tpl + "/" + l).c_str());
  std::ofstream(tpl + "/etc/marker") << "from-template\n";
  std::ofstream(tpl + "/opt/tool/VERSION") << "1.2.3\n";
  auto spec = MakeSpec("tpl");
  spec.rootfsTemplate = tpl;
  auto created = runtime_->Create(spec);
  EXPECT_TRUE(created.ok()) << created.error().message;
  if (created.ok()) {
    EXPECT_EQ(Run(spec.id, {"cat", "/etc/marker"}).stdoutData, "from-template\n");
    EXPECT_EQ(Run(spec.id, {"cat", "/opt/tool/VERSION"}).stdoutData, "1.2.3\n");
    EXPECT_NE(Run(spec.id, {"ls", "/etc/ld.so.conf"}).exitCode, 0);  // host /etc is not used
    EXPECT_EQ(Run(spec.id, {"id", "-un"}).stdoutData, "sandbox\n");  // generated passwd
    EXPECT_NE(Run(spec.id, {"touch", "/opt/tool/x"}).exitCode, 0);
    EXPECT_TRUE(runtime_->Destroy(spec.id).ok());
  }
  HostOutput({"umount", tpl + "/usr"});
  HostOutput({"rm", "-rf", "--one-file-system", tpl});
}

}  // namespace
}  // namespace osb::sandbox::testing

namespace osb::sandbox::testing {
namespace {

TEST_F(IsolationTest, HiddenPathsUnderEtcAreNotVisibleAndCannotBeExposed) {
  // A worker whose state dir sits under /etc, with a world-readable key: the
  // /etc mirror would show it, unless the worker lists it as hidden.
  const std::string state = "/etc/osbt-state-" + std::to_string(getpid());
  mkdir(state.c_str(), 0755);
  const std::string marker = "HIDDENKEY-" + std::to_string(getpid());
  { std::ofstream(state + "/ca.key") << marker; }
  chmod((state + "/ca.key").c_str(), 0644);
  runtime_.reset();
  auto cfg = BaseConfig();
  cfg.hiddenPaths = {state + "/"};
  runtime_ = SandboxRuntime::Create(cfg).value();
  auto info = CreateOrDie(MakeSpec("hide"));
  auto r = Run(info.id, {"cat", state + "/ca.key"});
  EXPECT_NE(r.exitCode, 0);
  EXPECT_EQ(r.stdoutData.find(marker), std::string::npos);
  EXPECT_EQ(Run(info.id, {"ls", "/etc"}).stdoutData.find("osbt-state"), std::string::npos);

  // A hidden path inside a dir that is bound whole is refused, not exposed.
  runtime_.reset();
  cfg.hiddenPaths = {"/usr/share/osbt-secret-" + std::to_string(getpid())};
  runtime_ = SandboxRuntime::Create(cfg).value();
  auto spec2 = MakeSpec("hide2");
  auto refused = runtime_->Create(spec2);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("/usr"), std::string::npos) << refused.error().message;
  SandboxInfo failed;
  failed.id = spec2.id;
  ExpectNoLeftovers(prefix_, failed);  // a failed Create cleans up after itself
  unlink((state + "/ca.key").c_str());
  rmdir(state.c_str());
}

}  // namespace
}  // namespace osb::sandbox::testing
