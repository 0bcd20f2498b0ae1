// Commands whose output is relayed as produced, end to end below the REST
// layer: real sandboxes (root), the worker's CommandService served over a
// real gRPC server, and the control plane's gRPC WorkerClient talking to it.
// Live output, stdin, exit codes, signals, terminals (own devpts, resize),
// retained output with the drop marker, backpressure without loss, caps,
// per-sandbox command ids, and commands ending with their sandbox.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "controlplane/grpc_worker_client.h"
#include "harness.h"
#include "worker/command_service.h"

namespace osb::sandbox::testing {
namespace {

using controlplane::CommandEvent;
using controlplane::CommandSpec;
using controlplane::CommandStream;

class CommandsTest : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    worker::CommandLimits limits;
    limits.max_running = 3;
    service_ = std::make_unique<worker::CommandService>(*runtime_, limits);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_TRUE(server_ && port_ > 0);
    client_ = connector_.Connect("w", "127.0.0.1:" + std::to_string(port_));
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    service_.reset();
    SandboxTest::TearDown();
  }
  controlplane::Deadline Soon() { return std::chrono::system_clock::now() + std::chrono::seconds(20); }

  static CommandSpec Sh(const std::string& script) {
    CommandSpec s;
    s.cmd = "/bin/sh";
    s.args = {"-c", script};
    return s;
  }
  // Reads events until the exit; returns stdout, fills the exit info.
  static std::string ReadAll(CommandStream& s, CommandEvent* exit, uint64_t* dropped = nullptr,
                             std::string* err = nullptr) {
    std::string out;
    CommandEvent e;
    while (s.Read(&e)) {
      if (e.kind == CommandEvent::kStdout) out += e.data;
      if (e.kind == CommandEvent::kStderr && err) *err += e.data;
      if (e.kind == CommandEvent::kDropped && dropped) *dropped += e.dropped;
      if (e.kind == CommandEvent::kExit) {
        *exit = e;
        s.WritesDone();
        break;
      }
    }
    return out;
  }

  controlplane::GrpcWorkerConnector connector_{std::nullopt};
  std::unique_ptr<worker::CommandService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<controlplane::WorkerClient> client_;
  int port_ = 0;
};

TEST_F(CommandsTest, OutputArrivesBeforeTheCommandEndsAndStdinFlows) {
  auto info = CreateOrDie(MakeSpec("live"));
  auto spec = Sh("echo first; read x; echo got:$x >&2; echo $API_TOKEN; id -u; exit 7");
  auto s = client_->OpenCommandStream(info.id, &spec, "");
  ASSERT_TRUE(s.ok());
  CommandEvent e;
  ASSERT_TRUE((*s)->Read(&e));
  EXPECT_EQ(e.kind, CommandEvent::kStarted);
  EXPECT_EQ(e.info.status, "running");
  // "first" arrives while the command still waits for its stdin.
  ASSERT_TRUE((*s)->Read(&e));
  EXPECT_EQ(e.kind, CommandEvent::kStdout);
  EXPECT_EQ(e.data, "first\n");
  ASSERT_TRUE((*s)->WriteStdin("hello\n"));
  CommandEvent exit;
  std::string err;
  std::string out = ReadAll(**s, &exit, nullptr, &err);
  EXPECT_EQ(err, "got:hello\n");
  // The sandbox holds the token, never a value; it reaches the stream as is.
  EXPECT_EQ(out, "osb_sealed_0123456789abcdef0123456789abcdef\n1000\n");
  EXPECT_EQ(exit.info.exit_code, 7);
  EXPECT_TRUE((*s)->Finish().ok());
}

TEST_F(CommandsTest, SlowReaderGetsEveryByteAndNoDropMarker) {
  auto info = CreateOrDie(MakeSpec("bp"));
  auto spec = Sh("head -c 5000000 /dev/zero; echo END");
  auto s = client_->OpenCommandStream(info.id, &spec, "");
  ASSERT_TRUE(s.ok());
  size_t total = 0;
  uint64_t dropped = 0;
  CommandEvent e, exit;
  std::string tail;
  int reads = 0;
  while ((*s)->Read(&e)) {
    if (e.kind == CommandEvent::kStdout) {
      total += e.data.size();
      tail = (tail + e.data).substr(std::max<size_t>(tail.size() + e.data.size(), 4) - 4);
      // Slow consumer for the first reads: the pump must wait, not drop.
      if (++reads < 20) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (e.kind == CommandEvent::kDropped) dropped += e.dropped;
    if (e.kind == CommandEvent::kExit) {
      exit = e;
      (*s)->WritesDone();
      break;
    }
  }
  EXPECT_EQ(total, 5000000u + 4u);
  EXPECT_EQ(tail, "END\n");
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(exit.info.exit_code, 0);
}

TEST_F(CommandsTest, DetachedKeepsTheLastMiBAndMarksTheDrop) {
  auto info = CreateOrDie(MakeSpec("ring"));
  auto started = client_->StartCommand(info.id, Sh("head -c 3000000 /dev/zero | tr '\\0' a; echo END"), Soon());
  ASSERT_TRUE(started.ok()) << started.error().message;
  EXPECT_TRUE(started->detached);
  auto done = client_->WaitCommand(info.id, started->id, std::chrono::seconds(15), Soon());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, "exited");
  auto s = client_->OpenCommandStream(info.id, nullptr, started->id);
  ASSERT_TRUE(s.ok());
  CommandEvent exit;
  uint64_t dropped = 0;
  std::string out = ReadAll(**s, &exit, &dropped);
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(dropped + out.size(), 3000004u);  // every byte is either replayed or counted
  EXPECT_LE(out.size(), 1u << 20);
  EXPECT_EQ(out.substr(out.size() - 4), "END\n");
  // Listed, with its exit code.
  auto list = client_->ListCommands(info.id, Soon());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].exit_code, 0);
}

