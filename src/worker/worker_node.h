// WorkerNode: one worker host, assembled — secrets proxy, DNS responder,
// sandbox runtime, the Worker gRPC service, and the agent that registers
// with the control plane and heartbeats. `osb worker` runs one; `osb dev`
// runs one in-process next to the control plane.
//
// Start order: reconcile leftovers of a crashed predecessor → proxy (CA in
// the state dir) → DNS → runtime → gRPC server → control-plane agent.
// Stop() reverses it and destroys every sandbox this node created.
#pragma once

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
  std::string worker_id;                          // "" = <state-dir>/worker-id, made once
  std::string state_dir = "/var/lib/osb/worker";
  int capacity = 50;
  // Proxy and DNS listeners. The sandbox's nftables rules DNAT its traffic
  // to 127.0.0.1:<port>, so loopback is all they need (nothing outside the
  // host reaches them). A UDP responder must reply from the address the
  // DNAT targeted, which binding to 127.0.0.1 guarantees.
  std::string proxy_listen = "127.0.0.1:3128";
  std::string transparent_listen = "127.0.0.1:3129";
  std::string transparent_http_listen = "127.0.0.1:3130";
  std::string dns_listen = "127.0.0.1:5353";
  std::string metrics_listen;                     // "" = none
  std::string audit_log;                          // "" = stderr
  std::string address_pool = "10.200.0.0/16";
  std::string rootfs_template;
  std::string templates_dir;
  // For tests (as in `osb proxy`).
  std::string upstream_ca;
  std::vector<std::string> allow_private;
  std::map<std::string, std::string> resolve;
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
  int grpc_port() const;

  struct Impl;

 private:
  explicit WorkerNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace osb::worker
