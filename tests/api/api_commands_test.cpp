// Streaming exec, background commands and terminals through the real REST
// server (real WebSocket upgrades from a real RFC 6455 client, Beast) with
// fake workers behind the WorkerClient seam. Attacks: no key, another org's
// sandbox, another sandbox's command id, malformed / oversized / wrongly
// typed frames — each answered with a clear refusal, never a crash.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <optional>

#include "api/command_frames.h"
#include "api_harness.h"
#include "fake_worker.h"

namespace osb::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using nlohmann::json;
using tcp = asio::ip::tcp;

// A blocking WebSocket client for one connection.
class WsConn {
 public:
  // Connects and upgrades; on a refused upgrade `status` holds the HTTP
  // status and `body` the response body.
  WsConn(uint16_t port, const std::string& target, const std::string& key) : ws_(io_) {
    tcp::resolver resolver(io_);
    asio::connect(ws_.next_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
    ws_.set_option(websocket::stream_base::decorator([key](websocket::request_type& req) {
      if (!key.empty()) req.set("X-API-Key", key);
    }));
    ws_.read_message_max(16 << 20);
    // The asynchronous handshake: Boost 1.74's synchronous one leaves `res`
    // empty when the upgrade is refused.
    websocket::response_type res;
    beast::error_code ec;
    ws_.async_handshake(res, "127.0.0.1", target, [&ec](beast::error_code e) { ec = e; });
    io_.run();
    io_.restart();
    status = static_cast<int>(res.result_int());
    body = res.body();
    open = !ec;
  }
  void Text(const json& j) { Send(false, j.dump()); }
  void Send(bool binary, const std::string& data) {
    ws_.binary(binary);
    beast::error_code ec;
    ws_.write(asio::buffer(data), ec);
  }
  // Next message; nullopt when the server closed (close_code set).
  std::optional<std::pair<bool, std::string>> Next() {
    beast::flat_buffer buf;
    beast::error_code ec;
    ws_.read(buf, ec);
    if (ec) {
      if (ec == websocket::error::closed) close_code = ws_.reason().code;
      return std::nullopt;
    }
    return std::make_pair(ws_.got_binary(), beast::buffers_to_string(buf.data()));
  }
  // Reads to the end: stdout text, the exit message, close code.
  json Drain(std::string* out = nullptr, std::vector<json>* texts = nullptr) {
    json exit;
    while (auto m = Next()) {
      if (m->first) {
        EXPECT_FALSE(m->second.empty());
        if (out && !m->second.empty() && m->second[0] == 1) *out += m->second.substr(1);
        continue;
      }
      json j = json::parse(m->second, nullptr, false);
      if (texts) texts->push_back(j);
      if (j.value("type", "") == "exit" || j.value("type", "") == "error") exit = j;
    }
    return exit;
  }

  int status = 0;
  std::string body;
  bool open = false;
  int close_code = 0;

 private:
  asio::io_context io_;
  websocket::stream<tcp::socket> ws_;
};

class CommandsApiTest : public ApiTest {
 protected:
  api::SandboxPlaneOptions PlaneOptions() override {
    api::SandboxPlaneOptions o{"127.0.0.1:0", std::nullopt};
    o.connector = &workers_;
    return o;
  }
  void SetUp() override {
    ApiTest::SetUp();
    port_ = cp_->port();
    ASSERT_TRUE(sandboxes_->workers().Register("w1", "w1:8082", 100).ok());
    ASSERT_EQ(Call("POST", "/api/projects", json{{"name", "proj"}}).status, 201);
    sandbox_ = Call("POST", "/api/sandboxes", json{{"project", "proj"}}).Json().value("sandboxID", "");
    ASSERT_FALSE(sandbox_.empty());
  }
  uint16_t Port() { return port_; }
  std::string Stream(const std::string& id) { return "/api/sandboxes/" + id + "/exec/stream"; }
  bool ServerAlive() { return Call("GET", "/healthz", "", "").status == 200; }

