// osb dev: the embedded default for a new user — the control plane on SQLite
// in a local data dir, with keys generated on first start:
//   DIR/osb.db       the database
//   DIR/secret.key   the secret encryption key (0600), unless one is set in
//                    the environment
//   DIR/api-key      the admin API key (0600), unless OPENSANDBOX_API_KEY is set
//   DIR/grpc-tls/    its own gRPC CA and certificates (keys 0600, dir 0700):
//                    control plane and worker talk mutual TLS, each accepting
//                    only the other's role (proto/grpc_certs.h)
// and the client config `oc` reads ($XDG_CONFIG_HOME/opensandbox/config or
// ~/.config/opensandbox/config, 0600): {"apiUrl": ..., "apiKey": ...}.
// Key material is never printed: only where it is.
//
// Unless --no-worker, one worker runs in-process (sandboxes need root); its
// state (proxy CA, sandbox records — never secret values) is in DIR/worker.
// The URL is printed once the API is ready (/readyz: the database answers
// and the worker has registered), or at once when no worker runs here.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "common/time_text.h"
#include "api/control_plane.h"
#include "api/sandbox_plane.h"
#include "api/http_server.h"
#include "cmd/osb_command.h"
#include "common/secure_memory.h"
#include "controlplane/auth.h"
#include "crypto/keyring.h"
#include "proto/grpc_certs.h"
#include "proto/tls_credentials.h"
#include "worker/worker_node.h"

