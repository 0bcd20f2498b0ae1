// Control-plane benchmark, in one process: 1 or 2 `osb server` replicas
// (real REST servers, real store: SQLite or PostgreSQL) over in-memory
// workers (tests/controlplane/fake_worker.h), so the figures are the
// control plane's own cost, not a worker's.
//
//   controlplane_bench --db URL [--replicas 1|2] [--seconds S] [--clients C]
//
// Prints one JSON object:
//   get_sandboxes_rps   GET /api/sandboxes (200 sandboxes listed), C clients
//   put_secret_rps      PUT of a secret used by no running sandbox
//   refresh_200_ms      PUT of a secret used by 200 running sandboxes on 4
//                       workers (median of 5): the live refresh fan-out
//   healthz_p99_ms_200_execs, get_p99_ms_200_execs  latency while 200 long
//                       execs (held in the fake worker) are running
//   threads_added_by_200_execs  the servers' thread count with them running,
//                       minus before (execs are asynchronous: ~0)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <string>
#include <thread>
#include <vector>

#include "api/control_plane.h"
#include "api/sandbox_plane.h"
#include "bench_net.h"
#include "crypto/keyring.h"
#include "fake_worker.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kKey = "0101010101010101010101010101010101010101010101010101010101010101";
constexpr const char* kApiKey = "osb_bench_admin_key_0123456789abcdef0123456789abcdef";

// One keep-alive HTTP/1.1 connection.
class Conn {
 public:
  explicit Conn(uint16_t port) : port_(port) { fd_ = osb::bench::DialTcp("127.0.0.1:" + std::to_string(port)); }
  ~Conn() {
    if (fd_ >= 0) close(fd_);
  }
  // Returns the status, fills body.
  int Do(const std::string& method, const std::string& path, const std::string& body, std::string* out = nullptr) {
    if (!Send(method, path, body)) return -1;
    return Receive(out);
  }
  bool Send(const std::string& method, const std::string& path, const std::string& body) {
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: x\r\nX-API-Key: " + kApiKey + "\r\n";
    if (!body.empty()) req += "Content-Type: application/json\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return write(fd_, req.data(), req.size()) == static_cast<ssize_t>(req.size());
  }
  int Receive(std::string* out = nullptr) {
    std::string buf;
    char tmp[65536];
    size_t head_end = std::string::npos;
    size_t need = 0;
    for (;;) {
      ssize_t n = read(fd_, tmp, sizeof tmp);
      if (n <= 0) return -1;
      buf.append(tmp, n);
      if (head_end == std::string::npos) {
        head_end = buf.find("\r\n\r\n");
        if (head_end == std::string::npos) continue;
        std::string head = buf.substr(0, head_end);
        std::transform(head.begin(), head.end(), head.begin(), ::tolower);
        auto cl = head.find("content-length:");
        need = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 15));
      }
      if (buf.size() >= head_end + 4 + need) break;
    }
    if (out) *out = buf.substr(head_end + 4, need);
    return std::stoi(buf.substr(9, 3));
  }

 private:
  uint16_t port_;
  int fd_ = -1;
};

struct Replica {
  std::unique_ptr<osb::api::ControlPlane> cp;
  std::unique_ptr<osb::api::SandboxPlane> plane;
};

double Rate(const std::vector<uint16_t>& ports, int clients, double seconds,
            const std::function<int(Conn&, int)>& one) {
  std::atomic<long> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      Conn conn(ports[c % ports.size()]);
      for (int i = 0; !stop; ++i) {
        if (one(conn, c * 1000000 + i) / 100 != 2) {
          std::cerr << "request failed\n";
          std::exit(1);
        }
        ++done;
      }
    });
  }
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  return done / std::chrono::duration<double>(Clock::now() - start).count();
}

int ThreadCount() {
  FILE* f = fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  int n = -1;
  while (fgets(line, sizeof line, f) != nullptr) {
    if (strncmp(line, "Threads:", 8) == 0) n = atoi(line + 8);
  }
  fclose(f);
  return n;
}

