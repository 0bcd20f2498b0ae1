// osb worker: one worker host (sandbox runtime + secrets proxy + gRPC).
#include <signal.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "cmd/osb_command.h"
#include "cmd/signals.h"
#include "common/secure_memory.h"
#include "worker/worker_node.h"

namespace {

using osb::worker::WorkerOptions;

int RunWorker(WorkerOptions opt, const std::vector<std::string>& resolve, bool insecure_grpc) {
  // This process holds secret values (the proxy's sessions).
  osb::MakeProcessUndumpable();
  for (const auto& r : resolve) {
    const auto eq = r.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == r.size()) {
      std::cerr << "error: --resolve: expected NAME=ADDR, got " << r << "\n";
      return 2;
    }
    opt.resolve[r.substr(0, eq)] = r.substr(eq + 1);
  }
  auto tls = osb::proto::GrpcTlsFromEnvironment();
  if (!tls) {
    std::cerr << "error: " << tls.error().message << "\n";
    return 2;
  }
  if (!*tls && !insecure_grpc) {
    std::cerr << "error: gRPC between the control plane and workers needs mutual TLS: set "
                 "OPENSANDBOX_GRPC_TLS_CA, OPENSANDBOX_GRPC_TLS_CERT and OPENSANDBOX_GRPC_TLS_KEY\n"
                 "  (a worker certificate: scripts/gen-grpc-certs.sh DIR worker NAME), or pass --insecure-grpc\n"
                 "  to run it in plaintext (then any process that reaches the gRPC port can create sandboxes, "
                 "exec in them and push secrets).\n";
    return 2;
  }
  if (!*tls) {
    std::cerr << "WARNING: --insecure-grpc: this worker's gRPC on " << opt.listen
              << " is PLAINTEXT and unauthenticated, and it registers with " << opt.control_plane
              << " in plaintext\n";
  }
  opt.tls = *tls;
  osb::cmd::BlockTerminationSignals();
  auto node = osb::worker::WorkerNode::Start(std::move(opt));
  if (!node) {
    std::cerr << "error: " << node.error().message << "\n";
    return 1;
  }
  osb::cmd::WaitForTerminationSignal();
  (*node)->Stop();
  return 0;
}

