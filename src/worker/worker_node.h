// WorkerNode: one worker host, assembled — secrets proxy, DNS responder,
// sandbox runtime, the Worker gRPC service, and the agent that registers
// with the control plane and heartbeats. `osb worker` runs one; `osb dev`
// runs one in-process next to the control plane.
//
// Start order: proxy (CA in the state dir) → DNS → runtime, which re-adopts
// the sandboxes a crashed predecessor left running and removes the rest →
// gRPC server → control-plane agent. Adopted sandboxes keep their tokens
// (names and tokens are in the state dir); their values are fetched again
// from the control plane once the agent has registered, and only then is
// their proxy session back. The proxy and DNS ports must be the same as
// before the crash (the sandboxes' nft rules point at them).
// Stop() reverses it and destroys every sandbox this node runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "proto/tls_credentials.h"

namespace osb::worker {

struct WorkerOptions {
  std::string listen = "127.0.0.1:7070";          // gRPC, for the control plane
  std::string advertise;                          // address the CP dials ("" = listen)
  std::string control_plane = "127.0.0.1:8081";   // CP gRPC ("" = do not register)
  std::string worker_id;  // "" = the TLS certificate's CN, else <state-dir>/worker-id (made once)
  std::string state_dir = "/var/lib/osb/worker";
  int capacity = 50;
  // How often the agent heartbeats; the control plane's --worker-stale-after
  // must be a few of these (tests shorten both).
  std::chrono::milliseconds heartbeat_interval{5000};
  // CPUs and memory offered to sandboxes, sent in RegisterWorker; the
  // control plane places a sandbox here only while they cover it.
  // 0 = not limited (osb dev); `osb worker` defaults them to the host's.
  int cpu_count = 0;
  int memory_mb = 0;
  // Proxy and DNS listeners. The sandbox's nftables rules DNAT its traffic
  // to 127.0.0.1:<port>, so loopback is all they need (nothing outside the
  // host reaches them). A UDP responder must reply from the address the
  // DNAT targeted, which binding to 127.0.0.1 guarantees.
  std::string proxy_listen = "127.0.0.1:3128";
  std::string transparent_listen = "127.0.0.1:3129";
  std::string transparent_http_listen = "127.0.0.1:3130";
  std::string dns_listen = "127.0.0.1:5353";
  std::string metrics_listen;                     // "" = none
  // The file data port (file_data_port.h; only with mutual TLS): "" = the
  // host of `listen`, any free port. The control plane reaches it at the
  // host of the worker's gRPC address and the port each grant names.
  std::string file_data_listen;
  std::string audit_log;                          // "" = stderr
  uint64_t audit_log_max_bytes = 100ull << 20;    // rotate the audit log beyond this (0 = never)
  unsigned audit_log_keep = 5;                    // rotated audit files kept
  size_t fd_reserve = 0;                          // descriptors kept for REST/gRPC (0 = default)
  size_t proxy_body_budget = 16 * 1024 * 1024;    // per sandbox: bodies the proxy holds in memory
  std::string address_pool = "10.200.0.0/16";
  // Host objects of this worker's sandboxes are named with this prefix
  // ([a-z]{1,6}) and live under run_dir; two workers on one host need
  // different prefixes, run dirs and address pools.
  std::string name_prefix = "osb";
  std::string run_dir = "/run/osb";
  // Paths no sandbox may see even through the mirrored /etc (the state dir
  // is always added): databases, key files.
  std::vector<std::string> hidden_paths;
  std::string rootfs_template;
  std::string templates_dir;
  // For tests (as in `osb proxy`).
  std::string upstream_ca;
  std::vector<std::string> allow_private;
  std::map<std::string, std::string> resolve;
  // Own doors the proxy must never connect to, besides its own listeners,
  // this node's gRPC and DNS ports (added automatically): e.g. the control
  // plane's REST and gRPC addresses when they run on this host.
  std::vector<std::string> forbidden_endpoints;
  std::optional<proto::GrpcTlsMaterial> tls;      // mutual TLS for both directions
};

class WorkerNode {
 public:
  static Result<std::unique_ptr<WorkerNode>> Start(WorkerOptions options);
  ~WorkerNode();
  WorkerNode(const WorkerNode&) = delete;
  WorkerNode& operator=(const WorkerNode&) = delete;

  void Stop();
  // Blocks until Stop() is called from another thread.
  void Wait();

  const std::string& worker_id() const;
  int file_data_port() const;  // 0 = none (no mutual TLS)
  // Adds an address:port the proxy must never connect to (see
  // WorkerOptions::forbidden_endpoints), e.g. a port bound after Start.
  Status ForbidEndpoint(const std::string& addr_port);
  int grpc_port() const;

  struct Impl;

 private:
  explicit WorkerNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The host's online CPUs and physical memory (MiB): the defaults of
// --cpus and --memory-mb.
int HostCpuCount();
int HostMemoryMb();

}  // namespace osb::worker