  FakeWorkers workers_;
  std::string sandbox_;
  uint16_t port_ = 0;
};

TEST_F(CommandsApiTest, StreamsOutputAndExitCode) {
  WsConn ws(port_, Stream(sandbox_), kTestAdminKey);
  ASSERT_TRUE(ws.open) << ws.status << " " << ws.body;
  ws.Text({{"type", "start"}, {"cmd", "echo"}, {"args", {"hello", "world"}}});
  std::string out;
  std::vector<json> texts;
  json exit = ws.Drain(&out, &texts);
  EXPECT_EQ(out, "hello world\n");
  ASSERT_FALSE(texts.empty());
  EXPECT_EQ(texts.front().value("type", ""), "started");
  EXPECT_EQ(exit.value("type", ""), "exit");
  EXPECT_EQ(exit.value("exitCode", -1), 0);
  EXPECT_EQ(ws.close_code, 1000);
}

TEST_F(CommandsApiTest, ForwardsStdinUntilEof) {
  WsConn ws(port_, Stream(sandbox_), kTestAdminKey);
  ASSERT_TRUE(ws.open);
  ws.Text({{"type", "start"}, {"cmd", "cat"}});
  ws.Send(true, std::string(1, '\0') + "abc");
  ws.Send(true, std::string(1, '\0') + "def\n");
  ws.Text({{"type", "eof"}});
  std::string out;
  json exit = ws.Drain(&out);
  EXPECT_EQ(out, "abcdef\n");
  EXPECT_EQ(exit.value("exitCode", -1), 0);
}

TEST_F(CommandsApiTest, ExitCodeAndSignalAndResizeFrames) {
  {
    WsConn ws(port_, Stream(sandbox_), kTestAdminKey);
    ws.Text({{"type", "start"}, {"cmd", "exit"}, {"args", {"3"}}});
    EXPECT_EQ(ws.Drain().value("exitCode", -1), 3);
  }
  WsConn ws(port_, "/api/sandboxes/" + sandbox_ + "/pty", kTestAdminKey);
  ASSERT_TRUE(ws.open);
  ws.Text({{"type", "start"}, {"cmd", "sleep"}, {"cols", 100}, {"rows", 30}});
  ws.Text({{"type", "resize"}, {"cols", 120}, {"rows", 40}});
  ws.Text({{"type", "signal"}, {"signal", "TERM"}});
  std::string out;
  json exit = ws.Drain(&out);
  EXPECT_EQ(out, "resized 120x40\n");
  EXPECT_EQ(exit.value("exitCode", -1), 128 + 15);
}

// Attack: no API key (or a wrong one) cannot upgrade; nothing is started.
TEST_F(CommandsApiTest, ClientWithoutKeyCannotUpgrade) {
  for (const std::string& key : {std::string(), std::string("osb_wrong_key")}) {
    for (const std::string& target : {Stream(sandbox_), "/api/sandboxes/" + sandbox_ + "/pty",
                                     "/api/sandboxes/" + sandbox_ + "/commands/cmd_x/attach"}) {
      WsConn ws(port_, target, key);
      EXPECT_FALSE(ws.open) << target;
      EXPECT_EQ(ws.status, 401) << target << " " << ws.body;
    }
  }
  EXPECT_TRUE(ServerAlive());
}

// Attack: another org's key cannot stream in, attach to, list, kill or wait
// on this org's sandbox and commands: the same 404 as an unknown sandbox.
TEST_F(CommandsApiTest, AnotherOrgCannotReachCommands) {
  auto started = Call("POST", "/api/sandboxes/" + sandbox_ + "/commands", json{{"cmd", "sleep"}});
  ASSERT_EQ(started.status, 201) << started.body;
  const std::string cmd = started.Json().value("id", "");
  const std::string other = AddOrg("intruder");
  {
    WsConn ws(port_, Stream(sandbox_), other);
    EXPECT_FALSE(ws.open);
    EXPECT_EQ(ws.status, 404) << ws.body;
  }
  {
    WsConn ws(port_, "/api/sandboxes/" + sandbox_ + "/commands/" + cmd + "/attach", other);
    EXPECT_FALSE(ws.open);
    EXPECT_EQ(ws.status, 404) << ws.body;
  }
  const std::string base = "/api/sandboxes/" + sandbox_ + "/commands";
  EXPECT_EQ(Call("GET", base, "", other).status, 404);
  EXPECT_EQ(Call("GET", base + "/" + cmd, "", other).status, 404);
  EXPECT_EQ(Call("POST", base + "/" + cmd + "/kill", "", other).status, 404);
  EXPECT_EQ(Call("POST", base + "/" + cmd + "/wait?timeout=0", "", other).status, 404);
  EXPECT_EQ(Call("POST", base, json{{"cmd", "echo"}}, other).status, 404);
  // Still running for its owner.
  EXPECT_EQ(Call("GET", base + "/" + cmd).Json().value("status", ""), "running");
}

// Attack: a command id of sandbox A used under sandbox B (same org) is not found.
TEST_F(CommandsApiTest, CommandIdsArePerSandbox) {
  const std::string second = Call("POST", "/api/sandboxes", json{{"project", "proj"}}).Json().value("sandboxID", "");
  ASSERT_FALSE(second.empty());
  const std::string cmd =
      Call("POST", "/api/sandboxes/" + sandbox_ + "/commands", json{{"cmd", "sleep"}}).Json().value("id", "");
  ASSERT_FALSE(cmd.empty());
  WsConn ws(port_, "/api/sandboxes/" + second + "/commands/" + cmd + "/attach", kTestAdminKey);
  EXPECT_FALSE(ws.open);
  EXPECT_EQ(ws.status, 404);
  EXPECT_EQ(Call("POST", "/api/sandboxes/" + second + "/commands/" + cmd + "/kill").status, 404);
  // Its own sandbox attaches: replay with the drop marker, then the exit.
  WsConn own(port_, "/api/sandboxes/" + sandbox_ + "/commands/" + cmd + "/attach", kTestAdminKey);
  ASSERT_TRUE(own.open);
  std::string out;
  std::vector<json> texts;
  own.Drain(&out, &texts);
  EXPECT_EQ(out, "output of " + cmd + "\n");
  bool dropped = false;
  for (const auto& t : texts) dropped |= t.value("type", "") == "dropped" && t.value("bytes", 0) == 7;
  EXPECT_TRUE(dropped);
}

// Attack: malformed, wrongly typed and oversized frames close the session
// with a policy code and a reason; the server keeps serving.
TEST_F(CommandsApiTest, MalformedAndOversizedFramesClosePolicy) {
  struct Case {
    bool binary;
    std::string data;
    int code;
  };
  const std::vector<Case> cases = {
      {false, "not json", 1008},
      {false, "[1,2]", 1008},
      {false, R"({"type":"launch"})", 1008},
      {false, R"({"type":"start"})", 1008},                                   // no cmd
      {false, R"({"type":"start","cmd":"echo","cols":0})", 1008},              // bad size
      {false, R"({"type":"start","cmd":"echo","timeoutSec":-1})", 1008},
      {false, R"({"type":"start","cmd":"echo","bogus":1})", 1008},             // unknown field
      {true, std::string("\x01stdout?"), 1008},                                // wrong stream id
      {true, std::string(), 1008},                                             // empty binary
      {false, std::string(2 << 20, 'x'), 1009},                                // over the message limit
  };
  for (const auto& c : cases) {
    WsConn ws(port_, Stream(sandbox_), kTestAdminKey);
    ASSERT_TRUE(ws.open);
    ws.Send(c.binary, c.data);
    std::vector<json> texts;
    ws.Drain(nullptr, &texts);
    if (c.code == 1009) {
      // The server refuses the frame from its header and closes with 1009;
      // a client still sending may see the reset before the close frame.
      EXPECT_TRUE(ws.close_code == 1009 || ws.close_code == 0) << ws.close_code;
    } else {
      EXPECT_EQ(ws.close_code, c.code) << c.data.substr(0, 60);
    }
    if (c.code == 1008) {
      ASSERT_FALSE(texts.empty()) << c.data.substr(0, 60);
      EXPECT_EQ(texts.back().value("type", ""), "error");
      EXPECT_EQ(texts.back().value("status", 0), 400);
    }
  }
  // Mid-stream garbage too.
  WsConn ws(port_, Stream(sandbox_), kTestAdminKey);
  ws.Text({{"type", "start"}, {"cmd", "cat"}});
  ws.Text({{"type", "resize"}, {"cols", "wide"}});
  ws.Drain();
  EXPECT_EQ(ws.close_code, 1008);
  EXPECT_TRUE(ServerAlive());
}

TEST_F(CommandsApiTest, PlainGetGets426AndUnknownSandbox404) {
  auto r = Call("GET", Stream(sandbox_));
  EXPECT_EQ(r.status, 426) << r.body;
  WsConn ws(port_, Stream("no-such-sandbox"), kTestAdminKey);
  EXPECT_FALSE(ws.open);
  EXPECT_EQ(ws.status, 404);
}

TEST_F(CommandsApiTest, BackgroundCommandsStartListKillWait) {
  const std::string base = "/api/sandboxes/" + sandbox_ + "/commands";
  auto started = Call("POST", base, json{{"cmd", "sleep"}, {"args", {"100"}}});
  ASSERT_EQ(started.status, 201) << started.body;
  const std::string id = started.Json().value("id", "");
  auto list = Call("GET", base);
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.Json().size(), 1u);
  EXPECT_EQ(list.Json()[0].value("id", ""), id);
  EXPECT_EQ(list.Json()[0].value("status", ""), "running");
  EXPECT_EQ(Call("POST", base + "/" + id + "/kill", json{{"signal", "NOPE"}}).status, 400);
  EXPECT_EQ(Call("POST", base + "/" + id + "/kill", json{{"sig", 9}}).status, 400);
  auto killed = Call("POST", base + "/" + id + "/kill", json{{"signal", "TERM"}});
  EXPECT_EQ(killed.status, 200) << killed.body;
  auto waited = Call("POST", base + "/" + id + "/wait?timeout=5");
  EXPECT_EQ(waited.status, 200) << waited.body;
  EXPECT_EQ(waited.Json().value("exitCode", -1), 143);
  EXPECT_EQ(Call("POST", base + "/" + id + "/wait?timeout=9999").status, 400);
  EXPECT_EQ(Call("POST", base, json{{"args", {"x"}}}).status, 400);
}