const bool registered = osb::cmd::RegisterOsbCommand(30, [](CLI::App& root, int& exit_code) {
  auto* sub = root.add_subcommand("worker", "Run a worker: sandboxes, secrets proxy, gRPC for the control plane");
  auto opt = std::make_shared<WorkerOptions>();
  auto resolve = std::make_shared<std::vector<std::string>>();
  auto insecure_grpc = std::make_shared<bool>(false);
  sub->add_option("--listen", opt->listen, "gRPC listen address HOST:PORT")->capture_default_str();
  sub->add_option("--advertise", opt->advertise, "Address the control plane dials (default: --listen)");
  sub->add_option("--file-data-listen", opt->file_data_listen,
                  "File data port HOST:PORT (mutual TLS; default: the host of --listen, any free port)");
  sub->add_option("--control-plane", opt->control_plane, "Control plane gRPC address HOST:PORT")
      ->capture_default_str();
  sub->add_option("--worker-id", opt->worker_id, "Worker id (default: the mTLS certificate's common name, else kept in the state dir)");
  sub->add_option("--state-dir", opt->state_dir, "State directory (proxy CA, sandbox records; never secret values)")
      ->capture_default_str();
  sub->add_option("--capacity", opt->capacity, "Maximum concurrent sandboxes")->capture_default_str()
      ->check(CLI::Range(1, 10000));
  auto heartbeat_ms = std::make_shared<int>(5000);
  sub->add_option("--heartbeat-ms", *heartbeat_ms,
                  "Milliseconds between heartbeats to the control plane (keep its --worker-stale-after a few of these)")
      ->capture_default_str()->check(CLI::Range(100, 60000));
  sub->add_option("--cpus", opt->cpu_count,
                  "CPUs offered to sandboxes; the control plane places a sandbox here only while its "
                  "cpuCount fits (default: the host's online CPUs)")
      ->check(CLI::Range(1, 4096));
  sub->add_option("--memory-mb", opt->memory_mb,
                  "Memory (MiB) offered to sandboxes; the control plane places a sandbox here only while "
                  "its memoryMB fits (default: the host's physical memory)")
      ->check(CLI::Range(128, 1 << 30));
  sub->add_option("--proxy-listen", opt->proxy_listen, "Explicit proxy (CONNECT) listen address")
      ->capture_default_str();
  sub->add_option("--transparent-listen", opt->transparent_listen,
                  "Transparent TLS listener (sandbox port 443 is redirected here)")->capture_default_str();
  sub->add_option("--transparent-http-listen", opt->transparent_http_listen,
                  "Transparent plain-HTTP listener (sandbox port 80)")->capture_default_str();
  sub->add_option("--dns-listen", opt->dns_listen, "DNS responder for sandboxes")->capture_default_str();
  sub->add_option("--metrics-listen", opt->metrics_listen, "Proxy metrics (Prometheus) listen address");
  sub->add_option("--audit-log", opt->audit_log, "Proxy audit log file (default stderr)");
  sub->add_option("--audit-log-max-bytes", opt->audit_log_max_bytes,
                  "Rotate the audit log file beyond this size (0 = never)")->capture_default_str();
  sub->add_option("--audit-log-keep", opt->audit_log_keep, "Rotated audit log files kept")->capture_default_str();
  sub->add_option("--fd-reserve", opt->fd_reserve,
                  "Descriptors kept free for REST/gRPC; sandbox connections stop before (0 = min(limit/4, 1024))");
  sub->add_option("--proxy-body-budget", opt->proxy_body_budget,
                  "Bytes of request/response bodies the proxy holds in memory per sandbox at once; past it "
                  "bodies stream, plain-HTTP request bodies get 503")
      ->capture_default_str();
  sub->add_option("--address-pool", opt->address_pool, "IPv4 pool for sandbox veth pairs")->capture_default_str();
  sub->add_option("--name-prefix", opt->name_prefix, "Prefix of this worker's host objects (netns, veths, nft tables, cgroups)")
      ->capture_default_str();
  sub->add_option("--run-dir", opt->run_dir, "Runtime directory of this worker's sandboxes")->capture_default_str();
  sub->add_option("--rootfs", opt->rootfs_template, "Directory used as every sandbox's read-only root");
  sub->add_option("--templates-dir", opt->templates_dir, "Directory of root filesystems by template id");
  sub->add_option("--upstream-ca", opt->upstream_ca, "Extra CA file the proxy trusts for upstreams (tests)");
  sub->add_option("--allow-private", opt->allow_private, "CIDR the proxy may connect to despite being private (tests)");
  sub->add_option("--forbid-endpoint", opt->forbidden_endpoints,
                  "ADDR:PORT the proxy never connects to (e.g. the control plane's REST API on this host); "
                  "its own listeners, gRPC and DNS are added automatically; repeatable");
  sub->add_option("--resolve", *resolve, "NAME=ADDR override for the proxy's DNS (tests)");
  sub->add_flag("--insecure-grpc", *insecure_grpc,
                "Allow plaintext gRPC with the control plane when no OPENSANDBOX_GRPC_TLS_* is set (unsafe)");
  sub->callback([opt, resolve, insecure_grpc, heartbeat_ms, &exit_code] {
    opt->heartbeat_interval = std::chrono::milliseconds(*heartbeat_ms);
    if (opt->cpu_count <= 0) opt->cpu_count = osb::worker::HostCpuCount();
    if (opt->memory_mb <= 0) opt->memory_mb = osb::worker::HostMemoryMb();
    exit_code = RunWorker(*opt, *resolve, *insecure_grpc);
  });
});

}  // namespace