namespace {

namespace fs = std::filesystem;

struct DevFlags {
  std::string data_dir = ".osb";
  std::string listen = "127.0.0.1:8080";
  std::string grpc_listen = "127.0.0.1:8081";
  bool no_worker = false;
  std::string max_sandbox_lifetime = "24h";
  osb::worker::WorkerOptions worker;
  std::vector<std::string> resolve;
};

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

// Writes `content` to `path` with mode 0600 via a temp file + rename.
bool WritePrivateFile(const fs::path& path, const std::string& content, std::string* error) {
  const fs::path tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = "cannot create " + tmp.string() + ": " + std::strerror(errno);
    return false;
  }
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      *error = "cannot write " + tmp.string() + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot rename to " + path.string() + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

// Reads the first line of a file; empty if missing.
std::string ReadFirstLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

fs::path ClientConfigPath() {
  if (const char* xdg = Env("XDG_CONFIG_HOME")) return fs::path(xdg) / "opensandbox" / "config";
  if (const char* home = Env("HOME")) return fs::path(home) / ".config" / "opensandbox" / "config";
  return {};
}

int RunDev(const DevFlags& flags) {
  // This process holds the encryption keys and secret values.
  osb::MakeProcessUndumpable();
  auto lifetime = osb::ParseDurationSeconds("--max-sandbox-lifetime", flags.max_sandbox_lifetime);
  if (!lifetime || *lifetime > osb::controlplane::kMaxSandboxTimeoutSec) {
    std::cerr << "error: " << (lifetime ? "--max-sandbox-lifetime: at most 30d" : lifetime.error().message) << "\n";
    return 2;
  }
  const int max_lifetime = *lifetime;
  std::error_code ec;
  const fs::path dir = fs::absolute(flags.data_dir).lexically_normal();
  fs::create_directories(dir, ec);
  if (ec) {
    std::cerr << "error: --data-dir: cannot create " << dir << ": " << ec.message() << "\n";
    return 1;
  }
  ::chmod(dir.c_str(), 0700);
  auto listen = osb::api::ParseListenAddress("--listen", flags.listen);
  if (!listen) {
    std::cerr << "error: " << listen.error().message << "\n";
    return 1;
  }
  std::string error;

  // Encryption key: the environment wins; else DIR/secret.key, made once.
  const fs::path key_file = dir / "secret.key";
  const bool env_key = Env(osb::crypto::kKeyEnv) || Env(osb::crypto::kKeyFileEnv);
  if (!env_key && !fs::exists(key_file)) {
    std::string key = osb::crypto::GenerateKeyHex() + "\n";
    const bool ok = WritePrivateFile(key_file, key, &error);
    osb::SecureWipe(key);
    if (!ok) {
      std::cerr << "error: " << error << "\n";
      return 1;
    }
    std::cout << "osb dev: generated a new secret encryption key in " << key_file.string()
              << " (mode 0600; keep it: without it stored secrets cannot be decrypted)" << std::endl;
  }
  const std::string key_file_str = key_file.string();
  auto keyring = osb::crypto::Keyring::FromEnvironment([&](const char* name) -> const char* {
    if (!env_key && std::string(name) == osb::crypto::kKeyFileEnv) return key_file_str.c_str();
    return std::getenv(name);
  });
  if (!keyring) {
    std::cerr << "error: " << keyring.error().message << "\n";
    return 2;
  }

  // Admin API key: OPENSANDBOX_API_KEY wins; else DIR/api-key, made once.
  std::string api_key;
  const fs::path api_key_file = dir / "api-key";
  const bool env_api_key = Env(osb::controlplane::kApiKeyEnv) != nullptr;
  if (const char* k = Env(osb::controlplane::kApiKeyEnv)) {
    api_key = k;
  } else {
    api_key = ReadFirstLine(api_key_file);
    if (api_key.empty()) {
      api_key = osb::controlplane::GenerateApiKey();
      if (!WritePrivateFile(api_key_file, api_key + "\n", &error)) {
        std::cerr << "error: " << error << "\n";
        return 1;
      }
      std::cout << "osb dev: generated an admin API key in " << api_key_file.string() << std::endl;
    }
  }

  osb::api::ControlPlaneOptions options;
  options.listen = flags.listen;
  options.db_url = "sqlite://" + (dir / "osb.db").string();
  options.bootstrap_api_key = api_key;
  auto shared = std::make_shared<const osb::crypto::Keyring>(std::move(*keyring));

  // Read once; no other process sees them in /proc/PID/environ from now on.
  osb::crypto::RemoveKeysFromEnvironment();
  osb::RemoveFromEnvironment(osb::controlplane::kApiKeyEnv);

  // gRPC between the control plane and the worker: always mutual TLS, with
  // a CA of osb dev's own.
  if (Env("OPENSANDBOX_GRPC_TLS_CA") || Env("OPENSANDBOX_GRPC_TLS_CERT") || Env("OPENSANDBOX_GRPC_TLS_KEY")) {
    std::cout << "osb dev: OPENSANDBOX_GRPC_TLS_* ignored: osb dev uses its own CA in "
              << (dir / "grpc-tls").string() << std::endl;
  }
  auto dev_tls = osb::proto::EnsureDevGrpcTls((dir / "grpc-tls").string());
  if (!dev_tls) {
    std::cerr << "error: " << dev_tls.error().message << "\n";
    return 1;
  }
  if (dev_tls->created) {
    std::cout << "osb dev: generated gRPC certificates (mutual TLS between control plane and worker) in "
              << (dir / "grpc-tls").string() << std::endl;
  }
  osb::worker::WorkerOptions worker = flags.worker;
  for (const auto& r : flags.resolve) {
    const auto eq = r.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == r.size()) {
      std::cerr << "error: --resolve: expected NAME=ADDR, got " << r << "\n";
      return 2;
    }
    worker.resolve[r.substr(0, eq)] = r.substr(eq + 1);
  }
  worker.state_dir = (dir / "worker").string();
  worker.hidden_paths.push_back(dir.string());  // database and key files
  worker.tls = dev_tls->worker;
  std::unique_ptr<osb::api::SandboxPlane> plane;
  std::unique_ptr<osb::worker::WorkerNode> node;
  auto before_start = [&](osb::api::ControlPlane& cp) -> osb::Status {
    osb::api::SandboxPlaneOptions plane_options{flags.grpc_listen, dev_tls->control_plane};
    plane_options.limits.max_lifetime_sec = max_lifetime;
    plane_options.templates.dir = (dir / "templates").string();
    auto attached = osb::api::SandboxPlane::Attach(cp, plane_options);
    if (!attached) return attached.error();
    plane = std::move(*attached);
    if (flags.no_worker) return {};
    if (::geteuid() != 0) {
      std::cout << "osb dev: not root, so no worker runs: creating sandboxes will answer 503 "
                   "(run as root, or start `osb worker` as root)" << std::endl;
      return {};
    }
    worker.control_plane = "127.0.0.1:" + std::to_string(plane->grpc_port());
    // The control plane's gRPC port is an own door (REST is added once bound).
    const std::string grpc_host = flags.grpc_listen.substr(0, flags.grpc_listen.rfind(':'));
    worker.forbidden_endpoints.push_back((grpc_host.empty() ? "0.0.0.0" : grpc_host) + ":" +
                                         std::to_string(plane->grpc_port()));
    auto started = osb::worker::WorkerNode::Start(worker);
    if (!started) return started.error();
    node = std::move(*started);
    return {};
  };
  auto on_stopped = [&] {
    if (node) node->Stop();
    if (plane) plane->Stop();
  };
  return osb::api::RunControlPlane(options, shared, before_start, [&](osb::api::ControlPlane& cp) {
    // Ready first: the worker registers within a second or so.
    osb::Status ready = cp.Ready();
    if (node) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (!ready && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling readiness, bounded
        ready = cp.Ready();
      }
    }
    std::string host = listen->first;
    if (host == "0.0.0.0" || host == "::") host = "127.0.0.1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    const std::string url = "http://" + host + ":" + std::to_string(cp.port());
    if (node) {  // the REST API is an own door: no sandbox reaches it through the proxy
      std::string bind = listen->first.find(':') != std::string::npos ? "[" + listen->first + "]" : listen->first;
      if (auto st = node->ForbidEndpoint(bind + ":" + std::to_string(cp.port())); !st) {
        std::cerr << "osb dev: warning: " << st.error().message << "\n";
      }
    }
    const fs::path config = ClientConfigPath();
    std::string config_error;
    bool wrote = false;
    if (!config.empty()) {
      std::error_code mk;
      fs::create_directories(config.parent_path(), mk);
      const std::string body = nlohmann::json{{"apiUrl", url}, {"apiKey", api_key}}.dump(2) + "\n";
      wrote = WritePrivateFile(config, body, &config_error);
    }
    std::cout << "osb dev: API at " << url << "\n";
    if (!ready) std::cout << "osb dev: not ready yet (" << ready.error().message << "); see " << url << "/readyz\n";
    if (env_api_key) {
      std::cout << "osb dev: admin API key from " << osb::controlplane::kApiKeyEnv << "\n";
    } else {
      std::cout << "osb dev: admin API key in " << api_key_file.string() << "\n";
    }
    if (wrote) {
      std::cout << "osb dev: wrote client config " << config.string() << " (oc uses it)\n";
    } else {
      std::cout << "osb dev: could not write the client config"
                << (config_error.empty() ? " (no HOME)" : ": " + config_error) << "\n";
    }
    if (node) std::cout << "osb dev: worker " << node->worker_id() << " running" << "\n";
    std::cout << "osb dev: data in " << dir.string() << "; Ctrl-C to stop" << std::endl;
  }, on_stopped);
}

