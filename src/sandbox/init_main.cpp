// osb-sandbox-init: PID 1 of every sandbox.
//
// Started by SandboxRuntime (clone with new user/mount/PID/UTS/IPC/net
// namespaces, then exec of this binary as root of its user namespace) with
// the setup socket on fd 3. It enters a cgroup namespace, builds the root
// filesystem, pivots into it, restricts its own
// capabilities, reports ready, then serves Exec requests and reaps every
// process in the sandbox. Protocol: sandbox/init_protocol.h.
//
// Why a separate binary: the worker is multi-threaded, and after fork only
// async-signal-safe calls are allowed; exec'ing a fresh single-threaded
// process makes mounting, seccomp setup and forking safe and simple.
#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "sandbox/file_ops.h"
#include "sandbox/init_protocol.h"
#include "sandbox/privileges.h"
#include "sandbox/rootfs.h"
#include "sandbox/state_archive.h"
#include "sandbox/seccomp_filter.h"

using namespace osb::sandbox;

namespace {

constexpr int kSetupFd = 3;
constexpr size_t kMaxControls = 16;

struct Running {
  pid_t pid = -1;
  int statusFd = -1;
};

void WriteBestEffort(const char* path, const char* value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t ignored = write(fd, value, std::strlen(value));
  (void)ignored;
  close(fd);
}

void ChildFail(const std::string& what, int code) {
  std::string msg = "osb-sandbox: " + what + "\n";
  ssize_t ignored = write(2, msg.data(), msg.size());
  (void)ignored;
  _exit(code);
}

// Runs in the forked child: never returns. With a terminal (ptySlave >= 0)
// the command becomes a session leader with it as controlling terminal and
// stdin/stdout/stderr; otherwise it gets fds[1..3] in its own process group.
[[noreturn]] void RunCommand(const ExecMessage& m, const std::map<std::string, std::string>& env,
                             const std::vector<int>& fds, const RootfsPlan& plan, const SeccompFilter& filter,
                             int ptySlave = -1) {
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);  // init ignores SIGPIPE
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  if (ptySlave >= 0) {
    if (setsid() < 0 || ioctl(ptySlave, TIOCSCTTY, 0) != 0) _exit(126);
    if (dup2(ptySlave, 0) < 0 || dup2(ptySlave, 1) < 0 || dup2(ptySlave, 2) < 0) _exit(126);
  } else {
    setpgid(0, 0);
    if (dup2(fds[1], 0) < 0 || dup2(fds[2], 1) < 0 || dup2(fds[3], 2) < 0) _exit(126);
  }
  close_range(3, ~0U, 0);
  WriteBestEffort("/proc/self/oom_score_adj", "0");  // init runs at -1000
  if (auto s = DropToUser(plan.uid, plan.gid); !s) ChildFail(s.error().message, 126);
  std::string cwd = !m.cwd.empty() ? m.cwd : !plan.workingDir.empty() ? plan.workingDir : "/home/sandbox";
  if (chdir(cwd.c_str()) != 0) ChildFail("cannot change directory to " + cwd + ": " + std::strerror(errno), 126);

  std::vector<std::string> envStrings;
  for (const auto& [k, v] : env) envStrings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string cmd = m.cmd;
  argv.push_back(cmd.data());
  std::vector<std::string> args = m.args;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> candidates;
  if (cmd.find('/') != std::string::npos) {
    candidates.push_back(cmd);
  } else {
    auto it = env.find("PATH");
    std::string path = it != env.end() ? it->second : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= path.size()) {
      size_t end = path.find(':', start);
      if (end == std::string::npos) end = path.size();
      std::string dir = path.substr(start, end - start);
      candidates.push_back((dir.empty() ? "." : dir) + "/" + cmd);
      start = end + 1;
    }
  }
  if (auto s = filter.Load(); !s) ChildFail(s.error().message, 126);
  int savedErrno = ENOENT;
  for (const auto& c : candidates) {
    execve(c.c_str(), argv.data(), envp.data());
    if (errno != ENOENT && errno != ENOTDIR) savedErrno = errno;
  }
  ChildFail("cannot execute " + cmd + ": " + std::strerror(savedErrno), savedErrno == ENOENT ? 127 : 126);
  _exit(127);
}

class Init {
 public:
  Init(SetupMessage setup, SeccompFilter filter, int listenFd, int sigFd)
      : setup_(std::move(setup)), filter_(std::move(filter)), listenFd_(listenFd), sigFd_(sigFd) {
    controls_.push_back(kSetupFd);
  }

