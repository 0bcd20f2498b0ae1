// What the worker remembers about each sandbox on its disk (state dir):
// everything needed to serve it again after a worker restart EXCEPT secret
// values, which are never written to disk and are fetched from the control
// plane instead. Tokens are stored: they are not secrets (they only work
// through this worker's proxy, from the sandbox's own source address).
//
// Files: <state-dir>/sandboxes/<id>.json, mode 0600, replaced atomically.
// Thread safety: none; the caller serialises access per sandbox.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/result.h"

namespace osb::worker {

struct SealedSecret {
  std::string name;
  std::string token;
  std::vector<std::string> allowed_hosts;
  std::string kind = "value";  // common/secret_kinds.h
  std::string aux_token = {};  // aws-sigv4 AWS_SESSION_TOKEN placeholder, "" if none
};

struct SandboxRecord {
  std::string id;
  std::string project_id;
  std::string template_id;
  // An image sandbox: the image's config digest and the disk it got.
  std::string template_digest;
  int disk_mb = 0;
  int cpu_count = 1;
  int memory_mb = 512;
  int timeout_sec = 300;
  std::vector<std::string> egress_allowlist;
  std::vector<SealedSecret> secrets;  // names and tokens, never values
  std::string sandbox_address;
  std::string host_address;
  int64_t started_at_unix = 0;
  int64_t ends_at_unix = 0;
};

class SandboxRecords {
 public:
  explicit SandboxRecords(std::string state_dir);

  Status Save(const SandboxRecord& record) const;
  Status Remove(const std::string& id) const;
  // Every readable record; unreadable files are skipped and reported.
  std::vector<SandboxRecord> LoadAll(std::vector<std::string>* problems = nullptr) const;

 private:
  std::string dir_;
};

}  // namespace osb::worker
