// The worker's file data port (src/worker/file_data_port.h) on real
// sandboxes (root), with real mutual TLS 1.3 (certificates from
// proto::EnsureDevGrpcTls): the control plane's GrpcWorkerClient moves
// files over it, and every check is attacked directly on the wire -
// a client without the control-plane certificate, a replayed ticket, a
// ticket presented for another sandbox / path / direction, an expired one,
// a truncated and an oversized upload (no file appears, the worker lives).
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "controlplane/file_data_client.h"
#include "controlplane/grpc_worker_client.h"
#include "harness.h"
#include "proto/file_data_wire.h"
#include "proto/grpc_certs.h"
#include "worker/file_data_port.h"

namespace osb::sandbox::testing {
namespace {

namespace fd = proto::filedata;

class FileDataPortTest : public SandboxTest {
 protected:
  void SetUp() override {
    SandboxTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    dir_ = "/tmp/" + UniqueId("fdp");
    auto tls = proto::EnsureDevGrpcTls(dir_);
    ASSERT_TRUE(tls.ok()) << tls.error().message;
    tls_ = *tls;
    StartPort(std::chrono::milliseconds(10'000));
  }
  void StartPort(std::chrono::milliseconds lifetime) {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_.reset();
    service_.reset();
    if (port_) port_->Stop();
    worker::FileDataPortOptions o;
    o.tls = tls_.worker;
    o.ticket_lifetime = lifetime;
    auto p = worker::FileDataPort::Start(*runtime_, o);
    ASSERT_TRUE(p.ok()) << p.error().message;
    port_ = std::move(*p);
    service_ = std::make_unique<worker::FileTransferService>(*port_);
    grpc::ServerBuilder b;
    int grpc_port = 0;
    proto::AddGrpcListener(b, "127.0.0.1:0", tls_.worker, proto::GrpcRole::kControlPlane, &grpc_port);
    b.RegisterService(service_.get());  // only the data-port service: no gRPC streaming fallback
    server_ = b.BuildAndStart();
    ASSERT_TRUE(server_ && grpc_port > 0);
    controlplane::GrpcWorkerConnector connector(tls_.control_plane);
    client_ = connector.Connect("w", "127.0.0.1:" + std::to_string(grpc_port));
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    if (port_) port_->Stop();
    service_.reset();
    port_.reset();
    SandboxTest::TearDown();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  controlplane::Deadline Soon() { return std::chrono::system_clock::now() + std::chrono::seconds(20); }

  v1::FileTransferGrant Grant(const std::string& id, const std::string& path, bool upload) {
    v1::FileTransferRequest req;
    req.set_sandbox_id(id);
    req.set_path(path);
    req.set_direction(upload ? v1::FileTransferRequest::UPLOAD : v1::FileTransferRequest::DOWNLOAD);
    auto g = port_->Open(req);
    EXPECT_TRUE(g.ok()) << g.error().message;
    return g.ok() ? *g : v1::FileTransferGrant();
  }
  // A raw connection to the data port with `who`'s certificate.
  Result<std::unique_ptr<fd::Conn>> Dial(const proto::GrpcTlsMaterial& who) {
    auto ctx = fd::MakeContext(who, /*server=*/false);
    if (!ctx) return ctx.error();
    ctxs_.push_back(std::move(*ctx));
    return fd::Conn::Dial(ctxs_.back().get(), "127.0.0.1", port_->port(), proto::GrpcRole::kWorker,
                          std::chrono::milliseconds(5000));
  }
  // Presents a ticket; the worker's answer.
  Status Present(fd::Conn& c, const v1::FileTransferGrant& g, fd::Direction dir, const std::string& id,
                 const std::string& path) {
    fd::Header h;
    h.direction = dir;
    std::copy(g.ticket().begin(), g.ticket().end(), h.ticket.begin());
    h.sandbox_id = id;
    h.path = path;
    if (auto s = c.WriteHeader(h); !s) return s;
    return c.ReadStatus();
  }
  static Status Frame(fd::Conn& c, const std::string& bytes) {
    const size_t n = bytes.size();
    const unsigned char len[4] = {static_cast<unsigned char>(n >> 24), static_cast<unsigned char>(n >> 16),
                                  static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
    if (auto s = c.WriteAll(len, 4); !s) return s;
    return bytes.empty() ? Status() : c.WriteAll(bytes.data(), n);
  }
  // The file as the sandbox's helper sees it (nullopt: not there).
  std::optional<std::string> Read(const std::string& id, const std::string& path) {
    auto f = runtime_->OpenFileForRead(id, path);
    if (!f) return std::nullopt;
    std::string out(static_cast<size_t>(f->second), '\0');
    size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = read(f->first, out.data() + got, out.size() - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    close(f->first);
    return out;
  }

  std::string dir_;
  proto::DevGrpcTls tls_;
  std::unique_ptr<worker::FileDataPort> port_;
  std::unique_ptr<worker::FileTransferService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<controlplane::WorkerClient> client_;
  std::vector<fd::SslCtx> ctxs_;
};

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
  return s;
}

TEST_F(FileDataPortTest, TheControlPlaneClientMovesFilesOverTheDataPort) {
  auto info = CreateOrDie(MakeSpec("fdpok"));
  const std::string data = Pattern((3 << 20) + 12345);  // pieces of 1 MiB and a tail, one piece > 1 MiB
  std::vector<std::string> pieces = {data.substr(0, 1 << 20), data.substr(1 << 20, (2 << 20) + 100),
                                     data.substr((3 << 20) + 100)};
  size_t next = 0;
  controlplane::ChunkSource src = [&]() -> Result<std::optional<std::string>> {
    if (next == pieces.size()) return std::optional<std::string>();
    return std::optional<std::string>(pieces[next++]);
  };
  auto size = client_->UploadFile(info.id, "/home/sandbox/big.bin", 0600, src, Soon());
  ASSERT_TRUE(size.ok()) << size.error().message;
  EXPECT_EQ(*size, static_cast<int64_t>(data.size()));
  EXPECT_EQ(Read(info.id, "/home/sandbox/big.bin"), data);

  std::string back;
  int64_t announced = -1;
  controlplane::DownloadSink sink;
  sink.on_size = [&](int64_t s) {
    announced = s;
    return true;
  };
  sink.on_chunk = [&](std::string c) {
    back += c;
    return true;
  };
  auto st = client_->DownloadFile(info.id, "/home/sandbox/big.bin", sink, Soon());
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(announced, static_cast<int64_t>(data.size()));
  EXPECT_TRUE(back == data);

  // Errors keep their meaning: a missing file is kNotFound, as over gRPC.
  auto missing = client_->DownloadFile(info.id, "/home/sandbox/nope", sink, Soon());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_F(FileDataPortTest, AClientWithoutTheControlPlaneCertificateIsRefused) {
  auto info = CreateOrDie(MakeSpec("fdpcert"));
  const auto g = Grant(info.id, "/home/sandbox/w.txt", true);
  // A worker certificate from the same CA: the right PKI, the wrong role.
  auto c = Dial(tls_.worker);
  if (c.ok()) {
    auto st = Present(**c, g, fd::Direction::kUpload, info.id, "/home/sandbox/w.txt");
    if (st.ok()) st = Frame(**c, "written by a worker");
    if (st.ok()) st = Frame(**c, "");
    if (st.ok()) st = (*c)->ReadStatus();
    EXPECT_FALSE(st.ok()) << "a worker certificate moved bytes into a sandbox";
  }
  // A control-plane certificate from another CA.
  auto other = proto::EnsureDevGrpcTls(dir_ + "-other");
  ASSERT_TRUE(other.ok());
  // It trusts our CA (so it accepts the worker's certificate) but presents
  // a control-plane certificate our CA never signed.
  proto::GrpcTlsMaterial foreign = other->control_plane;
  foreign.ca_pem = tls_.control_plane.ca_pem;
  auto c2 = Dial(foreign);
  if (c2.ok()) {
    auto st = Present(**c2, g, fd::Direction::kUpload, info.id, "/home/sandbox/w.txt");
    EXPECT_FALSE(st.ok()) << "a certificate from another CA was accepted";
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_ + "-other", ec);
  port_->Stop();  // every connection has ended
  EXPECT_EQ(Read(info.id, "/home/sandbox/w.txt"), std::nullopt);
}

TEST_F(FileDataPortTest, ATicketIsSingleUse) {
  auto info = CreateOrDie(MakeSpec("fdpreplay"));
  const auto g = Grant(info.id, "/home/sandbox/once.txt", true);
  {
    auto c = Dial(tls_.control_plane);
    ASSERT_TRUE(c.ok()) << c.error().message;
    ASSERT_TRUE(Present(**c, g, fd::Direction::kUpload, info.id, "/home/sandbox/once.txt").ok());
    ASSERT_TRUE(Frame(**c, "first").ok());
    ASSERT_TRUE(Frame(**c, "").ok());
    ASSERT_TRUE((*c)->ReadStatus().ok());
  }
  EXPECT_EQ(Read(info.id, "/home/sandbox/once.txt"), "first");
  auto c = Dial(tls_.control_plane);
  ASSERT_TRUE(c.ok());
  auto st = Present(**c, g, fd::Direction::kUpload, info.id, "/home/sandbox/once.txt");
  ASSERT_FALSE(st.ok()) << "a replayed ticket was accepted";
  EXPECT_EQ(st.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(Read(info.id, "/home/sandbox/once.txt"), "first");
}

TEST_F(FileDataPortTest, ATicketIsBoundToItsSandboxPathAndDirection) {
  auto a = CreateOrDie(MakeSpec("fdpa"));
  auto b = CreateOrDie(MakeSpec("fdpb"));
  ASSERT_TRUE(runtime_->MakeDirectory(b.id, "/home/sandbox/d", false, 0755).ok());
  struct Case {
    const char* what;
    fd::Direction dir;
    std::string id, path;
  };
  const std::vector<Case> cases = {
      {"another sandbox", fd::Direction::kUpload, b.id, "/home/sandbox/t.txt"},
      {"another path", fd::Direction::kUpload, a.id, "/home/sandbox/other.txt"},
      {"another direction", fd::Direction::kDownload, a.id, "/home/sandbox/t.txt"},
  };
  for (const auto& k : cases) {
    const auto g = Grant(a.id, "/home/sandbox/t.txt", true);
    auto c = Dial(tls_.control_plane);
    ASSERT_TRUE(c.ok());
    auto st = Present(**c, g, k.dir, k.id, k.path);
    if (st.ok() && k.dir == fd::Direction::kUpload) {
      st = Frame(**c, "misdirected");
      if (st.ok()) st = Frame(**c, "");
      if (st.ok()) st = (*c)->ReadStatus();
    }
    EXPECT_FALSE(st.ok()) << "a ticket was accepted for " << k.what;
    // The refusal burned the ticket: the right presentation is refused too.
    auto c2 = Dial(tls_.control_plane);
    ASSERT_TRUE(c2.ok());
    EXPECT_FALSE(Present(**c2, g, fd::Direction::kUpload, a.id, "/home/sandbox/t.txt").ok()) << k.what;
  }
  port_->Stop();
  EXPECT_EQ(Read(a.id, "/home/sandbox/t.txt"), std::nullopt);
  EXPECT_EQ(Read(a.id, "/home/sandbox/other.txt"), std::nullopt);
  EXPECT_EQ(Read(b.id, "/home/sandbox/t.txt"), std::nullopt);
}

TEST_F(FileDataPortTest, AnExpiredOrUnknownTicketIsRefused) {
  auto info = CreateOrDie(MakeSpec("fdpexp"));
  StartPort(std::chrono::milliseconds(0));  // every ticket is expired when presented
  const auto g = Grant(info.id, "/home/sandbox/late.txt", true);
  auto c = Dial(tls_.control_plane);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(Present(**c, g, fd::Direction::kUpload, info.id, "/home/sandbox/late.txt").ok());
  v1::FileTransferGrant forged;
  forged.set_ticket(std::string(fd::kTicketBytes, 'x'));
  auto c2 = Dial(tls_.control_plane);
  ASSERT_TRUE(c2.ok());
  auto st = Present(**c2, forged, fd::Direction::kUpload, info.id, "/home/sandbox/late.txt");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kUnauthenticated);
  port_->Stop();
  EXPECT_EQ(Read(info.id, "/home/sandbox/late.txt"), std::nullopt);
}

TEST_F(FileDataPortTest, ATruncatedOrOversizedUploadLeavesNoFileAndTheWorkerLives) {
  auto info = CreateOrDie(MakeSpec("fdpcut"));
  ASSERT_TRUE(runtime_->MakeDirectory(info.id, "/home/sandbox/keep", false, 0755).ok());
  {  // the connection ends after a frame, without the end frame
    const auto g = Grant(info.id, "/home/sandbox/cut.bin", true);
    auto c = Dial(tls_.control_plane);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(Present(**c, g, fd::Direction::kUpload, info.id, "/home/sandbox/cut.bin").ok());
    ASSERT_TRUE(Frame(**c, Pattern(100000)).ok());
  }
  {  // a frame larger than 1 MiB
    const auto g = Grant(info.id, "/home/sandbox/huge.bin", true);
    auto c = Dial(tls_.control_plane);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(Present(**c, g, fd::Direction::kUpload, info.id, "/home/sandbox/huge.bin").ok());
    const unsigned char len[4] = {0x7f, 0xff, 0xff, 0xff};
    ASSERT_TRUE((*c)->WriteAll(len, 4).ok());
    auto st = (*c)->ReadStatus();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  }
  {  // garbage instead of a header
    auto c = Dial(tls_.control_plane);
    ASSERT_TRUE(c.ok());
    const std::string garbage = "GET / HTTP/1.1\r\n\r\n" + std::string(64, 'a');
    ASSERT_TRUE((*c)->WriteAll(garbage.data(), garbage.size()).ok());
    EXPECT_FALSE((*c)->ReadStatus().ok());
  }
  port_->Stop();  // waits for every connection: the worker side is done
  EXPECT_EQ(Read(info.id, "/home/sandbox/cut.bin"), std::nullopt);
  EXPECT_EQ(Read(info.id, "/home/sandbox/huge.bin"), std::nullopt);
  // No temp file left behind either: the home holds only what we made.
  bool truncated = false;
  auto list = runtime_->ListFiles(info.id, "/home/sandbox", &truncated);
  ASSERT_TRUE(list.ok());
  for (const auto& e : *list) EXPECT_TRUE(e.name == "keep" || e.name[0] == '.') << e.name;
  // The worker still serves: a new port on the same runtime moves a file.
  StartPort(std::chrono::milliseconds(10'000));
  controlplane::ChunkSource one = [done = false]() mutable -> Result<std::optional<std::string>> {
    if (done) return std::optional<std::string>();
    done = true;
    return std::optional<std::string>("ok");
  };
  auto size = client_->UploadFile(info.id, "/home/sandbox/after.txt", 0644, one, Soon());
  ASSERT_TRUE(size.ok()) << size.error().message;
  EXPECT_EQ(Read(info.id, "/home/sandbox/after.txt"), "ok");
}

}  // namespace
}  // namespace osb::sandbox::testing