TEST_F(CommandsTest, TerminalHasItsOwnDevptsSizeAndResize) {
  auto info = CreateOrDie(MakeSpec("pty"));
  CommandSpec spec;
  spec.cmd = "/bin/sh";
  spec.pty = true;
  spec.cols = 100;
  spec.rows = 30;
  auto s = client_->OpenCommandStream(info.id, &spec, "");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->WriteStdin("stty size; tty; ls /dev/pts | tr '\\n' ' '; id -u\n"));
  // Resize only once the first size was printed (as a person would).
  std::string out;
  CommandEvent e;
  while (out.find("30 100") == std::string::npos && (*s)->Read(&e))
    if (e.kind == CommandEvent::kStdout) out += e.data;
  ASSERT_TRUE((*s)->Resize(120, 40));
  ASSERT_TRUE((*s)->WriteStdin("stty size; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; exit 3\n"));
  CommandEvent exit;
  out += ReadAll(**s, &exit);
  EXPECT_NE(out.find("30 100"), std::string::npos) << out;
  EXPECT_NE(out.find("40 120"), std::string::npos) << out;
  EXPECT_NE(out.find("/dev/pts/0"), std::string::npos) << out;
  // Only this sandbox's terminal: the host's ptys are not visible.
  EXPECT_NE(out.find("0 ptmx "), std::string::npos) << out;
  EXPECT_NE(out.find("1000"), std::string::npos) << out;
  EXPECT_NE(out.find("NoNewPrivs:\t1"), std::string::npos) << out;
  EXPECT_NE(out.find("Seccomp:\t2"), std::string::npos) << out;
  EXPECT_EQ(exit.info.exit_code, 3);
}

TEST_F(CommandsTest, KillWithASignalAndWait) {
  auto info = CreateOrDie(MakeSpec("kill"));
  auto started = client_->StartCommand(info.id, Sh("sleep 100"), Soon());
  ASSERT_TRUE(started.ok());
  auto killed = client_->KillCommand(info.id, started->id, SIGTERM, Soon());
  ASSERT_TRUE(killed.ok()) << killed.error().message;
  auto done = client_->WaitCommand(info.id, started->id, std::chrono::seconds(10), Soon());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, "exited");
  EXPECT_EQ(done->exit_code, 128 + SIGTERM);
  EXPECT_EQ(done->signal, SIGTERM);
}

TEST_F(CommandsTest, IdsArePerSandboxAndRunningCommandsAreCapped) {
  auto a = CreateOrDie(MakeSpec("ida"));
  auto b = CreateOrDie(MakeSpec("idb"));
  auto started = client_->StartCommand(a.id, Sh("sleep 100"), Soon());
  ASSERT_TRUE(started.ok());
  auto wrong = client_->KillCommand(b.id, started->id, SIGKILL, Soon());
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kNotFound);
  auto attach = client_->OpenCommandStream(b.id, nullptr, started->id);
  ASSERT_TRUE(attach.ok());
  CommandEvent e;
  EXPECT_FALSE((*attach)->Read(&e));
  auto st = (*attach)->Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kNotFound);
  auto listed = client_->ListCommands(b.id, Soon());
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  // Cap 3 per sandbox (this fixture): the 4th running one is refused.
  ASSERT_TRUE(client_->StartCommand(a.id, Sh("sleep 100"), Soon()).ok());
  ASSERT_TRUE(client_->StartCommand(a.id, Sh("sleep 100"), Soon()).ok());
  auto over = client_->StartCommand(a.id, Sh("sleep 100"), Soon());
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kResourceExhausted);
  EXPECT_TRUE(client_->StartCommand(b.id, Sh("true"), Soon()).ok());  // per sandbox
}

TEST_F(CommandsTest, CommandsEndWithTheirSandboxAndAttachedOnesWithTheirStream) {
  auto info = CreateOrDie(MakeSpec("end"));
  auto started = client_->StartCommand(info.id, Sh("sleep 100"), Soon());
  ASSERT_TRUE(started.ok());
  // An attached (not detached) command dies when its stream is cancelled.
  auto spec = Sh("sleep 100");
  auto s = client_->OpenCommandStream(info.id, &spec, "");
  ASSERT_TRUE(s.ok());
  CommandEvent e;
  ASSERT_TRUE((*s)->Read(&e));
  (*s)->Cancel();
  s->reset();
  auto ps = runtime_->Exec(info.id, ExecRequest{"/bin/sh", {"-c", "sleep 0.5; ps -eo args | grep -c '^sleep 100'"}});
  ASSERT_TRUE(ps.ok());
  EXPECT_EQ(ps->stdoutData, "1\n");  // only the detached one is left
  ASSERT_TRUE(runtime_->Destroy(info.id).ok());
  auto done = client_->WaitCommand(info.id, started->id, std::chrono::seconds(10), Soon());
  // Gone with the sandbox: exited, or already forgotten.
  if (done.ok()) EXPECT_EQ(done->status, "exited");
  else EXPECT_EQ(done.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace osb::sandbox::testing