  [[noreturn]] void Loop() {
    for (;;) {
      std::vector<pollfd> fds;
      fds.push_back({sigFd_, POLLIN, 0});
      fds.push_back({listenFd_, POLLIN, 0});
      for (int c : controls_) fds.push_back({c, POLLIN, 0});
      for (const auto& [fd, r] : running_) fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), -1) < 0) continue;
      for (const auto& p : fds) {
        if (!p.revents) continue;
        if (p.fd == sigFd_) Reap();
        else if (p.fd == listenFd_) Accept();
        else if (IsControl(p.fd)) OnControl(p.fd);
        else OnStatus(p.fd);
      }
    }
  }

 private:
  bool IsControl(int fd) const {
    for (int c : controls_)
      if (c == fd) return true;
    return false;
  }

  void Accept() {
    int c = accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    if (controls_.size() >= kMaxControls) {
      close(c);
      return;
    }
    controls_.push_back(c);
  }

  void DropControl(int fd) {
    close(fd);
    std::erase(controls_, fd);
  }

  void OnControl(int fd) {
    std::vector<int> fds;
    auto rec = RecvRecord(fd, &fds);
    if (!rec) {
      if (errno != EMSGSIZE) DropControl(fd);  // the worker went away: keep running for re-attach
      return;
    }
    if (!rec->empty() && (*rec)[0] == 'T') return StartPty(*rec, fds);
    if (!rec->empty() && (*rec)[0] == 'O') return OnFileOp(*rec, fds);
    if (fds.size() != 4) {
      for (int f : fds) close(f);
      return;
    }
    auto m = DecodeExec(*rec);
    if (!m) {
      SendRecord(fds[0], WireWriter('F').Str(m.error().message).data());
      for (int f : fds) close(f);
      return;
    }
    std::map<std::string, std::string> env = setup_.baseEnv;
    for (const auto& [k, v] : m->env) env[k] = v;
    pid_t pid = fork();
    if (pid == 0) RunCommand(*m, env, fds, setup_.rootfs, filter_);
    for (size_t i = 1; i < fds.size(); ++i) close(fds[i]);
    if (pid < 0) {
      SendRecord(fds[0], WireWriter('F').Str(std::string("fork: ") + std::strerror(errno)).data());
      close(fds[0]);
      return;
    }
    setpgid(pid, pid);
    SendRecord(fds[0], WireWriter('S').Num(pid).data());
    running_[fds[0]] = Running{pid, fds[0]};
  }

  // 'T': a terminal on the sandbox's own devpts (mounted by BuildDev); the
  // master goes back to the runtime with 'S', the slave becomes the
  // command's controlling terminal.
  void StartPty(const std::string& rec, std::vector<int>& fds) {
    auto closeAll = [&] {
      for (int f : fds) close(f);
    };
    if (fds.size() != 1) return closeAll();
    auto m = DecodePtyExec(rec);
    if (!m) {
      SendRecord(fds[0], WireWriter('F').Str(m.error().message).data());
      return closeAll();
    }
    int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    int unlock = 0;
    int slave = -1;
    if (master >= 0 && ioctl(master, TIOCSPTLCK, &unlock) == 0) {
      slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    }
    if (slave < 0) {
      SendRecord(fds[0], WireWriter('F').Str(std::string("cannot open a terminal: ") + std::strerror(errno)).data());
      if (master >= 0) close(master);
      return closeAll();
    }
    winsize ws{};
    ws.ws_col = m->cols;
    ws.ws_row = m->rows;
    ioctl(master, TIOCSWINSZ, &ws);
    std::map<std::string, std::string> env = setup_.baseEnv;
    for (const auto& [k, v] : m->exec.env) env[k] = v;
    if (!env.count("TERM")) env["TERM"] = "xterm-256color";
    pid_t pid = fork();
    if (pid == 0) {
      close(master);
      RunCommand(m->exec, env, fds, setup_.rootfs, filter_, slave);
    }
    close(slave);
    if (pid < 0) {
      SendRecord(fds[0], WireWriter('F').Str(std::string("fork: ") + std::strerror(errno)).data());
      close(master);
      return closeAll();
    }
    // No setpgid here: the child makes itself a session (and group) leader.
    SendRecord(fds[0], WireWriter('S').Num(pid).data(), {master});
    close(master);
    running_[fds[0]] = Running{pid, fds[0]};
  }

  // A file operation (file_ops.h): a helper forked as the sandbox user does
  // it inside this mount namespace and answers on the op socket (fds[0]);
  // init only reaps it.
  void OnFileOp(const std::string& rec, const std::vector<int>& fds) {
    auto req = DecodeFileOp(rec);
    if (fds.empty() || fds.size() > 2 || !req) {
      if (!fds.empty() && !req) SendRecord(fds[0], WireWriter('F').Num(0).Str(req.error().message).data());
      for (int f : fds) close(f);
      return;
    }
    pid_t pid = fork();
    if (pid == 0) {
      const int op = fds[0];
      const int data = fds.size() > 1 ? fds[1] : -1;
      WriteBestEffort("/proc/self/oom_score_adj", "0");
      for (int c : controls_) close(c);
      close(listenFd_);
      close(sigFd_);
      for (const auto& [sfd, r] : running_) close(sfd);
      if (auto s = DropToUser(setup_.rootfs.uid, setup_.rootfs.gid); !s) {
        SendRecord(op, WireWriter('F').Num(static_cast<int>(osb::ErrorCode::kInternal)).Str(s.error().message).data());
        _exit(1);
      }
      // Sandbox processes run as the same uid: no ptrace, no /proc/<pid>/fd.
      prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
      if (chdir("/") != 0) _exit(1);
      _exit(ServeFileOp(*req, op, data));
    }
    if (pid < 0) SendRecord(fds[0], WireWriter('F').Num(static_cast<int>(osb::ErrorCode::kInternal)).Str(std::string("fork: ") + std::strerror(errno)).data());
    for (int f : fds) close(f);
  }

  void OnStatus(int fd) {
    auto it = running_.find(fd);
    if (it == running_.end()) return;
    char buf[64];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0 && buf[0] == 'G') {
      // A signal for the command's process group (1..64 only).
      const std::string rec(buf, static_cast<size_t>(n));
      WireReader r(rec);
      r.Tag();
      auto sig = r.Num();
      if (sig && *sig >= 1 && *sig < NSIG) kill(-it->second.pid, static_cast<int>(*sig));
      return;
    }
    if (n > 0 && buf[0] != 'K') return;
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    // 'K', EOF or error: the runtime wants it gone (timeout or caller left).
    kill(-it->second.pid, SIGKILL);
    kill(it->second.pid, SIGKILL);
    if (n <= 0) {
      orphaned_.push_back(it->second.pid);
      close(fd);
      running_.erase(it);
    }
  }

  void Reap() {
    signalfd_siginfo si;
    while (read(sigFd_, &si, sizeof si) == sizeof si) {
    }
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      for (auto it = running_.begin(); it != running_.end(); ++it) {
        if (it->second.pid != pid) continue;
        // The command is done: end what it left in its process group too.
        kill(-pid, SIGKILL);
        SendRecord(it->first, WireWriter('X').Num(status).data());
        close(it->first);
        running_.erase(it);
        break;
      }
      std::erase(orphaned_, pid);
    }
  }

  SetupMessage setup_;
  SeccompFilter filter_;
  int listenFd_;
  int sigFd_;
  std::vector<int> controls_;
  std::map<int, Running> running_;  // by status fd
  std::vector<pid_t> orphaned_;
};