double P99Ms(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(v.size() * 0.99))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string db;
  int replicas = 1, clients = 4;
  double seconds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--db") db = argv[i + 1];
    else if (a == "--replicas") replicas = std::stoi(argv[i + 1]);
    else if (a == "--seconds") seconds = std::stod(argv[i + 1]);
    else if (a == "--clients") clients = std::stoi(argv[i + 1]);
  }
  if (db.empty()) {
    std::cerr << "usage: controlplane_bench --db URL [--replicas N] [--seconds S] [--clients C]\n";
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);
  auto ring = osb::crypto::Keyring::FromHex(kKey);
  auto keyring = std::make_shared<const osb::crypto::Keyring>(std::move(*ring));
  osb::testing::FakeWorkers workers;
  std::vector<Replica> reps(replicas);
  std::vector<uint16_t> ports;
  for (auto& r : reps) {
    osb::api::ControlPlaneOptions o;
    o.listen = "127.0.0.1:0";
    o.db_url = db;
    o.bootstrap_api_key = kApiKey;
    auto cp = osb::api::ControlPlane::Create(o, keyring);
    if (!cp) {
      std::cerr << cp.error().message << "\n";
      return 1;
    }
    r.cp = std::move(*cp);
    osb::api::SandboxPlaneOptions po{"127.0.0.1:0", std::nullopt};
    po.connector = &workers;
    po.limits.org_max_sandboxes = 0;
    po.limits.org_max_memory_mb = 0;
    po.limits.long_calls.per_org = 512;
    po.limits.long_calls.threads = 512;
    auto plane = osb::api::SandboxPlane::Attach(*r.cp, po);
    if (!plane) {
      std::cerr << plane.error().message << "\n";
      return 1;
    }
    r.plane = std::move(*plane);
    if (!r.cp->Start()) return 1;
    ports.push_back(r.cp->port());
  }
  for (int w = 0; w < 4; ++w) {
    (void)reps[w % replicas].plane->workers().Register("w" + std::to_string(w), "fake:1", 100);
  }
  // The fake workers heartbeat like real ones (every 2 s, to replica i % n).
  std::atomic<bool> beating{true};
  std::thread heart([&] {
    while (beating) {
      for (int w = 0; w < 4; ++w) (void)reps[w % replicas].plane->workers().Heartbeat("w" + std::to_string(w));
      for (int i = 0; i < 20 && beating; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  Conn setup(ports[0]);
  setup.Do("POST", "/api/projects", json{{"name", "bench"}}.dump());
  setup.Do("PUT", "/api/projects/bench/secrets/TOKEN", json{{"value", "v0"}}.dump());
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    std::string body;
    if (Conn(ports[i % ports.size()]).Do("POST", "/api/sandboxes", json{{"project", "bench"}}.dump(), &body) != 201) {
      std::cerr << "create failed: " << body << "\n";
      return 1;
    }
    ids.push_back(json::parse(body)["sandboxID"]);
  }
  json out{{"db", db.starts_with("sqlite") ? "sqlite" : "postgres"}, {"replicas", replicas}, {"clients", clients}};

  std::vector<double> refresh;
  for (int i = 0; i < 5; ++i) {
    std::string body;
    const auto t0 = Clock::now();
    setup.Do("PUT", "/api/projects/bench/secrets/TOKEN", json{{"value", "v" + std::to_string(i + 1)}}.dump(), &body);
    refresh.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (json::parse(body)["refreshed"] != 200) {
      std::cerr << "refresh incomplete: " << body << "\n";
      return 1;
    }
  }
  std::sort(refresh.begin(), refresh.end());
  out["refresh_200_ms"] = refresh[2];

  out["get_sandboxes_rps"] = Rate(ports, clients, seconds, [](Conn& c, int) {
    return c.Do("GET", "/api/sandboxes", "");
  });
  out["put_secret_rps"] = Rate(ports, clients, seconds, [](Conn& c, int i) {
    return c.Do("PUT", "/api/projects/bench/secrets/UNUSED_" + std::to_string(i % 50),
                json{{"value", "x" + std::to_string(i)}}.dump());
  });

  // 200 long execs (held in the fake workers, which take them asynchronously
  // like the gRPC client does), then latency of others. The requests are
  // written on 200 connections from this thread and read after the release,
  // so the process's thread count is the servers'.
  for (int w = 0; w < 4; ++w) workers.Get("w" + std::to_string(w))->SetAsyncExec(true);
  const int threads_before = ThreadCount();
  std::vector<std::unique_ptr<Conn>> execs;
  for (int i = 0; i < 200; ++i) {
    execs.push_back(std::make_unique<Conn>(ports[i % ports.size()]));
    execs.back()->Send("POST", "/api/sandboxes/" + ids[i] + "/exec/run", json{{"cmd", "sleep"}}.dump());
  }
  int running = 0;
  for (int w = 0; w < 4; ++w) {
    auto fw = workers.Get("w" + std::to_string(w));
    const int n = static_cast<int>(fw->Running().size());
    fw->WaitForExecs(n);
    running += fw->ExecsRunning();
  }
  out["execs_running"] = running;
  out["threads_added_by_200_execs"] = ThreadCount() - threads_before;
  std::vector<double> hz, get;
  Conn probe(ports[0]);
  for (int i = 0; i < 200; ++i) {
    auto t0 = Clock::now();
    probe.Do("GET", "/healthz", "");
    hz.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    t0 = Clock::now();
    probe.Do("GET", "/api/sandboxes", "");
    get.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  out["healthz_p99_ms_200_execs"] = P99Ms(hz);
  out["get_p99_ms_200_execs"] = P99Ms(get);
  for (int w = 0; w < 4; ++w) workers.Get("w" + std::to_string(w))->ReleaseExecs();
  for (auto& c : execs) {
    if (c->Receive() != 200) {
      std::cerr << "an exec failed\n";
      return 1;
    }
  }
  std::cout << out.dump() << std::endl;
  beating = false;
  heart.join();
  for (auto& r : reps) {
    r.cp->Stop();
    r.cp->Wait();
    r.plane->Stop();
  }
  return 0;
}
