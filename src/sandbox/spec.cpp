#include "sandbox/spec.h"

#include <cmath>

namespace osb::sandbox {
namespace {

Error Invalid(const std::string& field, const std::string& why) {
  return MakeError(ErrorCode::kInvalidArgument, field + ": " + why);
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

Status ValidateEnv(const std::string& field, const std::map<std::string, std::string>& env) {
  for (const auto& [k, v] : env) {
    if (k.empty()) return Invalid(field, "empty variable name");
    if (k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
      return Invalid(field, "variable name contains '=' or NUL");
    if (v.find('\0') != std::string::npos)
      return Invalid(field + "." + k, "value contains NUL");  // names only, never values
  }
  return {};
}

size_t EnvBytes(const std::map<std::string, std::string>& env) {
  size_t n = 0;
  for (const auto& [k, v] : env) n += k.size() + v.size() + 2;
  return n;
}

}  // namespace

Status ValidateSandboxId(const std::string& id) {
  if (id.empty() || id.size() > 48) return Invalid("id", "must be 1..48 characters");
  for (char c : id)
    if (!IsLowerAlnum(c) && c != '-') return Invalid("id", "only lowercase letters, digits and '-'");
  if (!IsLowerAlnum(id.front()) || !IsLowerAlnum(id.back()))
    return Invalid("id", "must start and end with a letter or digit");
  return {};
}

Status ValidateSpec(const SandboxSpec& spec) {
  if (auto s = ValidateSandboxId(spec.id); !s) return s;
  if (!std::isfinite(spec.cpuCount) || spec.cpuCount < 0.01 || spec.cpuCount > 1024)
    return Invalid("cpuCount", "must be between 0.01 and 1024");
  if (spec.memoryMB < 16 || spec.memoryMB > 1048576) return Invalid("memoryMB", "must be between 16 and 1048576");
  if (spec.pidsMax < 8 || spec.pidsMax > 65536) return Invalid("pidsMax", "must be between 8 and 65536");
  if (spec.timeoutSec < 1 || spec.timeoutSec > 2592000)
    return Invalid("timeoutSec", "must be between 1 and 2592000");
  if (auto s = ValidateEnv("env", spec.env); !s) return s;
  if (EnvBytes(spec.env) > kMaxRequestBytes / 2) return Invalid("env", "larger than 512 KiB");
  if (!spec.rootfsTemplate.empty() && spec.rootfsTemplate.front() != '/')
    return Invalid("rootfsTemplate", "must be an absolute path");
  if (!spec.imageRootfs.empty()) {
    if (spec.imageRootfs.front() != '/' || spec.imageRootfs.find(',') != std::string::npos ||
        spec.imageRootfs.find(':') != std::string::npos)
      return Invalid("imageRootfs", "must be an absolute path without ',' or ':'");
    if (!spec.rootfsTemplate.empty()) return Invalid("imageRootfs", "excludes rootfsTemplate");
    if (spec.diskMB < 16 || spec.diskMB > 1048576) return Invalid("diskMB", "must be between 16 and 1048576");
  }
  if (spec.runAsUid < -1 || spec.runAsUid > 65535) return Invalid("runAsUid", "must be -1 or 0..65535");
  if (spec.runAsGid < -1 || spec.runAsGid > 65535) return Invalid("runAsGid", "must be -1 or 0..65535");
  if (!spec.workingDir.empty() && (spec.workingDir.front() != '/' || spec.workingDir.size() > 4096))
    return Invalid("workingDir", "must be an absolute path");
  if (spec.caBundlePem.size() > 8u << 20) return Invalid("caBundlePem", "larger than 8 MiB");
  if (spec.caBundlePem.find('\0') != std::string::npos) return Invalid("caBundlePem", "contains NUL");
  for (const auto& entry : spec.dnsAllowlist) {
    if (entry.empty() || entry.size() > 255) return Invalid("dnsAllowlist", "entry must be 1..255 characters");
    for (unsigned char c : entry)
      if (c <= 0x20 || c >= 0x7f) return Invalid("dnsAllowlist", "entry has a non-printable character");
  }
  const auto& n = spec.network;
  if (n.proxyExplicitPort == 0) return Invalid("network.proxyExplicitPort", "required");
  if (n.proxyTransparentTlsPort == 0) return Invalid("network.proxyTransparentTlsPort", "required");
  if (n.proxyTransparentHttpPort == 0) return Invalid("network.proxyTransparentHttpPort", "required");
  if (n.dnsPort == 0) return Invalid("network.dnsPort", "required");
  return {};
}

Status ValidateExec(const ExecRequest& req) {
  if (req.cmd.empty()) return Invalid("cmd", "required");
  if (req.cmd.find('\0') != std::string::npos) return Invalid("cmd", "contains NUL");
  size_t total = req.cmd.size() + req.cwd.size() + req.stdinData.size() + EnvBytes(req.env);
  for (const auto& a : req.args) {
    if (a.find('\0') != std::string::npos) return Invalid("args", "an argument contains NUL");
    total += a.size() + 1;
  }
  if (auto s = ValidateEnv("env", req.env); !s) return s;
  if (!req.cwd.empty() && (req.cwd.front() != '/' || req.cwd.find('\0') != std::string::npos))
    return Invalid("cwd", "must be an absolute path");
  if (req.timeoutSec < 1 || req.timeoutSec > 86400) return Invalid("timeoutSec", "must be between 1 and 86400");
  if (total > kMaxRequestBytes) return MakeError(ErrorCode::kTooLarge, "exec request larger than 1 MiB");
  return {};
}

}  // namespace osb::sandbox