int Listen(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return -1;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || chmod(path.c_str(), 0600) != 0 ||
      listen(fd, 8) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

[[noreturn]] void SetupFailed(const std::string& message) {
  SendRecord(kSetupFd, WireWriter('F').Str(message).data());
  _exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  // Checkpoint helper (state_archive.h): not a sandbox init.
  // _exit: the helper leaves nothing to clean up, and skips the leak
  // checker's exit-time scan, which cannot ptrace inside the namespaces.
  if (argc >= 2 && std::string(argv[1]) == "--state") _exit(osb::sandbox::StateHelperMain(argc, argv));
  prctl(PR_SET_NAME, "osb-init", 0, 0, 0);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGCHLD, SIG_DFL);  // an inherited SIG_IGN would auto-reap and break waitpid
  int sigFd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  fcntl(kSetupFd, F_SETFD, FD_CLOEXEC);

  auto rec = RecvRecord(kSetupFd);
  if (!rec) return 1;
  auto setup = DecodeSetup(*rec);
  if (!setup) SetupFailed(setup.error().message);
  if (sigFd < 0) SetupFailed("signalfd failed");
  if (sethostname(setup->hostname.data(), setup->hostname.size()) != 0) SetupFailed("sethostname failed");
  // The runtime put us in the sandbox's cgroup before sending the setup, so
  // a cgroup namespace now makes that cgroup the root of what we can see.
  if (unshare(CLONE_NEWCGROUP) != 0) SetupFailed("cannot create a cgroup namespace: " + std::string(std::strerror(errno)));
  // The sandbox speaks IPv4 only; the host drops IPv6 from it as well.
  WriteBestEffort("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
  WriteBestEffort("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
  int listenFd = Listen(setup->controlSocketPath);
  if (listenFd < 0) SetupFailed("cannot listen on control socket: " + std::string(std::strerror(errno)));
  if (auto s = BuildRootfsAndPivot(setup->rootfs); !s) SetupFailed(s.error().message);
  auto filter = SeccompFilter::Build();
  if (!filter) SetupFailed(filter.error().message);
  if (auto s = RestrictInitCapabilities(); !s) SetupFailed(s.error().message);
  if (!SendRecord(kSetupFd, WireWriter('R').data())) return 1;
  Init init(std::move(*setup), std::move(*filter), listenFd, sigFd);
  init.Loop();
}
