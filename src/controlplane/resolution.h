// Resolution: project defaults + explicit request fields + decrypted secrets
// → the effective configuration of one sandbox. Called by POST /api/sandboxes
// (issue 5) on the control plane; the result is what the worker receives.
//
// Rules (documented in docs/api.md, "Resolution"):
//   * With a project: its template/cpu/memory/disk/timeout/egressAllowlist are
//     the defaults; any field present in the request wins. Without a project
//     the defaults are template "base", 1 CPU, 512 MiB, 1024 MB disk, 300 s,
//     empty allowlist.
//   * Secrets: the project's attached groups in their listed order, then the
//     project's own secrets; on a name collision the later one wins.
//   * A plaintext env of the same name as a secret wins: that secret is
//     dropped (never sent to the worker).
// Errors: kInvalidArgument naming the field (out-of-range overrides, bad env
// names, bad allowlist entries), kNotFound for an unknown project (or another
// org's), kFailedPrecondition / kDataLoss when a secret cannot be decrypted.
// Thread safety: Resolver is safe to share.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "controlplane/secrets.h"
#include "store/store.h"

namespace osb::controlplane {

struct SandboxRequest {
  std::optional<std::string> project;      // id or name
  std::optional<std::string> template_id;  // "templateID" in the API
  std::optional<int> cpu_count;
  std::optional<int> memory_mb;
  std::optional<int> disk_mb;              // "diskMB" in the API
  std::optional<int> timeout_sec;          // "timeout" in the API
  std::map<std::string, std::string> envs;
  std::optional<std::vector<std::string>> egress_allowlist;
  // A checkpoint to restore (its config gives the defaults of the fields
  // above, which still win when present). Not used by ResolveSandbox.
  std::optional<std::string> from_checkpoint;
  std::map<std::string, std::string> metadata;  // checked by ValidateSandboxMetadata
};

// Values are wiped when the object is destroyed (PlainSecret's destructor).
using ResolvedSecret = PlainSecret;

struct ResolvedSandbox {
  std::optional<std::string> project_id;
  std::string template_id;
  int cpu_count = 0;
  int memory_mb = 0;
  int disk_mb = 0;
  int timeout_sec = 0;
  std::vector<std::string> egress_allowlist;  // normalised; empty = all hosts
  std::map<std::string, std::string> envs;
  std::vector<ResolvedSecret> secrets;        // sorted by name
};

class Resolver {
 public:
  Resolver(store::Store& store, SecretService& secrets) : projects_(store), secrets_(secrets) {}

  Result<ResolvedSandbox> ResolveSandbox(const std::string& org_id, const SandboxRequest& request);

 private:
  ProjectService projects_;
  SecretService& secrets_;
};

}  // namespace osb::controlplane
