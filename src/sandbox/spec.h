// Value types the worker passes to SandboxRuntime, and their validation.
//
// Contract: every field is checked by ValidateSpec / ValidateExec before any
// host state is touched; a bad field yields kInvalidArgument naming it.
// Nothing here holds a real secret value: the worker has already replaced
// secrets by sealed tokens in `env`.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace osb::sandbox {

// Ports of the worker's listeners, all reachable from the sandbox only on the
// host-side veth address (see docs/sandbox.md for the nftables rules).
struct NetworkSpec {
  uint16_t proxyExplicitPort = 0;     // HTTP CONNECT / forward proxy; allowed as is
  uint16_t proxyTransparentTlsPort = 0;   // TCP 443 to any address is redirected here
  uint16_t proxyTransparentHttpPort = 0;  // TCP 80 to any address is redirected here
  uint16_t dnsPort = 0;               // UDP+TCP 53 to any address is redirected here
};

struct SandboxSpec {
  std::string id;            // [a-z0-9-], 1..48 chars, starts and ends alnum
  double cpuCount = 1;       // CPUs (fractions allowed), 0.01..1024
  uint64_t memoryMB = 512;   // 16..1048576; also caps swap; /tmp+/home+/dev/shm get half
  uint64_t pidsMax = 256;    // 8..65536, every process/thread in the sandbox
  uint64_t timeoutSec = 300; // whole-sandbox lifetime, 1..2592000 (30 days)
  // The base environment of every command (the worker's env: defaults, user
  // envs, sealed tokens). The runtime adds, unless present here: PATH, HOME,
  // HTTPS_PROXY/HTTP_PROXY/https_proxy/http_proxy = http://<hostAddress>:
  // <proxyExplicitPort> (the address is allocated by Create), NO_PROXY/
  // no_proxy = localhost,127.0.0.1,::1, and, when caBundlePem is set,
  // SSL_CERT_FILE/REQUESTS_CA_BUNDLE/NODE_EXTRA_CA_CERTS.
  std::map<std::string, std::string> env;
  // Optional directory whose top-level entries become the read-only root;
  // empty = read-only binds of the host's /usr /bin /lib /lib64 /sbin and a
  // generated /etc (nothing of the host's /etc is bound).
  std::string rootfsTemplate;
  // Image sandboxes: the rootfs of an imported image (images::ImageStore's
  // <store>/sha256/<hex>/rootfs). Set = the root is an overlay whose lower
  // layer is this dir (idmapped, read-only; never written) and whose upper
  // layer is the sandbox's own ext4 disk of diskMB: a write beyond it gets
  // ENOSPC. Excludes rootfsTemplate. See image_root.h.
  std::string imageRootfs;
  uint64_t diskMB = 1024;       // 16..1048576, image sandboxes only
  // The image's User, resolved (images::ResolveUser): commands run as it.
  // -1 = RuntimeConfig.uid/gid (the generated "sandbox" user).
  int64_t runAsUid = -1;        // 0..65535 or -1
  int64_t runAsGid = -1;
  // Default cwd of commands (the image's WorkingDir); empty = /home/sandbox.
  std::string workingDir;
  // PEM bundle (system CAs + the worker CA) installed as
  // /etc/ssl/certs/ca-certificates.crt; empty = a copy of the host's bundle.
  std::string caBundlePem;
  // Egress allowlist consulted by the DNS responder (exact or "*.suffix").
  std::vector<std::string> dnsAllowlist;
  NetworkSpec network;
  // A checkpoint (state archive, state_archive.h) to restore, read from its
  // current offset; -1 = none. Create restores it before it returns (so
  // before any process runs): an image sandbox's overlay upper dir before
  // the overlay is mounted, the scratch roots once the init is ready. An
  // image sandbox's checkpoint needs the same imageRootfs (its whiteouts
  // and copies are relative to that image). Not owned; not validated by
  // Validate (kDataLoss / kTooLarge / kFailedPrecondition from Create).
  int restoreFd = -1;
};

struct ExecRequest {
  std::string cmd;                          // absolute path or a name looked up in PATH
  std::vector<std::string> args;            // argv[1..]
  std::map<std::string, std::string> env;   // added to / overriding the base env
  std::string cwd;                          // absolute; empty = /home/sandbox
  uint64_t timeoutSec = 60;                 // 1..86400
  std::string stdinData;                    // fed to stdin (<= 1 MiB), then EOF
};

struct ExecResult {
  int exitCode = 0;        // exit status; 128+signal when killed; 124 on timeout
  int termSignal = 0;      // signal that ended the command, 0 if it exited
  bool timedOut = false;
  std::string stdoutData;  // at most kMaxOutputBytes
  std::string stderrData;
  bool stdoutTruncated = false;
  bool stderrTruncated = false;
};

// What Create returns: addresses the worker registers with its proxy session
// (sandbox address) and puts in HTTPS_PROXY (host address).
struct SandboxInfo {
  std::string id;
  std::string sandboxAddress;  // e.g. 10.200.0.6, the source of all its traffic
  std::string hostAddress;     // e.g. 10.200.0.5, host side of its veth
  std::string netnsName;       // /run/netns/<name>, for diagnostics and tests
  int64_t initPid = 0;         // host pid of the sandbox's PID 1
  uint32_t hostIdBase = 0;     // host uid/gid that root inside maps to (65536 ids from there)
  int64_t startedAtUnix = 0;
  int64_t endsAtUnix = 0;      // when the runtime kills it
};

inline constexpr size_t kMaxOutputBytes = 1 << 20;
inline constexpr size_t kMaxRequestBytes = 1 << 20;  // cmd+args+env+stdin of one Exec

Status ValidateSandboxId(const std::string& id);
Status ValidateSpec(const SandboxSpec& spec);
Status ValidateExec(const ExecRequest& req);

}  // namespace osb::sandbox
