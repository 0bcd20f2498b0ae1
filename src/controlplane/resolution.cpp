#include "controlplane/resolution.h"

#include "controlplane/projects.h"
#include "controlplane/validation.h"
#include "common/secure_memory.h"

namespace osb::controlplane {

Result<ResolvedSandbox> Resolver::ResolveSandbox(const std::string& org_id, const SandboxRequest& req) {
  ResolvedSandbox out;
  out.template_id = kDefaultTemplate;
  out.cpu_count = kDefaultCpu;
  out.memory_mb = kDefaultMemoryMb;
  out.disk_mb = kDefaultDiskMb;
  out.timeout_sec = kDefaultTimeoutSec;

  std::optional<store::Project> project;
  if (req.project) {
    auto p = projects_.Find(org_id, *req.project);
    if (!p) return p.error();
    project = std::move(*p);
    out.project_id = project->id;
    out.template_id = project->template_id;
    out.cpu_count = project->cpu_count;
    out.memory_mb = project->memory_mb;
    out.disk_mb = project->disk_mb;
    out.timeout_sec = project->timeout_sec;
    out.egress_allowlist = project->egress_allowlist;
  }

  if (req.template_id) {
    if (Status st = ValidateName("templateID", *req.template_id); !st) return st.error();
    out.template_id = *req.template_id;
  }
  if (req.cpu_count) {
    if (Status st = ValidateRange("cpuCount", *req.cpu_count, kMinCpu, kMaxCpu); !st) return st.error();
    out.cpu_count = *req.cpu_count;
  }
  if (req.memory_mb) {
    if (Status st = ValidateRange("memoryMB", *req.memory_mb, kMinMemoryMb, kMaxMemoryMb); !st) {
      return st.error();
    }
    out.memory_mb = *req.memory_mb;
  }
  if (req.disk_mb) {
    if (Status st = ValidateRange("diskMB", *req.disk_mb, kMinDiskMb, kMaxDiskMb); !st) return st.error();
    out.disk_mb = *req.disk_mb;
  }
  if (req.timeout_sec) {
    if (Status st = ValidateRange("timeout", *req.timeout_sec, kMinTimeoutSec, kMaxSandboxTimeoutSec); !st) {
      return st.error();
    }
    out.timeout_sec = *req.timeout_sec;
  }
  if (req.egress_allowlist) {
    auto list = NormalizeHostPatterns("egressAllowlist", *req.egress_allowlist);
    if (!list) return list.error();
    out.egress_allowlist = std::move(*list);
  }
  for (const auto& [name, value] : req.envs) {
    if (Status st = ValidateSecretName("envs", name); !st) return st.error();
  }
  out.envs = req.envs;

  if (project) {
    // Attached groups in order, then the project's own group: later wins.
    std::vector<std::string> order = project->secret_group_ids;
    order.push_back(project->own_group_id);
    std::map<std::string, PlainSecret> merged;
    for (const auto& group_id : order) {
      auto plain = secrets_.DecryptGroup(org_id, group_id);
      if (!plain) return plain.error();
      for (auto& s : *plain) {
        PlainSecret& slot = merged[s.name];
        SecureWipe(slot.value);  // an earlier group's value being overridden
        slot = std::move(s);
      }
    }
    for (auto& [name, secret] : merged) {
      if (out.envs.count(name)) continue;  // plaintext env wins; drop (and wipe) the secret
      out.secrets.push_back(std::move(secret));
    }
  }
  return out;
}

}  // namespace osb::controlplane
