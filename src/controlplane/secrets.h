// Secrets: write-only values encrypted at rest with the keyring.
//
// A secret lives in a group: a project's own group (routes under
// /api/projects/{p}/secrets) or an org-level group (/api/secret-groups/{g}/
// secrets). The ciphertext's associated data is SecretAad(org, group, name),
// so a ciphertext copied into any other row fails to decrypt.
//
// Values are never returned by listing calls, never logged and never put in
// an error message. Plaintext copies made here are wiped after use.
//
// Change hook (for live refresh of running sandboxes): after a secret is set
// or deleted and the change is committed, the listener (if any) is called
// with the names and ids involved — never the value. It runs on the request
// thread; it must be quick and must not throw.
// Thread safety: all methods are thread-safe; SetListener must be called
// before the service is shared (before the server starts).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/secret_kinds.h"
#include "controlplane/projects.h"
#include "crypto/keyring.h"
#include "store/store.h"

namespace osb::controlplane {

struct SecretChange {
  enum class Kind { kSet, kDelete };
  Kind kind = Kind::kSet;
  std::string org_id;
  std::optional<std::string> project_id;  // set for a project's own secret
  std::optional<std::string> group_id;    // set for an org-level group's secret
  std::string name;
  // Every project whose sandboxes see this secret: the owner project, or all
  // projects attaching the group.
  std::vector<std::string> affected_project_ids;
};
// What a change's push to running sandboxes achieved (live refresh).
struct RefreshReport {
  int refreshed = 0;                  // sandboxes that have the new value (or the removal)
  std::vector<std::string> failed;    // sandbox ids that could not be refreshed in time
};
using SecretChangeListener = std::function<RefreshReport(const SecretChange&)>;

struct SecretMetadata {
  std::string name;
  // Where the proxy may substitute the value: hosts ("api.example.com",
  // "*.example.com", optional ":port"), or ["*"] = any host the sandbox may
  // reach. Empty = only the hosts on the egress allowlist of the sandbox
  // that uses it, and NO host when that allowlist is empty.
  std::vector<std::string> allowed_hosts;
  std::string created_at;
  std::string updated_at;
  // Secret kinds (common/secret_kinds.h): "value" or a signing kind, with
  // its non-secret material fields (JSON object text, "" for value).
  std::string kind = "value";
  std::string public_material = {};
  std::vector<RequestRule> allowed_requests = {};  // empty = every request
  std::string on_disallowed_request = "seal";  // "seal" | "refuse"
  // Set() only: advice for the user (e.g. "this secret goes nowhere").
  std::vector<std::string> warnings;
  RefreshReport refresh;  // set by Set(): the push to running sandboxes
};

// A decrypted secret; the value is wiped when the object is destroyed.
struct PlainSecret {
  std::string name;
  std::string value;  // for non-value kinds: the material JSON (SecretMaterial::ToJson)
  std::vector<std::string> allowed_hosts;
  std::string kind = "value";
  std::vector<RequestRule> allowed_requests;
  std::string on_disallowed_request = "seal";

  PlainSecret() = default;
  PlainSecret(std::string n, std::string v, std::vector<std::string> h)
      : name(std::move(n)), value(std::move(v)), allowed_hosts(std::move(h)) {}
  PlainSecret(const PlainSecret&) = default;
  PlainSecret(PlainSecret&&) noexcept = default;
  PlainSecret& operator=(const PlainSecret&) = default;
  PlainSecret& operator=(PlainSecret&&) noexcept = default;
  ~PlainSecret();
};

// Unambiguous associated data: each part length-prefixed (4 bytes, big-endian).
std::string SecretAad(std::string_view org_id, std::string_view group_id, std::string_view name);

// Where a secret lives: a project's own group, or an org-level group.
enum class SecretScope { kProject, kGroup };

class SecretService {
 public:
  SecretService(store::Store& store, std::shared_ptr<const crypto::Keyring> keyring)
      : store_(store), keyring_(std::move(keyring)), projects_(store), groups_(store) {}

  void SetListener(SecretChangeListener listener) { listener_ = std::move(listener); }

  // ref: project id/name (kProject) or group id/name (kGroup).
  // allowed_hosts: see SecretMetadata ("*" must stand alone). When the
  // secret has no allowed hosts and the project's egress allowlist (for a
  // group: of a project attaching it) is empty, the result carries a warning
  // that the secret will not be sent anywhere.
  Result<SecretMetadata> Set(const std::string& org_id, SecretScope scope, const std::string& ref,
                             const std::string& name, std::string_view value,
                             const std::vector<std::string>& allowed_hosts);
  // What a PUT may carry besides the value (issue 16). For a non-value kind
  // the `value` argument of Set is the material JSON, validated per kind.
  struct Options {
    std::string kind = "value";
    std::vector<RequestRule> allowed_requests;
    std::string on_disallowed_request = "seal";
  };
  Result<SecretMetadata> Set(const std::string& org_id, SecretScope scope, const std::string& ref,
                             const std::string& name, std::string_view value,
                             const std::vector<std::string>& allowed_hosts, const Options& options);
  Result<std::vector<SecretMetadata>> List(const std::string& org_id, SecretScope scope,
                                           const std::string& ref);
  Status Delete(const std::string& org_id, SecretScope scope, const std::string& ref,
                const std::string& name);

  // Decrypts every secret of one group (for resolution). kFailedPrecondition
  // naming the key if a needed key is not configured; kDataLoss if a row was
  // tampered with or moved.
  Result<std::vector<PlainSecret>> DecryptGroup(const std::string& org_id, const std::string& group_id);

 private:
  struct Target {
    std::string group_id;
    std::optional<std::string> project_id;
    std::optional<store::Project> project;  // kProject
  };
  std::vector<std::string> HostlessWarnings(const std::string& org_id, const Target& t);
  Result<Target> Locate(const std::string& org_id, SecretScope scope, const std::string& ref);
  RefreshReport Notify(SecretChange::Kind kind, const std::string& org_id, const Target& t, const std::string& name);

  store::Store& store_;
  std::shared_ptr<const crypto::Keyring> keyring_;
  ProjectService projects_;
  GroupService groups_;
  SecretChangeListener listener_;
};

}  // namespace osb::controlplane