// Shutdown with a live session (its handler holds no thread since issue
// 15): the client is told 1001 (going away) and Stop + Wait (TearDown)
// return once the handler let go of its stream.
TEST_F(CommandsApiTest, ShutdownClosesLiveSessionsWithGoingAway) {
  WsConn ws(port_, Stream(sandbox_), kTestAdminKey);
  ASSERT_TRUE(ws.open) << ws.status << " " << ws.body;
  ws.Text({{"type", "start"}, {"cmd", "cat"}});
  auto started = ws.Next();
  ASSERT_TRUE(started);
  EXPECT_EQ(json::parse(started->second).value("type", ""), "started");
  ws.Send(false, R"({"type":"stdin","data":"still here\n"})");
  auto echoed = ws.Next();
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->second, std::string("\x01") + "still here\n");
  cp_->Stop();
  ws.Drain();
  EXPECT_EQ(ws.close_code, 1001);
}

TEST(ClientFrameTest, ParsesEveryKindAndRefusesTheRest) {
  EXPECT_EQ(api::ParseClientFrame(true, std::string("\0hi", 3))->data, "hi");
  EXPECT_EQ(api::ParseClientFrame(false, R"({"type":"eof"})")->kind, api::ClientFrame::kEof);
  EXPECT_EQ(api::ParseClientFrame(false, R"({"type":"signal","signal":"SIGINT"})")->signal, 2);
  EXPECT_EQ(api::ParseClientFrame(false, R"({"type":"signal","signal":9})")->signal, 9);
  EXPECT_FALSE(api::ParseClientFrame(false, R"({"type":"signal","signal":0})"));
  EXPECT_FALSE(api::ParseClientFrame(false, R"({"type":"signal","signal":"99"})"));
  EXPECT_FALSE(api::ParseClientFrame(false, R"({"type":"resize","cols":1001,"rows":5})"));
  auto start = api::ParseClientFrame(false, R"({"type":"start","cmd":"ls","args":["-l"],"pty":true,"cols":90})");
  ASSERT_TRUE(start);
  EXPECT_TRUE(start->start.pty);
  EXPECT_EQ(start->start.cols, 90);
  EXPECT_FALSE(api::ParseClientFrame(false, R"({"type":"start","cmd":"ls","pty":"yes"})"));
}

}  // namespace
}  // namespace osb::testing
