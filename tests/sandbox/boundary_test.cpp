// The sandbox boundary, attacked from inside: each test does what an
// attacker's code in a sandbox would try and checks that it fails.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "harness.h"

namespace osb::sandbox::testing {
namespace {

class BoundaryTest : public SandboxTest {};

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::string ReadHostFile(const std::string& path) {
  std::ifstream f(path);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

bool HaveCapability(int cap) {
  const std::string status = ReadHostFile("/proc/self/status");
  auto at = status.find("CapEff:\t");
  if (at == std::string::npos) return false;
  return (std::stoull(status.substr(at + 8, 16), nullptr, 16) >> cap) & 1;
}

std::string RandomHex() {
  std::random_device rd;
  std::ostringstream o;
  o << std::hex << rd() << rd();
  return o.str();
}

// socket(2) for each family from inside; "ok" or the errno name.
TEST_F(BoundaryTest, OnlyUnixInetInet6AndRouteNetlinkSocketsCanBeCreated) {
  auto info = CreateOrDie(MakeSpec("sock"));
  const std::string script =
      "import errno, socket\n"
      "def try_(fam, typ, proto=0):\n"
      "    try:\n"
      "        socket.socket(fam, typ, proto).close()\n"
      "        return 'ok'\n"
      "    except OSError as e:\n"
      "        return 'fail'\n"
      "def pair(fam):\n"
      "    try:\n"
      "        a, b = socket.socketpair(fam, socket.SOCK_STREAM)\n"
      "        a.close(); b.close()\n"
      "        return 'ok'\n"
      "    except OSError as e:\n"
      "        return 'fail'\n"
      "print('unix', try_(1, 1))\n"
      "print('inet', try_(2, 2))\n"
      "print('inet6', try_(10, 1))\n"
      "print('netlink_route', try_(16, 3, 0))\n"
      "print('netlink_uevent', try_(16, 3, 15))\n"
      "print('netlink_audit', try_(16, 3, 9))\n"
      "print('netlink_sock_diag', try_(16, 3, 4))\n"
      "print('vsock', try_(40, 1))\n"
      "print('alg', try_(38, 5))\n"
      "print('packet', try_(17, 3))\n"
      "print('key', try_(15, 3, 2))\n"
      "print('bluetooth', try_(31, 3))\n"
      "print('xdp', try_(44, 3))\n"
      "print('socketpair_unix', pair(1))\n"
      "print('socketpair_vsock', pair(40))\n";
  auto r = Run(info.id, {"/usr/bin/python3", "-c", script});
  ASSERT_EQ(r.exitCode, 0) << r.stderrData;
  EXPECT_EQ(r.stdoutData,
            "unix ok\ninet ok\ninet6 ok\nnetlink_route ok\nnetlink_uevent fail\nnetlink_audit fail\n"
            "netlink_sock_diag fail\nvsock fail\nalg fail\npacket fail\nkey fail\nbluetooth fail\nxdp fail\n"
            "socketpair_unix ok\nsocketpair_vsock fail\n");
  // A denied family reads as "not supported", which programs handle.
  auto vsock = Run(info.id, {"/usr/bin/python3", "-c",
                             "import errno, socket\n"
                             "try:\n    socket.socket(40, 1)\nexcept OSError as e:\n    print(errno.errorcode[e.errno])\n"});
  EXPECT_EQ(vsock.stdoutData, "EAFNOSUPPORT\n") << vsock.stderrData;
}

// Syscalls outside the allowlist fail even where the kernel would allow them
// to an unprivileged user; foreign ABIs kill the process.
TEST_F(BoundaryTest, SyscallsOutsideTheAllowlistFail) {
  auto info = CreateOrDie(MakeSpec("scall"));
  const std::string script =
      "import ctypes, errno\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "libc.syscall.restype = ctypes.c_long\n"
      "def call(nr, *args):\n"
      "    rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])\n"
      "    return 'ok' if rc >= 0 else errno.errorcode[ctypes.get_errno()]\n"
      "buf = ctypes.create_string_buffer(64)\n"
      "print('modify_ldt', call(154, 0, ctypes.addressof(buf), 16))\n"
      "print('personality_norandom', call(135, 0x0040000))\n"
      "print('personality_query', call(135, 0xffffffff))\n"
      "print('kcmp', call(312, 1, 1, 0, 0, 0))\n"
      "print('unknown', call(1000))\n"
      "print('clone3', call(435, 0, 0))\n";
  auto r = Run(info.id, {"/usr/bin/python3", "-c", script});
  ASSERT_EQ(r.exitCode, 0) << r.stderrData;
  EXPECT_EQ(r.stdoutData,
            "modify_ldt EPERM\npersonality_norandom ENOSYS\npersonality_query ok\nkcmp EPERM\nunknown ENOSYS\n"
            "clone3 ENOSYS\n");
  // The i386 ABI (int 0x80) and the x32 ABI (bit 30 in the number) are not
  // filtered per syscall: any use ends the process with SIGSYS.
  const std::string i386 =
      "import ctypes, mmap\n"
      "code = bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax,20 (getpid); int 0x80; ret\n"
      "m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
      "m.write(code)\n"
      "f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))\n"
      "print('survived', f())\n";
  auto a = Run(info.id, {"/usr/bin/python3", "-c", i386});
  EXPECT_EQ(a.termSignal, 31) << a.stdoutData << a.stderrData;
  auto x32 = Run(info.id, {"/usr/bin/python3", "-c",
                           "import ctypes\nprint('survived', ctypes.CDLL(None).syscall(0x40000000 | 39))\n"});
  EXPECT_NE(x32.stdoutData.find("survived"), 0u) << x32.stdoutData;
}

// What real tools need still works under the allowlist.
TEST_F(BoundaryTest, RealToolsStillWork) {
  auto info = CreateOrDie(MakeSpec("tools"));
  auto sh = Run(info.id, {"sh", "-c",
                          "set -e; echo a b | awk '{print $2}'; ls -l / >/dev/null; sort -r </etc/hosts >/dev/null;"
                          "find /usr/bin -maxdepth 1 -name sh | head -1; date +%Y >/dev/null; id -un; "
                          "getent ahostsv4 localhost | head -1 | cut -d' ' -f1; sleep 0.01 & wait; echo done"});
  EXPECT_EQ(sh.exitCode, 0) << sh.stderrData;
  EXPECT_EQ(sh.stdoutData, "b\n/usr/bin/sh\nsandbox\n127.0.0.1\ndone\n") << sh.stderrData;
  auto py = Run(info.id, {"/usr/bin/python3", "-c",
                          "import socket, ssl, subprocess, threading, multiprocessing, tempfile, os\n"
                          "print(socket.getaddrinfo('localhost', 80, socket.AF_INET)[0][4][0])\n"
                          "ctx = ssl.create_default_context()\n"
                          "print(len(ctx.get_ca_certs()) > 0)\n"
                          "print(subprocess.run(['echo', 'sub'], capture_output=True, text=True).stdout.strip())\n"
                          "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
                          "with multiprocessing.Pool(2) as p: print(sum(p.map(abs, [-1, -2])))\n"
                          "with tempfile.NamedTemporaryFile(dir='/dev/shm') as f: f.write(b'x'); print('shm')\n"});
  EXPECT_EQ(py.exitCode, 0) << py.stderrData;
  EXPECT_EQ(py.stdoutData, "127.0.0.1\nTrue\nsub\n3\nshm\n") << py.stderrData;
  auto curl = Run(info.id, {"curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}",
                            "--noproxy", "*", "http://127.0.0.1:1/"});
  EXPECT_EQ(curl.exitCode, 7) << curl.stderrData;  // connection refused: curl itself ran fine
  if (access("/usr/bin/node", X_OK) == 0) {
    auto node = Run(info.id, {"/usr/bin/node", "-e",
                              "const dns = require('dns'); const cp = require('child_process');"
                              "console.log(cp.execSync('echo child').toString().trim());"
                              "dns.lookup('localhost', {family: 4}, (e, a) => console.log(e ? e.code : a));"});
    EXPECT_EQ(node.exitCode, 0) << node.stderrData;
    EXPECT_EQ(node.stdoutData, "child\n127.0.0.1\n") << node.stderrData;
  }
}

// Each sandbox has its own user namespace mapped to its own host uid range.
TEST_F(BoundaryTest, EachSandboxMapsToItsOwnUnprivilegedHostUidRange) {
  auto a = CreateOrDie(MakeSpec("usera"));
  auto b = CreateOrDie(MakeSpec("userb"));
  std::set<std::string> bases;
  for (const auto& info : {a, b}) {
    auto r = Run(info.id, {"cat", "/proc/self/uid_map", "/proc/self/gid_map"});
    ASSERT_EQ(r.exitCode, 0) << r.stderrData;
    auto lines = Lines(r.stdoutData);
    ASSERT_EQ(lines.size(), 2u) << r.stdoutData;
    std::istringstream uid(lines[0]), gid(lines[1]);
    uint64_t inside = 1, host = 0, count = 0, gInside = 1, gHost = 0, gCount = 0;
    uid >> inside >> host >> count;
    gid >> gInside >> gHost >> gCount;
    EXPECT_EQ(inside, 0u);
    EXPECT_GE(host, 100000u) << "root inside must be an unprivileged host uid";
    EXPECT_EQ(count, 65536u);
    EXPECT_EQ(gHost, host);
    EXPECT_EQ(gCount, 65536u);
    EXPECT_EQ(info.hostIdBase, host);
    bases.insert(std::to_string(host));
    // The host sees the sandbox's init and commands as that uid, not root.
    auto status = ReadHostFile("/proc/" + std::to_string(info.initPid) + "/status");
    EXPECT_NE(status.find("\nUid:\t" + std::to_string(host) + "\t"), std::string::npos) << status;
    // Still the commands, never the init, are the OOM killer's victims
    // (lowering an OOM score needs CAP_SYS_RESOURCE, which some container
    // hosts do not grant even to root).
    if (HaveCapability(24 /* CAP_SYS_RESOURCE */)) {
      EXPECT_EQ(ReadHostFile("/proc/" + std::to_string(info.initPid) + "/oom_score_adj"), "-1000\n");
    }
    // Files the sandbox user creates belong to host uid base+1000.
    EXPECT_EQ(Run(info.id, {"id", "-u"}).stdoutData, "1000\n");
  }
  EXPECT_EQ(bases.size(), 2u) << "two sandboxes share a host uid range";
  // A new user namespace from inside (to regain capabilities) is refused.
  EXPECT_NE(Run(a.id, {"unshare", "-U", "true"}).exitCode, 0);
}

// Two runtimes on one host (two workers, or a worker and a test) allocate
// from the same default range without handing out the same host uids.
TEST_F(BoundaryTest, RuntimesSharingAHostNeverShareAUidRange) {
  auto cfg = BaseConfig();
  cfg.namePrefix = prefix_ + "x";
  cfg.runDir = "/run/" + cfg.namePrefix;
  cfg.addressPool = "10.201.0.0/16";
  auto other = SandboxRuntime::Create(cfg);
  ASSERT_TRUE(other.ok()) << other.error().message;
  auto a = CreateOrDie(MakeSpec("rta"));
  auto spec = MakeSpec("rtb");
  auto b = (*other)->Create(spec);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_NE(a.hostIdBase, b->hostIdBase) << "two runtimes handed out the same host uid range";
  EXPECT_TRUE((*other)->Destroy(spec.id).ok());
  // Once it is gone its range is free again; ours is still taken.
  auto c = (*other)->Create(spec);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->hostIdBase, b->hostIdBase);
  EXPECT_NE(c->hostIdBase, a.hostIdBase);
}

// Nothing of the host's /etc is visible.
TEST_F(BoundaryTest, HostEtcIsNotVisible) {
  const std::string probe = "/etc/osb-boundary-probe-" + RandomHex();
  const std::string marker = "PROBE-" + RandomHex();
  {
    std::ofstream(probe) << marker << "\n";
  }
  chmod(probe.c_str(), 0644);
  auto info = CreateOrDie(MakeSpec("etc"));
  auto cat = Run(info.id, {"cat", probe});
  EXPECT_NE(cat.exitCode, 0);
  EXPECT_EQ(cat.stdoutData.find(marker), std::string::npos);
  auto grep = Run(info.id, {"sh", "-c", "grep -rs " + marker + " /etc /usr/lib/ssl; echo end"});
  EXPECT_EQ(grep.stdoutData, "end\n");
  for (const char* p : {"/etc/shadow", "/etc/gshadow", "/etc/ssh", "/etc/sudoers", "/etc/machine-id", "/etc/fstab",
                        "/etc/environment"})
    EXPECT_NE(Run(info.id, {"ls", p}).exitCode, 0) << p;
  EXPECT_EQ(Run(info.id, {"cat", "/etc/hostname"}).stdoutData, info.id + "\n");
  // Every entry of /etc is one we generate or a symlink into /usr.
  auto ls = Run(info.id, {"sh", "-c", "cd /etc && for f in *; do if [ -L \"$f\" ]; then echo \"$f -> $(readlink \"$f\")\"; "
                                      "else echo \"$f\"; fi; done"});
  const std::set<std::string> generated = {"passwd", "group", "hosts", "hostname", "resolv.conf", "nsswitch.conf",
                                           "ssl", "ld.so.cache", "protocols", "services", "alternatives",
                                           "mtab -> /proc/self/mounts", "host.conf", "gai.conf"};
  for (const auto& l : Lines(ls.stdoutData)) {
    if (generated.count(l)) continue;
    auto arrow = l.find(" -> ");
    ASSERT_NE(arrow, std::string::npos) << "unexpected /etc/" << l;
    const std::string target = l.substr(arrow + 4);
    EXPECT_TRUE(target.rfind("/usr/", 0) == 0 || target.rfind("../usr/", 0) == 0) << "/etc/" << l;
  }
  unlink(probe.c_str());
}

// /proc is masked and partly read-only as runc does it; a cgroup namespace
// hides the host's cgroup tree.
TEST_F(BoundaryTest, ProcIsMaskedAndCgroupsAreNamespaced) {
  auto info = CreateOrDie(MakeSpec("proc"));
  auto mi = Run(info.id, {"cat", "/proc/self/mountinfo"});
  ASSERT_EQ(mi.exitCode, 0) << mi.stderrData;
  std::map<std::string, std::string> opts;  // mount point -> mount options
  for (const auto& l : Lines(mi.stdoutData)) {
    std::istringstream f(l);
    std::string id, parent, dev, root, point, o;
    f >> id >> parent >> dev >> root >> point >> o;
    opts[point] = o;
  }
  for (const char* masked : {"/proc/keys", "/proc/timer_list", "/proc/acpi", "/proc/kcore", "/proc/sched_debug",
                             "/proc/latency_stats", "/proc/scsi"}) {
    if (access(masked, F_OK) != 0) continue;  // not on this kernel
    EXPECT_TRUE(opts.count(masked)) << masked << " is not masked";
  }
  for (const char* ro : {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs"}) {
    if (access(ro, F_OK) != 0) continue;
    ASSERT_TRUE(opts.count(ro)) << ro << " is not a read-only mount";
    EXPECT_EQ(opts[ro].rfind("ro,", 0), 0u) << ro << " " << opts[ro];
  }
  EXPECT_EQ(Run(info.id, {"sh", "-c", "wc -c < /proc/timer_list; ls /proc/acpi | wc -l"}).stdoutData, "0\n0\n");
  // /sys is not there at all (so /sys/firmware cannot be read).
  EXPECT_NE(Run(info.id, {"ls", "/sys/firmware"}).exitCode, 0);
  // Cgroup namespace: the sandbox's own cgroup is its root.
  auto cg = Run(info.id, {"cat", "/proc/self/cgroup"});
  ASSERT_EQ(cg.exitCode, 0);
  for (const auto& l : Lines(cg.stdoutData)) EXPECT_EQ(l.substr(l.rfind(':')), ":/") << l;
  EXPECT_EQ(cg.stdoutData.find(info.id), std::string::npos) << cg.stdoutData;
}

// /tmp, /home/sandbox and /dev/shm share one budget, and what they hold is
// charged to the sandbox's memory cgroup, not to the host.
TEST_F(BoundaryTest, ScratchFilesystemsShareOneBudgetChargedToTheSandbox) {
  auto spec = MakeSpec("tmpfs");
  spec.memoryMB = 64;
  auto info = CreateOrDie(spec);
  for (const char* dir : {"/tmp", "/dev/shm", "/home/sandbox"}) {
    // Each alone could take memoryMB before; together they now get half.
    auto r = Run(info.id, {"sh", "-c", std::string("head -c 80M /dev/zero > ") + dir + "/fill; echo rc=$?"}, 60);
    EXPECT_NE(r.stdoutData, "rc=0\n") << dir << " took 80 MiB in a 64 MiB sandbox";
  }
  auto sizes = Run(info.id, {"sh", "-c", "cat /tmp/fill /dev/shm/fill ~/fill | wc -c"});
  ASSERT_EQ(sizes.exitCode, 0) << sizes.stderrData;
  const uint64_t total = std::stoull(sizes.stdoutData);
  EXPECT_LE(total, 32ull << 20) << "scratch files exceed the shared budget";
  EXPECT_GE(total, 30ull << 20);
  // Their pages are charged to the sandbox's memory cgroup.
  const std::string mem = "/sys/fs/cgroup/memory/" + prefix_ + "-" + info.id + "/memory.usage_in_bytes";
  if (access(mem.c_str(), F_OK) == 0) {
    EXPECT_GE(std::stoull(ReadHostFile(mem)), total);
  }
  EXPECT_NE(Run(info.id, {"sh", "-c", "echo x > /tmp/more"}).exitCode, 0);  // ENOSPC, not OOM
  EXPECT_EQ(Run(info.id, {"echo", "alive"}).stdoutData, "alive\n");
  // Freed space is usable again.
  EXPECT_EQ(Run(info.id, {"sh", "-c", "rm /tmp/fill && echo x > /tmp/more && cat /tmp/more"}).stdoutData, "x\n");
}

}  // namespace
}  // namespace osb::sandbox::testing