const bool registered = osb::cmd::RegisterOsbCommand(30, [](CLI::App& root, int& exit_code) {
  auto flags = std::make_shared<DevFlags>();
  auto* sub = root.add_subcommand("dev", "Run everything locally: control plane on SQLite in a data dir");
  sub->add_option("--data-dir", flags->data_dir, "Data directory (database, generated keys)")
      ->capture_default_str();
  sub->add_option("--listen", flags->listen, "HOST:PORT for the REST API")->capture_default_str();
  sub->add_option("--grpc-listen", flags->grpc_listen, "HOST:PORT where workers reach the control plane")
      ->capture_default_str();
  sub->add_flag("--no-worker", flags->no_worker, "Run only the control plane (workers join with `osb worker`)");
  sub->add_option("--max-sandbox-lifetime", flags->max_sandbox_lifetime,
                  "Longest a sandbox may live from its start, extensions included (e.g. 3600, 90m, 24h, 7d; at most 30d)")
      ->capture_default_str();
  auto& w = flags->worker;
  w.listen = "127.0.0.1:7070";
  sub->add_option("--worker-listen", w.listen, "The in-process worker's gRPC address")->capture_default_str();
  sub->add_option("--proxy-listen", w.proxy_listen, "Secrets proxy, explicit (CONNECT)")->capture_default_str();
  sub->add_option("--transparent-listen", w.transparent_listen, "Secrets proxy, transparent TLS")
      ->capture_default_str();
  sub->add_option("--transparent-http-listen", w.transparent_http_listen, "Secrets proxy, transparent HTTP")
      ->capture_default_str();
  sub->add_option("--dns-listen", w.dns_listen, "DNS responder for sandboxes")->capture_default_str();
  sub->add_option("--address-pool", w.address_pool, "IPv4 pool for sandbox veth pairs")->capture_default_str();
  sub->add_option("--name-prefix", w.name_prefix, "Prefix of this worker's host objects (netns, veths, nft tables, cgroups)")
      ->capture_default_str();
  sub->add_option("--run-dir", w.run_dir, "Runtime directory of this worker's sandboxes")->capture_default_str();
  sub->add_option("--audit-log", w.audit_log, "Proxy audit log file (default stderr)");
  sub->add_option("--audit-log-max-bytes", w.audit_log_max_bytes,
                  "Rotate the audit log file beyond this size (0 = never)")->capture_default_str();
  sub->add_option("--audit-log-keep", w.audit_log_keep, "Rotated audit log files kept")->capture_default_str();
  sub->add_option("--fd-reserve", w.fd_reserve,
                  "Descriptors kept free for REST/gRPC; sandbox connections stop before (0 = min(limit/4, 1024))");
  sub->add_option("--metrics-listen", w.metrics_listen, "Proxy metrics (Prometheus) listen address");
  sub->add_option("--upstream-ca", w.upstream_ca, "Extra CA file the proxy trusts for upstreams (tests)");
  sub->add_option("--allow-private", w.allow_private, "CIDR the proxy may connect to despite being private (tests)");
  sub->add_option("--resolve", flags->resolve, "NAME=ADDR override for the proxy's DNS (tests)");
  sub->callback([flags, &exit_code] { exit_code = RunDev(*flags); });
});

}  // namespace
