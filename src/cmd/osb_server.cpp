// osb server: the control plane (REST API + store). Refuses to start without
// a secret encryption key, and without mutual TLS for gRPC unless
// --insecure-grpc is given.
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "common/time_text.h"
#include "api/control_plane.h"
#include "api/sandbox_plane.h"
#include "cmd/osb_command.h"
#include "common/secure_memory.h"
#include "controlplane/auth.h"
#include "crypto/keyring.h"
#include "proto/tls_credentials.h"

namespace {

struct ServerFlags {
  std::string listen = "127.0.0.1:8080";
  std::string db;
  std::string data_dir = ".osb";
  std::string grpc_listen = "127.0.0.1:8081";
  osb::controlplane::SandboxLimits limits;  // per-org caps and the exec executor
  int worker_stale_after_sec = 20;
  std::string max_sandbox_lifetime = "24h";
  std::string tls_cert;  // REST API over HTTPS when set (with tls_key)
  std::string tls_key;
  bool insecure_grpc = false;
  uint64_t max_template_bytes = osb::controlplane::kDefaultMaxTemplateBytes;
};

int RunServer(const ServerFlags& flags) {
  // This process holds the encryption keys and decrypts secret values.
  osb::MakeProcessUndumpable();
  auto lifetime = osb::ParseDurationSeconds("--max-sandbox-lifetime", flags.max_sandbox_lifetime);
  if (!lifetime || *lifetime > osb::controlplane::kMaxSandboxTimeoutSec) {
    std::cerr << "error: " << (lifetime ? "--max-sandbox-lifetime: at most 30d" : lifetime.error().message) << "\n";
    return 2;
  }
  const int max_lifetime = *lifetime;
  auto keyring = osb::crypto::Keyring::FromEnvironment();
  if (!keyring) {
    std::cerr << osb::api::MissingKeyMessage(keyring.error()) << "\n";
    return 2;
  }
  osb::api::ControlPlaneOptions options;
  options.listen = flags.listen;
  options.http.tls_cert_file = flags.tls_cert;
  options.http.tls_key_file = flags.tls_key;
  options.db_url = flags.db;
  if (const char* key = std::getenv(osb::controlplane::kApiKeyEnv); key && *key) {
    options.bootstrap_api_key = key;
  }
  // Read once; from now on no other process can see them in
  // /proc/PID/environ, and no child inherits them.
  osb::crypto::RemoveKeysFromEnvironment();
  osb::RemoveFromEnvironment(osb::controlplane::kApiKeyEnv);

  auto tls = osb::proto::GrpcTlsFromEnvironment();
  if (!tls) {
    std::cerr << "error: " << tls.error().message << "\n";
    return 2;
  }
  if (!*tls && !flags.insecure_grpc) {
    std::cerr << "error: gRPC between the control plane and workers needs mutual TLS: set "
                 "OPENSANDBOX_GRPC_TLS_CA, OPENSANDBOX_GRPC_TLS_CERT and OPENSANDBOX_GRPC_TLS_KEY\n"
                 "  (a control-plane certificate: scripts/gen-grpc-certs.sh DIR control-plane), or pass "
                 "--insecure-grpc\n  to run it in plaintext (then any process that reaches the gRPC port can "
                 "fetch sandbox secrets).\n";
    return 2;
  }
  if (!*tls) {
    std::cerr << "WARNING: --insecure-grpc: worker gRPC on " << flags.grpc_listen
              << " is PLAINTEXT and unauthenticated; anyone who reaches it can register as a worker and "
                 "receive sandbox secrets\n";
  }
  if (options.db_url.empty()) {
    std::error_code ec;
    const bool made = std::filesystem::create_directories(flags.data_dir, ec);
    if (!ec && made && ::chmod(flags.data_dir.c_str(), 0700) != 0) ec = std::make_error_code(std::errc(errno));
    if (ec) {
      std::cerr << "error: --data-dir: cannot create " << flags.data_dir << ": " << ec.message() << "\n";
      return 1;
    }
    struct stat st {};
    if (!made && ::stat(flags.data_dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
      std::cerr << "warning: --data-dir " << flags.data_dir
                << " is accessible to other users; it holds the database (chmod 700 it)\n";
    }
    options.db_url = "sqlite://" + std::filesystem::absolute(flags.data_dir).lexically_normal().string() + "/osb.db";
  }
  auto shared = std::make_shared<const osb::crypto::Keyring>(std::move(*keyring));
  std::unique_ptr<osb::api::SandboxPlane> plane;
  auto before_start = [&](osb::api::ControlPlane& cp) -> osb::Status {
    osb::api::SandboxPlaneOptions plane_options{flags.grpc_listen, *tls};
    plane_options.limits = flags.limits;
    plane_options.limits.max_lifetime_sec = max_lifetime;
    plane_options.stale_after = std::chrono::seconds(flags.worker_stale_after_sec);
    plane_options.templates.dir =
        (std::filesystem::absolute(flags.data_dir).lexically_normal() / "templates").string();
    plane_options.templates.max_bytes = flags.max_template_bytes;
    auto attached = osb::api::SandboxPlane::Attach(cp, plane_options);
    if (!attached) return attached.error();
    plane = std::move(*attached);
    return {};
  };
  return osb::api::RunControlPlane(
      options, shared, before_start,
      [&](osb::api::ControlPlane& cp) {
        std::cout << "osb server: listening on port " << cp.port()
                  << (flags.tls_cert.empty() ? " (HTTP)" : " (HTTPS)") << "; workers connect to gRPC port "
                  << plane->grpc_port() << (*tls ? " (mutual TLS)" : " (PLAINTEXT: --insecure-grpc)")
                  << std::endl;
      },
      [&] { if (plane) plane->Stop(); });
}

const bool registered = osb::cmd::RegisterOsbCommand(20, [](CLI::App& root, int& exit_code) {
  auto flags = std::make_shared<ServerFlags>();
  auto* sub = root.add_subcommand("server", "Run the control plane (REST API on HTTP, or HTTPS with --tls-cert/--tls-key)");
  sub->add_option("--listen", flags->listen, "HOST:PORT to listen on")->capture_default_str();
  sub->add_option("--db", flags->db,
                  "Database URL: sqlite:///abs/path.db or postgresql://... (default: SQLite in --data-dir)");
  sub->add_option("--data-dir", flags->data_dir, "Directory for the default SQLite database (made 0700)")
      ->capture_default_str();
  sub->add_option("--grpc-listen", flags->grpc_listen, "HOST:PORT where workers reach the control plane (gRPC)")
      ->capture_default_str();
  // Limits (docs/operations.md, "Limits and replicas"); 0 = unlimited.
  sub->add_option("--org-max-sandboxes", flags->limits.org_max_sandboxes,
                  "Most running sandboxes per org (0 = unlimited); beyond: 429")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--org-max-memory-mb", flags->limits.org_max_memory_mb,
                  "Most total memoryMB of running sandboxes per org (0 = unlimited); beyond: 429")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--org-max-execs", flags->limits.long_calls.per_org,
                  "Most execs running at once per org; beyond: 429")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--exec-threads", flags->limits.long_calls.threads,
                  "Threads for long calls other than exec (file transfers, checkpoints); execs are asynchronous and hold none")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--max-sandbox-lifetime", flags->max_sandbox_lifetime,
                  "Longest a sandbox may live from its start, extensions included (e.g. 3600, 90m, 24h, 7d; at most 30d)")
      ->capture_default_str();
  sub->add_option("--max-template-bytes", flags->max_template_bytes,
                  "Largest image tarball POST /api/templates accepts (bytes; beyond: 413). Templates are kept in "
                  "--data-dir/templates")
      ->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--worker-stale-after", flags->worker_stale_after_sec,
                  "Seconds without a heartbeat after which a worker's sandboxes are marked lost")
      ->capture_default_str()->check(CLI::Range(5, 3600));
  // REST API TLS (the gRPC listener has its own TLS settings).
  auto* cert = sub->add_option("--tls-cert", flags->tls_cert,
                               "PEM certificate chain: serve the REST API over HTTPS (TLS 1.2+); needs --tls-key")
                   ->check(CLI::ExistingFile);
  auto* key = sub->add_option("--tls-key", flags->tls_key, "PEM private key for --tls-cert")->check(CLI::ExistingFile);
  cert->needs(key);
  key->needs(cert);
  sub->add_flag("--insecure-grpc", flags->insecure_grpc,
                "Allow plaintext gRPC to workers when no OPENSANDBOX_GRPC_TLS_* is set (unsafe)");
  sub->callback([flags, &exit_code] { exit_code = RunServer(*flags); });
});

}  // namespace
